//! The deliveries function: one binary, two roles by `DELIVERIES_MODE` (`deliveries::roles`).

#[tokio::main]
async fn main() -> Result<(), shared::runtime::BoxError> {
    shared::runtime::init_tracing();
    deliveries::roles::run(&shared::settings::Env::process()).await
}
