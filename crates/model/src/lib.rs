//! Skyport's pure domain model: xnames, MAC addresses and the HMS enums shared by every service.
//! Nothing here does I/O (apart from reading the wall clock in [`clock::now`]), so everything
//! here can be property-tested in isolation.

pub mod backoff;
pub mod clock;
pub mod enums;
pub mod mac;
pub mod xname;

pub use backoff::Backoff;
pub use clock::now;
pub use enums::{Arch, Class, EnumError, Flag, HmsType, NetType, Role, State, SubRole};
pub use mac::{Mac, MacError};
pub use xname::{Xname, XnameError};
