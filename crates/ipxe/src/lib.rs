//! The iPXE boot scripts Skyport serves to booting nodes, rendered exactly as OpenCHAMI BSS
//! renders them, and the rules that keep stored values from becoming iPXE commands.
//!
//! A boot script is code the node executes. The rules for what may be placed in it come from
//! iPXE's own parser, modelled in [`shell`]: a line is split into tokens at ASCII whitespace
//! with no quoting; a token that is `||`, `&&` or `;` starts another command and a token that
//! starts with `#` comments out the rest of the line; `${…}` in any token is replaced by a
//! setting; a line ending in `\` continues on the next; the first argument starting with `-`
//! is an option. So ([`check_value`]):
//! - no value may hold a control character (which includes every iPXE separator but the
//!   space), other whitespace, or `${`;
//! - a kernel or initrd is one token naming what to fetch (an absolute `http`, `https`, `tftp`,
//!   `ftp`, `nfs` or `file` URL, an absolute path, or a reference Skyport resolves:
//!   `image:<id>`, `s3://bucket/key`), so it can be neither an option nor a terminator;
//! - no token of the kernel parameters may be a terminator (`||`, `&&`, `;`, `#…`), and the
//!   parameters are printable ASCII (the kernel splits its command line on bytes such as 0xA0
//!   that occur inside UTF-8 characters).
//!
//! [`check_value`] runs when values are written, and the renderers check again, so a value that
//! got into storage some other way is refused rather than rendered. Scripts that report a
//! problem ([`error_script`]) print a sanitised reason, wait and retry: a booting node never
//! receives an HTTP error it cannot act on.
//!
//! Pure: no I/O, so every variant has a golden test (`tests/golden/`), and the property tests
//! (`tests/safety.rs`) run every rendered script through [`shell::parse`].

pub mod fabrica;
pub mod shell;

use std::fmt::Write as _;

use skyport_model::Mac;

/// A value that cannot be placed in a boot script safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {reason}")]
pub struct UnsafeValue {
    pub field: &'static str,
    pub reason: &'static str,
}

/// Which slot a value goes into; URLs are stricter than parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Kernel,
    Initrd,
    Params,
}

impl Slot {
    fn name(self) -> &'static str {
        match self {
            Slot::Kernel => "kernel",
            Slot::Initrd => "initrd",
            Slot::Params => "params",
        }
    }
}

/// URL schemes iPXE can fetch a kernel or initrd over.
const FETCH_SCHEMES: &[&str] = &[
    "http://", "https://", "tftp://", "ftp://", "nfs://", "file:",
];
/// References Skyport resolves to download URLs before rendering.
const REFERENCES: &[&str] = &["image:", "s3://"];

/// Checks that `value` can be placed in the `slot` of a boot script without adding, ending or
/// altering an iPXE command (see the crate documentation for the rules and where they come from).
pub fn check_value(slot: Slot, value: &str) -> Result<(), UnsafeValue> {
    let bad = |reason| {
        Err(UnsafeValue {
            field: slot.name(),
            reason,
        })
    };
    if value.chars().any(|c| c.is_control()) {
        return bad("contains a line break or control character");
    }
    if value.chars().any(|c| c != ' ' && c.is_whitespace()) {
        return bad("contains non-space whitespace");
    }
    if shell::expands(value) {
        return bad("contains `${`, which iPXE expands as a setting");
    }
    match slot {
        Slot::Kernel | Slot::Initrd => {
            if value.is_empty() {
                return bad("is empty");
            }
            if value.contains(' ') {
                return bad("contains a space; a URL must be one word");
            }
            let lower = value.to_ascii_lowercase();
            let fetchable = FETCH_SCHEMES
                .iter()
                .chain(REFERENCES)
                .any(|p| lower.starts_with(p) && lower.len() > p.len());
            let path = value.starts_with('/') && value.len() > 1;
            if !fetchable && !path {
                return bad(
                    "must be an http, https, tftp, ftp, nfs or file URL, an absolute path, or an image: or s3:// reference",
                );
            }
        }
        Slot::Params => {
            if !value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
                return bad("contains a character that is not printable ASCII");
            }
            if value.split(' ').any(shell::is_terminator) {
                return bad(
                    "has a word that iPXE reads as the end of the command (`;`, `||`, `&&`, or one starting with `#`)",
                );
            }
        }
    }
    Ok(())
}

