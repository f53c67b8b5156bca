//! Embedded adapters for the local runner: everything lives under one data directory,
//! with one redb file shared by the key-value store and the durable queues.

pub mod kv;
pub mod objects;
pub mod outbox;
pub mod queue;

pub use kv::RedbKv;

use std::path::Path;
use std::sync::Arc;

/// Opens (or creates) the redb database that backs the embedded key-value store and queues.
/// A redb file may be opened once per process: open it here and share the `Arc`.
pub fn open_database(path: &Path) -> Result<Arc<redb::Database>, redb::DatabaseError> {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    redb::Database::create(path).map(Arc::new)
}
