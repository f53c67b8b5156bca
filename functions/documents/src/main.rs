//! The documents function: one binary, three roles by `DOCUMENTS_MODE` (`documents::roles`).

#[tokio::main]
async fn main() -> Result<(), shared::runtime::BoxError> {
    shared::runtime::init_tracing();
    documents::roles::run(&shared::settings::Env::process()).await
}
