//! How many SMS segments a text costs (3GPP TS 23.038 / 23.040).
//!
//! A text made only of GSM-7 characters is sent in 7-bit septets: 160 in a single SMS, 153 per
//! segment once concatenated (the user-data header takes the rest); characters of the extension
//! table (`€`, `[`, `{`, …) take two septets. Any other character — Cyrillic included — switches
//! the whole text to UCS-2: 70 UTF-16 code units single, 67 per concatenated segment, and a
//! character outside the BMP takes two units. Neither an escape pair nor a surrogate pair may be
//! split across segments.

/// The longest SMS we send: every Russian text must fit in this many segments.
pub const MAX_SMS_SEGMENTS: usize = 2;

/// Segments needed to send `text` (an empty text still costs one SMS).
pub fn sms_segments(text: &str) -> usize {
    let (single, per_segment, costs): (usize, usize, Vec<usize>) = if text.chars().all(|c| gsm7_septets(c).is_some()) {
        (160, 153, text.chars().filter_map(gsm7_septets).collect())
    } else {
        (70, 67, text.chars().map(char::len_utf16).collect())
    };
    if costs.iter().sum::<usize>() <= single {
        return 1;
    }
    let mut segments = 1;
    let mut used = 0;
    for cost in costs {
        if used + cost > per_segment {
            segments += 1;
            used = 0;
        }
        used += cost;
    }
    segments
}

/// The GSM 03.38 default alphabet (without the escape code itself).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// Characters reached through the escape code, costing two septets.
const GSM7_EXTENSION: &str = "\u{0C}^{}\\[~]|€";

/// Septets `c` takes in GSM-7, or `None` when it forces UCS-2.
fn gsm7_septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_alphabet_tables_have_the_standard_sizes() {
        assert_eq!(GSM7_BASIC.chars().count(), 127);
        assert_eq!(GSM7_EXTENSION.chars().count(), 10);
    }

    #[test]
    fn latin_text_fits_160_characters_in_one_segment() {
        assert_eq!(sms_segments(""), 1);
        assert_eq!(sms_segments(&"a".repeat(160)), 1);
        assert_eq!(sms_segments(&"a".repeat(161)), 2);
        assert_eq!(sms_segments(&"a".repeat(306)), 2);
        assert_eq!(sms_segments(&"a".repeat(307)), 3);
    }

    #[test]
    fn double_cost_characters_count_twice_and_are_never_split() {
        // Extension characters take two septets, characters outside the BMP two UTF-16 units;
        // a pair that would straddle a segment boundary moves whole into the next segment.
        let cases = [
            ("€".repeat(80), 1),
            ("€".repeat(81), 2),
            (format!("{}€{}", "a".repeat(152), "a".repeat(152)), 3),
            ("😀".repeat(35), 1),
            ("😀".repeat(36), 2),
            (format!("{}😀{}", "я".repeat(66), "я".repeat(66)), 3),
        ];
        for (text, segments) in cases {
            assert_eq!(sms_segments(&text), segments, "{text}");
        }
    }

    #[test]
    fn any_cyrillic_letter_switches_the_text_to_ucs2() {
        assert_eq!(sms_segments(&"я".repeat(70)), 1);
        assert_eq!(sms_segments(&"я".repeat(71)), 2);
        assert_eq!(sms_segments(&"я".repeat(134)), 2);
        assert_eq!(sms_segments(&"я".repeat(135)), 3);
        let mostly_latin = format!("{}я", "a".repeat(70));
        assert_eq!(sms_segments(&mostly_latin), 2);
    }

    #[test]
    fn typographic_quotes_and_dashes_are_not_gsm7() {
        assert_eq!(sms_segments(&format!("{}—", "a".repeat(69))), 1);
        assert_eq!(sms_segments(&format!("{}«", "a".repeat(70))), 2);
    }
}
