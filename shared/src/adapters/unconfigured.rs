//! Stand-ins for ports a function was deployed without (e.g. the notifications API has no
//! bucket). They fail every call with a clear message instead of refusing to start, so each
//! function needs only the environment of the resources it really uses.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::ports::{ObjectMeta, ObjectStore, ObjectStoreError, PresignedRequest, Queue, QueueError, ReceivedMessage};

pub struct Unconfigured(pub &'static str);

impl Unconfigured {
    fn queue_error(&self) -> QueueError {
        QueueError::Backend(format!("{} is not set for this function", self.0))
    }
    fn object_error(&self) -> ObjectStoreError {
        ObjectStoreError::Backend(format!("{} is not set for this function", self.0))
    }
}

#[async_trait]
impl Queue for Unconfigured {
    async fn send(&self, _body: &str) -> Result<String, QueueError> {
        Err(self.queue_error())
    }
    async fn receive(&self, _max: usize, _visibility: Duration, _wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        Err(self.queue_error())
    }
    async fn ack(&self, _receipt: &str) -> Result<(), QueueError> {
        Err(self.queue_error())
    }
    async fn release(&self, _receipt: &str, _delay: Duration) -> Result<(), QueueError> {
        Err(self.queue_error())
    }
    async fn dead_letter_count(&self) -> Result<usize, QueueError> {
        Err(self.queue_error())
    }
    async fn peek_dead_letters(&self, _max: usize) -> Result<Vec<String>, QueueError> {
        Err(self.queue_error())
    }
}

#[async_trait]
impl ObjectStore for Unconfigured {
    async fn presign_put(&self, _key: &str, _content_type: &str, _content_length: u64, _expires_in: Duration) -> Result<PresignedRequest, ObjectStoreError> {
        Err(self.object_error())
    }
    async fn presign_get(&self, _key: &str, _expires_in: Duration, _download_name: Option<&str>) -> Result<PresignedRequest, ObjectStoreError> {
        Err(self.object_error())
    }
    async fn head(&self, _key: &str) -> Result<Option<ObjectMeta>, ObjectStoreError> {
        Err(self.object_error())
    }
    async fn read_range(&self, _key: &str, _offset: u64, _len: u64) -> Result<Bytes, ObjectStoreError> {
        Err(self.object_error())
    }
    async fn put(&self, _key: &str, _content_type: &str, _body: Bytes) -> Result<(), ObjectStoreError> {
        Err(self.object_error())
    }
    async fn delete(&self, _key: &str) -> Result<(), ObjectStoreError> {
        Err(self.object_error())
    }
}
