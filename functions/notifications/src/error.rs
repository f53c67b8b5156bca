//! Why a settings or inbox operation failed, mapped once to problem+json.

use axum::http::StatusCode;
use shared::http::ApiError;
use shared::persist::Contended;
use shared::ports::kv::KvError;

use crate::domain::preferences::SettingsError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The citizen's request was refused; nothing changed.
    #[error("refused: {0}")]
    Refused(#[from] SettingsError),
    /// Every attempt lost its race with another write.
    #[error(transparent)]
    Contended(#[from] Contended),
    /// The store failed or held something unreadable.
    #[error(transparent)]
    Kv(#[from] KvError),
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::Refused(SettingsError::Malformed(errors)) => ApiError::validation(errors),
            Error::Refused(SettingsError::MandatoryChannelOff(errors)) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "Уведомления о безопасности по SMS, электронной почте и в личном кабинете отключить нельзя",
            )
            .with_errors(errors),
            Error::Contended(contended) => contended.into(),
            Error::Kv(error) => error.into(),
        }
    }
}

pub(crate) use shared::persist::settle as settled;
