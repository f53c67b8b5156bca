//! Schemas of shared types the auth answers carry (`shared::identity::Profile`, `Level`, the
//! JWKS), declared here because `shared` does not derive `ToSchema` for them yet and the
//! orphan rule keeps this crate from implementing it. Schema only: nothing is serialized from
//! these types. The contract test compares them with what the handlers really answer; once
//! `shared` carries the schemas, these go.

use utoipa::ToSchema;

/// An account level (SPEC §3.8).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum AccountLevel {
    Simplified,
    Standard,
    Confirmed,
}

/// The citizen's personal data as stored (SPEC §3.8), with the registry agency's check.
#[derive(ToSchema)]
#[schema(as = Profile)]
#[allow(dead_code)]
pub struct ProfileView {
    #[schema(max_length = 100, example = "Иванова")]
    last_name: String,
    #[schema(max_length = 100, example = "Анна")]
    first_name: String,
    #[schema(max_length = 100, example = "Сергеевна")]
    middle_name: Option<String>,
    #[schema(format = Date, example = "1990-05-17")]
    birth_date: String,
    gender: Gender,
    /// `XXX-XXX-XXX YY`.
    #[schema(example = "112-233-445 95")]
    snils: String,
    /// 12 digits.
    #[schema(example = "500100732259")]
    inn: Option<String>,
    passport: PassportView,
    verification: VerificationView,
    updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum Gender {
    Male,
    Female,
}

/// A Russian internal passport.
#[derive(ToSchema)]
#[schema(as = Passport)]
#[allow(dead_code)]
pub struct PassportView {
    /// 4 digits (`45 06` is accepted too).
    #[schema(example = "4506")]
    series: String,
    /// 6 digits.
    #[schema(example = "123456")]
    number: String,
    /// `YYYY-MM-DD`, not in the future.
    #[schema(format = Date, example = "2015-03-20")]
    issued_at: String,
    #[schema(max_length = 200, example = "ОВД района Хамовники г. Москвы")]
    issued_by: String,
    /// `XXX-XXX`.
    #[schema(example = "772-001")]
    division_code: String,
}

/// The registry agency's check of exactly the stored data; only the latest request counts.
#[derive(ToSchema)]
#[schema(as = Verification)]
#[allow(dead_code)]
pub struct VerificationView {
    request_id: String,
    status: VerificationStatus,
    /// Why the registry agency rejected the data, when it did.
    reason: Option<String>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum VerificationStatus {
    Pending,
    Verified,
    Rejected,
}

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
