//! The notification decisions, apart from storage, senders and HTTP: what a citizen's settings
//! allow ([`preferences`]) and who hears about an event through which channels ([`routing`]).

pub mod preferences;
pub mod routing;
