//! The README's promises, executed: its curl walk-through runs as written against a real
//! `skyport serve`, and its two commands are the ones documented.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use skyport_e2e::{Server, bash, skyport_bin};
use skyport_testkit::repo_root;

fn walkthrough() -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = readme
        .find("<!-- walkthrough:start -->")
        .expect("walkthrough start marker");
    let end = readme
        .find("<!-- walkthrough:end -->")
        .expect("walkthrough end marker");
    let block = &readme[start..end];
    let code_start = block.find("```sh\n").expect("sh block") + 6;
    let code_end = block.rfind("```").unwrap();
    block[code_start..code_end].to_string()
}

#[test]
fn readme_walkthrough_works_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).unwrap();
    // The tour mints its token with `cargo run -q -p skyport -- token` from the directory the
    // server runs in; here that is the test's binary and the server's data directory.
    let script = format!(
        "export SKYPORT_DATA='{}'\n{}",
        dir.path().display(),
        walkthrough()
            .replace("http://127.0.0.1:27779", &format!("http://{}", server.addr))
            .replace(
                "cargo run -q -p skyport --",
                &skyport_bin().unwrap().display().to_string()
            )
    );
    assert!(
        script.contains(&server.addr.to_string()),
        "walkthrough must use the default address"
    );
    let (ok, out) = bash(&script).unwrap();
    assert!(ok, "walkthrough failed:\n{out}");
    for expected in [
        r#"{"code":0,"message":"HSM is healthy"}"#,
        r#""detail":"missing bearer token","status":401"#,
        r#""ID":"x1000c0s0b0n1","Type":"Node","State":"Ready""#,
        r#""ID":"x1000c0s1b0n0","Type":"Node","State":"On""#,
        r#""ComponentID":"x1000c0s1b0n0""#,
        r#"{"id":"x1000c0s0b0n0","groupLabels":["compute"],"partitionName":""}"#,
        "etag: \"1\"",
        "state 'Sleeping' is invalid",
        "kernel --name kernel http://10.100.0.1/images/vmlinuz initrd=initrd console=ttyS0,115200 ip=dhcp xname=x1000c0s1b0n0 nid=",
        "BOOTIF=01-02-00-00-bb-00-01 ds=nocloud-net;s=",
        "params has a word that iPXE reads as the end of the command",
        "boots   compute (bootconfiguration-",
        "by the best score (25)",
        "# Configuration: compute\n# Role: Compute Groups: compute\n",
        "instance-id: x1000c0s1b0n0\nlocal-hostname: nid",
        "local_ipv4: \"10.100.1.11\"",
        "    v1:\n        cloud_name: OpenCHAMI\n",
        r#""detail":"no such xname.","status":404"#,
    ] {
        assert!(
            out.contains(expected),
            "walkthrough output lacks {expected:?}:\n{out}"
        );
    }
    assert!(
        !out.contains("never-stored"),
        "a password came back:\n{out}"
    );
    // The kernel URL in the boot script downloads exactly the uploaded bytes: the tour prints
    // the SHA-256 of the download and of the file, which must be the same.
    let digests: Vec<&str> = out
        .lines()
        .filter(|l| l.ends_with("  -") || l.ends_with("  vmlinuz"))
        .filter_map(|l| l.split(' ').next())
        .filter(|d| d.len() == 64)
        .collect();
    assert_eq!(digests.len(), 2, "two digests expected:\n{out}");
    assert_eq!(
        digests[0], digests[1],
        "downloaded kernel differs from the file:\n{out}"
    );
    assert!(
        out.contains("/images/v1/blobs/demo-1-x86_64-kernel?op=get&expires="),
        "{out}"
    );
    server.stop().unwrap();
}

#[test]
fn readme_commands_are_the_documented_ones() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    assert!(readme.contains("```sh\ncargo run -p skyport -- up --demo\n```"));
    assert!(readme.contains("```sh\nscripts/test\n```"));
    let ci = std::fs::read_to_string(repo_root().join(".ci/run")).unwrap();
    assert!(
        ci.contains("scripts/test"),
        "CI must run the README's test command"
    );
}
