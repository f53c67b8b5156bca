//! Everything the functions share: domain types that parse, ports (traits) with their
//! embedded and AWS adapters, the HTTP kit and the runtime switch (Lambda or plain HTTP).

pub mod adapters;
pub mod domain;
pub mod ports;
