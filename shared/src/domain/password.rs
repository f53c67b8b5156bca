//! The password policy of SPEC §3.2, strictest reading: a [`Password`] exists only if it
//! breaks no rule. The `reused` rule needs stored hashes, so the auth function checks it.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use chrono::NaiveDate;
use serde::Serialize;

use super::{Email, FieldError, Phone};

/// A password that satisfies the policy. It has no `Display` and a `Debug` of
/// `Password(***)`, so it cannot end up in a log by accident.
pub struct Password(String);

/// What the citizen has told us about themselves; a password must not contain any of it.
#[derive(Clone, Default)]
pub struct PersonalData {
    /// Any digits of the phone number (E.164 or national); the last ten are used.
    pub phone_digits: Option<String>,
    pub email_local_part: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub middle_name: Option<String>,
    pub birth_date: Option<NaiveDate>,
}

/// One broken rule of the policy, named by the stable code used in problem+json `errors[]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordRule {
    TooShort,
    TooLong,
    MissingUpper,
    MissingLower,
    MissingDigit,
    MissingSpecial,
    Sequence,
    Common,
    PersonalData,
    Reused,
}

pub const MIN_CHARS: usize = 8;
pub const MAX_CHARS: usize = 128;
/// The shortest keyboard, digit or alphabet run that counts as a sequence.
const SEQUENCE_RUN: usize = 4;
/// The shortest name or email local part worth searching for.
const MIN_PERSONAL_CHARS: usize = 3;
/// A run of this many trailing phone digits identifies the number.
const PHONE_TAIL_DIGITS: usize = 7;

impl Password {
    /// Checks every rule except `reused` and returns all broken ones, in [`PasswordRule`] order.
    pub fn parse(raw: &str, personal: &PersonalData) -> Result<Self, Vec<PasswordRule>> {
        let broken = broken_rules(raw, personal);
        if broken.is_empty() { Ok(Self(raw.to_owned())) } else { Err(broken) }
    }

    /// The plain text, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl PersonalData {
    pub fn with_phone(mut self, phone: &Phone) -> Self {
        self.phone_digits = Some(phone.digits().to_owned());
        self
    }

    pub fn with_email(mut self, email: &Email) -> Self {
        self.email_local_part = Some(email.local_part().to_owned());
        self
    }
}

impl PasswordRule {
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooShort => "too_short",
            Self::TooLong => "too_long",
            Self::MissingUpper => "missing_upper",
            Self::MissingLower => "missing_lower",
            Self::MissingDigit => "missing_digit",
            Self::MissingSpecial => "missing_special",
            Self::Sequence => "sequence",
            Self::Common => "common",
            Self::PersonalData => "personal_data",
            Self::Reused => "reused",
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            Self::TooShort => "Пароль должен содержать не менее 8 символов",
            Self::TooLong => "Пароль должен содержать не более 128 символов",
            Self::MissingUpper => "Добавьте в пароль хотя бы одну заглавную букву",
            Self::MissingLower => "Добавьте в пароль хотя бы одну строчную букву",
            Self::MissingDigit => "Добавьте в пароль хотя бы одну цифру",
            Self::MissingSpecial => "Добавьте в пароль хотя бы один специальный символ, например ! # % или *",
            Self::Sequence => {
                "Пароль не должен содержать последовательностей из 4 и более символов подряд, \
                 например qwer, 1234, йцук или abcd"
            }
            Self::Common => "Этот пароль слишком распространён, придумайте другой",
            Self::PersonalData => {
                "Пароль не должен содержать номер телефона, адрес электронной почты, \
                 имя, фамилию, отчество или дату рождения"
            }
            Self::Reused => "Пароль не должен совпадать ни с одним из 5 последних паролей",
        }
    }

    /// `field` is the request field that held the password, e.g. `password` or `new_password`.
    pub fn field_error(&self, field: &str) -> FieldError {
        FieldError::new(field, self.code(), self.message())
    }
}

