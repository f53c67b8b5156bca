//! СНИЛС: the 11-digit individual insurance account number, checksum verified.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::newtype::{error_texts, non_blank, string_newtype};

/// A SNILS whose check number matches; `Display` is `XXX-XXX-XXX YY`, `Debug` is masked.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Snils(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SnilsError {
    #[error("SNILS is empty")]
    Empty,
    #[error("SNILS must be 11 digits, bare or as XXX-XXX-XXX YY")]
    InvalidFormat,
    #[error("SNILS number part is all zeros")]
    ZeroNumber,
    #[error("SNILS check number does not match")]
    ChecksumMismatch,
}

error_texts!(SnilsError {
    Self::Empty => ("required", "Укажите СНИЛС"),
    Self::InvalidFormat => ("invalid_format", "Укажите СНИЛС из 11 цифр в формате XXX-XXX-XXX XX"),
    Self::ZeroNumber | Self::ChecksumMismatch => ("invalid_checksum", "СНИЛС указан с ошибкой: проверьте номер и контрольное число"),
});

string_newtype!(Snils, SnilsError, |snils| snils.to_string());

impl fmt::Display for Snils {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.0;
        write!(f, "{}-{}-{} {}", &d[..3], &d[3..6], &d[6..9], &d[9..])
    }
}

crate::string_schema!(
    Snils,
    "СНИЛС: 11 digits with a verified check number, answered as `XXX-XXX-XXX YY` (bare digits accepted)",
    Some(r"^(\d{3}-\d{3}-\d{3} \d{2}|\d{11})$"),
    "112-233-445 95",
    14
);

/// Numbers up to 001-001-998 were issued before the check number existed.
const LAST_UNCHECKED_NUMBER: u32 = 1_001_998;

impl Snils {
    /// Accepts `XXX-XXX-XXX YY` or 11 bare digits.
    pub fn parse(raw: &str) -> Result<Self, SnilsError> {
        let trimmed = non_blank(raw).ok_or(SnilsError::Empty)?;
        let digits = bare_digits(trimmed).ok_or(SnilsError::InvalidFormat)?;
        let number = digits[..9].iter().fold(0u32, |acc, d| acc * 10 + u32::from(*d));
        if number == 0 {
            return Err(SnilsError::ZeroNumber);
        }
        let check = u32::from(digits[9]) * 10 + u32::from(digits[10]);
        if number > LAST_UNCHECKED_NUMBER && check != check_number(&digits) {
            return Err(SnilsError::ChecksumMismatch);
        }
        Ok(Self(digits.iter().map(|d| char::from(b'0' + d)).collect()))
    }

    /// The 11 digits without separators, the canonical key for lookups by SNILS.
    pub fn digits(&self) -> &str {
        &self.0
    }

    /// Safe for logs and screens: `***-***-*** 95`.
    pub fn masked(&self) -> String {
        format!("***-***-*** {}", &self.0[9..])
    }
}

/// The 11 digit values of `XXX-XXX-XXX YY` or of 11 bare digits, nothing else.
fn bare_digits(trimmed: &str) -> Option<[u8; 11]> {
    let bytes = trimmed.as_bytes();
    let positions: &[usize] = match bytes.len() {
        11 => &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        14 if bytes[3] == b'-' && bytes[7] == b'-' && bytes[11] == b' ' => &[0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13],
        _ => return None,
    };
    let mut digits = [0u8; 11];
    for (slot, &position) in digits.iter_mut().zip(positions) {
        let byte = bytes[position];
        if !byte.is_ascii_digit() {
            return None;
        }
        *slot = byte - b'0';
    }
    Some(digits)
}

