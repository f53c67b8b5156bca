//! A Russian mobile phone number, normalised to E.164 `+79XXXXXXXXX`.

use serde::{Deserialize, Serialize};

use super::newtype::{error_texts, non_blank, string_newtype};

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

error_texts!(PhoneError {
    Self::Empty => ("required", "Укажите номер телефона"),
    Self::InvalidCharacter | Self::UnbalancedBrackets | Self::WrongLength => ("invalid_format", "Укажите номер телефона в формате +7 XXX XXX-XX-XX"),
    Self::NotRussian => ("not_russian", "Укажите российский номер телефона, начинающийся с +7"),
    Self::NotMobile => ("not_mobile", "Укажите номер мобильного телефона, начинающийся с +7 9"),
});

string_newtype!(Phone, PhoneError);

crate::string_schema!(Phone, "Russian mobile phone in E.164 (`+7…`; `8…`, spaces, dashes and brackets are accepted on input)", None, "+79165551234", 32);

/// Longest input worth looking at; anything longer cannot be a phone number with separators.
const MAX_INPUT_CHARS: usize = 40;

impl Phone {
    /// Accepts `+7…`, `8…` or `7…` (11 digits) with spaces, dashes and brackets.
    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        let trimmed = non_blank(raw).ok_or(PhoneError::Empty)?;
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

#[cfg(test)]
mod tests {
    use super::super::newtype::contract;
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
    fn malformed_numbers_are_rejected_with_their_reason() {
        contract::assert_refused(
            Phone::parse,
            &[
                (PhoneError::Empty, &["", "   "]),
                (PhoneError::WrongLength, &["9161234567", "+7916123456", "+791612345678", "8916123456", "123"]),
                (PhoneError::NotRussian, &["+380501234567", "+89161234567"]),
                (PhoneError::NotMobile, &["+7 495 123-45-67", "8 (812) 123-45-67"]),
                (PhoneError::InvalidCharacter, &["+7 916 abc 45 67", "+7.916.123.45.67", "8+9161234567", "++79161234567"]),
                (PhoneError::UnbalancedBrackets, &["8 (916 123-45-67", "8 916) 123-45-67", "8 ((916)) 1234567"]),
            ],
        );
    }

    #[test]
    fn serde_goes_through_parse_and_debug_never_shows_the_full_number() {
        contract::assert_serde_through_parse::<Phone>("8 (916) 123-45-67", "+79161234567", "Phone(+7 *** ***-**-67)", "+7 495 123-45-67");
        assert!(!format!("{:?}", Phone::parse("+79161234567").unwrap()).contains("9161234567"));
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