fn broken_rules(raw: &str, personal: &PersonalData) -> Vec<PasswordRule> {
    let length = raw.chars().count();
    let lowered = normalise(raw);
    let checks = [
        (PasswordRule::TooShort, length < MIN_CHARS),
        (PasswordRule::TooLong, length > MAX_CHARS),
        (PasswordRule::MissingUpper, !raw.chars().any(char::is_uppercase)),
        (PasswordRule::MissingLower, !raw.chars().any(char::is_lowercase)),
        (PasswordRule::MissingDigit, !raw.chars().any(|c| c.is_ascii_digit())),
        (PasswordRule::MissingSpecial, !raw.chars().any(is_special)),
        (PasswordRule::Sequence, has_sequence(&lowered)),
        (PasswordRule::Common, is_common(&lowered)),
        (PasswordRule::PersonalData, contains_personal_data(&lowered, personal)),
    ];
    checks.into_iter().filter_map(|(rule, broken)| broken.then_some(rule)).collect()
}

/// Punctuation and symbols; whitespace and control characters do not count.
fn is_special(c: char) -> bool {
    !c.is_alphanumeric() && !c.is_whitespace() && !c.is_control()
}

/// Lower-cased with `ё` folded into `е`, the way people spell names interchangeably.
fn normalise(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).map(|c| if c == 'ё' { 'е' } else { c }).collect()
}

// ---- sequence -------------------------------------------------------------------------

/// Rows, columns and alphabets whose runs of four count as sequences, in either direction.
const SEQUENCE_SOURCES: &[&str] = &[
    "01234567890",
    "1234567890-=",
    "!@#$%^&*()_+",
    "!\"№;%:?*()_+",
    "qwertyuiop[]\\",
    "asdfghjkl;'",
    "zxcvbnm,./",
    "йцукенгшщзхъ",
    "фывапролджэ",
    "ячсмитьбю.",
    "abcdefghijklmnopqrstuvwxyz",
    "абвгдежзийклмнопрстуфхцчшщъыьэюя",
    "1qaz",
    "2wsx",
    "3edc",
    "4rfv",
    "5tgb",
    "6yhn",
    "7ujm",
    "8ik,",
    "9ol.",
    "0p;/",
    "1йфя",
    "2цыч",
    "3увс",
    "4кам",
    "5епи",
    "6нрт",
    "7гоь",
    "8шлб",
    "9щдю",
    "0зж.",
];

/// Every four-character run of the sources, forwards and backwards, for O(1) lookups.
static SEQUENCE_RUNS: LazyLock<HashSet<[char; SEQUENCE_RUN]>> = LazyLock::new(|| {
    let mut runs = HashSet::new();
    for source in SEQUENCE_SOURCES {
        let forwards: Vec<char> = normalise(source).chars().collect();
        let backwards: Vec<char> = forwards.iter().rev().copied().collect();
        for chars in [forwards, backwards] {
            for window in chars.windows(SEQUENCE_RUN) {
                if let Ok(run) = <[char; SEQUENCE_RUN]>::try_from(window) {
                    runs.insert(run);
                }
            }
        }
    }
    runs
});

fn has_sequence(lowered: &str) -> bool {
    let chars: Vec<char> = lowered.chars().collect();
    chars.windows(SEQUENCE_RUN).any(|window| <[char; SEQUENCE_RUN]>::try_from(window).is_ok_and(|run| SEQUENCE_RUNS.contains(&run)))
}

// ---- common ---------------------------------------------------------------------------

/// The shipped list (see `shared/data/README.md` for its source and licence).
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("../../data/common-passwords.txt").lines().map(str::trim).filter(|line| !line.is_empty()).collect());

/// The password itself, or its core once the digits and symbols people bolt onto a common
/// word to satisfy the other rules (`Password1!`, `!Qwerty123`) are stripped.
fn is_common(lowered: &str) -> bool {
    let without_symbols = lowered.trim_matches(|c: char| !c.is_alphanumeric());
    let without_digits_or_symbols = lowered.trim_matches(|c: char| !c.is_alphabetic());
    [lowered, without_symbols, without_digits_or_symbols].iter().any(|candidate| COMMON_PASSWORDS.contains(candidate))
}

// ---- personal data --------------------------------------------------------------------

/// Separators people put inside phone numbers and dates.
const SEPARATORS: &[char] = &[' ', '-', '(', ')', '.', '/', '_', '+'];

fn contains_personal_data(lowered: &str, personal: &PersonalData) -> bool {
    let compact: String = lowered.chars().filter(|c| !SEPARATORS.contains(c)).collect();
    personal_needles(personal).iter().any(|needle| lowered.contains(needle.as_str()) || compact.contains(needle.as_str()))
}

