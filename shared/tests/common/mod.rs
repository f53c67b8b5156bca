//! Scaffolding the port contract tests share: one test per check and backend, and the
//! emulator switch for the AWS backends.

/// Generates, for every check and backend, the test `<backend>::<check>`: it builds the
/// backend's fixture and awaits `check(<argument>)`. Checks are grouped by the argument they
/// take from the fixture. A backend set up as `Some(fixture) = …` needs the emulator; without it
/// (`None`) its tests return at once.
///
/// ```ignore
/// contract_tests!(
///     checks: { (&fixture) [round_trip, delete_is_idempotent] },
///     embedded: { fixture = super::embedded_store().await },
///     s3: { Some(fixture) = super::s3_store().await },
/// );
/// ```
#[allow(unused_macros)]
macro_rules! contract_tests {
    (checks: $checks:tt, $($backend:ident: $setup:tt),+ $(,)?) => {
        $(contract_tests!(@backend $backend $setup $checks);)+
    };
    (@backend $backend:ident { Some($fixture:ident) = $setup:expr } { $(($argument:expr) [$($check:ident),* $(,)?]),* $(,)? }) => {
        mod $backend {
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let Some($fixture) = $setup else { return };
                    super::$check($argument).await;
                }
            )*)*
        }
    };
    (@backend $backend:ident { $fixture:ident = $setup:expr } { $(($argument:expr) [$($check:ident),* $(,)?]),* $(,)? }) => {
        mod $backend {
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let $fixture = $setup;
                    super::$check($argument).await;
                }
            )*)*
        }
    };
}

#[allow(unused_imports)]
pub(crate) use contract_tests;

/// The emulator's endpoint (`AWS_ENDPOINT_URL`), or `None` after saying that the `backend`
/// test is skipped; `REQUIRE_AWS_EMULATOR=1` makes a missing emulator a failure.
pub fn emulator(backend: &str) -> Option<String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok().filter(|url| !url.is_empty());
    if endpoint.is_none() {
        assert!(std::env::var("REQUIRE_AWS_EMULATOR").as_deref() != Ok("1"), "REQUIRE_AWS_EMULATOR=1 but AWS_ENDPOINT_URL is not set");
        eprintln!("skipping {backend} contract test: AWS_ENDPOINT_URL is not set");
    }
    endpoint
}
