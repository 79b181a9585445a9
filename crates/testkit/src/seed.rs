//! The inventory the boot and cloud-init tests start from, written through the inventory's own
//! API (so it is stored exactly as an administrator's would be): one node, `x1000c0s0b0n0`,
//! with the NIC QEMU's user network gives a guest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use crate::app::Api;

/// POSTs `components` (a JSON array of SMD components, `x1000c0s0b0n0` among them) and the NIC
/// 52:54:00:12:34:56 of `x1000c0s0b0n0` at 10.0.2.15; each must be created. `api` serves the
/// inventory's routes.
pub async fn node(api: &Api, components: Value) {
    let nic = json!({"MACAddress": "52:54:00:12:34:56", "ComponentID": "x1000c0s0b0n0",
                     "IPAddresses": [{"IPAddress": "10.0.2.15"}]});
    let components = json!({ "Components": components });
    api.steps([
        (
            "POST",
            "/hsm/v2/State/Components",
            "",
            Some(components),
            204,
        ),
        (
            "POST",
            "/hsm/v2/Inventory/EthernetInterfaces",
            "",
            Some(nic),
            201,
        ),
    ])
    .await;
}
