//! HTTP handlers, one module per area of SPEC §3.

pub mod login;
pub mod me;
pub mod mfa;
pub mod profile;
pub mod recovery;
pub mod registration;
pub mod sessions;
pub mod wellknown;

mod answers;
mod budget;
mod common;
mod schemas;
mod unknown;
