//! `Limited<MAX>`: a request string refused at deserialization when longer than `MAX`
//! characters (SPEC §2), so an oversized field never reaches a handler, a hash or the store.
//! The error names the bound, never the value.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Limited<const MAX: usize>(String);

/// A login as typed (phone, email or SNILS): an email address is at most 320 characters.
pub type LoginText = Limited<320>;
/// A password as typed; the policy allows at most 128 characters (SPEC §3.2).
pub type PasswordText = Limited<128>;
/// A new password as typed: the policy reports lengths over 128 as `too_long` (SPEC §3.2);
/// past this the request is refused outright.
pub type NewPasswordText = Limited<1024>;
/// Ids, one-time codes and opaque tokens from a request.
pub type Token = Limited<256>;

impl<const MAX: usize> Limited<MAX> {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<const MAX: usize> From<Limited<MAX>> for String {
    fn from(value: Limited<MAX>) -> Self {
        value.0
    }
}

impl<const MAX: usize> Deref for Limited<MAX> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> fmt::Debug for Limited<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Logins, passwords and codes are secrets or personal data.
        write!(f, "Limited({} chars)", self.0.chars().count())
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Limited<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        if value.chars().take(MAX + 1).count() > MAX {
            return Err(serde::de::Error::custom(format!("строка длиннее {MAX} символов")));
        }
        Ok(Self(value))
    }
}

impl<const MAX: usize> utoipa::PartialSchema for Limited<MAX> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::String).max_length(Some(MAX)).into()
    }
}

impl<const MAX: usize> utoipa::ToSchema for Limited<MAX> {
    fn name() -> std::borrow::Cow<'static, str> {
        format!("Text{MAX}").into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_at_the_bound_passes_and_one_past_it_is_refused_without_echo() {
        let at_bound = format!("\"{}\"", "я".repeat(320));
        assert_eq!(serde_json::from_str::<LoginText>(&at_bound).unwrap().chars().count(), 320);
        let over = format!("\"{}\"", "secret".repeat(60));
        let error = serde_json::from_str::<LoginText>(&over).unwrap_err().to_string();
        assert!(error.contains("320") && !error.contains("secret"), "{error}");
    }
}
