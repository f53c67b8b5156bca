//! ИНН of a person: 12 digits, both check digits verified with the FNS weights.

use serde::{Deserialize, Serialize};

use super::newtype::{error_texts, non_blank, string_newtype};

/// A personal (12-digit) INN whose two check digits match; `Debug` is masked.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Inn(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InnError {
    #[error("INN is empty")]
    Empty,
    #[error("personal INN must be exactly 12 digits")]
    InvalidFormat,
    #[error("INN check digits do not match")]
    ChecksumMismatch,
}

error_texts!(InnError {
    Self::Empty => ("required", "Укажите ИНН"),
    Self::InvalidFormat => ("invalid_format", "ИНН физического лица состоит из 12 цифр"),
    Self::ChecksumMismatch => ("invalid_checksum", "ИНН указан с ошибкой: проверьте контрольные цифры"),
});

string_newtype!(Inn, InnError);

crate::string_schema!(Inn, "Personal INN: 12 digits, both check digits verified", Some(r"^\d{12}$"), "500100732259", 12);

/// FNS weights for the 11th digit (over digits 1–10) and the 12th (over digits 1–11).
const WEIGHTS_11: [u32; 10] = [7, 2, 4, 10, 3, 5, 9, 4, 6, 8];
const WEIGHTS_12: [u32; 11] = [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8];

impl Inn {
    pub fn parse(raw: &str) -> Result<Self, InnError> {
        let trimmed = non_blank(raw).ok_or(InnError::Empty)?;
        if trimmed.len() != 12 || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InnError::InvalidFormat);
        }
        let digits: Vec<u32> = trimmed.bytes().map(|b| u32::from(b - b'0')).collect();
        if digits[10] != check_digit(&digits[..10], &WEIGHTS_11) || digits[11] != check_digit(&digits[..11], &WEIGHTS_12) {
            return Err(InnError::ChecksumMismatch);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The 12 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Safe for logs and screens: `**********59`.
    pub fn masked(&self) -> String {
        format!("**********{}", &self.0[10..])
    }
}

fn check_digit(digits: &[u32], weights: &[u32]) -> u32 {
    let sum: u32 = digits.iter().zip(weights).map(|(d, w)| d * w).sum();
    sum % 11 % 10
}

#[cfg(test)]
mod tests {
    use super::super::newtype::contract;
    use super::*;
    use proptest::prelude::*;

    /// Completes ten digits with both check digits.
    fn with_checks(ten: &str) -> String {
        let mut digits: Vec<u32> = ten.bytes().map(|b| u32::from(b - b'0')).collect();
        digits.push(check_digit(&digits, &WEIGHTS_11));
        digits.push(check_digit(&digits, &WEIGHTS_12));
        digits.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn known_real_inn_is_valid() {
        let inn = Inn::parse(" 500100732259 ").unwrap();
        assert_eq!(inn.as_str(), "500100732259");
    }

    #[test]
    fn check_digits_match_hand_worked_examples() {
        // 7,7,0,7,0,8,3,8,9,3 · (7,2,4,10,3,5,9,4,6,8) = 310; 310 mod 11 = 2.
        // 7,7,0,7,0,8,3,8,9,3,2 · (3,7,2,4,10,3,5,9,4,6,8) = 279; 279 mod 11 = 4.
        assert!(Inn::parse("770708389324").is_ok());
        // 0,…,0,1 → 1·8 = 8; then 1·6 + 8·8 = 70; 70 mod 11 = 4.
        assert!(Inn::parse("000000000184").is_ok());
    }

    #[test]
    fn a_remainder_of_ten_gives_check_digit_zero() {
        // The fourth digit weighs 10 for the 11th check digit: 10 mod 11 = 10 → 0.
        // Then it weighs 4 for the 12th: 4 mod 11 = 4.
        assert!(Inn::parse("000100000004").is_ok());
        assert_eq!(Inn::parse("000100000014"), Err(InnError::ChecksumMismatch));
    }

    #[test]
    fn either_wrong_check_digit_is_rejected() {
        assert_eq!(Inn::parse("500100732269"), Err(InnError::ChecksumMismatch));
        assert_eq!(Inn::parse("500100732258"), Err(InnError::ChecksumMismatch));
    }

    #[test]
    fn other_lengths_and_characters_are_rejected() {
        contract::assert_refused(
            Inn::parse,
            &[(InnError::InvalidFormat, &["7707083893", "5001007322591", "5001-0073-2259", "50010073225a"]), (InnError::Empty, &[""])],
        );
    }

    #[test]
    fn serde_goes_through_parse_and_debug_shows_only_the_check_digits() {
        contract::assert_serde_through_parse::<Inn>("500100732259", "500100732259", "Inn(**********59)", "500100732258");
    }

    proptest! {
        #[test]
        fn any_completed_inn_parses(ten in "[0-9]{10}") {
            let raw = with_checks(&ten);
            let inn = Inn::parse(&raw).unwrap();
            prop_assert_eq!(inn.as_str(), raw.as_str());
        }

        #[test]
        fn any_single_digit_corruption_of_a_valid_inn_is_rejected(
            ten in "[0-9]{10}",
            position in 0usize..12,
            shift in 1u8..10,
        ) {
            let valid = with_checks(&ten);
            let mut bytes = valid.into_bytes();
            bytes[position] = b'0' + (bytes[position] - b'0' + shift) % 10;
            let corrupted = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(Inn::parse(&corrupted), Err(InnError::ChecksumMismatch));
        }
    }
}
