//! Паспорт гражданина РФ: series, number, issue date, issuer and division code.

use std::fmt;

use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::newtype::non_blank;
use super::{FieldError, FieldErrors};

/// A passport whose every field has been checked; `Debug` is masked.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Passport {
    series: String,
    number: String,
    issued_at: NaiveDate,
    issued_by: String,
    division_code: String,
}

/// The passport as a client sends it (`PUT /v1/me/profile` → `passport`), not yet checked.
/// Missing fields deserialize as empty so that each is reported as its own field error.
#[derive(Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
#[schema(as = Passport)]
pub struct PassportInput {
    /// Four digits.
    #[schema(example = "4510", max_length = 16)]
    pub series: String,
    /// Six digits.
    #[schema(example = "123456", max_length = 16)]
    pub number: String,
    /// `YYYY-MM-DD`, not in the future.
    #[schema(example = "2010-05-20", max_length = 16)]
    pub issued_at: String,
    #[schema(example = "ОВД района Арбат г. Москвы", max_length = 200)]
    pub issued_by: String,
    /// `XXX-XXX` (six bare digits are accepted too).
    #[schema(example = "770-001", max_length = 16)]
    pub division_code: String,
}

/// One broken passport field; [`PassportError::field`] names it as `passport.<field>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PassportError {
    #[error("passport series is empty")]
    SeriesMissing,
    #[error("passport series must be 4 digits")]
    SeriesInvalid,
    #[error("passport number is empty")]
    NumberMissing,
    #[error("passport number must be 6 digits")]
    NumberInvalid,
    #[error("passport issue date is empty")]
    IssuedAtMissing,
    #[error("passport issue date must be a YYYY-MM-DD date")]
    IssuedAtInvalid,
    #[error("passport issue date is in the future")]
    IssuedAtInFuture,
    #[error("passport issuer is empty")]
    IssuedByMissing,
    #[error("passport issuer is longer than 200 characters")]
    IssuedByTooLong,
    #[error("passport issuer contains control characters")]
    IssuedByInvalid,
    #[error("passport division code is empty")]
    DivisionCodeMissing,
    #[error("passport division code must be XXX-XXX")]
    DivisionCodeInvalid,
}

const MAX_ISSUED_BY_CHARS: usize = 200;

impl Passport {
    /// Checks every field against today's UTC date and reports all broken ones. Used when
    /// stored data is read back (serde has no clock); input is checked with `parse_as_of`
    /// and the caller's clock.
    pub fn parse(input: &PassportInput) -> Result<Self, Vec<PassportError>> {
        Self::parse_as_of(input, Utc::now().date_naive())
    }

    /// Checks every field, with `today` as the latest acceptable issue date.
    pub fn parse_as_of(input: &PassportInput, today: NaiveDate) -> Result<Self, Vec<PassportError>> {
        let series = parse_series(&input.series);
        let number = parse_number(&input.number);
        let issued_at = parse_issued_at(&input.issued_at, today);
        let issued_by = parse_issued_by(&input.issued_by);
        let division_code = parse_division_code(&input.division_code);
        match (series, number, issued_at, issued_by, division_code) {
            (Ok(series), Ok(number), Ok(issued_at), Ok(issued_by), Ok(division_code)) => Ok(Self { series, number, issued_at, issued_by, division_code }),
            (series, number, issued_at, issued_by, division_code) => {
                Err([series.err(), number.err(), issued_at.err(), issued_by.err(), division_code.err()].into_iter().flatten().collect())
            }
        }
    }

    /// Four digits, e.g. `4506`.
    pub fn series(&self) -> &str {
        &self.series
    }

    /// Six digits.
    pub fn number(&self) -> &str {
        &self.number
    }

    pub fn issued_at(&self) -> NaiveDate {
        self.issued_at
    }

    pub fn issued_by(&self) -> &str {
        &self.issued_by
    }

    /// `XXX-XXX`.
    pub fn division_code(&self) -> &str {
        &self.division_code
    }

    /// Safe for logs and screens: `**** ****56`.
    pub fn masked(&self) -> String {
        format!("**** ****{}", &self.number[4..])
    }

