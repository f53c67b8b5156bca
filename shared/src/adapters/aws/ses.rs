//! Email through Amazon SES v2 `SendEmail` with simple content: a UTF-8 subject and text body.
//! Failures are classified like SMS (see `sns::classify`) and never quote the address.

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

use super::sns::classify;
use crate::ports::senders::{EmailSender, SendError};

/// SES error codes worth retrying besides 5xx and 429: quotas and account or configuration
/// states that operators resolve (a paused account, an unverified MAIL FROM domain, a missing
/// configuration set).
const SES_TEMPORARY_CODES: &[&str] = &[
    "TooManyRequestsException",
    "LimitExceededException",
    "SendingPausedException",
    "AccountSuspendedException",
    "MailFromDomainNotVerifiedException",
    "NotFoundException",
];

/// Sends email with SES v2 from a verified identity.
#[derive(Clone, Debug)]
pub struct SesEmail {
    client: Client,
    from: String,
    configuration_set: Option<String>,
}

impl SesEmail {
    pub fn new(client: Client, from: impl Into<String>, configuration_set: Option<String>) -> Self {
        Self { client, from: from.into(), configuration_set }
    }
}

#[async_trait]
impl EmailSender for SesEmail {
    async fn send_email(&self, to: &crate::domain::Email, subject: &str, text_body: &str) -> Result<(), SendError> {
        let message = Message::builder().subject(utf8(subject)?).body(Body::builder().text(utf8(text_body)?).build()).build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(to.as_str()).build())
            .content(EmailContent::builder().simple(message).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("ses send email", e, SES_TEMPORARY_CODES))
    }
}

fn utf8(text: &str) -> Result<Content, SendError> {
    Content::builder().data(text).charset("UTF-8").build().map_err(|e| SendError::Permanent(format!("ses content: {e}")))
}
