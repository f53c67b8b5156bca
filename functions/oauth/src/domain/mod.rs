//! The token endpoint's decisions (RFC 6749), plain functions over the request's parameters and
//! the registered client, returning what to grant or a [`TokenError`]. The handler maps the
//! error once to an RFC 6749 §5.2 answer (`crate::answer`).
//!
//! - [`client_auth`]: which credentials a request presents and whether they authenticate the
//!   client as it registered (`client_secret_basic`, `client_secret_post`, `none`).
//! - [`client_credentials`]: the scope a client acting for itself may get.
//!
//! Issue 10 adds `authorization_code` and `refresh_token` beside `client_credentials`.

pub mod client_auth;
pub mod client_credentials;

/// Why the token endpoint refuses a request (RFC 6749 §5.2). Descriptions are ASCII, as the RFC
/// requires of `error_description`, and never echo a submitted value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// A parameter is missing, repeated or malformed, or two authentication methods are used.
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// Client authentication failed. `basic`: the client tried HTTP Basic, so the answer
    /// carries `WWW-Authenticate: Basic`.
    #[error("invalid_client: {reason}")]
    InvalidClient { basic: bool, reason: &'static str },
    /// The client may not use this grant type.
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(&'static str),
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// The requested scope is malformed or beyond what the client may get.
    #[error("invalid_scope: {0}")]
    InvalidScope(&'static str),
}

impl TokenError {
    /// The RFC 6749 `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient { .. } => "invalid_client",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
        }
    }

    pub fn description(&self) -> &'static str {
        match self {
            Self::InvalidRequest(d) | Self::UnauthorizedClient(d) | Self::InvalidScope(d) => d,
            Self::InvalidClient { reason, .. } => reason,
            Self::UnsupportedGrantType => "the grant_type is not supported",
        }
    }
}
