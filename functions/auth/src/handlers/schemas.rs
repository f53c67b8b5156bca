//! The schema of the JWKS (`KeyRing::jwks()` answers a `serde_json::Value`), declared here as
//! schema only; the contract test compares it with what the handler really answers.

use utoipa::ToSchema;

/// The published signing keys (RFC 7517), current and previous.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

/// One Ed25519 public key.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Jwk {
    #[schema(example = "OKP")]
    kty: String,
    #[schema(example = "Ed25519")]
    crv: String,
    #[schema(example = "EdDSA")]
    alg: String,
    #[schema(rename = "use", example = "sig")]
    use_: String,
    kid: String,
    /// The public key, base64url without padding.
    x: String,
}
