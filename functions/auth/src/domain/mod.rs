//! The auth function's decisions, apart from HTTP and storage: plain functions over the
//! account and the flow, each family with one error enum (mapped to problem+json once, in
//! `crate::errors`). Handlers parse, call these, persist and answer.

pub mod account;
pub mod factors;
pub mod flow;
pub mod login;

pub use factors::MfaError;
pub use flow::FlowError;
pub use login::LoginError;
