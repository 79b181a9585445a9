//! The Skyport site agent. Discovery: scan targets ([`targets`]), crawl BMCs with the
//! `skyport-redfish` client, name them from the site map ([`sitemap`]) with credentials from
//! the encrypted store ([`secrets`]), and queue each result in the durable [`outbox`] before
//! [`push`]ing it to the cloud inventory. [`discover`] runs one pass; [`config`] resolves the
//! agent's settings.
//!
//! Serving the site's nodes: [`sync`] keeps a [`replica`] of the cloud's boot data fresh,
//! [`cache`] holds the images it references ([`imageserve`] sends their bytes), [`serve`] answers boot scripts, images and
//! cloud-init from both (cloud up or not), and [`report`] sends back what only the edge sees.

pub mod cache;
pub mod cloud;
pub mod config;
pub mod discover;
pub mod imageserve;
pub mod metrics;
pub mod outbox;
pub mod push;
pub mod replica;
pub mod report;
pub mod secrets;
pub mod serve;
pub mod site;
pub mod sitemap;
pub mod sync;
pub mod targets;
pub mod token;
