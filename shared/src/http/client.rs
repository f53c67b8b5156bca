//! Who is calling: the client IP and User-Agent, for rate limiting, sessions and login history.
//!
//! The IP comes from a `ClientIp` extension set by the runtime (API Gateway's source IP on
//! Lambda, the socket peer on plain HTTP). `X-Forwarded-For` is trusted only when
//! `TRUST_FORWARDED_FOR=1` (behind a known proxy), because callers can forge it.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ip) = parts.extensions.get::<ClientIp>() {
            return Ok(*ip);
        }
        if trust_forwarded_for()
            && let Some(ip) = forwarded_for(parts)
        {
            return Ok(Self(ip));
        }
        if let Some(ConnectInfo(addr)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            return Ok(Self(addr.ip()));
        }
        Ok(Self(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
    }
}

fn trust_forwarded_for() -> bool {
    std::env::var("TRUST_FORWARDED_FOR").is_ok_and(|v| v == "1" || v == "true")
}

/// The address our trusted proxy appended: the right-most entry. Entries to its left were
/// sent by the client and can be anything.
fn forwarded_for(parts: &Parts) -> Option<IpAddr> {
    let value = parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).next_back()?;
    value.rsplit(',').next()?.trim().parse().ok()
}

/// The caller's User-Agent, truncated; empty when absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserAgent(pub String);

impl<S: Send + Sync> FromRequestParts<S> for UserAgent {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ua = parts.headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
        Ok(Self(ua.chars().take(256).collect()))
    }
}

impl UserAgent {
    /// Coarse device class for the login history (SPEC §3.7).
    pub fn device_type(&self) -> crate::vocabulary::DeviceType {
        crate::vocabulary::DeviceType::of_user_agent(&self.0)
    }
}
