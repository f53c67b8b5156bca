//! A Russian mobile phone number, normalised to E.164 `+79XXXXXXXXX`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::FieldError;

/// A Russian mobile number in E.164 form (`+79XXXXXXXXX`); `Debug` never shows it whole.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("phone number is empty")]
    Empty,
    #[error("phone number contains a character other than digits, spaces, dashes or brackets")]
    InvalidCharacter,
    #[error("phone number has unbalanced or nested brackets")]
    UnbalancedBrackets,
    #[error("phone number has the wrong number of digits")]
    WrongLength,
    #[error("phone number is not a Russian (+7) number")]
    NotRussian,
    #[error("phone number is not a mobile (+79) number")]
    NotMobile,
}

/// Longest input worth looking at; anything longer cannot be a phone number with separators.
const MAX_INPUT_CHARS: usize = 40;

impl Phone {
    /// Accepts `+7…`, `8…` or `7…` (11 digits) with spaces, dashes and brackets.
    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        if trimmed.chars().count() > MAX_INPUT_CHARS {
            return Err(PhoneError::WrongLength);
        }
        let (has_plus, digits) = strip_separators(trimmed)?;
        let national = match (has_plus, digits.as_bytes()) {
            (true, [b'7', rest @ ..]) | (false, [b'7' | b'8', rest @ ..]) if rest.len() == 10 => &digits[1..],
            (true, [first, ..]) if *first != b'7' => return Err(PhoneError::NotRussian),
            _ => return Err(PhoneError::WrongLength),
        };
        if !national.starts_with('9') {
            return Err(PhoneError::NotMobile);
        }
        Ok(Self(format!("+7{national}")))
    }

    /// The E.164 form, `+79XXXXXXXXX`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 11 digits without the plus, `79XXXXXXXXX`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// The 10-digit national number, `9XXXXXXXXX`.
    pub fn national(&self) -> &str {
        &self.0[2..]
    }

    /// Safe for logs and screens: `+7 *** ***-**-67`.
    pub fn masked(&self) -> String {
        format!("+7 *** ***-**-{}", &self.0[10..])
    }
}

/// Drops spaces, dashes and one level of brackets; returns whether a leading `+` was present.
fn strip_separators(trimmed: &str) -> Result<(bool, String), PhoneError> {
    let mut digits = String::with_capacity(11);
    let mut has_plus = false;
    let mut inside_brackets = false;
    for (index, c) in trimmed.chars().enumerate() {
        match c {
            '+' if index == 0 => has_plus = true,
            '0'..='9' => digits.push(c),
            '(' if !inside_brackets => inside_brackets = true,
            ')' if inside_brackets => inside_brackets = false,
            '(' | ')' => return Err(PhoneError::UnbalancedBrackets),
            '-' => {}
            c if c.is_whitespace() => {}
            _ => return Err(PhoneError::InvalidCharacter),
        }
    }
    if inside_brackets {
        return Err(PhoneError::UnbalancedBrackets);
    }
    Ok((has_plus, digits))
}

