//! SMS through Amazon SNS `Publish` to a phone number, as transactional messages (OTP codes
//! and notifications must not be dropped as promotional). Nothing here logs or returns the
//! destination or the text: error details carry only the AWS error code and HTTP status.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::config::http::HttpResponse;
use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sns::types::MessageAttributeValue;

use crate::ports::senders::{SendError, SmsSender};

/// Sends SMS with SNS.
#[derive(Clone, Debug)]
pub struct SnsSms {
    client: Client,
    /// Alphanumeric sender id shown to the recipient where the country allows it.
    sender_id: Option<String>,
}

/// SNS error codes worth retrying besides 5xx and 429.
const SNS_TEMPORARY_CODES: &[&str] = &["Throttling", "ThrottledException", "KMSThrottlingException", "KMSDisabledException", "InternalError"];

impl SnsSms {
    pub fn new(client: Client, sender_id: Option<String>) -> Self {
        Self { client, sender_id }
    }
}

#[async_trait]
impl SmsSender for SnsSms {
    async fn send_sms(&self, to: &crate::domain::Phone, text: &str) -> Result<(), SendError> {
        let mut publish =
            self.client.publish().phone_number(to.as_str()).message(text).message_attributes("AWS.SNS.SMS.SMSType", string_attribute("Transactional")?);
        if let Some(sender_id) = &self.sender_id {
            publish = publish.message_attributes("AWS.SNS.SMS.SenderID", string_attribute(sender_id)?);
        }
        publish.send().await.map(|_| ()).map_err(|e| classify("sns publish", e, SNS_TEMPORARY_CODES))
    }
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, SendError> {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().map_err(|e| SendError::Permanent(format!("sns message attribute: {e}")))
}

/// Sorts an AWS failure into retry-later or give-up.
///
/// Temporary: network/timeouts, 5xx, 429, the service's throttling codes, and 401/403
/// (credentials or permissions are fixed by operators, after which a retry succeeds).
/// Permanent: other 4xx (validation, rejected content) and requests that could not be built.
/// The message names only the error code and status: AWS messages may quote the destination.
pub(crate) fn classify<E: ProvideErrorMetadata>(action: &str, error: SdkError<E, HttpResponse>, temporary_codes: &[&str]) -> SendError {
    match &error {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            let status = service.raw().status().as_u16();
            let detail = format!("{action}: {code} (HTTP {status})");
            if temporary_codes.contains(&code) || status >= 500 || matches!(status, 401 | 403 | 429) {
                SendError::Temporary(detail)
            } else {
                SendError::Permanent(detail)
            }
        }
        SdkError::ConstructionFailure(_) => SendError::Permanent(format!("{action}: request could not be built")),
        SdkError::TimeoutError(_) => SendError::Temporary(format!("{action}: timed out")),
        SdkError::DispatchFailure(_) => SendError::Temporary(format!("{action}: could not reach the service")),
        _ => SendError::Temporary(format!("{action}: unreadable response")),
    }
}
