//! Queue port on Amazon SQS: a standard queue whose redrive policy moves a message to the
//! dead-letter queue after `maxReceiveCount` receives (configured on the queue itself, by the
//! SAM template in production and by [`SqsQueue::create_with_dlq`] in tests).
//!
//! SQS counts visibility and long polling in whole seconds: durations round up, the wait is
//! capped at SQS's 20-second maximum and the visibility at 12 hours.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};

use crate::ports::queue::{Queue, QueueError, ReceivedMessage};

const MAX_WAIT_SECONDS: u64 = 20;
const MAX_VISIBILITY_SECONDS: u64 = 12 * 3600;

/// A queue and its dead-letter queue on SQS.
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
    dlq_url: String,
}

impl SqsQueue {
    /// Wraps an existing queue; `dlq_url` must be the target of its redrive policy.
    pub fn new(client: Client, queue_url: impl Into<String>, dlq_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into(), dlq_url: dlq_url.into() }
    }

    /// Creates (or reuses) `{name}-dlq` and `{name}` with a redrive policy of `max_receives`,
    /// for tests and local deploys; production queues come from the SAM template.
    pub async fn create_with_dlq(client: Client, name: &str, max_receives: u32) -> Result<Self, QueueError> {
        let dlq_url = client
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .map_err(|e| backend("create dead-letter queue", e))?
            .queue_url
            .ok_or_else(|| QueueError::Backend("create dead-letter queue: no queue URL".into()))?;
        let dlq_arn = client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| backend("read dead-letter queue ARN", e))?
            .attributes
            .and_then(|mut attributes| attributes.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| QueueError::Backend("read dead-letter queue ARN: missing".into()))?;
        let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives.to_string() });
        let queue_url = client
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .map_err(|e| backend("create queue", e))?
            .queue_url
            .ok_or_else(|| QueueError::Backend("create queue: no queue URL".into()))?;
        Ok(Self { client, queue_url, dlq_url })
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    pub fn dlq_url(&self) -> &str {
        &self.dlq_url
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, body: &str) -> Result<String, QueueError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| backend("send message", e))?
            .message_id
            .ok_or_else(|| QueueError::Backend("send message: no message id".into()))
    }

    async fn receive(&self, max: usize, visibility: Duration, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(batch_size(max))
            .visibility_timeout(whole_seconds(visibility, MAX_VISIBILITY_SECONDS))
            .wait_time_seconds(whole_seconds(wait, MAX_WAIT_SECONDS))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| backend("receive messages", e))?;
        output
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|message| {
                let receive_count = message
                    .attributes
                    .as_ref()
                    .and_then(|attributes| attributes.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|count| count.parse().ok())
                    .unwrap_or(1);
                match (message.message_id, message.receipt_handle) {
                    (Some(message_id), Some(receipt)) => Ok(ReceivedMessage { message_id, receipt, body: message.body.unwrap_or_default(), receive_count }),
                    _ => Err(QueueError::Backend("receive messages: message without id or receipt".into())),
                }
            })
            .collect()
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        self.client.delete_message().queue_url(&self.queue_url).receipt_handle(receipt).send().await.map(|_| ()).map_err(|e| backend("delete message", e))
    }

    async fn release(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(whole_seconds(delay, MAX_VISIBILITY_SECONDS))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| backend("change message visibility", e))
    }

    /// Visible plus in-flight messages on the DLQ (SQS reports both approximately).
    async fn dead_letter_count(&self) -> Result<usize, QueueError> {
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(&self.dlq_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| backend("read dead-letter queue attributes", e))?
            .attributes
            .unwrap_or_default();
        let count = |name: QueueAttributeName| attributes.get(&name).and_then(|value| value.parse::<usize>().ok()).unwrap_or(0);
        Ok(count(QueueAttributeName::ApproximateNumberOfMessages) + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
    }

    /// Receives from the DLQ with a zero visibility timeout, so nothing is hidden or deleted;
    /// the only trace is a higher receive count on the dead letters (the DLQ has no redrive).
    /// SQS samples its servers, so this is a best-effort look, not a complete listing.
    async fn peek_dead_letters(&self, max: usize) -> Result<Vec<String>, QueueError> {
        let mut seen = HashSet::new();
        let mut bodies = Vec::new();
        // Each receive may return messages already seen; stop when a round adds nothing new.
        while bodies.len() < max {
            let output = self
                .client
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages(batch_size(max - bodies.len()))
                .visibility_timeout(0)
                // Long polling asks every server, so an existing dead letter is not missed.
                .wait_time_seconds(1)
                .send()
                .await
                .map_err(|e| backend("peek dead-letter queue", e))?;
            let before = bodies.len();
            for message in output.messages.unwrap_or_default() {
                let id = message.message_id.unwrap_or_default();
                if seen.insert(id) && bodies.len() < max {
                    bodies.push(message.body.unwrap_or_default());
                }
            }
            if bodies.len() == before {
                break;
            }
        }
        Ok(bodies)
    }
}

fn batch_size(max: usize) -> i32 {
    i32::try_from(max.clamp(1, 10)).unwrap_or(10)
}

/// Rounds up to whole seconds (SQS's unit) and caps at `limit`.
fn whole_seconds(duration: Duration, limit: u64) -> i32 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i32::try_from(seconds.min(limit)).unwrap_or(i32::MAX)
}

fn backend<E: std::error::Error + 'static>(action: &str, error: E) -> QueueError {
    QueueError::Backend(format!("{action}: {}", DisplayErrorContext(error)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_up_to_whole_seconds_within_the_sqs_limits() {
        assert_eq!(whole_seconds(Duration::ZERO, MAX_WAIT_SECONDS), 0);
        assert_eq!(whole_seconds(Duration::from_millis(1), MAX_WAIT_SECONDS), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1500), MAX_WAIT_SECONDS), 2);
        assert_eq!(whole_seconds(Duration::from_secs(60), MAX_WAIT_SECONDS), 20);
        assert_eq!(whole_seconds(Duration::from_secs(30), MAX_VISIBILITY_SECONDS), 30);
    }

    #[test]
    fn batch_size_stays_within_one_to_ten() {
        assert_eq!(batch_size(0), 1);
        assert_eq!(batch_size(7), 7);
        assert_eq!(batch_size(50), 10);
    }
}
