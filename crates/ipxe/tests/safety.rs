//! Property tests against iPXE's own parser ([`skyport_ipxe::shell`], a model of iPXE's
//! `script.c`/`exec.c`): no value that passes the write-time check, placed anywhere in a boot
//! script, changes the script's commands, their arguments or its labels; and no reason text can
//! add a command to an error script.
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
            Just(";".to_string()),
            Just(" ; ".to_string()),
            Just(" #".to_string()),
            Just("#".to_string()),
            Just("\\".to_string()),
            Just("--name=evil".to_string()),
            Just("-n".to_string()),
            Just("\u{b}".to_string()),
            Just("\u{c}".to_string()),
            Just("\u{a0}".to_string()),
            Just("http://".to_string()),
            Just("image:".to_string()),
            "[a-z0-9=:/.,;-]{1,8}",
            "\\PC{1,4}",
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

/// What iPXE executes, line by line: (label, [(argv, how the next command is reached)]).
type Parsed = Vec<(Option<String>, Vec<(Vec<String>, Option<shell::Then>)>)>;

fn parsed(script: &str) -> Parsed {
    shell::parse(script)
        .into_iter()
        .map(|l| {
            let cmds = l.commands.into_iter().map(|c| (c.argv, c.then)).collect();
            (l.label, cmds)
        })
        .collect()
}

fn words(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

/// The script a known node must get, as iPXE reads it, built without the renderer.
fn expected(kernel: &str, initrd: Option<&str>, params: &str, chain: &str) -> Parsed {
    let or = Some(shell::Then::OnFailure);
    let retry = || (vec!["goto".to_string(), "boot_retry".to_string()], None);
    let mut kernel_argv: Vec<String> = ["kernel", "--name", "kernel", kernel]
        .map(String::from)
        .to_vec();
    kernel_argv.extend(words(params));
    let mut p = vec![(None, vec![]), (None, vec![(kernel_argv, or), retry()])];
    if let Some(i) = initrd {
        let argv = ["initrd", "--name", "initrd", i].map(String::from).to_vec();
        p.push((None, vec![(argv, or), retry()]));
    }
    p.push((None, vec![(vec!["boot".to_string()], or), retry()]));
    p.push((Some("boot_retry".to_string()), vec![]));
    p.push((
        None,
        vec![(vec!["sleep".to_string(), "30".to_string()], None)],
    ));
    p.push((
        None,
        vec![(vec!["chain".to_string(), chain.to_string()], None)],
    ));
    p.push((None, vec![]));
    p.push((None, vec![]));
    p
}

proptest! {
    #[test]
    fn accepted_values_never_add_commands(
        kernel in prop_oneof![nasty(), "(https?://|tftp://|/|-)[a-z0-9./:;#-]{1,24}"],
        initrd in prop_oneof![nasty(), "(https?://|tftp://|/|-)[a-z0-9./:;#-]{1,24}"],
        params in prop_oneof![nasty(), "[a-z0-9=:/.,;#_-]{0,12}( [a-zA-Z0-9=:/.,;#|&_-]{1,10}){0,4}"],
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
            let params = build_params(&boot, &id, &Settings::default());
            let chain = "https://api-gw-service-nmn.local/apis/bss/boot/v1/bootscript?nid=7&retry=1";
            let want = expected(&boot.kernel, initrd.as_deref(), &params, chain);
            prop_assert_eq!(parsed(&script), want);
            // The URL is an argument, not an option: iPXE's getopt stops at the first word.
            prop_assert!(!boot.kernel.starts_with('-'));
            prop_assert!(!script.contains("$\u{7b}"), "setting expansion in script");
            prop_assert!(script.ends_with("\n\n"));
        }
    }

    #[test]
    fn error_reasons_never_add_commands(reason in nasty()) {
        let s = error_script(&reason, Some(&ChainKey::Nid(3)), 0, &Settings::default());
        let names: Vec<(Option<String>, Vec<String>)> = shell::parse(&s)
            .into_iter()
            .map(|l| (l.label, l.commands.iter().map(|c| c.argv[0].clone()).collect()))
            .collect();
        let line = |c: &[&str]| (None, c.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        prop_assert_eq!(names, vec![
            line(&[]), line(&["echo"]), line(&["echo"]), line(&["sleep"]), line(&["chain"]), line(&[]), line(&[]),
        ]);
        prop_assert!(shell::parse(&s).iter().all(|l| l.commands.iter().all(|c| c.then.is_none())));
        prop_assert!(!s.contains("$\u{7b}"), "setting expansion in script");
    }

    /// The boot-service script: whatever the names, role and groups hold and whatever values
    /// pass the check, iPXE runs exactly upstream's commands with the values as their arguments.
    #[test]
    fn boot_service_scripts_run_only_their_commands(
        name in nasty(), role in nasty(), xname in nasty(),
        groups in prop::collection::vec(nasty(), 0..3),
        kernel in prop_oneof![nasty(), "(https?://|/|-)[a-z0-9./:;#-]{1,24}"],
        params in prop_oneof![nasty(), "[a-z0-9=:/.,;#_-]{0,12}( [a-zA-Z0-9=:/.,;#|&_-]{1,10}){0,4}"],
        with_initrd in any::<bool>(),
    ) {
        let initrd = with_initrd.then(|| "http://10.0.0.1/initrd.img".to_string());
        let config = fabrica::Config { name, kernel, initrd: initrd.clone(), params };
        let node = fabrica::Node { xname, nid: Some(3), role, groups, boot_mac: None };
        let Ok(script) = fabrica::script(&config, &node) else {
            prop_assert!(check_value(Slot::Kernel, &config.kernel).is_err()
                || check_value(Slot::Params, &config.params).is_err());
            return Ok(());
        };
        let argv: Vec<Vec<String>> = shell::parse(&script)
            .into_iter()
            .flat_map(|l| l.commands.into_iter().map(|c| { prop_assert!(c.then.is_none()); Ok(c.argv) }).collect::<Vec<_>>())
            .collect::<Result<_, _>>()?;
        let mut want: Vec<Vec<String>> = vec![
            vec!["echo".into()], vec!["echo".into()], vec!["echo".into()], vec!["dhcp".into()],
            vec!["set".into(), "kernel".into(), config.kernel.clone()],
        ];
        if let Some(i) = &initrd {
            want.push(vec!["set".into(), "initrd".into(), i.clone()]);
        }
        if !config.params.is_empty() {
            let mut set = vec!["set".to_string(), "params".to_string()];
            set.extend(words(&config.params));
            want.push(set);
        }
        let names = |v: &Vec<String>| if v[0] == "set" { v.clone() } else { vec![v[0].clone()] };
        let mut got: Vec<Vec<String>> = argv.iter().map(names).collect();
        let tail = got.split_off(want.len().min(got.len()));
        prop_assert_eq!(got, want);
        let mut rest = vec!["echo", "kernel"];
        if initrd.is_some() {
            rest.extend(["echo", "initrd"]);
        }
        rest.extend(["echo", "boot"]);
        prop_assert_eq!(tail.iter().map(|v| v[0].as_str()).collect::<Vec<_>>(), rest);
    }
}
