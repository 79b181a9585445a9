//! Property tests: no value that passes the write-time check, placed anywhere in a boot script,
//! changes the script's commands; and no reason text can add a command to an error script.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use skyport_ipxe::*;

/// Strings rich in what an attacker would try: iPXE syntax, separators, control characters.
fn nasty() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("||".to_string()),
            Just("&&".to_string()),
            Just("${".to_string()),
            Just("}".to_string()),
            Just("\n".to_string()),
            Just("\r".to_string()),
            Just("\t".to_string()),
            Just(" ".to_string()),
            Just(":boot_retry".to_string()),
            Just("#!ipxe".to_string()),
            Just("chain".to_string()),
            Just("goto".to_string()),
            Just("|".to_string()),
            Just("&".to_string()),
            Just("initrd".to_string()),
            Just("xname=".to_string()),
            Just("\u{0}".to_string()),
            Just("\u{85}".to_string()),
            "[a-z0-9=:/.,;-]{1,8}",
            "\\PC{1,4}",
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

fn commands(script: &str) -> Vec<String> {
    // What iPXE would execute: one command per line, split further at `||` and `&&`.
    script
        .lines()
        .filter(|l| !l.is_empty())
        .flat_map(|l| {
            l.split("||")
                .flat_map(|p| p.split("&&"))
                .map(|c| c.trim().split(' ').next().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

proptest! {
    #[test]
    fn accepted_values_never_add_commands(
        kernel in prop_oneof![nasty(), "https?://[a-z0-9./:-]{1,24}"],
        initrd in prop_oneof![nasty(), "https?://[a-z0-9./:-]{1,24}"],
        params in prop_oneof![nasty(), "[a-z0-9=:/.,;_-]{0,12}( [a-zA-Z0-9=:/.,;_-]{1,10}){0,4}"],
        xname in "[a-z0-9]{0,12}",
        with_initrd in any::<bool>(),
    ) {
        let initrd = with_initrd.then_some(initrd);
        let ok = check_value(Slot::Kernel, &kernel).is_ok()
            && initrd.as_deref().is_none_or(|i| check_value(Slot::Initrd, i).is_ok())
            && check_value(Slot::Params, &params).is_ok();
        let boot = Boot { kernel, initrd: initrd.clone(), params };
        let id = Identity { xname: Some(xname), nid: Some(7), boot_mac: None };
        let r = known(&boot, &id, &ChainKey::Nid(7), 0, &Settings::default());
        if !ok {
            // The renderer refuses whatever the write-time check refuses.
            prop_assert!(r.is_err() || check_value(Slot::Params, &build_params(&boot, &id, &Settings::default())).is_ok());
        }
        if let Ok(script) = r {
            let mut want = vec!["#!ipxe", "kernel", "goto"];
            if initrd.is_some() { want.extend(["initrd", "goto"]); }
            want.extend(["boot", "goto", ":boot_retry", "sleep", "chain"]);
            prop_assert_eq!(commands(&script), want);
            prop_assert!(!script.contains("$\u{7b}"), "setting expansion in script");
            // BSS ends the script with one extra newline: an empty last line.
            prop_assert_eq!(script.lines().count(), if initrd.is_some() { 8 } else { 7 });
            prop_assert!(script.ends_with("\n\n"));
        }
    }

    #[test]
    fn error_reasons_never_add_commands(reason in nasty()) {
        let s = error_script(&reason, Some(&ChainKey::Nid(3)), 0, &Settings::default());
        prop_assert_eq!(commands(&s), vec!["#!ipxe", "echo", "echo", "sleep", "chain"]);
        prop_assert!(!s.contains("$\u{7b}"), "setting expansion in script");
    }
}
