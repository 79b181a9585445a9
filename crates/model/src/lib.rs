//! Skyport's pure domain model: xnames, MAC addresses and the HMS enums shared by every service.
//! Nothing here does I/O, so everything here can be property-tested in isolation.

pub mod enums;
pub mod mac;
pub mod xname;

pub use enums::{Arch, Class, EnumError, Flag, HmsType, NetType, Role, State, SubRole};
pub use mac::{Mac, MacError};
pub use xname::{Xname, XnameError};