    /// The unchecked form, e.g. to store or to send to the registry agency.
    pub fn to_input(&self) -> PassportInput {
        PassportInput {
            series: self.series.clone(),
            number: self.number.clone(),
            issued_at: self.issued_at.format("%Y-%m-%d").to_string(),
            issued_by: self.issued_by.clone(),
            division_code: self.division_code.clone(),
        }
    }
}

/// Four digits; a space between the two pairs (`45 06`) is how it is printed, so it is allowed.
fn parse_series(raw: &str) -> Result<String, PassportError> {
    let trimmed = non_blank(raw).ok_or(PassportError::SeriesMissing)?;
    let digits = match trimmed.split_once(' ') {
        Some((first, second)) if first.len() == 2 && second.len() == 2 => first.to_owned() + second,
        _ => trimmed.to_owned(),
    };
    if !is_digits(&digits, 4) {
        return Err(PassportError::SeriesInvalid);
    }
    Ok(digits)
}

fn parse_number(raw: &str) -> Result<String, PassportError> {
    let trimmed = non_blank(raw).ok_or(PassportError::NumberMissing)?;
    if !is_digits(trimmed, 6) {
        return Err(PassportError::NumberInvalid);
    }
    Ok(trimmed.to_owned())
}

fn parse_issued_at(raw: &str, today: NaiveDate) -> Result<NaiveDate, PassportError> {
    let trimmed = non_blank(raw).ok_or(PassportError::IssuedAtMissing)?;
    // chrono alone would also take `2020-1-5`; the API promises zero-padded dates.
    if trimmed.len() != 10 {
        return Err(PassportError::IssuedAtInvalid);
    }
    let date = NaiveDate::parse_from_str(trimmed, "%Y-%m-%d").map_err(|_| PassportError::IssuedAtInvalid)?;
    if date > today {
        return Err(PassportError::IssuedAtInFuture);
    }
    Ok(date)
}

fn parse_issued_by(raw: &str) -> Result<String, PassportError> {
    let trimmed = non_blank(raw).ok_or(PassportError::IssuedByMissing)?;
    if trimmed.chars().count() > MAX_ISSUED_BY_CHARS {
        return Err(PassportError::IssuedByTooLong);
    }
    // Control, zero-width and bidirectional characters would let the text read differently.
    if super::text::has_forbidden_characters(trimmed, false) {
        return Err(PassportError::IssuedByInvalid);
    }
    Ok(trimmed.to_owned())
}

/// `XXX-XXX`, or six bare digits which are normalised to it.
fn parse_division_code(raw: &str) -> Result<String, PassportError> {
    let trimmed = non_blank(raw).ok_or(PassportError::DivisionCodeMissing)?;
    let digits = match trimmed.split_once('-') {
        Some((first, second)) if first.len() == 3 && second.len() == 3 => first.to_owned() + second,
        Some(_) => return Err(PassportError::DivisionCodeInvalid),
        None => trimmed.to_owned(),
    };
    if !is_digits(&digits, 6) {
        return Err(PassportError::DivisionCodeInvalid);
    }
    Ok(format!("{}-{}", &digits[..3], &digits[3..]))
}

fn is_digits(s: &str, count: usize) -> bool {
    s.len() == count && s.bytes().all(|b| b.is_ascii_digit())
}

