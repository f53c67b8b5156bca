//! Free text from outside (SPEC §2): names, messages, comments, reasons. Every kind has a
//! documented maximum, and characters that hide or reorder what a reader sees are refused:
//! C0/C1 controls (a multi-line text keeps `\n` and `\t`), zero-width and bidirectional marks,
//! overrides and isolates, the word joiner family, the BOM and the Arabic letter mark.
//!
//! [`Text::parse`] is the only constructor, so a `Text` in hand is trimmed, non-empty, within
//! its bound and clean. Errors name the broken rule, never the submitted value.

use std::fmt;

use super::FieldError;

/// What a text field may hold: its maximum in characters and whether it may span lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextRule {
    pub max_chars: usize,
    /// Messages and comments keep `\n` and `\t`; names and single-line fields refuse them.
    pub multiline: bool,
}

impl TextRule {
    pub const fn line(max_chars: usize) -> Self {
        Self { max_chars, multiline: false }
    }

    pub const fn multiline(max_chars: usize) -> Self {
        Self { max_chars, multiline: true }
    }
}

/// A person's or an employee's name (SPEC §2: a name ≤ 100).
pub const NAME: TextRule = TextRule::line(100);
/// A job title or position beside a name.
pub const POSITION: TextRule = TextRule::line(200);
/// A message in a thread (SPEC §2: a message ≤ 4,000).
pub const MESSAGE: TextRule = TextRule::multiline(4000);
/// A comment, reason or recommendation attached to an action (withdrawal, supplement, decision).
pub const COMMENT: TextRule = TextRule::multiline(2000);
/// An identifier or code taken from a request (ids, numbers, codes): ≤ 64.
pub const ID_MAX_CHARS: usize = 64;

/// Trimmed, non-empty text that keeps its rule.
#[derive(Clone, PartialEq, Eq)]
pub struct Text(String);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextError {
    Required,
    TooLong { max_chars: usize },
    ForbiddenCharacters,
}

impl Text {
    pub fn parse(raw: &str, rule: TextRule) -> Result<Self, TextError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(TextError::Required);
        }
        // Counting stops one past the bound, so a huge input costs no more than a small one.
        if text.chars().take(rule.max_chars + 1).count() > rule.max_chars {
            return Err(TextError::TooLong { max_chars: rule.max_chars });
        }
        if text.chars().any(|c| is_forbidden(c, rule.multiline)) {
            return Err(TextError::ForbiddenCharacters);
        }
        Ok(Self(text.to_owned()))
    }

    /// An optional field: absent or blank is `None`, anything else must parse.
    pub fn parse_optional(raw: Option<&str>, rule: TextRule) -> Result<Option<Self>, TextError> {
        match raw {
            Some(raw) if !raw.trim().is_empty() => Self::parse(raw, rule).map(Some),
            _ => Ok(None),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Free text is personal data as often as not.
        write!(f, "Text({} chars)", self.0.chars().count())
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TextError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::TooLong { .. } => "too_long",
            Self::ForbiddenCharacters => "forbidden_characters",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::Required => "Поле не заполнено".to_owned(),
            Self::TooLong { max_chars } => format!("Не длиннее {max_chars} символов"),
            Self::ForbiddenCharacters => "Текст содержит управляющие или невидимые символы".to_owned(),
        }
    }

    pub fn field_error(&self, field: &str) -> FieldError {
        FieldError::new(field, self.code(), self.message())
    }
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl std::error::Error for TextError {}

/// Whether `text` holds a character a reader could not see or that reorders what they see
/// (see the module doc); `multiline` lets `\n` and `\t` through.
pub fn has_forbidden_characters(text: &str, multiline: bool) -> bool {
    text.chars().any(|c| is_forbidden(c, multiline))
}

fn is_forbidden(c: char, multiline: bool) -> bool {
    match c {
        '\n' | '\t' => !multiline,
        '\u{0000}'..='\u{001F}' | '\u{007F}'..='\u{009F}' => true,
        // Zero-width space, non-joiner, joiner; left-to-right and right-to-left marks.
        '\u{200B}'..='\u{200F}' => true,
        // Bidirectional embeddings and overrides.
        '\u{202A}'..='\u{202E}' => true,
        // Word joiner, invisible operators, bidirectional isolates.
        '\u{2060}'..='\u{2069}' => true,
        '\u{FEFF}' | '\u{061C}' => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_is_trimmed_and_blank_is_required() {
        assert_eq!(Text::parse("  Здравствуйте  ", MESSAGE).unwrap().as_str(), "Здравствуйте");
        assert_eq!(Text::parse(" \n\t ", MESSAGE).unwrap_err(), TextError::Required);
        assert_eq!(Text::parse_optional(Some("   "), COMMENT).unwrap(), None);
        assert_eq!(Text::parse_optional(None, COMMENT).unwrap(), None);
    }

    #[test]
    fn the_bound_counts_characters_not_bytes() {
        let at_bound = "ж".repeat(100);
        assert!(Text::parse(&at_bound, NAME).is_ok());
        assert_eq!(Text::parse(&format!("{at_bound}ж"), NAME).unwrap_err(), TextError::TooLong { max_chars: 100 });
        assert!(Text::parse(&"a".repeat(4000), MESSAGE).is_ok());
        assert_eq!(Text::parse(&"a".repeat(4001), MESSAGE).unwrap_err().code(), "too_long");
    }

    #[test]
    fn messages_keep_newlines_and_tabs_names_do_not() {
        assert!(Text::parse("строка 1\nстрока 2\tи табуляция", MESSAGE).is_ok());
        assert_eq!(Text::parse("Иван\nИванов", NAME).unwrap_err(), TextError::ForbiddenCharacters);
        assert_eq!(Text::parse("Иван\tИванов", NAME).unwrap_err(), TextError::ForbiddenCharacters);
    }

    #[test]
    fn controls_and_invisible_or_reordering_characters_are_refused() {
        for c in [
            '\u{0}', '\r', '\u{1B}', '\u{7F}', '\u{85}', '\u{9F}', '\u{200B}', '\u{200F}', '\u{202A}', '\u{202E}', '\u{2060}', '\u{2066}', '\u{2069}',
            '\u{FEFF}', '\u{061C}',
        ] {
            let text = format!("до{c}после");
            assert_eq!(Text::parse(&text, MESSAGE).unwrap_err(), TextError::ForbiddenCharacters, "U+{:04X}", c as u32);
            assert!(has_forbidden_characters(&text, true));
        }
        assert!(Text::parse("Ёлки-палки — «кавычки» № 5, €, 😀", MESSAGE).is_ok());
    }

    #[test]
    fn errors_never_echo_the_value() {
        let secret = "секрет\u{0}";
        let error = Text::parse(secret, MESSAGE).unwrap_err().field_error("/text");
        assert_eq!((error.field.as_str(), error.code.as_str()), ("/text", "forbidden_characters"));
        assert!(!error.message.contains("секрет"));
        assert!(!format!("{:?}", Text::parse("секрет", MESSAGE).unwrap()).contains("секрет"));
    }

    proptest! {
        #[test]
        fn whatever_parses_is_within_the_rule(raw in "\\PC{0,120}") {
            if let Ok(text) = Text::parse(&raw, NAME) {
                prop_assert!(!text.as_str().is_empty());
                prop_assert!(text.as_str().chars().count() <= 100);
                prop_assert!(!has_forbidden_characters(text.as_str(), false));
            }
        }
    }
}
