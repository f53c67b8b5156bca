//! Outbound SMS and email. Adapters never log the destination or the text.

use async_trait::async_trait;

use crate::domain::{Email, Phone};

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth retrying later (throttling, network).
    #[error("temporary send failure: {0}")]
    Temporary(String),
    /// Retrying will not help (invalid destination, rejected content).
    #[error("permanent send failure: {0}")]
    Permanent(String),
}

#[async_trait]
pub trait SmsSender: Send + Sync {
    async fn send_sms(&self, to: &Phone, text: &str) -> Result<(), SendError>;
}

#[async_trait]
pub trait EmailSender: Send + Sync {
    async fn send_email(&self, to: &Email, subject: &str, text_body: &str) -> Result<(), SendError>;
}