impl PassportError {
    /// The request path of the broken field, e.g. `passport.series`.
    pub fn field(&self) -> &'static str {
        match self {
            Self::SeriesMissing | Self::SeriesInvalid => "passport.series",
            Self::NumberMissing | Self::NumberInvalid => "passport.number",
            Self::IssuedAtMissing | Self::IssuedAtInvalid | Self::IssuedAtInFuture => "passport.issued_at",
            Self::IssuedByMissing | Self::IssuedByTooLong | Self::IssuedByInvalid => "passport.issued_by",
            Self::DivisionCodeMissing | Self::DivisionCodeInvalid => "passport.division_code",
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::SeriesMissing | Self::NumberMissing | Self::IssuedAtMissing | Self::IssuedByMissing | Self::DivisionCodeMissing => "required",
            Self::SeriesInvalid | Self::NumberInvalid | Self::IssuedAtInvalid | Self::IssuedByInvalid | Self::DivisionCodeInvalid => "invalid_format",
            Self::IssuedAtInFuture => "date_in_future",
            Self::IssuedByTooLong => "too_long",
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            Self::SeriesMissing => "Укажите серию паспорта",
            Self::SeriesInvalid => "Серия паспорта состоит из 4 цифр",
            Self::NumberMissing => "Укажите номер паспорта",
            Self::NumberInvalid => "Номер паспорта состоит из 6 цифр",
            Self::IssuedAtMissing => "Укажите дату выдачи паспорта",
            Self::IssuedAtInvalid => "Укажите дату выдачи паспорта в формате ГГГГ-ММ-ДД",
            Self::IssuedAtInFuture => "Дата выдачи паспорта не может быть в будущем",
            Self::IssuedByMissing => "Укажите, кем выдан паспорт",
            Self::IssuedByTooLong => "Поле «Кем выдан» должно быть не длиннее 200 символов",
            Self::IssuedByInvalid => "Поле «Кем выдан» содержит недопустимые символы",
            Self::DivisionCodeMissing => "Укажите код подразделения",
            Self::DivisionCodeInvalid => "Укажите код подразделения в формате XXX-XXX",
        }
    }

    /// Passport errors already know their field, so no name is passed in.
    pub fn field_error(&self) -> FieldError {
        FieldError::new(self.field(), self.code(), self.message())
    }

    /// All broken fields of one parse, ready for problem+json `errors[]`.
    pub fn field_errors(errors: &[PassportError]) -> FieldErrors {
        errors.iter().map(Self::field_error).collect()
    }
}

impl fmt::Debug for Passport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Passport({})", self.masked())
    }
}

impl fmt::Debug for PassportInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PassportInput").finish_non_exhaustive()
    }
}

impl Serialize for Passport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_input().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Passport {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let input = PassportInput::deserialize(deserializer)?;
        Self::parse(&input).map_err(|errors| {
            let codes: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.field(), e.code())).collect();
            serde::de::Error::custom(format!("invalid passport ({})", codes.join(", ")))
        })
    }
}

