//! Redfish discovery of one BMC: a bounded client ([`client`]) with a memory account
//! ([`budget`]) and a parser that keeps only the fields the crawl reads ([`fields`]), the trust
//! policy for BMC certificates ([`tls`]), lenient field access ([`res`]), the walk ([`crawl`])
//! into a cleaned [`model::BmcInventory`], vendor quirks ([`vendor`]), and the SMD
//! `SchemaVersion: 1` payload Magellan sends ([`payload`]).

pub mod budget;
pub mod client;
pub mod crawl;
pub mod fields;
pub mod model;
pub mod payload;
pub mod power;
pub mod res;
pub mod tls;
pub mod vendor;

pub use budget::{Exhausted, MemoryBudget, Scope};
pub use client::{AuthMode, BmcClient, Credentials, FetchError, Limits};
pub use crawl::{CrawlError, CrawlOptions, crawl};
pub use model::BmcInventory;
pub use tls::{PinStore, TlsPolicy};
