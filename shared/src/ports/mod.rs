//! Ports: the only way domain code reaches storage, queues and senders.
//! Each port has an embedded adapter (local runner) and an AWS adapter in `crate::adapters`.

pub mod clock;
pub mod kv;
pub mod objects;
pub mod queue;
pub mod senders;

pub use clock::{Clock, Ids, ManualClock, SequentialIds, SystemClock, Ticker, UlidIds};
pub use kv::{Condition, Item, KeyValue, KvError, Page, Query, TxOp};
pub use objects::{ObjectMeta, ObjectStore, ObjectStoreError, PresignedRequest};
pub use queue::{Queue, QueueError, ReceivedMessage};
pub use senders::{EmailSender, SendError, SmsSender};