impl utoipa::PartialSchema for Passport {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        <PassportInput as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for Passport {
    fn name() -> std::borrow::Cow<'static, str> {
        "Passport".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 6, 15).expect("a real date")
    }

    fn valid_input() -> PassportInput {
        PassportInput {
            series: "45 06".into(),
            number: "123456".into(),
            issued_at: "2015-03-20".into(),
            issued_by: "  ОВД района Хамовники г. Москвы ".into(),
            division_code: "772-001".into(),
        }
    }

    #[test]
    fn valid_input_parses_into_normalised_fields() {
        let passport = Passport::parse_as_of(&valid_input(), today()).unwrap();
        assert_eq!(passport.series(), "4506");
        assert_eq!(passport.number(), "123456");
        assert_eq!(passport.issued_at(), NaiveDate::from_ymd_opt(2015, 3, 20).unwrap());
        assert_eq!(passport.issued_by(), "ОВД района Хамовники г. Москвы");
        assert_eq!(passport.division_code(), "772-001");
    }

    #[test]
    fn bare_division_code_is_normalised_to_the_dashed_form() {
        let input = PassportInput { division_code: "772001".into(), series: "4506".into(), ..valid_input() };
        let passport = Passport::parse_as_of(&input, today()).unwrap();
        assert_eq!(passport.division_code(), "772-001");
        assert_eq!(passport.series(), "4506");
    }

    #[test]
    fn empty_input_reports_every_field_as_required() {
        let errors = Passport::parse_as_of(&PassportInput::default(), today()).unwrap_err();
        assert_eq!(
            errors,
            vec![
                PassportError::SeriesMissing,
                PassportError::NumberMissing,
                PassportError::IssuedAtMissing,
                PassportError::IssuedByMissing,
                PassportError::DivisionCodeMissing,
            ]
        );
        assert!(errors.iter().all(|e| e.code() == "required"));
    }

    #[test]
    fn every_malformed_field_is_reported_at_once() {
        let input = PassportInput {
            series: "45O6".into(),
            number: "12345".into(),
            issued_at: "20.03.2015".into(),
            issued_by: "ОВД\nрайона".into(),
            division_code: "77-2001".into(),
        };
        let fields: Vec<&str> = Passport::parse_as_of(&input, today()).unwrap_err().iter().map(PassportError::field).collect();
        assert_eq!(fields, ["passport.series", "passport.number", "passport.issued_at", "passport.issued_by", "passport.division_code"]);
    }

    /// A field's setter, for tables of one-field changes to [`valid_input`].
    type Setter = fn(&mut PassportInput, String);

    fn with(set: Setter, value: &str) -> PassportInput {
        let mut input = valid_input();
        set(&mut input, value.to_owned());
        input
    }

    #[test]
    fn an_issue_date_of_today_and_an_issuer_of_200_characters_are_accepted() {
        let fits = [("issued today", with(|i, v| i.issued_at = v, "2025-06-15")), ("200 characters", with(|i, v| i.issued_by = v, &"Ж".repeat(200)))];
        for (case, input) in fits {
            assert!(Passport::parse_as_of(&input, today()).is_ok(), "{case}");
        }
    }

    #[test]
    fn one_broken_field_is_the_only_error_reported() {
        let too_long = "Ж".repeat(201);
        let rows: [(PassportError, Setter, &[&str]); 5] = [
            (PassportError::IssuedAtInFuture, |i, v| i.issued_at = v, &["2025-06-16"]),
            (PassportError::IssuedAtInvalid, |i, v| i.issued_at = v, &["2015-02-30", "2015-3-20", "2015-03-20T00:00:00Z", "вчера"]),
            (PassportError::IssuedByTooLong, |i, v| i.issued_by = v, &[&too_long]),
            // Control, zero-width and bidirectional characters would let the issuer read differently.
            (PassportError::IssuedByInvalid, |i, v| i.issued_by = v, &["ОВД\u{202e}вотаб", "ОВД\u{200b}Арбат", "ОВД\0Арбат"]),
            (PassportError::SeriesInvalid, |i, v| i.series = v, &["450 6", "4 506", "45  06", "45061"]),
        ];
        for (error, set, values) in rows {
            for value in values {
                assert_eq!(Passport::parse_as_of(&with(set, value), today()).unwrap_err(), vec![error], "{value:?}");
            }
        }
    }

    #[test]
    fn field_errors_carry_the_request_path() {
        let input = PassportInput { number: "12".into(), ..valid_input() };
        let errors = Passport::parse_as_of(&input, today()).unwrap_err();
        let field_errors = PassportError::field_errors(&errors);
        assert_eq!(field_errors.len(), 1);
        assert_eq!(field_errors[0].field, "passport.number");
        assert_eq!(field_errors[0].code, "invalid_format");
    }

    #[test]
    fn debug_hides_series_number_issuer_and_date() {
        let passport = Passport::parse_as_of(&valid_input(), today()).unwrap();
        let debug = format!("{passport:?}");
        assert_eq!(debug, "Passport(**** ****56)");
        let input_debug = format!("{:?}", valid_input());
        assert!(!input_debug.contains("123456") && !input_debug.contains("4506"));
    }

    #[test]
    fn serde_round_trips_and_deserialize_goes_through_parse() {
        let json = r#"{"series":"4506","number":"123456","issued_at":"2015-03-20",
            "issued_by":"ОВД","division_code":"772001"}"#;
        let passport: Passport = serde_json::from_str(json).unwrap();
        let back = serde_json::to_value(&passport).unwrap();
        assert_eq!(back["division_code"], "772-001");
        assert_eq!(back["issued_at"], "2015-03-20");
        assert_eq!(serde_json::from_value::<Passport>(back).unwrap(), passport);
        assert!(serde_json::from_str::<Passport>(r#"{"series":"45"}"#).is_err());
    }

    proptest! {
        #[test]
        fn any_past_date_and_well_formed_numbers_parse(
            series in "[0-9]{4}",
            number in "[0-9]{6}",
            division in "[0-9]{3}-[0-9]{3}",
            days_ago in 0i64..40_000,
        ) {
            let issued_at = today() - chrono::Duration::days(days_ago);
            let input = PassportInput {
                series: series.clone(),
                number: number.clone(),
                issued_at: issued_at.format("%Y-%m-%d").to_string(),
                issued_by: "МВД".into(),
                division_code: division.clone(),
            };
            let passport = Passport::parse_as_of(&input, today()).unwrap();
            prop_assert_eq!(passport.series(), series.as_str());
            prop_assert_eq!(passport.number(), number.as_str());
            prop_assert_eq!(passport.division_code(), division.as_str());
            prop_assert_eq!(passport.issued_at(), issued_at);
        }
    }
}