/// Every fragment of the citizen's data that a password must not contain, normalised.
fn personal_needles(personal: &PersonalData) -> Vec<String> {
    let mut needles = Vec::new();
    if let Some(phone) = &personal.phone_digits {
        let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
        if digits.len() >= PHONE_TAIL_DIGITS {
            // The full national number contains this tail, so the tail alone covers both.
            needles.push(digits[digits.len() - PHONE_TAIL_DIGITS..].iter().collect());
        }
    }
    if let Some(local) = &personal.email_local_part {
        let local = normalise(local);
        needles.extend(words(&local, &['.', '_', '-', '+']));
        needles.push(local);
    }
    for name in [&personal.first_name, &personal.last_name, &personal.middle_name].into_iter().flatten() {
        let name = normalise(name.trim());
        for word in words(&name, &[' ', '-']).into_iter().chain([name.clone()]) {
            needles.extend(transliterations(&word));
            needles.push(word);
        }
    }
    if let Some(date) = personal.birth_date {
        needles.extend(["%d%m%Y", "%Y%m%d", "%d%m%y", "%Y-%m-%d", "%d.%m.%Y"].iter().map(|format| date.format(format).to_string()));
    }
    needles.retain(|needle| needle.chars().count() >= MIN_PERSONAL_CHARS);
    needles
}

fn words(s: &str, separators: &[char]) -> Vec<String> {
    s.split(separators).filter(|word| !word.is_empty()).map(str::to_owned).collect()
}

/// Latin spellings of a Cyrillic name: the passport (ICAO 9303) one and the popular one.
fn transliterations(word: &str) -> Vec<String> {
    if !word.chars().any(|c| ('а'..='я').contains(&c)) {
        return Vec::new();
    }
    let icao: String = word.chars().map(|c| latin(c, false)).collect();
    let popular: String = word.chars().map(|c| latin(c, true)).collect();
    if icao == popular { vec![icao] } else { vec![icao, popular] }
}

/// ICAO 9303 Latin for `а`..=`я` in alphabet order (`ё` is folded into `е` before this).
const ICAO_LATIN: [&str; 32] = [
    "a", "b", "v", "g", "d", "e", "zh", "z", "i", "i", "k", "l", "m", "n", "o", "p", "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "ie", "y", "",
    "e", "iu", "ia",
];