/// Script settings (BSS's `BSS_RETRY_DELAY`, `BSS_CHAIN_PROTO`+`BSS_IPXE_SERVER`+`BSS_GW_URI`,
/// `BSS_ADVERTISE_ADDRESS`, `BSS_HSM_RETRIEVAL_DELAY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Seconds to sleep before chaining again after a failed boot (BSS default 30).
    pub retry_delay: u32,
    /// Seconds an unknown node waits before asking again (BSS default 10).
    pub unknown_delay: u32,
    /// Base URL the node chains back to; the script appends `/boot/v1/bootscript?...`.
    pub chain_base: String,
    /// cloud-init base URL for `ds=nocloud-net;s=<url>/`; none means no `ds=` parameter.
    pub advertise: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            retry_delay: 30,
            unknown_delay: 10,
            chain_base: "https://api-gw-service-nmn.local/apis/bss".into(),
            advertise: None,
        }
    }
}

/// How the node asked, which is how it is told to ask again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainKey {
    Mac(Mac),
    Name(String),
    Nid(i64),
}

impl ChainKey {
    fn query(&self) -> String {
        match self {
            ChainKey::Mac(m) => format!("mac={m}"),
            ChainKey::Name(n) => format!("name={}", sanitize_word(n)),
            ChainKey::Nid(n) => format!("nid={n}"),
        }
    }
}

/// What a known node boots.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Boot {
    pub kernel: String,
    pub initrd: Option<String>,
    pub params: String,
}

/// Who the node is, as far as the parameters are concerned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    pub xname: Option<String>,
    pub nid: Option<i64>,
    /// Set when the node asked by MAC: adds `BOOTIF=01-<mac>`.
    pub boot_mac: Option<Mac>,
}

fn param_exists(params: &str, prefix: &str) -> bool {
    params.split(' ').any(|t| t.starts_with(prefix))
}

fn check_param(params: &mut String, prefix: &str, value: &str) {
    if !value.is_empty() && !param_exists(params, prefix) {
        params.push(' ');
        params.push_str(prefix);
        params.push_str(value);
    }
}

/// The kernel command line as BSS assembles it: the stored parameters, then `xname=`, `nid=`,
/// `BOOTIF=01-<mac>` and `ds=nocloud-net;s=<advertise>/`, each only if not already present;
/// with an initrd, the first `initrd…` token is replaced by a leading `initrd=initrd`.
pub fn build_params(boot: &Boot, id: &Identity, settings: &Settings) -> String {
    let mut params = boot.params.trim().to_string();
    check_param(&mut params, "xname=", id.xname.as_deref().unwrap_or(""));
    check_param(
        &mut params,
        "nid=",
        &id.nid.map(|n| n.to_string()).unwrap_or_default(),
    );
    if let Some(m) = &id.boot_mac {
        check_param(&mut params, "BOOTIF=", &format!("01-{}", m.dashed()));
    }
    if let Some(a) = &settings.advertise {
        check_param(
            &mut params,
            "ds=",
            &format!("nocloud-net;s={}/", a.trim_end_matches('/')),
        );
    }
    if boot.initrd.is_some() {
        let mut tokens: Vec<&str> = params.split(' ').filter(|t| !t.is_empty()).collect();
        if let Some(i) = tokens.iter().position(|t| t.starts_with("initrd")) {
            tokens.remove(i);
        }
        params = format!("initrd=initrd {}", tokens.join(" "));
    }
    params.trim().to_string()
}

fn chain_line(settings: &Settings, key: &ChainKey, tail: &str) -> String {
    format!(
        "chain {}/boot/v1/bootscript?{}{tail}",
        settings.chain_base.trim_end_matches('/'),
        key.query()
    )
}