/// Weights 9..1 over the first nine digits; 100 and 101 wrap to 00, larger sums mod 101.
fn check_number(digits: &[u8; 11]) -> u32 {
    let sum: u32 = digits[..9].iter().zip((1..=9u32).rev()).map(|(d, weight)| u32::from(*d) * weight).sum();
    match sum {
        0..=99 => sum,
        100 | 101 => 0,
        _ => match sum % 101 {
            100 => 0,
            rest => rest,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::newtype::contract;
    use super::*;
    use proptest::prelude::*;

    /// Appends the check number; the algorithm is pinned by the hand-worked cases below.
    fn with_check(number: &str) -> String {
        format!("{number}{:02}", check_number(&digits(&format!("{number}00"))))
    }

    #[test]
    fn known_real_snils_is_valid_in_both_formats() {
        let formatted = Snils::parse("112-233-445 95").unwrap();
        let bare = Snils::parse("11223344595").unwrap();
        assert_eq!(formatted, bare);
        assert_eq!(formatted.to_string(), "112-233-445 95");
        assert_eq!(formatted.digits(), "11223344595");
    }

    #[test]
    fn check_number_follows_each_branch_of_the_algorithm() {
        // Weighted sums worked out by hand: 9*9 + 2*8 + 1*2 = 99, and so on.
        let cases = [
            ("920000010", 99, 99),
            ("920000100", 100, 0),
            ("920000101", 101, 0),
            ("920000102", 102, 1),
            ("980000005", 150, 49),
            ("996100000", 201, 0),
            ("999999999", 405, 1),
        ];
        for (number, sum, expected) in cases {
            assert_eq!(weighted_sum(number), sum, "{number}");
            assert_eq!(check_number(&digits(&format!("{number}00"))), expected, "{number}");
            let valid = format!("{number}{expected:02}");
            assert!(Snils::parse(&valid).is_ok(), "{valid}");
        }
    }

    #[test]
    fn wrong_check_number_is_rejected() {
        assert_eq!(Snils::parse("112-233-445 96"), Err(SnilsError::ChecksumMismatch));
        assert_eq!(Snils::parse("11223344594"), Err(SnilsError::ChecksumMismatch));
    }

    #[test]
    fn early_numbers_are_not_checked() {
        assert!(Snils::parse("001-001-998 42").is_ok());
        assert!(Snils::parse("000-000-001 00").is_ok());
        // 001-001-999 is the first checked number: weighted sum 7 + 4 + 27 + 18 + 9 = 65.
        assert!(Snils::parse("001-001-999 65").is_ok());
        assert_eq!(Snils::parse("001-001-999 42"), Err(SnilsError::ChecksumMismatch));
    }

    #[test]
    fn all_zero_number_is_rejected() {
        assert_eq!(Snils::parse("000-000-000 00"), Err(SnilsError::ZeroNumber));
    }

    #[test]
    fn other_layouts_and_characters_are_rejected() {
        let layouts = ["112 233 445 95", "112-233-445-95", "1122334459", "112233445955", "11223344S95", "１１２２３３４４５９５"];
        contract::assert_refused(Snils::parse, &[(SnilsError::InvalidFormat, &layouts), (SnilsError::Empty, &["  "])]);
    }

    #[test]
    fn serde_uses_the_display_form_and_debug_shows_only_the_check_number() {
        contract::assert_serde_through_parse::<Snils>("11223344595", "112-233-445 95", "Snils(***-***-*** 95)", "112-233-445 96");
    }

    fn digits(s: &str) -> [u8; 11] {
        let mut out = [0u8; 11];
        for (slot, c) in out.iter_mut().zip(s.bytes()) {
            *slot = c - b'0';
        }
        out
    }

    fn weighted_sum(number: &str) -> u32 {
        number.bytes().zip((1..=9u32).rev()).map(|(c, w)| u32::from(c - b'0') * w).sum()
    }

    proptest! {
        #[test]
        fn any_valid_snils_parses_and_round_trips_through_display(number in 1_001_999u32..=999_999_999) {
            let raw = with_check(&format!("{number:09}"));
            let snils = Snils::parse(&raw).unwrap();
            prop_assert_eq!(snils.digits(), raw.as_str());
            let displayed = snils.to_string();
            let expected = format!("{}-{}-{} {}", &raw[..3], &raw[3..6], &raw[6..9], &raw[9..]);
            prop_assert_eq!(&displayed, &expected);
            prop_assert_eq!(Snils::parse(&displayed).unwrap(), snils);
        }

        #[test]
        fn a_changed_check_number_is_rejected(number in 1_001_999u32..=999_999_999, delta in 1u32..100) {
            let raw = with_check(&format!("{number:09}"));
            let check: u32 = raw[9..].parse().unwrap();
            let wrong = format!("{}{:02}", &raw[..9], (check + delta) % 100);
            prop_assert_eq!(Snils::parse(&wrong), Err(SnilsError::ChecksumMismatch));
        }

        #[test]
        fn parse_never_panics(raw in "\\PC{0,20}") {
            let _ = Snils::parse(&raw);
        }
    }
}
