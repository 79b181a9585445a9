//! SMD's component locks and reservations JSON (`/hsm/v2/locks`), field for field as upstream's
//! Go structs (OpenCHAMI/smd `pkg/sm/complocks.go`) emit them: every list always present (`[]`,
//! never `null`), `ReservationKey`, `CreationTime` and `ExpirationTime` only when set.

use serde::{Deserialize, Serialize};

/// One key of a request: the component it is for and the key (`<xname>:rk:<uuid>` or
/// `<xname>:dk:<uuid>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockKey {
    #[serde(rename = "ID", alias = "id", default)]
    pub id: String,
    #[serde(rename = "Key", alias = "key", default)]
    pub key: String,
}

/// A stored reservation, and a successful create or check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "DeputyKey")]
    pub deputy_key: String,
    #[serde(
        rename = "ReservationKey",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub reservation_key: String,
    #[serde(
        rename = "CreationTime",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub creation_time: String,
    #[serde(
        rename = "ExpirationTime",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub expiration_time: String,
}

/// A component an operation could not act on, and why (`NotFound`, `Locked`, `Unlocked`,
/// `Disabled`, `Reserved`, `ServerError`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockFailure {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Reason")]
    pub reason: String,
}

/// What the reservation-creating and check routes answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationResult {
    #[serde(rename = "Success")]
    pub success: Vec<Reservation>,
    #[serde(rename = "Failure")]
    pub failure: Vec<LockFailure>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockCounts {
    #[serde(rename = "Total")]
    pub total: usize,
    #[serde(rename = "Success")]
    pub success: usize,
    #[serde(rename = "Failure")]
    pub failure: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedIds {
    #[serde(rename = "ComponentIDs")]
    pub component_ids: Vec<String>,
}

/// What lock, unlock, disable, repair, remove, release and renew answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockUpdateResult {
    #[serde(rename = "Counts")]
    pub counts: LockCounts,
    #[serde(rename = "Success")]
    pub success: LockedIds,
    #[serde(rename = "Failure")]
    pub failure: Vec<LockFailure>,
}

impl LockUpdateResult {
    pub fn new(success: Vec<String>, failure: Vec<LockFailure>) -> Self {
        LockUpdateResult {
            counts: LockCounts {
                total: success.len() + failure.len(),
                success: success.len(),
                failure: failure.len(),
            },
            success: LockedIds {
                component_ids: success,
            },
            failure,
        }
    }
}

/// One component's lock status. (SMD's spec calls the creation time `CreatedTime`; its code,
/// which clients see, sends `CreationTime`.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockStatus {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Locked")]
    pub locked: bool,
    #[serde(rename = "Reserved")]
    pub reserved: bool,
    #[serde(
        rename = "CreationTime",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub creation_time: String,
    #[serde(
        rename = "ExpirationTime",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub expiration_time: String,
    #[serde(rename = "ReservationDisabled")]
    pub reservation_disabled: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockStatusArray {
    #[serde(rename = "Components")]
    pub components: Vec<LockStatus>,
    #[serde(rename = "NotFound", default, skip_serializing_if = "Vec::is_empty")]
    pub not_found: Vec<String>,
}
