//! SMD's state change notifications (`Subscriptions/SCN`), delivered durably.
//!
//! - [`subscriptions`]: the subscriptions, with SMD's serial IDs, texts and PATCH semantics.
//! - [`events`]: the store decorator [`Notifying`] that turns every change of a component's
//!   State, Enabled, SoftwareStatus or Role into a pending notification written in the *same*
//!   batch as the change: a change that is stored is notified, one that failed is not, whichever
//!   service or agent wrote it.
//! - [`delivery`]: POSTs each pending notification to the URLs of the subscriptions it matches,
//!   retrying with backoff until the subscriber takes it (any 2xx) or a day has passed; the
//!   local server runs it every second, the cloud on a schedule.
//!
//! | table | id | lookups | uniques |
//! |---|---|---|---|
//! | `ScnSubscriptions` | the serial ID | | `scn-url`: Subscriber + Url (SMD's `sub_url`) |
//! | `Counters` | `ScnSubscriptions` (the next ID) | | |
//! | `ScnEvents` | `<unix ms, 13 digits>-<uuid>`: oldest first | | |
//!
//! Deliberate differences from SMD, each fixing an upstream weakness: notifications survive a
//! restart and a subscriber's outage (SMD keeps them in memory and gives up after three tries
//! 5 s apart); any 2xx is success (SMD retries a 204); a notification names at most
//! [`events::MAX_COMPONENTS`] components (more are split); a subscription's `Url` must be an
//! http(s) URL; a body that is not JSON is a 400 (SMD answers 500).

pub mod delivery;
pub mod events;
pub mod subscriptions;

pub use delivery::{Delivery, DeliveryOptions, Round};
pub use events::Notifying;
