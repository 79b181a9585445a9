//! Which fields the crawl reads from each kind of Redfish document, and a parser that keeps only
//! those. Everything else is skipped by the tokenizer (serde's `IgnoredAny`) without being built:
//! a `serde_json::Value` of small numbers is about thirty times its text, so a BMC could
//! otherwise turn a 4 MiB body into 120 MiB of tree. What is kept is charged to the crawl's
//! [`MemoryBudget`] as it is built, so a document whose *used* fields are huge fails on the budget
//! instead of growing without bound.
//!
//! The result is still a `Value` (holding only the listed fields), so the lenient readers in
//! [`crate::res`] apply unchanged, and they read the same thing from a pruned document as from
//! the whole one: a listed field whose value has the wrong kind is kept as `null` (present, but
//! nothing any reader accepts), and a list element of the wrong kind is dropped (every reader
//! skips those). The test `pruning_changes_nothing_the_readers_see` checks that.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::budget::{Exhausted, MemoryBudget};

/// The kind of value a field holds, as far as the crawl reads it.
#[derive(Debug)]
pub enum Shape {
    /// A string, number, boolean or null.
    Scalar,
    /// A string only (an element of a string list).
    Str,
    /// Only whether the field is there (`Oem.Hpe`): kept as `null`.
    Marker,
    /// A link: `{"@odata.id": …}` (nothing else kept) or a bare string.
    Link,
    /// A list of links, or a single link object.
    Links,
    /// An array whose elements have this shape.
    List(&'static Shape),
    /// An object with only these fields.
    Object(&'static [(&'static str, Shape)]),
}

use Shape::{Link, Links, List, Marker, Object, Scalar, Str};

const STRINGS: Shape = List(&Str);
const LINK_FIELDS: &[(&str, Shape)] = &[("@odata.id", Scalar)];
const RESET: &[(&str, Shape)] = &[
    ("ResetType@Redfish.AllowableValues", STRINGS),
    ("@Redfish.ActionInfo", Scalar),
    ("target", Scalar),
];
const STATUS: Shape = Object(&[
    ("State", Scalar),
    ("Health", Scalar),
    ("HealthRollup", Scalar),
]);
const CONNECT_TYPES: Shape = Object(&[("ConnectTypesSupported", STRINGS)]);
const ADDRESSES: Shape = List(&Object(&[("Address", Scalar)]));

/// `/redfish/v1`.
pub const ROOT: Shape = Object(&[
    ("RedfishVersion", Scalar),
    ("UUID", Scalar),
    ("Vendor", Scalar),
    ("Product", Scalar),
    ("Systems", Link),
    ("Managers", Link),
    ("Chassis", Link),
    ("SessionService", Link),
    ("AccountService", Link),
    ("EventService", Link),
    ("Tasks", Link),
    ("UpdateService", Link),
    ("Links", Object(&[("Sessions", Link)])),
    ("Oem", Object(&[("Hpe", Marker), ("OpenBmc", Marker)])),
]);

/// Any collection page.
pub const COLLECTION: Shape = Object(&[("Members", Links), ("Members@odata.nextLink", Scalar)]);

pub const MANAGER: Shape = Object(&[
    ("Id", Scalar),
    ("Name", Scalar),
    ("ManagerType", Scalar),
    ("Model", Scalar),
    ("FirmwareVersion", Scalar),
    ("UUID", Scalar),
    ("SerialConsole", CONNECT_TYPES),
    ("CommandShell", CONNECT_TYPES),
    ("Actions", Object(&[("#Manager.Reset", Object(RESET))])),
    ("EthernetInterfaces", Link),
    ("HostInterfaces", Link),
]);

pub const HOST_INTERFACE: Shape = Object(&[
    ("ManagerEthernetInterface", Link),
    ("HostEthernetInterfaces", Link),
]);

/// An EthernetInterface (of a manager or a system).
pub const NIC: Shape = Object(&[
    ("Id", Scalar),
    ("Name", Scalar),
    ("Description", Scalar),
    ("MACAddress", Scalar),
    ("PermanentMACAddress", Scalar),
    ("InterfaceEnabled", Scalar),
    ("IPv4Addresses", ADDRESSES),
    ("IPv4StaticAddresses", ADDRESSES),
    ("Status", Object(&[("State", Scalar)])),
]);

