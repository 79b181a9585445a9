//! Skyport's pure domain model: xnames, MAC addresses and the HMS enums shared by every service.
//! Nothing here does I/O (apart from reading the wall clock in [`clock::now`]), so everything
//! here can be property-tested in isolation.

/// Serde for a type that is its text: serialized with `Display`, deserialized with `FromStr`
/// (so a bad value fails deserialization with the parser's own message).
macro_rules! serde_as_text {
    ($name:ty) => {
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub mod backoff;
pub mod clock;
pub mod enums;
pub mod mac;
pub mod power;
pub mod uuid;
pub mod xname;

pub use backoff::Backoff;
pub use clock::{now, now_ms};
pub use enums::{Arch, Class, EnumError, Flag, HmsType, NetType, Role, State, SubRole};
pub use mac::{Mac, MacError};
pub use uuid::random_uuid;
pub use xname::{Xname, XnameError};