impl PhoneError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "required",
            Self::InvalidCharacter | Self::UnbalancedBrackets | Self::WrongLength => "invalid_format",
            Self::NotRussian => "not_russian",
            Self::NotMobile => "not_mobile",
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            Self::Empty => "Укажите номер телефона",
            Self::InvalidCharacter | Self::UnbalancedBrackets | Self::WrongLength => "Укажите номер телефона в формате +7 XXX XXX-XX-XX",
            Self::NotRussian => "Укажите российский номер телефона, начинающийся с +7",
            Self::NotMobile => "Укажите номер мобильного телефона, начинающийся с +7 9",
        }
    }

    pub fn field_error(&self, field: &str) -> FieldError {
        FieldError::new(field, self.code(), self.message())
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

impl TryFrom<String> for Phone {
    type Error = PhoneError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<Phone> for String {
    fn from(phone: Phone) -> Self {
        phone.0
    }
}

crate::string_schema!(Phone, "Russian mobile phone in E.164 (`+7…`; `8…`, spaces, dashes and brackets are accepted on input)", None, "+79165551234", 32);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_accepted_format_normalises_to_e164() {
        for raw in
            ["+79161234567", "89161234567", "79161234567", "+7 916 123-45-67", "8 (916) 123-45-67", "+7(916)1234567", "  8-916-123-45-67  ", "7 916 123 45 67"]
        {
            let phone = Phone::parse(raw).unwrap_or_else(|e| panic!("{raw:?} rejected: {e}"));
            assert_eq!(phone.as_str(), "+79161234567", "{raw:?}");
        }
    }

    #[test]
    fn accessors_return_the_documented_slices() {
        let phone = Phone::parse("+7 916 123-45-67").unwrap();
        assert_eq!(phone.digits(), "79161234567");
        assert_eq!(phone.national(), "9161234567");
        assert_eq!(phone.masked(), "+7 *** ***-**-67");
    }

    #[test]
    fn empty_and_blank_input_is_required() {
        assert_eq!(Phone::parse(""), Err(PhoneError::Empty));
        assert_eq!(Phone::parse("   "), Err(PhoneError::Empty));
    }

    #[test]
    fn wrong_digit_counts_are_rejected() {
        for raw in ["9161234567", "+7916123456", "+791612345678", "8916123456", "123"] {
            assert_eq!(Phone::parse(raw), Err(PhoneError::WrongLength), "{raw:?}");
        }
    }

    #[test]
    fn foreign_numbers_are_rejected() {
        assert_eq!(Phone::parse("+380501234567"), Err(PhoneError::NotRussian));
        assert_eq!(Phone::parse("+89161234567"), Err(PhoneError::NotRussian));
    }

    #[test]
    fn landlines_are_rejected() {
        assert_eq!(Phone::parse("+7 495 123-45-67"), Err(PhoneError::NotMobile));
        assert_eq!(Phone::parse("8 (812) 123-45-67"), Err(PhoneError::NotMobile));
    }

    #[test]
    fn letters_dots_and_misplaced_plus_are_rejected() {
        for raw in ["+7 916 abc 45 67", "+7.916.123.45.67", "8+9161234567", "++79161234567"] {
            assert_eq!(Phone::parse(raw), Err(PhoneError::InvalidCharacter), "{raw:?}");
        }
    }

    #[test]
    fn unbalanced_or_nested_brackets_are_rejected() {
        for raw in ["8 (916 123-45-67", "8 916) 123-45-67", "8 ((916)) 1234567"] {
            assert_eq!(Phone::parse(raw), Err(PhoneError::UnbalancedBrackets), "{raw:?}");
        }
    }

    #[test]
    fn debug_output_never_contains_the_full_number() {
        let phone = Phone::parse("+79161234567").unwrap();
        let debug = format!("{phone:?}");
        assert_eq!(debug, "Phone(+7 *** ***-**-67)");
        assert!(!debug.contains("9161234567"));
    }

    #[test]
    fn serde_round_trips_and_deserialize_goes_through_parse() {
        let phone = Phone::parse("8 916 123 45 67").unwrap();
        let json = serde_json::to_string(&phone).unwrap();
        assert_eq!(json, "\"+79161234567\"");
        assert_eq!(serde_json::from_str::<Phone>("\"8 (916) 123-45-67\"").unwrap(), phone);
        assert!(serde_json::from_str::<Phone>("\"+7 495 123-45-67\"").is_err());
    }

    #[test]
    fn errors_become_field_errors_with_stable_codes() {
        let error = Phone::parse("+7 495 123-45-67").unwrap_err().field_error("phone");
        assert_eq!(error.field, "phone");
        assert_eq!(error.code, "not_mobile");
        assert!(!error.message.is_empty());
    }

    proptest! {
        #[test]
        fn all_written_forms_of_one_number_normalise_to_the_same_value(
            rest in "[0-9]{9}",
            prefix in prop::sample::select(vec!["+7", "8", "7", "+7 ", "8 "]),
            bracketed in any::<bool>(),
            separator in prop::sample::select(vec!["", " ", "-"]),
        ) {
            let national = format!("9{rest}");
            let (code, tail) = national.split_at(3);
            let code = if bracketed { format!("({code})") } else { code.to_string() };
            let raw = format!(
                "{prefix}{code}{separator}{}{separator}{}{separator}{}",
                &tail[..3], &tail[3..5], &tail[5..]
            );
            let phone = Phone::parse(&raw).unwrap();
            prop_assert_eq!(phone.as_str(), format!("+7{national}"));
        }

        #[test]
        fn parse_never_panics_and_accepted_values_are_canonical(raw in "\\PC{0,30}") {
            if let Ok(phone) = Phone::parse(&raw) {
                prop_assert_eq!(phone.as_str().len(), 12);
                prop_assert!(phone.as_str().starts_with("+79"));
                prop_assert_eq!(Phone::parse(phone.as_str()), Ok(phone.clone()));
            }
        }
    }
}