pub const SYSTEM: Shape = Object(&[
    ("Id", Scalar),
    ("Name", Scalar),
    ("UUID", Scalar),
    ("Manufacturer", Scalar),
    ("Model", Scalar),
    ("SerialNumber", Scalar),
    ("SKU", Scalar),
    ("SystemType", Scalar),
    ("PowerState", Scalar),
    ("BiosVersion", Scalar),
    (
        "ProcessorSummary",
        Object(&[("Count", Scalar), ("Model", Scalar)]),
    ),
    ("MemorySummary", Object(&[("TotalSystemMemoryGiB", Scalar)])),
    // Read only as "is it an object".
    ("SerialConsole", Object(&[])),
    (
        "Actions",
        Object(&[("#ComputerSystem.Reset", Object(RESET))]),
    ),
    ("Links", Object(&[("ManagedBy", Links), ("Chassis", Links)])),
    ("EthernetInterfaces", Link),
    ("NetworkInterfaces", Link),
    ("Boot", BOOT),
    ("Status", STATUS),
    ("Processors", Link),
    ("Memory", Link),
    ("Storage", Link),
]);

/// What hardware inventory keeps of a processor (CPU, GPU, FPGA).
pub const PROCESSOR: Shape = Object(&[
    ("Id", Scalar),
    ("Name", Scalar),
    ("Socket", Scalar),
    ("ProcessorType", Scalar),
    ("ProcessorArchitecture", Scalar),
    ("InstructionSet", Scalar),
    ("Manufacturer", Scalar),
    ("Model", Scalar),
    ("SerialNumber", Scalar),
    ("PartNumber", Scalar),
    ("MaxSpeedMHz", Scalar),
    ("TotalCores", Scalar),
    ("TotalThreads", Scalar),
    ("Version", Scalar),
    ("Status", STATUS),
]);

/// What hardware inventory keeps of a memory module.
pub const MEMORY: Shape = Object(&[
    ("Id", Scalar),
    ("Name", Scalar),
    ("DeviceLocator", Scalar),
    ("CapacityMiB", Scalar),
    ("MemoryType", Scalar),
    ("MemoryDeviceType", Scalar),
    ("BaseModuleType", Scalar),
    ("OperatingSpeedMhz", Scalar),
    ("ErrorCorrection", Scalar),
    ("Manufacturer", Scalar),
    ("PartNumber", Scalar),
    ("SerialNumber", Scalar),
    ("Status", STATUS),
]);

/// A storage subsystem: only where its drives are.
pub const STORAGE: Shape = Object(&[("Drives", Links)]);

/// What hardware inventory keeps of a drive.
pub const DRIVE: Shape = Object(&[
    ("Id", Scalar),
    ("Name", Scalar),
    ("Manufacturer", Scalar),
    ("Model", Scalar),
    ("SerialNumber", Scalar),
    ("PartNumber", Scalar),
    ("Revision", Scalar),
    ("CapacityBytes", Scalar),
    ("Protocol", Scalar),
    ("MediaType", Scalar),
    ("Status", STATUS),
]);

const POWER_SUPPLY: Shape = Object(&[
    ("@odata.id", Scalar),
    ("MemberId", Scalar),
    ("Name", Scalar),
    ("Manufacturer", Scalar),
    ("Model", Scalar),
    ("SerialNumber", Scalar),
    ("PartNumber", Scalar),
    ("FirmwareVersion", Scalar),
    ("PowerCapacityWatts", Scalar),
    ("Status", STATUS),
]);

/// A system's one-time boot override (`Boot`), read before and after it is set.
pub const BOOT: Shape = Object(&[
    ("BootSourceOverrideTarget", Scalar),
    ("BootSourceOverrideEnabled", Scalar),
    ("BootSourceOverrideMode", Scalar),
    ("BootSourceOverrideTarget@Redfish.AllowableValues", STRINGS),
]);

/// What a power operation reads back from a system between its steps.
pub const SYSTEM_POWER: Shape = Object(&[("PowerState", Scalar), ("Boot", BOOT)]);

pub const NETWORK_INTERFACE: Shape = Object(&[
    ("Name", Scalar),
    ("Description", Scalar),
    ("Links", Object(&[("NetworkAdapter", Link)])),
]);

