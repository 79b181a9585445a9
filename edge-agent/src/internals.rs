//! The agent's parts, for `skyport-bench` only (feature `internals`): benchmarks time each
//! part on its own (one discovery pass with options the config does not offer, one sync, one
//! prefetch), which the facade deliberately does not expose. Nothing else enables this feature.

pub use crate::cloud::CloudClient;
pub use crate::cloud::TokenSource;
pub use crate::cloud::push::{self, Pusher};
pub use crate::cloud::report::report_once;
pub use crate::cloud::sync::{Polled, Syncer};
pub use crate::discovery::outbox::Outbox;
pub use crate::discovery::sitemap::SiteMap;
pub use crate::discovery::{CredentialSource, DiscoverOptions, run as run_discovery, targets};
pub use crate::hardware::directory::{BmcEntry, Directory, NodeEntry};
pub use crate::hardware::exec::{Executor, Gate, TlsSource};
pub use crate::hardware::jobs::{JobsLoop, Journal};
pub use crate::metrics::Metrics;
pub use crate::node::cache::ImageCache;
pub use crate::node::replica::Replica;
pub use crate::node::serve::Site;