fn latin(c: char, popular: bool) -> &'static str {
    match (c, popular) {
        ('й', true) => "y",
        ('ъ', true) => "",
        ('ю', true) => "yu",
        ('я', true) => "ya",
        _ => ICAO_LATIN.get(u32::from(c).wrapping_sub(u32::from('а')) as usize).copied().unwrap_or(""),
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

impl fmt::Debug for PersonalData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersonalData").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STRONG: &str = "Tr0ub4dor&3x";

    fn nobody() -> PersonalData {
        PersonalData::default()
    }

    fn ivan() -> PersonalData {
        PersonalData {
            first_name: Some("Семён".into()),
            last_name: Some("Иванов".into()),
            middle_name: Some("Петрович".into()),
            birth_date: NaiveDate::from_ymd_opt(1990, 6, 15),
            ..nobody()
        }
        .with_phone(&Phone::parse("+7 916 555-29-71").expect("valid phone"))
        .with_email(&Email::parse("s.ivanov.work@example.ru").expect("valid email"))
    }

    fn rules(raw: &str, personal: &PersonalData) -> Vec<PasswordRule> {
        Password::parse(raw, personal).err().unwrap_or_default()
    }

    #[test]
    fn strong_password_is_accepted_and_exposed_unchanged() {
        let password = Password::parse(STRONG, &ivan()).unwrap();
        assert_eq!(password.expose(), STRONG);
    }

    #[test]
    fn cyrillic_letters_count_as_upper_and_lower_case() {
        assert_eq!(rules("Жёлтый-Кот7", &nobody()), []);
        assert_eq!(rules("жёлтый-кот7", &nobody()), [PasswordRule::MissingUpper]);
        assert_eq!(rules("ЖЁЛТЫЙ-КОТ7", &nobody()), [PasswordRule::MissingLower]);
    }

    #[test]
    fn every_broken_rule_is_reported_not_just_the_first() {
        assert_eq!(
            rules("", &nobody()),
            [PasswordRule::TooShort, PasswordRule::MissingUpper, PasswordRule::MissingLower, PasswordRule::MissingDigit, PasswordRule::MissingSpecial,]
        );
        assert_eq!(rules("password", &nobody()), [PasswordRule::MissingUpper, PasswordRule::MissingDigit, PasswordRule::MissingSpecial, PasswordRule::Common,]);
    }

    #[test]
    fn seven_characters_are_too_short_and_eight_are_enough() {
        assert_eq!(rules("Gx7!kPz", &nobody()), [PasswordRule::TooShort]);
        assert_eq!(rules("Gx7!kPzm", &nobody()), []);
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert_eq!(rules("Жх7!кПзм", &nobody()), []);
        assert_eq!(rules("Жх7!кПз", &nobody()), [PasswordRule::TooShort]);
    }

    #[test]
    fn more_than_128_characters_is_too_long() {
        let fits = format!("Gx7!{}", "kPzm".repeat(31));
        assert_eq!(fits.chars().count(), 128);
        assert_eq!(rules(&fits, &nobody()), []);
        let over = format!("{fits}q");
        assert_eq!(rules(&over, &nobody()), [PasswordRule::TooLong]);
    }

    #[test]
    fn each_character_class_is_required() {
        assert_eq!(rules("gx7!kpzm", &nobody()), [PasswordRule::MissingUpper]);
        assert_eq!(rules("GX7!KPZM", &nobody()), [PasswordRule::MissingLower]);
        assert_eq!(rules("Gxq!kPzm", &nobody()), [PasswordRule::MissingDigit]);
        assert_eq!(rules("Gx7mkPzm", &nobody()), [PasswordRule::MissingSpecial]);
    }

    #[test]
    fn whitespace_is_not_a_special_character() {
        assert_eq!(rules("Gx7 kPzm", &nobody()), [PasswordRule::MissingSpecial]);
    }

    #[test]
    fn keyboard_digit_and_alphabet_runs_of_four_are_sequences_in_both_directions() {
        for run in [
            "qwer", "REWQ", "asdf", "zxcv", "1234", "4321", "7890", "0987", "0123", "йцук", "КУЦЙ", "фыва", "ячсм", "abcd", "DCBA", "абвг", "гвба", "!@#$",
            "1qaz", "zaq1",
        ] {
            let raw = format!("Gx7!{run}Pz");
            assert!(rules(&raw, &nobody()).contains(&PasswordRule::Sequence), "{run:?} not caught");
        }
    }

    #[test]
    fn runs_of_three_or_broken_runs_are_not_sequences() {
        for raw in ["Gx7!qweMz9", "Gx7!123Pzx", "Gx7!qwrtPz", "Gx7!1245Pz", "Gx7!abdePz"] {
            assert_eq!(rules(raw, &nobody()), [], "{raw:?}");
        }
    }

    #[test]
    fn common_passwords_are_rejected_ignoring_case_and_bolted_on_symbols() {
        assert!(rules("PaSsWoRd", &nobody()).contains(&PasswordRule::Common));
        assert!(rules("Password1!", &nobody()).contains(&PasswordRule::Common));
        assert!(rules("!Dragon2024", &nobody()).contains(&PasswordRule::Common));
        assert!(rules("Qwerty123!", &nobody()).contains(&PasswordRule::Common));
        assert!(!rules(STRONG, &nobody()).contains(&PasswordRule::Common));
    }

    #[test]
    fn common_list_is_big_lower_case_and_has_the_classics() {
        assert!(COMMON_PASSWORDS.len() >= 10_000, "{}", COMMON_PASSWORDS.len());
        assert!(COMMON_PASSWORDS.contains("password"));
        assert!(COMMON_PASSWORDS.contains("qwerty123"));
        assert!(COMMON_PASSWORDS.iter().all(|p| *p == p.to_lowercase()));
    }

    #[test]
    fn phone_tail_or_national_number_is_personal_data() {
        for raw in ["Gx!5552971k", "Gx!9165552971k", "Gx!555-29-71k", "Gx!+79165552971k"] {
            assert_eq!(rules(raw, &ivan()), [PasswordRule::PersonalData], "{raw:?}");
        }
        assert_eq!(rules("Gx!552971kQ", &ivan()), []);
    }

    #[test]
    fn email_local_part_words_names_in_either_spelling_and_birth_dates_are_personal_data() {
        let email_parts = ["S.Ivanov.Work9!", "Gx7!Work#Pz", "Gx7!wOrKpz"];
        let names = ["Иванов#2024x", "ПЕТРОВИЧ#7z", "Семен#2024x", "Ivanov#2024x", "Gx7!Semen!", "Gx7!Petrovich"];
        let birth_dates = ["15061990", "19900615", "150690", "1990-06-15", "15.06.1990", "15/06/1990"].map(|date| format!("Gx!{date}k"));
        for raw in email_parts.into_iter().chain(names).chain(birth_dates.iter().map(String::as_str)) {
            assert!(rules(raw, &ivan()).contains(&PasswordRule::PersonalData), "{raw:?}");
        }
    }

    #[test]
    fn email_local_parts_and_names_shorter_than_three_characters_are_ignored() {
        let short_email = PersonalData { email_local_part: Some("ab".into()), ..nobody() };
        assert_eq!(rules("Gx7!abPzm", &short_email), []);
        let short_name = PersonalData { first_name: Some("Ли".into()), ..nobody() };
        assert_eq!(rules("Gx7!ЛиPzm", &short_name), []);
    }

    #[test]
    fn transliteration_follows_icao_9303_and_the_popular_spelling() {
        assert_eq!(
            transliterations("абвгдежзийклмнопрстуфхцчшщъыьэюя"),
            ["abvgdezhziiklmnoprstufkhtschshshchieyeiuia", "abvgdezhziyklmnoprstufkhtschshshchyeyuya"]
        );
        assert_eq!(transliterations("ёж"), ["zh"]);
        assert_eq!(transliterations("ivan"), Vec::<String>::new());
    }

    #[test]
    fn rule_codes_are_the_binding_snake_case_strings() {
        let codes: Vec<&str> = [
            PasswordRule::TooShort,
            PasswordRule::TooLong,
            PasswordRule::MissingUpper,
            PasswordRule::MissingLower,
            PasswordRule::MissingDigit,
            PasswordRule::MissingSpecial,
            PasswordRule::Sequence,
            PasswordRule::Common,
            PasswordRule::PersonalData,
            PasswordRule::Reused,
        ]
        .iter()
        .map(PasswordRule::code)
        .collect();
        assert_eq!(
            codes,
            ["too_short", "too_long", "missing_upper", "missing_lower", "missing_digit", "missing_special", "sequence", "common", "personal_data", "reused"]
        );
        assert_eq!(serde_json::to_string(&PasswordRule::PersonalData).unwrap(), "\"personal_data\"");
    }

    #[test]
    fn field_error_names_the_request_field_and_the_rule() {
        let error = PasswordRule::MissingDigit.field_error("new_password");
        assert_eq!(error.field, "new_password");
        assert_eq!(error.code, "missing_digit");
        assert!(error.message.contains("цифру"));
    }

    #[test]
    fn debug_never_shows_the_password_or_the_personal_data() {
        let password = Password::parse(STRONG, &nobody()).unwrap();
        assert_eq!(format!("{password:?}"), "Password(***)");
        let personal = format!("{:?}", ivan());
        assert!(!personal.contains("Иванов") && !personal.contains("5552971"));
    }

    proptest! {
        #[test]
        fn lower_casing_any_password_reports_missing_upper(raw in "[A-ZА-Я]{1,4}[a-zа-я0-9!#]{4,12}") {
            prop_assert!(rules(&raw.to_lowercase(), &nobody()).contains(&PasswordRule::MissingUpper));
        }

        #[test]
        fn the_phone_tail_anywhere_in_a_password_is_personal_data(
            prefix in "\\PC{0,10}",
            suffix in "\\PC{0,10}",
        ) {
            let raw = format!("{prefix}5552971{suffix}");
            prop_assert!(rules(&raw, &ivan()).contains(&PasswordRule::PersonalData));
        }

        #[test]
        fn parse_never_panics_and_an_accepted_password_breaks_no_rule(raw in "\\PC{0,40}") {
            if let Ok(password) = Password::parse(&raw, &ivan()) {
                prop_assert_eq!(password.expose(), raw.as_str());
                prop_assert!(raw.chars().count() >= MIN_CHARS);
            }
        }

        #[test]
        fn any_password_containing_a_four_digit_run_is_a_sequence(start in 0u32..7, reversed in any::<bool>()) {
            let mut run: Vec<char> = (start..start + 4).filter_map(|d| char::from_digit(d, 10)).collect();
            if reversed {
                run.reverse();
            }
            let raw = format!("Gx!{}kP", run.iter().collect::<String>());
            prop_assert!(rules(&raw, &nobody()).contains(&PasswordRule::Sequence));
        }
    }
}