pub const NETWORK_ADAPTER: Shape = Object(&[
    ("Manufacturer", Scalar),
    ("Name", Scalar),
    ("Model", Scalar),
    ("SerialNumber", Scalar),
    ("Description", Scalar),
]);

/// The `@Redfish.ActionInfo` of a reset action.
pub const ACTION_INFO: Shape = Object(&[(
    "Parameters",
    List(&Object(&[("Name", Scalar), ("AllowableValues", STRINGS)])),
)]);

pub const CHASSIS: Shape = Object(&[
    ("Id", Scalar),
    ("ChassisType", Scalar),
    ("Manufacturer", Scalar),
    ("Model", Scalar),
    ("SerialNumber", Scalar),
    ("SKU", Scalar),
    ("PowerState", Scalar),
    ("Links", Object(&[("ComputerSystems", Links)])),
    ("Power", Link),
]);

/// The (deprecated) `Power` resource of a chassis.
pub const POWER: Shape = Object(&[
    ("PowerControl", List(&Link)),
    ("PowerSupplies", List(&POWER_SUPPLY)),
]);

/// What every service document SMD keeps starts with.
macro_rules! service {
    ($($extra:expr),* $(,)?) => {
        Object(&[
            ("@odata.context", Scalar),
            ("@odata.id", Scalar),
            ("@odata.type", Scalar),
            ("Id", Scalar),
            ("Name", Scalar),
            ("Status", STATUS),
            ("ServiceEnabled", Scalar),
            $($extra),*
        ])
    };
}

/// The services of SMD's ServiceEndpoints, each with the fields SMD's typed structs keep
/// (`pkg/redfish/rfservices.go`): the service root property, SMD's `RedfishType`, the shape.
pub const SERVICES: [(&str, &str, Shape); 5] = [
    (
        "AccountService",
        "AccountService",
        service![
            ("Description", Scalar),
            ("AuthFailureLoggingThreshold", Scalar),
            ("MinPasswordLength", Scalar),
            ("AccountLockoutThreshold", Scalar),
            ("AccountLockoutDuration", Scalar),
            ("AccountLockoutCounterResetAfter", Scalar),
            ("Accounts", Link),
            ("Roles", Link),
        ],
    ),
    (
        "SessionService",
        "SessionService",
        service![("SessionTimeout", Scalar), ("Sessions", Link)],
    ),
    (
        "EventService",
        "EventService",
        service![
            ("DeliveryRetryAttempts", Scalar),
            ("DeliveryRetryIntervalInSeconds", Scalar),
            ("EventTypesForSubscription", STRINGS),
            ("EventTypesForSubscription@odata.count", Scalar),
            ("Subscriptions", Link),
            (
                "Actions",
                Object(&[(
                    "#EventService.SubmitTestEvent",
                    Object(&[
                        ("EventType@Redfish.AllowableValues", STRINGS),
                        ("target", Scalar),
                        ("title", Scalar),
                    ]),
                )]),
            ),
        ],
    ),
    (
        "Tasks",
        "TaskService",
        service![
            ("DateTime", Scalar),
            ("CompletedTaskOverWritePolicy", Scalar),
            ("LifeCycleEventOnTaskStateChange", Scalar),
            ("Tasks", Link),
        ],
    ),
    (
        "UpdateService",
        "UpdateService",
        service![
            ("@odata.etag", Scalar),
            ("FirmwareInventory", Link),
            ("SoftwareInventory", Link),
            (
                "Actions",
                Object(&[(
                    "#UpdateService.SimpleUpdate",
                    Object(&[("target", Scalar), ("title", Scalar)]),
                )]),
            ),
            ("HttpPushUri", Scalar),
            (
                "HttpPushUriOptions",
                Object(&[("HttpPushUriApplyTime", Object(&[("ApplyTime", Scalar)]),)]),
            ),
            ("HttpPushUriOptionsBusy", Scalar),
            ("HttpPushUriTargets", STRINGS),
            ("HttpPushUriTargetsBusy", Scalar),
        ],
    ),
];

/// The answer to a session login: only the session's own URI.
pub const SESSION: Shape = Link;

/// Charged once per kept document: the inventory entry it becomes, beyond its kept fields.
pub const DOCUMENT_BYTES: usize = 512;
const VALUE_BYTES: usize = std::mem::size_of::<Value>();
/// One object entry: key, value, and the index's hash slot.
const ENTRY_BYTES: usize = std::mem::size_of::<String>() + VALUE_BYTES + 16;

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    Json(serde_json::Error),
    #[error(transparent)]
    Memory(Exhausted),
}

