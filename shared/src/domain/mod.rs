//! Domain types that parse: once you hold one, it is valid.
//!
//! Every type here has `parse` as its only constructor, a `Debug` that masks personal data,
//! and an error type that turns into a [`FieldError`] for problem+json `errors[]`.

pub mod application;
pub mod email;
pub mod inn;
pub mod limited;
mod newtype;
pub mod passport;
pub mod password;
pub mod phone;
pub mod snils;
pub mod text;

pub use email::{Email, EmailError};
pub use inn::{Inn, InnError};
pub use limited::{Limited, LoginText, NewPasswordText, PasswordText, Token};
pub use passport::{Passport, PassportError, PassportInput};
pub use password::{Password, PasswordRule, PersonalData};
pub use phone::{Phone, PhoneError};
pub use snils::{Snils, SnilsError};
pub use text::{Text, TextError, TextRule};

use serde::{Deserialize, Serialize};

/// One broken rule on one input field, as the HTTP layer reports it in problem+json `errors[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Path of the field in the request body, e.g. `phone` or `passport.series`.
    pub field: String,
    /// Stable `snake_case` code, e.g. `invalid_format` or `missing_upper`.
    pub code: String,
    /// Citizen-facing explanation in Russian.
    pub message: String,
}

/// Every broken rule of one request, in the order the fields were checked.
pub type FieldErrors = Vec<FieldError>;

impl FieldError {
    pub fn new(field: impl Into<String>, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), code: code.into(), message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_error_serializes_to_the_problem_json_shape() {
        let error = Phone::parse("").unwrap_err().field_error("phone");
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "field": "phone",
                "code": "required",
                "message": "Укажите номер телефона",
            })
        );
    }
}
