//! Everything the functions share: domain types that parse, ports (traits) with their
//! embedded and AWS adapters, the HTTP kit and the runtime switch (Lambda or plain HTTP).

pub mod adapters;
pub mod agencies;
pub mod clients;
pub mod config;
pub mod deliveries;
pub mod domain;
pub mod events;
pub mod http;
pub mod idempotency;
pub mod identity;
pub mod keys;
pub mod outbox;
// One-page PDF documents (issue 9, demo agencies; receipts later).
#[cfg(feature = "pdf")]
pub mod pdf;
pub mod persist;
pub mod ports;
pub mod records;
pub mod runtime;
pub mod settings;
pub mod vocabulary;
pub mod worker;
