//! HTTP handlers, one module per area of SPEC §4.

pub mod agency;
pub mod applications;
pub mod messages;
pub mod services;
pub mod webhooks;

mod common;
