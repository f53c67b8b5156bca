//! The application lifecycle lives in the shared vocabulary (`shared::domain::application`):
//! every crate and event names statuses with the same type.

pub use shared::domain::application::{ActorKind, ApplicationStatus, can_transition};