/// Parses `body` keeping only what `shape` lists, charging the kept bytes (and
/// [`DOCUMENT_BYTES`]) to `budget`. Those charges stay after a successful parse (the caller keeps
/// the document or what it becomes); a failed one returns them. `Ok(None)` means the document is
/// not of the shape's kind at all (an array where an object belongs).
pub fn parse(
    body: &[u8],
    shape: &'static Shape,
    budget: &MemoryBudget,
) -> Result<Option<Value>, ParseError> {
    let acct = Acct {
        budget,
        kept: Cell::new(0),
        refused: Cell::new(None),
    };
    let parsed = (|| {
        acct.charge::<serde_json::Error>(DOCUMENT_BYTES)?;
        let mut de = serde_json::Deserializer::from_slice(body);
        let v = Keep { shape, acct: &acct }.deserialize(&mut de)?;
        de.end()?;
        Ok(v)
    })();
    match parsed {
        Ok(Some(v)) => Ok(Some(v)),
        Ok(None) => {
            budget.release(acct.kept.get());
            Ok(None)
        }
        Err(e) => {
            budget.release(acct.kept.get());
            Err(match acct.refused.get() {
                Some(x) => ParseError::Memory(x),
                None => ParseError::Json(e),
            })
        }
    }
}

struct Acct<'a> {
    budget: &'a MemoryBudget,
    kept: Cell<usize>,
    refused: Cell<Option<Exhausted>>,
}

impl Acct<'_> {
    fn charge<E: de::Error>(&self, n: usize) -> Result<(), E> {
        match self.budget.try_charge(n) {
            Ok(()) => {
                self.kept.set(self.kept.get() + n);
                Ok(())
            }
            Err(x) => {
                // The deserializer's error type cannot carry it; the caller looks here.
                self.refused.set(Some(x));
                Err(E::custom(x))
            }
        }
    }
}

/// Deserializes one value of `shape`: `Some` with what is kept, `None` when the value is not of
/// the shape's kind (skipped, nothing built).
#[derive(Clone, Copy)]
struct Keep<'a> {
    shape: &'static Shape,
    acct: &'a Acct<'a>,
}

impl<'de> DeserializeSeed<'de> for Keep<'_> {
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
        d.deserialize_any(self)
    }
}

impl Keep<'_> {
    fn scalar(self, v: Value) -> Option<Value> {
        matches!(self.shape, Scalar).then_some(v)
    }

    fn string<E: de::Error>(self, s: String) -> Result<Option<Value>, E> {
        if matches!(self.shape, Scalar | Str | Link) {
            self.acct.charge(s.capacity())?;
            Ok(Some(Value::String(s)))
        } else {
            Ok(None)
        }
    }
}

