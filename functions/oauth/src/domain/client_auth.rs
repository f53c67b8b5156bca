//! Client authentication at the token endpoint (RFC 6749 §2.3): what the request presents, and
//! whether it authenticates the registered client by the method it registered.

use base64::Engine as _;
use shared::clients::{AuthMethod, Client};

use super::TokenError;

/// The credentials a request carries.
#[derive(Clone, PartialEq, Eq)]
pub struct Presented {
    pub client_id: String,
    /// Absent for a public client that only names itself.
    pub secret: Option<String>,
    /// `client_secret_basic`, `client_secret_post` or `none`.
    pub method: AuthMethod,
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented").field("client_id", &self.client_id).field("method", &self.method).finish_non_exhaustive()
    }
}

impl Presented {
    pub fn used_basic(&self) -> bool {
        self.method == AuthMethod::ClientSecretBasic
    }
}

const CLIENT_ID_MAX: usize = 255;
const SECRET_MAX: usize = 512;

/// The credentials of a request: HTTP Basic in `authorization` (other schemes are not client
/// authentication and are ignored), or `client_id` (+ `client_secret`) from the form. Using both
/// Basic and a form secret is `invalid_request` (RFC 6749 §2.3: one method per request).
pub fn presented(authorization: Option<&str>, form_client_id: Option<&str>, form_secret: Option<&str>) -> Result<Presented, TokenError> {
    if let Some(credentials) = authorization.and_then(basic_credentials) {
        if form_secret.is_some() {
            return Err(TokenError::InvalidRequest("more than one client authentication method was used"));
        }
        let (client_id, secret) = decode_basic(credentials)?;
        if form_client_id.is_some_and(|id| id != client_id) {
            return Err(TokenError::InvalidRequest("client_id differs from the client authenticated by HTTP Basic"));
        }
        return Ok(Presented { client_id, secret: Some(secret), method: AuthMethod::ClientSecretBasic });
    }
    let Some(client_id) = form_client_id else {
        return Err(if form_secret.is_some() {
            TokenError::InvalidRequest("client_secret without client_id")
        } else {
            TokenError::InvalidClient { basic: false, reason: "client authentication is required" }
        });
    };
    if client_id.len() > CLIENT_ID_MAX || form_secret.is_some_and(|s| s.len() > SECRET_MAX) {
        return Err(TokenError::InvalidClient { basic: false, reason: "client authentication failed" });
    }
    let method = if form_secret.is_some() { AuthMethod::ClientSecretPost } else { AuthMethod::None };
    Ok(Presented { client_id: client_id.to_owned(), secret: form_secret.map(str::to_owned), method })
}

/// Whether `presented` authenticates `client` (None: no such client). Secret checks run
/// argon2id (tens of milliseconds): call from a blocking thread.
pub fn authenticate(client: Option<&Client>, presented: &Presented) -> Result<(), TokenError> {
    let failed = |reason| TokenError::InvalidClient { basic: presented.used_basic(), reason };
    let client = client.ok_or_else(|| failed("client authentication failed"))?;
    if client.token_endpoint_auth_method != presented.method {
        return Err(failed("the client must authenticate with the method it registered"));
    }
    match (presented.method, presented.secret.as_deref()) {
        (AuthMethod::None, _) => Ok(()),
        (_, Some(secret)) if client.verify_secret(secret) => Ok(()),
        _ => Err(failed("client authentication failed")),
    }
}

/// The credentials of an `Authorization: Basic …` header (scheme case-insensitive).
fn basic_credentials(header: &str) -> Option<&str> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
}

/// `base64(urlencode(client_id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn decode_basic(credentials: &str) -> Result<(String, String), TokenError> {
    let malformed = TokenError::InvalidClient { basic: true, reason: "malformed HTTP Basic credentials" };
    if credentials.len() > 4 * (CLIENT_ID_MAX + SECRET_MAX) {
        return Err(malformed);
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(credentials).map_err(|_| malformed.clone())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed.clone())?;
    let (id, secret) = text.split_once(':').ok_or_else(|| malformed.clone())?;
    let (id, secret) = (form_decode(id).ok_or_else(|| malformed.clone())?, form_decode(secret).ok_or_else(|| malformed.clone())?);
    if id.is_empty() || id.len() > CLIENT_ID_MAX || secret.len() > SECRET_MAX {
        return Err(malformed);
    }
    Ok((id, secret))
}

/// `application/x-www-form-urlencoded` decoding of one value (`+` is a space).
fn form_decode(value: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&value.replace('+', " ")).decode_utf8().ok().map(|v| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn basic_credentials_are_form_urldecoded() {
        let p = presented(Some(&basic("bank%3Aone", "p%40ss+w%2Brd%3A%25")), None, None).unwrap();
        assert_eq!((p.client_id.as_str(), p.secret.as_deref(), p.method), ("bank:one", Some("p@ss w+rd:%"), AuthMethod::ClientSecretBasic));
        // A colon inside the (encoded) secret survives; the first raw colon splits.
        let p = presented(Some(&basic("mvd", "a:b")), Some("mvd"), None).unwrap();
        assert_eq!(p.secret.as_deref(), Some("a:b"));
        let p = presented(Some(&basic("mvd", "x").replace("Basic", "bAsIc")), None, None).unwrap();
        assert_eq!(p.client_id, "mvd");
    }

    #[test]
    fn malformed_basic_is_invalid_client_with_the_basic_challenge() {
        for header in ["Basic", "Basic !!!", "Basic bm9jb2xvbg==", "Basic OnNlY3JldA==", "Basic JUZGOng="] {
            assert_eq!(
                presented(Some(header), None, None).unwrap_err(),
                TokenError::InvalidClient { basic: true, reason: "malformed HTTP Basic credentials" },
                "{header}"
            );
        }
    }

    #[test]
    fn one_request_uses_one_method_and_names_one_client() {
        assert_eq!(presented(Some(&basic("mvd", "s")), None, Some("s")).unwrap_err().code(), "invalid_request");
        assert_eq!(presented(Some(&basic("mvd", "s")), Some("fns"), None).unwrap_err().code(), "invalid_request");
        assert_eq!(presented(None, None, Some("s")).unwrap_err().code(), "invalid_request");
        assert_eq!(presented(None, None, None).unwrap_err(), TokenError::InvalidClient { basic: false, reason: "client authentication is required" });
        // A bearer token is not client authentication.
        let p = presented(Some("Bearer abc"), Some("mvd"), Some("hunter2")).unwrap();
        assert_eq!(p.method, AuthMethod::ClientSecretPost);
        assert!(!format!("{p:?}").contains("hunter2"), "Debug leaves the secret out");
        assert_eq!(presented(None, Some("bank"), None).unwrap().method, AuthMethod::None);
    }
}
