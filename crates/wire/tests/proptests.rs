//! Untrusted-input property tests: whatever JSON a client or a BMC sends, parsing the inventory
//! input types returns a value or an error, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::Value;
use skyport_wire::{ComponentsPost, EthernetInterfaceIn, GroupIn, RedfishEndpointIn};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        // One of the names the input types read, or (as often as any one of them) another.
        let names = vec![
            "ID",
            "FQDN",
            "Systems",
            "Managers",
            "SchemaVersion",
            "mac",
            "ip",
            "uuid",
            "ethernet_interfaces",
            "power",
            "links",
            "NID",
            "Components",
            "State",
        ];
        let weight = names.len() as u32;
        let named = prop::sample::select(names).prop_map(String::from);
        let keys = prop_oneof![weight => named, 1 => "\\PC{0,6}"];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn parsing_never_panics(v in arb_json()) {
        let text = v.to_string();
        let _ = serde_json::from_str::<RedfishEndpointIn>(&text);
        let _ = serde_json::from_str::<ComponentsPost>(&text);
        let _ = serde_json::from_str::<EthernetInterfaceIn>(&text);
        let _ = serde_json::from_str::<GroupIn>(&text);
    }

    #[test]
    fn lenient_discovery_fields_accept_numbers(n in any::<i64>()) {
        let text = format!(r#"{{"ID":"x1c0s0b0","SchemaVersion":"1","Systems":[{{"uuid":{n},"processor_count":{n},"ethernet_interfaces":null}}]}}"#);
        let ep: RedfishEndpointIn = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(ep.schema_version, Some(1.0));
        prop_assert_eq!(ep.systems[0].uuid.clone(), Some(n.to_string()));
    }
}