/// The script for a node with boot parameters (BSS `buildBootScript`), followed by the extra
/// newline BSS writes. `retry` is the `retry=` the node sent (0 if none).
pub fn known(
    boot: &Boot,
    id: &Identity,
    key: &ChainKey,
    retry: u32,
    settings: &Settings,
) -> Result<String, UnsafeValue> {
    let chain = chain_line(
        settings,
        key,
        &format!("&retry={}", retry.saturating_add(1)),
    );
    boot_script(boot, id, &chain, settings)
}

/// BSS's `buildBootScript`: kernel, initrd, boot, and on failure a pause and `chain`.
fn boot_script(
    boot: &Boot,
    id: &Identity,
    chain: &str,
    settings: &Settings,
) -> Result<String, UnsafeValue> {
    check_value(Slot::Kernel, &boot.kernel)?;
    if let Some(i) = &boot.initrd {
        check_value(Slot::Initrd, i)?;
    }
    let params = build_params(boot, id, settings);
    check_value(Slot::Params, &params)?;
    let mut s = String::from("#!ipxe\n");
    let _ = writeln!(
        s,
        "kernel --name kernel {} {params} || goto boot_retry",
        boot.kernel
    );
    if let Some(i) = &boot.initrd {
        let _ = writeln!(s, "initrd --name initrd {i} || goto boot_retry");
    }
    s.push_str("boot || goto boot_retry\n:boot_retry\n");
    let _ = writeln!(s, "sleep {}", settings.retry_delay);
    s.push_str(chain);
    s.push_str("\n\n");
    Ok(s)
}

/// The script an unknown node of a known architecture boots: the `Unknown-<arch>` parameters
/// (typically a discovery image), with no node identity on the command line, chaining back as
/// an unknown node does (BSS `unknownBootScript` with `arch=`).
pub fn unknown_boot(
    boot: &Boot,
    key: Option<&ChainKey>,
    ts: i64,
    settings: &Settings,
) -> Result<String, UnsafeValue> {
    boot_script(
        boot,
        &Identity::default(),
        &unknown_chain(key, ts, settings),
        settings,
    )
}

fn unknown_chain(key: Option<&ChainKey>, ts: i64, settings: &Settings) -> String {
    let query = match key {
        Some(k) => k.query(),
        None => "mac=${net0/mac}".to_string(),
    };
    format!(
        "chain {}/boot/v1/bootscript?{query}&arch=${{buildarch}}&ts={ts}",
        settings.chain_base.trim_end_matches('/'),
    )
}

/// The script for a node Skyport cannot boot yet (unknown, disabled, no kernel): wait, then ask
/// again with the node's architecture (BSS `unknownBootScript`).
pub fn unknown(key: Option<&ChainKey>, ts: i64, settings: &Settings) -> String {
    format!(
        "#!ipxe\nsleep {}\n{}\n\n",
        settings.unknown_delay,
        unknown_chain(key, ts, settings)
    )
}

/// A script that tells the operator on the node's console what went wrong, waits and retries,
/// instead of an HTTP error the node cannot act on.
pub fn error_script(
    reason: &str,
    key: Option<&ChainKey>,
    retry: u32,
    settings: &Settings,
) -> String {
    let query = match key {
        Some(k) => k.query(),
        None => "mac=${net0/mac}".to_string(),
    };
    format!(
        "#!ipxe\necho Skyport cannot boot this node yet: {}\necho Retrying in {} seconds\nsleep {}\nchain {}/boot/v1/bootscript?{query}&retry={}\n\n",
        sanitize_text(reason),
        settings.retry_delay,
        settings.retry_delay,
        settings.chain_base.trim_end_matches('/'),
        retry.saturating_add(1),
    )
}

/// Text for an `echo`: anything outside a plain printable set becomes `?`, so no expansion,
/// command separator or line break can appear.
pub fn sanitize_text(s: &str) -> String {
    s.chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_alphanumeric() || " .,:/_-=+()'@<>[]".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn sanitize_word(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
