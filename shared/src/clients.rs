//! OAuth clients (SPEC §8): the partner systems that sign citizens in through the portal, and the
//! agencies calling the agency API with `client_credentials` tokens.
//!
//! - [`Registry`]: the client list, loaded like the agency registry: `CLIENTS_JSON` (the document
//!   itself), else the file named by `CLIENTS_FILE`, else (never on Lambda) the dev seed
//!   `infra/local/seed/clients.json`. Shape: `{"clients": [{"client_id", "name", "kind":
//!   "partner"|"agency", "redirect_uris", "allowed_scopes", "token_endpoint_auth_method":
//!   "client_secret_basic"|"client_secret_post"|"private_key_jwt"|"none", "client_secret_hash"?,
//!   "jwks"?, "subject_type": "pairwise"|"public", "min_level"?, "id_token_signed_response_alg"?}]}`.
//!   Every entry is checked at load; a bad one stops the process with a message naming the client.
//!   Seed entries also carry their dev-only plain `client_secret` (SPEC §7), which is ignored here.
//! - [`Client::verify_secret`]: argon2id (PHC string) verification, constant time; CPU-heavy, so
//!   async callers run it on a blocking thread.
//! - [`generate_secret`]: a new high-entropy secret and its hash, for the registry.

use std::collections::HashSet;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2};
use serde::{Deserialize, Serialize};

use crate::identity::Level;

/// The dev seed, compiled in so the local runner works from any directory.
const DEV_SEED: &str = include_str!("../../infra/local/seed/clients.json");

/// The scope of the agency API (SPEC §4.6); only agency clients may hold it.
pub const AGENCY_SCOPE: &str = "agency";

/// Scopes naming a citizen's data (SPEC §8): granted only by a citizen's consent, never to a
/// client acting for itself (`client_credentials`).
pub const CITIZEN_SCOPES: &[&str] = &["openid", "fullname", "birthdate", "gender", "snils", "inn", "id_doc", "mobile", "email"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// A bank, a regional portal, another state system: signs citizens in (SPEC §8).
    Partner,
    /// An agency of the agency registry; `client_id` is the agency id.
    Agency,
}

/// How a client authenticates at the token endpoint (RFC 7591 names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A JWT signed with a key of the client's `jwks` (RFC 7523).
    PrivateKeyJwt,
    /// A public client (no secret; PKCE only).
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }
}

/// What `sub` a client sees for a citizen (OIDC Core §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectType {
    /// A stable opaque value per client.
    Pairwise,
    /// The citizen's user id.
    Public,
}

/// The algorithm a client registered for its ID tokens (default EdDSA).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdTokenAlg {
    EdDSA,
    RS256,
}

pub struct Client {
    pub client_id: String,
    pub name: String,
    pub kind: ClientKind,
    pub redirect_uris: Vec<String>,
    pub allowed_scopes: Vec<String>,
    pub token_endpoint_auth_method: AuthMethod,
    /// argon2id PHC string of the secret (secret-based methods only).
    secret_hash: Option<String>,
    pub jwks: Option<serde_json::Value>,
    pub subject_type: SubjectType,
    pub min_level: Option<Level>,
    pub id_token_signed_response_alg: Option<IdTokenAlg>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("kind", &self.kind)
            .field("allowed_scopes", &self.allowed_scopes)
            .field("token_endpoint_auth_method", &self.token_endpoint_auth_method)
            .field("secret_hash", &self.secret_hash.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Whether `presented` is this client's secret: argon2id with the parameters of the stored
    /// hash, whose output comparison is constant time. Slow on purpose (tens of milliseconds):
    /// call it from `spawn_blocking`. A client without a secret never verifies.
    pub fn verify_secret(&self, presented: &str) -> bool {
        let Some(hash) = &self.secret_hash else { return false };
        match PasswordHash::new(hash) {
            Ok(parsed) => Argon2::default().verify_password(presented.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        }
    }

    pub fn allows_scope(&self, scope: &str) -> bool {
        self.allowed_scopes.iter().any(|s| s == scope)
    }

    /// Exact match with a registered redirect URI (SPEC §8; no prefix or pattern matching).
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|u| u == uri)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("malformed client registry: {0}")]
    Malformed(String),
    #[error(transparent)]
    Source(#[from] crate::settings::SourceError),
}

#[derive(Debug)]
pub struct Registry {
    clients: Vec<Client>,
}

#[derive(Deserialize)]
struct RegistryDocument {
    clients: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientDocument {
    client_id: String,
    name: String,
    kind: ClientKind,
    #[serde(default)]
    redirect_uris: Vec<String>,
    allowed_scopes: Vec<String>,
    token_endpoint_auth_method: AuthMethod,
    #[serde(default)]
    client_secret_hash: Option<String>,
    #[serde(default)]
    jwks: Option<serde_json::Value>,
    subject_type: SubjectType,
    #[serde(default)]
    min_level: Option<Level>,
    #[serde(default)]
    id_token_signed_response_alg: Option<IdTokenAlg>,
    /// The dev seed's plain secret beside its hash (SPEC §7), for people trying the API by hand.
    /// Accepted so the seed loads, never read.
    #[serde(default, rename = "client_secret")]
    _dev_secret: Option<serde::de::IgnoredAny>,
}

impl Registry {
    /// From the environment: `CLIENTS_JSON`, else `CLIENTS_FILE`, else the dev seed, which is
    /// refused on Lambda because its secrets are public.
    pub fn load() -> Result<Self, RegistryError> {
        Self::from_json(&crate::settings::registry_document("CLIENTS_JSON", "CLIENTS_FILE", DEV_SEED)?)
    }

