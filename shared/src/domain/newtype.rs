//! The shape the string-backed identifiers share, written once: error texts, masked `Debug`,
//! and serde that goes through `parse` (`#[serde(try_from = "String", into = "String")]`).

/// `code()` and `message()` of a parse error from one table: variant ⇒ (stable `snake_case`
/// code for problem+json `errors[]`, citizen-facing explanation in Russian).
macro_rules! error_texts {
    ($error:ty { $($variant:pat => ($code:literal, $message:expr)),+ $(,)? }) => {
        impl $error {
            pub fn code(&self) -> &'static str {
                match self {
                    $($variant => $code,)+
                }
            }

            pub fn message(&self) -> &'static str {
                match self {
                    $($variant => $message,)+
                }
            }
        }
    };
}

/// For a `parse`-only string newtype `$ty` with error `$error`: `$error::field_error`, a `Debug`
/// that shows `$ty::masked()`, `TryFrom<String>` through `parse` and `From<$ty> for String`
/// (the inner string, or the given conversion).
macro_rules! string_newtype {
    ($ty:ident, $error:ident) => {
        string_newtype!($ty, $error, |value| value.0);
    };
    ($ty:ident, $error:ident, |$value:ident| $into_string:expr) => {
        impl $error {
            pub fn field_error(&self, field: &str) -> $crate::domain::FieldError {
                $crate::domain::FieldError::new(field, self.code(), self.message())
            }
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($ty), "({})"), self.masked())
            }
        }

        impl TryFrom<String> for $ty {
            type Error = $error;

            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse(&raw)
            }
        }

        impl From<$ty> for String {
            fn from($value: $ty) -> Self {
                $into_string
            }
        }
    };
}

pub(crate) use {error_texts, string_newtype};

/// The input without surrounding white space, or `None` when nothing is left: every
/// identifier reports that as its own "required" error.
pub(crate) fn non_blank(raw: &str) -> Option<&str> {
    Some(raw.trim()).filter(|trimmed| !trimmed.is_empty())
}

/// Checks shared by the newtypes' tests.
#[cfg(test)]
pub(crate) mod contract {
    use std::fmt::Debug;

    use serde::{Serialize, de::DeserializeOwned};

    /// Deserializing `accepted` gives the value that serializes to `canonical` and shows as
    /// `debug`; deserializing `refused` fails because it goes through `parse`.
    pub(crate) fn assert_serde_through_parse<T: Serialize + DeserializeOwned + Debug>(accepted: &str, canonical: &str, debug: &str, refused: &str) {
        let value: T = serde_json::from_value(accepted.into()).unwrap_or_else(|e| panic!("{accepted:?} refused: {e}"));
        assert_eq!(serde_json::to_value(&value).unwrap(), canonical);
        assert_eq!(format!("{value:?}"), debug);
        assert!(serde_json::from_value::<T>(refused.into()).is_err(), "{refused:?} accepted");
    }

    /// Every input of a row is refused by `parse` with that row's error.
    pub(crate) fn assert_refused<T, E: Debug + PartialEq>(parse: fn(&str) -> Result<T, E>, rows: &[(E, &[&str])]) {
        for (error, inputs) in rows {
            for raw in *inputs {
                assert_eq!(parse(raw).err().as_ref(), Some(error), "{raw:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::{Email, Inn, Phone, Snils};

    #[test]
    fn identifier_errors_become_field_errors_with_stable_codes() {
        let cases = [
            (Email::parse("nope").unwrap_err().field_error("email"), "email", "invalid_format"),
            (Phone::parse("+7 495 123-45-67").unwrap_err().field_error("phone"), "phone", "not_mobile"),
            (Inn::parse("500100732258").unwrap_err().field_error("inn"), "inn", "invalid_checksum"),
            (Snils::parse("112-233-445 96").unwrap_err().field_error("snils"), "snils", "invalid_checksum"),
        ];
        for (error, field, code) in cases {
            assert_eq!((error.field.as_str(), error.code.as_str()), (field, code));
            assert!(!error.message.is_empty(), "{field}");
        }
    }
}
