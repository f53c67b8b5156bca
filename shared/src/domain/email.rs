//! An email address: trimmed, lower-cased, one `@`, a dotted domain.

use serde::{Deserialize, Serialize};

use super::newtype::{error_texts, non_blank, string_newtype};

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

error_texts!(EmailError {
    Self::Empty => ("required", "Укажите адрес электронной почты"),
    Self::TooLong | Self::LocalPartTooLong => ("too_long", "Адрес электронной почты слишком длинный"),
    Self::ForbiddenCharacter => ("invalid_format", "Адрес электронной почты не должен содержать пробелов и символов <>()[]\\,;:\""),
    Self::NotExactlyOneAt | Self::EmptyLocalPart | Self::InvalidDomain => ("invalid_format", "Укажите адрес электронной почты в формате name@example.ru"),
});

string_newtype!(Email, EmailError);

crate::string_schema!(Email, "Email address, trimmed and lower-cased", None, "citizen@example.ru", 320);

const MAX_CHARS: usize = 254;
/// RFC 5321 limit; mail servers refuse longer local parts anyway.
const MAX_LOCAL_PART_CHARS: usize = 64;
/// Characters that only make sense in quoted or bracketed forms we do not accept, and that
/// would let an address smuggle extra recipients or headers into an outgoing message.
const RESERVED: &[char] = &['<', '>', '(', ')', '[', ']', '\\', ',', ';', ':', '"'];

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let trimmed = non_blank(raw).ok_or(EmailError::Empty)?;
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

#[cfg(test)]
mod tests {
    use super::super::newtype::contract;
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
    fn malformed_addresses_are_rejected_with_their_reason() {
        contract::assert_refused(
            Email::parse,
            &[
                (EmailError::Empty, &[" \t "]),
                (EmailError::NotExactlyOneAt, &["ivan.example.ru", "ivan@@example.ru", "a@b@example.ru"]),
                (EmailError::EmptyLocalPart, &["@example.ru"]),
                (EmailError::InvalidDomain, &["ivan@localhost", "ivan@", "ivan@.ru", "ivan@example.", "ivan@ex..ru"]),
                (EmailError::ForbiddenCharacter, &["ivan petrov@example.ru", "ivan@exa mple.ru", "a@b.ru,c@d.ru", "<a@b.ru>"]),
            ],
        );
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
    fn serde_goes_through_parse_and_debug_masks_the_local_part() {
        contract::assert_serde_through_parse::<Email>(" Ivan.Petrov@Example.RU ", "ivan.petrov@example.ru", "Email(i***@example.ru)", "ivan@localhost");
        assert_eq!(Email::parse("ab@example.ru").unwrap().masked(), "***@example.ru");
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
