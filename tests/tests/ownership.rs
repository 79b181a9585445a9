//! Each service owns its tables: no other crate's code names them (their constants, their
//! record modules). A service that needs another's data asks it through a typed read
//! (`skyport_inventory::Inventory::interface_by_mac`, `skyport_boot::params::NodeKey`, …), so a
//! table's layout, key formats and JSON fields can change in one crate. Tests may reach into
//! tables to check what was stored; only `src/` is held to this.

use std::path::{Path, PathBuf};

/// (what names a table, the crate directory that owns it).
const OWNED: &[(&str, &str)] = &[
    ("skyport_inventory::records", "crates/inventory"),
    ("BOOT_PARAMS", "crates/boot"),
    ("ENDPOINT_HISTORY", "crates/boot"),
    ("skyport_metadata::DEFAULTS", "crates/metadata"),
    ("skyport_metadata::GROUPS", "crates/metadata"),
    ("skyport_metadata::INSTANCES", "crates/metadata"),
    ("skyport_images::IMAGES", "crates/images"),
    ("SITE_XNAMES", "crates/sites"),
    ("SITE_CLIENTS", "crates/sites"),
    ("skyport_sites::SITES", "crates/sites"),
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        if p.is_dir() {
            // Tests may inspect stored records; `src/tests` is a crate's test module too.
            if name != "tests" && name != "target" {
                sources(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_crate_names_another_services_tables() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut crates = Vec::new();
    for top in ["crates", "functions"] {
        for e in std::fs::read_dir(root.join(top)).unwrap().flatten() {
            crates.push(format!("{top}/{}", e.file_name().to_string_lossy()));
        }
    }
    crates.push("edge-agent".into());
    let mut found = Vec::new();
    let mut scanned = 0;
    for krate in &crates {
        let mut files = Vec::new();
        sources(&root.join(krate).join("src"), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            // A module's own unit tests may inspect stored records too.
            let text = text.split("#[cfg(test)]").next().unwrap_or_default();
            scanned += 1;
            for (needle, owner) in OWNED {
                if krate != owner && text.contains(needle) {
                    found.push(format!("{} names {needle} (owned by {owner})", f.display()));
                }
            }
        }
    }
    assert!(scanned > 100, "only {scanned} source files found");
    assert!(found.is_empty(), "{}", found.join("\n"));
}
