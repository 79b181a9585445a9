//! `skyport hardware`: what a node, a BMC's nodes, or any subtree is made of, from SMD's
//! hardware inventory (`/hsm/v2/Inventory/Hardware/Query/{xname}`), one row per part.

use clap::Args;
use serde_json::{Value, json};
use skyport_client::segment;

use super::{CliResult, Global, Output, print};

#[derive(Args, Debug)]
pub struct HardwareArgs {
    /// A node, or anything above nodes (a BMC, chassis, cabinet; `all` for everything).
    pub xname: String,
}

const ARRAYS: &[&str] = &[
    "Nodes",
    "Processors",
    "NodeAccels",
    "Memory",
    "Drives",
    "NodeEnclosurePowerSupplies",
];

/// The part's FRU info, whichever type's it is.
fn fru_info(loc: &Value) -> Value {
    loc["PopulatedFRU"]
        .as_object()
        .and_then(|f| {
            f.iter()
                .find(|(k, v)| k.ends_with("FRUInfo") && v.is_object())
                .map(|(_, v)| v.clone())
        })
        .unwrap_or(Value::Null)
}

fn location_info(loc: &Value) -> Value {
    loc.as_object()
        .and_then(|o| {
            o.iter()
                .find(|(k, v)| k.ends_with("LocationInfo") && v.is_object())
                .map(|(_, v)| v.clone())
        })
        .unwrap_or(Value::Null)
}

/// What to show of a part beyond its make: its size or speed.
fn detail(f: &Value) -> String {
    let mut out = Vec::new();
    if let Some(n) = f["TotalCores"].as_u64() {
        out.push(format!("{n} cores"));
    }
    if let Some(n) = f["CapacityMiB"].as_u64() {
        out.push(format!("{} GiB", n / 1024));
    }
    if let Some(n) = f["CapacityBytes"].as_u64() {
        out.push(format!("{} GB", n / 1_000_000_000));
    }
    if let Some(t) = f["MemoryDeviceType"].as_str() {
        out.push(t.to_string());
    }
    if let Some(n) = f["PowerCapacityWatts"].as_u64() {
        out.push(format!("{n} W"));
    }
    if let Some(v) = f["BiosVersion"].as_str() {
        out.push(format!("BIOS {v}"));
    }
    if let Some(v) = f["FirmwareVersion"].as_str() {
        out.push(format!("firmware {v}"));
    }
    out.join(", ")
}

pub async fn hardware(g: &Global, a: &HardwareArgs) -> CliResult {
    let c = g.client()?;
    let v = c
        .get_json(
            &format!("/hsm/v2/Inventory/Hardware/Query/{}", segment(&a.xname)),
            &[("format", "FullyFlat".into())],
        )
        .await?;
    if g.output != Output::Table {
        return print(g.output, &v, &[]);
    }
    let mut rows = Vec::new();
    for arr in ARRAYS {
        for loc in v[*arr].as_array().into_iter().flatten() {
            let f = fru_info(loc);
            let l = location_info(loc);
            rows.push(json!({
                "xname": loc["ID"], "type": loc["Type"], "status": loc["Status"],
                "manufacturer": f["Manufacturer"], "model": f["Model"],
                "serial": f["SerialNumber"], "health": l["Status"]["Health"],
                "detail": detail(&f),
            }));
        }
    }
    print(
        Output::Table,
        &Value::Array(rows),
        &[
            ("XNAME", "xname"),
            ("TYPE", "type"),
            ("STATUS", "status"),
            ("HEALTH", "health"),
            ("MANUFACTURER", "manufacturer"),
            ("MODEL", "model"),
            ("SERIAL", "serial"),
            ("DETAIL", "detail"),
        ],
    )
}
