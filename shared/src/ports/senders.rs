//! Outbound SMS and email. Adapters never log the destination or the text.

use async_trait::async_trait;

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
    /// `to` is E.164 (`+7XXXXXXXXXX`).
    async fn send_sms(&self, to: &str, text: &str) -> Result<(), SendError>;
}

#[async_trait]
pub trait EmailSender: Send + Sync {
    async fn send_email(&self, to: &str, subject: &str, text_body: &str) -> Result<(), SendError>;
}
