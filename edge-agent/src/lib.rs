//! The Skyport site agent. Discovery: scan targets ([`targets`]), crawl BMCs with the
//! `skyport-redfish` client, name them from the site map ([`sitemap`]) with credentials from
//! the encrypted store ([`secrets`]), and queue each result in the durable [`outbox`] before
//! [`push`]ing it to the cloud inventory. [`discover`] runs one pass; [`config`] resolves the
//! agent's settings.

pub mod config;
pub mod discover;
pub mod outbox;
pub mod push;
pub mod secrets;
pub mod sitemap;
pub mod targets;
pub mod token;
