//! Scaffolding the documents function's test files share: the function over the real embedded
//! adapters (redb and the file object store) in a temporary directory.

use std::sync::Arc;

use documents::{Api, DocumentsState, Settings};
use shared::adapters::embedded::objects::FileObjectStore;
use shared::adapters::embedded::{RedbKv, open_database, queue::RedbQueue};
use shared::keys::KeyRing;
use shared::outbox::Relay;
use shared::ports::{KeyValue, ObjectStore, Queue};

pub const OBJECTS_BASE: &str = "http://objects.test";

/// The embedded adapters, alive as long as this value.
pub struct Backend {
    pub kv: Arc<dyn KeyValue>,
    pub events: Arc<dyn Queue>,
    pub objects: Arc<FileObjectStore>,
    _dir: tempfile::TempDir,
}

impl Backend {
    pub async fn open() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = open_database(&dir.path().join("state.redb")).unwrap();
        let kv: Arc<dyn KeyValue> = Arc::new(RedbKv::new(db.clone()).unwrap());
        let events: Arc<dyn Queue> = Arc::new(RedbQueue::open(db, "events", 5).await.unwrap());
        let objects = Arc::new(FileObjectStore::new(dir.path(), OBJECTS_BASE, vec![7u8; 32]).unwrap());
        Self { kv, events, objects, _dir: dir }
    }

    /// The documents state over this backend, reaching the object store through `objects`.
    pub fn state(&self, objects: Arc<dyn ObjectStore>, settings: Settings) -> DocumentsState {
        DocumentsState::new(self.kv.clone(), objects, Relay::new(self.kv.clone(), self.events.clone()), settings)
    }
}

/// A fresh signing key ring for citizens' access tokens.
pub fn key_ring() -> Arc<KeyRing> {
    Arc::new(KeyRing::from_json(&KeyRing::generate_json().unwrap()).unwrap())
}

/// The HTTP API over `state`, trusting `keys` and the dev seed's agencies.
pub fn api(state: Arc<DocumentsState>, keys: &KeyRing) -> Api {
    Api::new(state, keys, Arc::new(shared::agencies::Registry::dev_seed().unwrap()))
}
