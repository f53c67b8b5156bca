//! An email address: trimmed, lower-cased, one `@`, a dotted domain.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::FieldError;

/// A syntactically sound, lower-cased email address; `Debug` masks the local part.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("email is empty")]
    Empty,
    #[error("email is longer than 254 characters")]
    TooLong,
    #[error("email local part is longer than 64 characters")]
    LocalPartTooLong,
    #[error("email contains whitespace, control or reserved characters")]
    ForbiddenCharacter,
    #[error("email must contain exactly one @")]
    NotExactlyOneAt,
    #[error("email has an empty local part")]
    EmptyLocalPart,
    #[error("email domain must contain a dot and no empty labels")]
    InvalidDomain,
}

const MAX_CHARS: usize = 254;
/// RFC 5321 limit; mail servers refuse longer local parts anyway.
const MAX_LOCAL_PART_CHARS: usize = 64;
/// Characters that only make sense in quoted or bracketed forms we do not accept, and that
/// would let an address smuggle extra recipients or headers into an outgoing message.
const RESERVED: &[char] = &['<', '>', '(', ')', '[', ']', '\\', ',', ';', ':', '"'];

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        let lowered = trimmed.to_lowercase();
        if lowered.chars().count() > MAX_CHARS {
            return Err(EmailError::TooLong);
        }
        if lowered.chars().any(|c| c.is_whitespace() || c.is_control() || RESERVED.contains(&c)) {
            return Err(EmailError::ForbiddenCharacter);
        }
        let Some((local, domain)) = lowered.split_once('@') else {
            return Err(EmailError::NotExactlyOneAt);
        };
        if domain.contains('@') {
            return Err(EmailError::NotExactlyOneAt);
        }
        if local.is_empty() {
            return Err(EmailError::EmptyLocalPart);
        }
        if local.chars().count() > MAX_LOCAL_PART_CHARS {
            return Err(EmailError::LocalPartTooLong);
        }
        if !domain.contains('.') || domain.split('.').any(str::is_empty) {
            return Err(EmailError::InvalidDomain);
        }
        Ok(Self(lowered))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@`.
    pub fn local_part(&self) -> &str {
        self.split().0
    }

    pub fn domain(&self) -> &str {
        self.split().1
    }

    /// Safe for logs and screens: `i***@example.com` (`***@…` when the local part is short).
    pub fn masked(&self) -> String {
        let (local, domain) = self.split();
        let mut chars = local.chars();
        match (chars.next(), chars.count()) {
            (Some(first), rest) if rest >= 2 => format!("{first}***@{domain}"),
            _ => format!("***@{domain}"),
        }
    }

    fn split(&self) -> (&str, &str) {
        // Parse guaranteed exactly one `@`.
        self.0.split_once('@').unwrap_or((&self.0, ""))
    }
}

impl EmailError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "required",
            Self::TooLong | Self::LocalPartTooLong => "too_long",
            Self::ForbiddenCharacter | Self::NotExactlyOneAt | Self::EmptyLocalPart | Self::InvalidDomain => "invalid_format",
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            Self::Empty => "Укажите адрес электронной почты",
            Self::TooLong | Self::LocalPartTooLong => "Адрес электронной почты слишком длинный",
            Self::ForbiddenCharacter => "Адрес электронной почты не должен содержать пробелов и символов <>()[]\\,;:\"",
            Self::NotExactlyOneAt | Self::EmptyLocalPart | Self::InvalidDomain => "Укажите адрес электронной почты в формате name@example.ru",
        }
    }

    pub fn field_error(&self, field: &str) -> FieldError {
        FieldError::new(field, self.code(), self.message())
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.masked())
    }
}

impl TryFrom<String> for Email {
    type Error = EmailError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.0
    }
}

crate::string_schema!(Email, "Email address, trimmed and lower-cased", None, "citizen@example.ru", 320);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn valid_address_is_trimmed_and_lower_cased() {
        let email = Email::parse("  Ivan.Petrov@Example.RU \n").unwrap();
        assert_eq!(email.as_str(), "ivan.petrov@example.ru");
        assert_eq!(email.local_part(), "ivan.petrov");
        assert_eq!(email.domain(), "example.ru");
    }

    #[test]
    fn cyrillic_domains_are_accepted_and_lower_cased() {
        let email = Email::parse("Иван@Почта.РФ").unwrap();
        assert_eq!(email.as_str(), "иван@почта.рф");
    }

    #[test]
    fn empty_input_is_required() {
        assert_eq!(Email::parse(" \t "), Err(EmailError::Empty));
    }

    #[test]
    fn missing_or_repeated_at_is_rejected() {
        assert_eq!(Email::parse("ivan.example.ru"), Err(EmailError::NotExactlyOneAt));
        assert_eq!(Email::parse("ivan@@example.ru"), Err(EmailError::NotExactlyOneAt));
        assert_eq!(Email::parse("a@b@example.ru"), Err(EmailError::NotExactlyOneAt));
    }

    #[test]
    fn empty_local_part_is_rejected() {
        assert_eq!(Email::parse("@example.ru"), Err(EmailError::EmptyLocalPart));
    }

    #[test]
    fn domain_without_a_dot_or_with_empty_labels_is_rejected() {
        for raw in ["ivan@localhost", "ivan@", "ivan@.ru", "ivan@example.", "ivan@ex..ru"] {
            assert_eq!(Email::parse(raw), Err(EmailError::InvalidDomain), "{raw:?}");
        }
    }

    #[test]
    fn inner_spaces_and_header_characters_are_rejected() {
        for raw in ["ivan petrov@example.ru", "ivan@exa mple.ru", "a@b.ru,c@d.ru", "<a@b.ru>"] {
            assert_eq!(Email::parse(raw), Err(EmailError::ForbiddenCharacter), "{raw:?}");
        }
    }

    #[test]
    fn addresses_over_254_characters_are_rejected() {
        let domain = format!("{}.ru", "d".repeat(250));
        assert_eq!(Email::parse(&format!("a@{domain}")), Err(EmailError::TooLong));
        let fits = format!("a@{}.ru", "d".repeat(249));
        assert_eq!(fits.chars().count(), 254);
        assert!(Email::parse(&fits).is_ok());
    }

    #[test]
    fn local_parts_over_64_characters_are_rejected() {
        let raw = format!("{}@example.ru", "a".repeat(65));
        assert_eq!(Email::parse(&raw), Err(EmailError::LocalPartTooLong));
    }

    #[test]
    fn debug_masks_the_local_part() {
        let email = Email::parse("ivan.petrov@example.ru").unwrap();
        assert_eq!(format!("{email:?}"), "Email(i***@example.ru)");
        assert_eq!(Email::parse("ab@example.ru").unwrap().masked(), "***@example.ru");
    }

    #[test]
    fn serde_round_trips_and_deserialize_goes_through_parse() {
        let email: Email = serde_json::from_str("\" Ivan@Example.ru \"").unwrap();
        assert_eq!(serde_json::to_string(&email).unwrap(), "\"ivan@example.ru\"");
        assert!(serde_json::from_str::<Email>("\"ivan@localhost\"").is_err());
    }

    #[test]
    fn errors_become_field_errors_with_stable_codes() {
        let error = Email::parse("nope").unwrap_err().field_error("email");
        assert_eq!((error.field.as_str(), error.code.as_str()), ("email", "invalid_format"));
    }

    proptest! {
        #[test]
        fn generated_addresses_parse_to_their_lower_case_form(
            local in "[A-Za-z0-9._%+-]{1,30}",
            label in "[A-Za-z0-9-]{1,20}",
            tld in "[A-Za-z]{2,6}",
        ) {
            let raw = format!(" {local}@{label}.{tld} ");
            let email = Email::parse(&raw).unwrap();
            prop_assert_eq!(email.as_str(), raw.trim().to_lowercase());
            prop_assert_eq!(email.local_part(), local.to_lowercase());
        }

        #[test]
        fn parse_never_panics_and_accepted_values_reparse_unchanged(raw in "\\PC{0,40}") {
            if let Ok(email) = Email::parse(&raw) {
                prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
            }
        }
    }
}