    /// The seed clients (every seed agency, two partners) with their dev-only secrets.
    pub fn dev_seed() -> Result<Self, RegistryError> {
        Self::from_json(DEV_SEED)
    }

    pub fn from_json(json: &str) -> Result<Self, RegistryError> {
        let document: RegistryDocument = serde_json::from_str(json).map_err(|e| RegistryError::Malformed(e.to_string()))?;
        let mut seen = HashSet::new();
        let mut clients = Vec::with_capacity(document.clients.len());
        for (index, value) in document.clients.into_iter().enumerate() {
            let named = value.get("client_id").and_then(|v| v.as_str()).map(str::to_owned).unwrap_or_else(|| format!("#{}", index + 1));
            let entry: ClientDocument = serde_json::from_value(value).map_err(|e| RegistryError::Malformed(format!("client {named}: {e}")))?;
            let client = check(entry).map_err(|problem| RegistryError::Malformed(format!("client {named}: {problem}")))?;
            if !seen.insert(client.client_id.clone()) {
                return Err(RegistryError::Malformed(format!("client {named} is listed twice")));
            }
            clients.push(client);
        }
        Ok(Self { clients })
    }

    pub fn get(&self, client_id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    pub fn clients(&self) -> &[Client] {
        &self.clients
    }
}

/// One entry's rules; the message names what is wrong, never a secret.
fn check(entry: ClientDocument) -> Result<Client, String> {
    let id_ok = !entry.client_id.is_empty()
        && entry.client_id.len() <= 64
        && entry.client_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !id_ok {
        return Err("client_id must be 1-64 of [A-Za-z0-9._-]".into());
    }
    if entry.name.trim().is_empty() || entry.name.chars().count() > 100 {
        return Err("name must be 1-100 characters".into());
    }
    for uri in &entry.redirect_uris {
        check_redirect_uri(uri)?;
    }
    if entry.kind == ClientKind::Partner && entry.redirect_uris.is_empty() {
        return Err("a partner needs at least one redirect_uri".into());
    }
    if entry.allowed_scopes.is_empty() {
        return Err("allowed_scopes is empty".into());
    }
    let mut scopes = HashSet::new();
    for scope in &entry.allowed_scopes {
        if !is_scope_token(scope) {
            return Err(format!("allowed_scopes: {scope:?} is not a scope token (RFC 6749 §3.3)"));
        }
        if !scopes.insert(scope.as_str()) {
            return Err(format!("allowed_scopes lists {scope} twice"));
        }
    }
    match entry.kind {
        ClientKind::Agency if !scopes.contains(AGENCY_SCOPE) => return Err(format!("an agency client needs the scope {AGENCY_SCOPE}")),
        ClientKind::Partner if scopes.contains(AGENCY_SCOPE) => return Err(format!("only agency clients may hold the scope {AGENCY_SCOPE}")),
        _ => {}
    }
    let method = entry.token_endpoint_auth_method;
    match (&entry.client_secret_hash, method.uses_secret()) {
        (Some(hash), true) => check_secret_hash(hash)?,
        (None, true) => return Err(format!("{} needs client_secret_hash", method.as_str())),
        (Some(_), false) => return Err(format!("client_secret_hash is set but the client authenticates with {}", method.as_str())),
        (None, false) => {}
    }
    match (&entry.jwks, method) {
        (Some(jwks), _) => check_jwks(jwks)?,
        (None, AuthMethod::PrivateKeyJwt) => return Err("private_key_jwt needs jwks".into()),
        (None, _) => {}
    }
    Ok(Client {
        client_id: entry.client_id,
        name: entry.name,
        kind: entry.kind,
        redirect_uris: entry.redirect_uris,
        allowed_scopes: entry.allowed_scopes,
        token_endpoint_auth_method: method,
        secret_hash: entry.client_secret_hash,
        jwks: entry.jwks,
        subject_type: entry.subject_type,
        min_level: entry.min_level,
        id_token_signed_response_alg: entry.id_token_signed_response_alg,
    })
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty() && scope.len() <= 64 && scope.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Absolute, no fragment (RFC 6749 §3.1.2), HTTPS or plain HTTP to a loopback address (RFC 8252 §7.3).
fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let parsed = url::Url::parse(uri).map_err(|e| format!("redirect_uri {uri:?}: {e}"))?;
    if parsed.fragment().is_some() {
        return Err(format!("redirect_uri {uri:?} has a fragment"));
    }
    if crate::http::is_https_or_loopback(&parsed) { Ok(()) } else { Err(format!("redirect_uri {uri:?} must be https (plain http only to a loopback address)")) }
}

fn check_secret_hash(hash: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(hash).map_err(|_| "client_secret_hash is not a PHC string".to_owned())?;
    if parsed.algorithm != Algorithm::Argon2id.ident() || parsed.hash.is_none() {
        return Err("client_secret_hash must be an argon2id PHC string".into());
    }
    Ok(())
}

fn check_jwks(jwks: &serde_json::Value) -> Result<(), String> {
    let keys = jwks.get("keys").and_then(|k| k.as_array()).filter(|keys| !keys.is_empty()).ok_or("jwks must be {\"keys\": [..]} with at least one key")?;
    if keys.iter().any(|k| k.get("kty").and_then(|t| t.as_str()).is_none()) {
        return Err("every key of jwks needs kty".into());
    }
    Ok(())
}

/// A new client secret (32 random bytes, base64url) and its argon2id hash for the registry.
pub fn generate_secret() -> Result<(String, String), argon2::password_hash::Error> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_secret(&secret)?;
    Ok((secret, hash))
}

/// The argon2id PHC string of `secret` (OWASP parameters: 19 MiB, 2 passes, 1 lane).
pub fn hash_secret(secret: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(secret.as_bytes(), &salt).map(|h| h.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_secrets() -> Vec<(String, String)> {
        let doc: serde_json::Value = serde_json::from_str(DEV_SEED).unwrap();
        doc["clients"].as_array().unwrap().iter().filter_map(|c| Some((c["client_id"].as_str()?.to_owned(), c["client_secret"].as_str()?.to_owned()))).collect()
    }

    #[test]
    fn every_seed_agency_is_an_agency_client_with_the_agency_scope() {
        let agencies = crate::agencies::Registry::dev_seed().unwrap();
        let clients = Registry::dev_seed().expect("the client seed loads");
        for agency in agencies.agencies() {
            let client = clients.get(&agency.id).unwrap_or_else(|| panic!("agency {} has no client", agency.id));
            assert_eq!(client.kind, ClientKind::Agency, "{}", agency.id);
            assert_eq!(client.allowed_scopes, [AGENCY_SCOPE], "{}", agency.id);
        }
        for client in clients.clients().iter().filter(|c| c.kind == ClientKind::Agency) {
            assert!(agencies.get(&client.client_id).is_some(), "agency client {} is no seed agency", client.client_id);
        }
    }

    #[test]
    fn the_seed_has_a_loopback_partner_and_an_rs256_partner() {
        let clients = Registry::dev_seed().unwrap();
        let partners: Vec<&Client> = clients.clients().iter().filter(|c| c.kind == ClientKind::Partner).collect();
        assert!(partners.iter().any(|c| c.redirect_uris.iter().any(|u| u.starts_with("http://127.0.0.1:"))));
        assert!(partners.iter().any(|c| c.id_token_signed_response_alg == Some(IdTokenAlg::RS256)));
        assert!(partners.iter().all(|c| c.allowed_scopes.iter().any(|s| s == "openid")));
    }

    #[test]
    fn each_seed_secret_verifies_against_its_hash_and_nothing_else_does() {
        let clients = Registry::dev_seed().unwrap();
        let secrets = seed_secrets();
        assert_eq!(secrets.len(), clients.clients().iter().filter(|c| c.token_endpoint_auth_method.uses_secret()).count());
        for (id, secret) in &secrets {
            let client = clients.get(id).unwrap();
            assert!(client.verify_secret(secret), "{id}");
            assert!(!client.verify_secret(&format!("{secret}x")), "{id}");
        }
        // One secret does not open another client.
        let (first, second) = (&secrets[0], &secrets[1]);
        assert!(!clients.get(&first.0).unwrap().verify_secret(&second.1));
    }

    #[test]
    fn a_generated_secret_verifies_and_its_hash_is_argon2id() {
        let (secret, hash) = generate_secret().unwrap();
        assert_eq!(secret.len(), 43);
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        let doc = serde_json::json!({"clients": [{"client_id": "bank", "name": "Банк", "kind": "partner", "redirect_uris": ["https://bank.example/cb"],
            "allowed_scopes": ["openid"], "token_endpoint_auth_method": "client_secret_post", "client_secret_hash": hash, "subject_type": "pairwise"}]});
        let registry = Registry::from_json(&doc.to_string()).unwrap();
        assert!(registry.get("bank").unwrap().verify_secret(&secret));
        assert!(!format!("{:?}", registry).contains(&hash), "Debug never shows the hash");
    }

    #[test]
    fn bad_entries_are_refused_naming_the_client() {
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3yNuYoQ+N6KnMSvZKMMmYXlRcw1q6d2SvDyJKJSOqDk";
        let base = serde_json::json!({"client_id": "bank", "name": "Банк", "kind": "partner", "redirect_uris": ["https://bank.example/cb"],
            "allowed_scopes": ["openid"], "token_endpoint_auth_method": "client_secret_basic", "client_secret_hash": hash, "subject_type": "public"});
        assert!(Registry::from_json(&serde_json::json!({"clients": [base.clone()]}).to_string()).is_ok());
        let broken: Vec<(&str, serde_json::Value)> = vec![
            ("client_secret_hash", serde_json::Value::Null),
            ("client_secret_hash", serde_json::json!("plain-secret")),
            ("client_secret_hash", serde_json::json!("$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3yNuYoQ+N6KnMSvZKMMmYXlRcw1q6d2SvDyJKJSOqDk")),
            ("redirect_uris", serde_json::json!(["http://bank.example/cb"])),
            ("redirect_uris", serde_json::json!(["https://bank.example/cb#frag"])),
            ("redirect_uris", serde_json::json!([])),
            ("allowed_scopes", serde_json::json!([])),
            ("allowed_scopes", serde_json::json!(["openid", "openid"])),
            ("allowed_scopes", serde_json::json!(["agency"])),
            ("allowed_scopes", serde_json::json!(["bad scope"])),
            ("token_endpoint_auth_method", serde_json::json!("none")),
            ("token_endpoint_auth_method", serde_json::json!("private_key_jwt")),
            ("token_endpoint_auth_method", serde_json::json!("client_secret_jwt")),
            ("subject_type", serde_json::json!("secret")),
            ("min_level", serde_json::json!("gold")),
            ("id_token_signed_response_alg", serde_json::json!("none")),
            ("jwks", serde_json::json!({"keys": []})),
            ("client_secret_hash_typo", serde_json::json!(hash)),
            ("name", serde_json::json!(" ")),
        ];
        for (field, value) in broken {
            let mut entry = base.clone();
            if value.is_null() {
                entry.as_object_mut().unwrap().remove(field);
            } else {
                entry[field] = value.clone();
            }
            let error = Registry::from_json(&serde_json::json!({"clients": [entry]}).to_string()).expect_err(field).to_string();
            assert!(error.contains("client bank"), "{field}={value}: {error}");
        }
        let mut agency = base.clone();
        (agency["kind"], agency["allowed_scopes"], agency["redirect_uris"]) = ("agency".into(), serde_json::json!(["openid"]), serde_json::json!([]));
        assert!(Registry::from_json(&serde_json::json!({"clients": [agency]}).to_string()).unwrap_err().to_string().contains("scope agency"));
        let twice = serde_json::json!({"clients": [base.clone(), base]});
        assert!(Registry::from_json(&twice.to_string()).unwrap_err().to_string().contains("listed twice"));
    }
}