impl<'de> Visitor<'de> for Keep<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Option<Value>, E> {
        Ok(self.scalar(Value::Bool(b)))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Option<Value>, E> {
        Ok(self.scalar(Value::from(n)))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Option<Value>, E> {
        Ok(self.scalar(Value::from(n)))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Option<Value>, E> {
        Ok(self.scalar(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Option<Value>, E> {
        if matches!(self.shape, Scalar | Str | Link) {
            // Charged before the copy is made.
            self.acct.charge(s.len())?;
            Ok(Some(Value::String(s.to_owned())))
        } else {
            Ok(None)
        }
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Option<Value>, E> {
        self.string(s)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<Value>, E> {
        Ok(self.scalar(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<Value>, E> {
        Ok(self.scalar(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Value>, A::Error> {
        let elem: &'static Shape = match self.shape {
            List(e) => e,
            Links => &Link,
            _ => {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                return Ok(None);
            }
        };
        let mut out: Vec<Value> = Vec::new();
        let keep = Keep {
            shape: elem,
            acct: self.acct,
        };
        while let Some(v) = seq.next_element_seed(keep)? {
            let Some(v) = v else { continue };
            if out.len() == out.capacity() {
                // Charged before the array grows, doubling as `Vec` would.
                let more = out.capacity().max(4);
                self.acct.charge(more * VALUE_BYTES)?;
                out.reserve_exact(more);
            }
            out.push(v);
        }
        Ok(Some(Value::Array(out)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Value>, A::Error> {
        let fields: &'static [(&'static str, Shape)] = match self.shape {
            Object(f) => f,
            Link | Links => LINK_FIELDS,
            _ => {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                return Ok(None);
            }
        };
        let mut out = Map::new();
        while let Some(k) = map.next_key_seed(FieldKey(fields))? {
            let Some((name, shape)) = k.and_then(|i| fields.get(i)) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let v = map.next_value_seed(Keep {
                shape,
                acct: self.acct,
            })?;
            self.acct.charge(ENTRY_BYTES + name.len())?;
            // A listed field of the wrong kind stays present, as `null`: readers that only ask
            // whether it is there see the same answer.
            out.insert((*name).to_string(), v.unwrap_or(Value::Null));
        }
        Ok(Some(Value::Object(out)))
    }
}

/// An object key: its index among the listed fields, without allocating for the others.
struct FieldKey(&'static [(&'static str, Shape)]);

impl<'de> DeserializeSeed<'de> for FieldKey {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FieldKey {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|(k, _)| *k == s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Scope;
    use serde_json::json;

    fn keep(v: &Value, shape: &'static Shape) -> Option<Value> {
        let b = MemoryBudget::new(Scope::Bmc, usize::MAX);
        parse(&serde_json::to_vec(v).unwrap(), shape, &b).unwrap()
    }

    #[test]
    fn only_listed_fields_are_kept_and_wrong_kinds_become_null() {
        let v = json!({
            "Id": "1", "Junk": [1, 2, 3], "UUID": {"nested": true},
            "ProcessorSummary": {"Count": 2, "Extra": "x"},
            "Links": {"ManagedBy": [{"@odata.id": "/m", "x": 1}, 5, "/bare"], "Other": []},
            "SerialConsole": {"MaxConcurrentSessions": 4},
        });
        assert_eq!(
            keep(&v, &SYSTEM).unwrap(),
            json!({
                "Id": "1", "UUID": null,
                "ProcessorSummary": {"Count": 2},
                "Links": {"ManagedBy": [{"@odata.id": "/m"}, "/bare"]},
                "SerialConsole": {},
            })
        );
        assert_eq!(keep(&json!([1, 2]), &SYSTEM), None);
        assert_eq!(
            keep(&json!({"Oem": {"Hpe": {"big": [1, 2, 3]}}}), &ROOT).unwrap(),
            json!({"Oem": {"Hpe": null}})
        );
        assert_eq!(
            keep(&json!("/redfish/v1/SessionService/Sessions/1"), &SESSION),
            Some(json!("/redfish/v1/SessionService/Sessions/1"))
        );
    }

    #[test]
    fn skipped_fields_cost_nothing_and_kept_ones_are_charged() {
        let numbers: Vec<u32> = (0..100_000).map(|i| i % 10).collect();
        let body = serde_json::to_vec(&json!({"Id": "n", "Oem": {"Filler": numbers}})).unwrap();
        let b = MemoryBudget::new(Scope::Bmc, 4096);
        parse(&body, &SYSTEM, &b).unwrap().unwrap();
        assert!(b.used() < 1024, "{}", b.used());

        let many = vec!["On"; 10_000];
        let body = serde_json::to_vec(&json!({"Actions": {"#ComputerSystem.Reset": {
            "ResetType@Redfish.AllowableValues": many}}}))
        .unwrap();
        let b = MemoryBudget::new(Scope::Bmc, 64 << 10);
        let e = parse(&body, &SYSTEM, &b).unwrap_err();
        assert!(matches!(e, ParseError::Memory(_)), "{e}");
        assert_eq!(b.used(), 0, "a refused document returns its charges");
        assert!(b.peak() <= 64 << 10);
    }

    #[test]
    fn syntax_errors_return_their_charges() {
        let b = MemoryBudget::new(Scope::Bmc, 1 << 20);
        let e = parse(br#"{"Id": "x", "Name": "#, &SYSTEM, &b).unwrap_err();
        assert!(matches!(e, ParseError::Json(_)), "{e}");
        assert!(parse(br#"{"Id": "x"} trailing"#, &SYSTEM, &b).is_err());
        assert_eq!(b.used(), 0);
    }
}
