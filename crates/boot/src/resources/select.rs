//! Which BootConfiguration a node boots, by upstream's score (`calculateConfigScore`, reference
//! §2.4): every selector that names the node adds to the score (a MAC 100, a NID 75, an xname or
//! hostname 50, each shared group 25), a configuration with no selector at all scores 1, and
//! the highest score wins, then the higher priority, then the name, then (Skyport: upstream's
//! sort is unstable) the uid, so the choice is deterministic.
//!
//! One deliberate difference: an xname pattern (`x1000c0s*`) matches the nodes under it.
//! Upstream validates the patterns and then never matches them. A pattern scores 30 plus 4 for
//! each level it fixes (`x*` 30, `x1c*` 34, `x1c0s*` 38, `x1c0s0b*` 42, `x1c0s0b0n*` 46): above
//! a group and below the node's own xname, and a deeper pattern above a shallower one.

use skyport_model::Mac;

use super::{ConfigSpec, HostPattern, host_pattern};

/// What a node is, as far as choosing its configuration goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub xname: String,
    pub hostname: String,
    pub nid: Option<i64>,
    /// The node's boot MAC(s).
    pub macs: Vec<Mac>,
    pub groups: Vec<String>,
}

/// Points per selector kind.
pub const MAC_POINTS: u32 = 100;
pub const NID_POINTS: u32 = 75;
pub const HOST_POINTS: u32 = 50;
pub const GROUP_POINTS: u32 = 25;
pub const CATCH_ALL_POINTS: u32 = 1;

/// Points for an xname pattern fixing `levels` of x, c, s, b, n.
pub fn pattern_points(levels: usize) -> u32 {
    30 + 4 * u32::try_from(levels.min(4)).unwrap_or(4)
}

/// How well `spec` matches the node; 0 is not at all.
pub fn score(spec: &ConfigSpec, f: &Facts) -> u32 {
    if spec.hosts.is_empty()
        && spec.macs.is_empty()
        && spec.nids.is_empty()
        && spec.groups.is_empty()
    {
        return CATCH_ALL_POINTS;
    }
    let mut s = 0;
    for h in &spec.hosts {
        if h.is_empty() {
            continue;
        }
        if *h == f.xname || (!f.hostname.is_empty() && *h == f.hostname) {
            s += HOST_POINTS;
        } else if let Some(p @ HostPattern::Prefix { levels, .. }) = host_pattern(h)
            && p.matches(&f.xname)
        {
            s += pattern_points(levels);
        }
    }
    for m in &spec.macs {
        if Mac::parse(m).is_ok_and(|m| f.macs.contains(&m)) {
            s += MAC_POINTS;
        }
    }
    for n in &spec.nids {
        if f.nid == Some(i64::from(*n)) {
            s += NID_POINTS;
        }
    }
    for g in &spec.groups {
        let shared = f.groups.iter().filter(|ng| *ng == g).count();
        s += GROUP_POINTS * u32::try_from(shared).unwrap_or(u32::MAX / GROUP_POINTS);
    }
    s
}

/// One candidate: its name, uid and spec.
pub struct Candidate<'a> {
    pub name: &'a str,
    pub uid: &'a str,
    pub spec: &'a ConfigSpec,
}

/// The index of the candidate `f` boots, if any scores above 0.
pub fn choose(candidates: &[Candidate<'_>], f: &Facts) -> Option<usize> {
    candidates
        .iter()
        .enumerate()
        .map(|(i, c)| (i, score(c.spec, f)))
        .filter(|(_, s)| *s > 0)
        .max_by(|(a, sa), (b, sb)| {
            let (a, b) = (&candidates[*a], &candidates[*b]);
            sa.cmp(sb)
                .then(a.spec.priority.cmp(&b.spec.priority))
                // Lower name, then lower uid, wins: reversed for `max_by`.
                .then_with(|| b.name.cmp(a.name))
                .then_with(|| b.uid.cmp(a.uid))
        })
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn node() -> Facts {
        Facts {
            xname: "x1000c0s0b0n0".into(),
            hostname: String::new(),
            nid: Some(1),
            macs: vec![Mac::parse("52:54:00:be:ef:01").unwrap()],
            groups: vec!["compute".into()],
        }
    }

    fn spec(f: impl FnOnce(&mut ConfigSpec)) -> ConfigSpec {
        let mut s = ConfigSpec {
            kernel: "http://k".into(),
            ..ConfigSpec::default()
        };
        f(&mut s);
        s
    }

    /// The reference's worked example (§2.4): B (by MAC) wins; without B, A beats C; D is out.
    #[test]
    fn upstreams_worked_example() {
        let a = spec(|s| {
            s.hosts = vec!["x1000c0s0b0n0".into()];
            s.groups = vec!["compute".into()];
            s.priority = 10;
        });
        let b = spec(|s| s.macs = vec!["52:54:00:BE:EF:01".into()]);
        let c = spec(|s| s.priority = 100);
        let d = spec(|s| s.hosts = vec!["default".into()]);
        assert_eq!([&a, &b, &c, &d].map(|s| score(s, &node())), [75, 100, 1, 0]);
        let all = [
            Candidate {
                name: "a",
                uid: "1",
                spec: &a,
            },
            Candidate {
                name: "b",
                uid: "2",
                spec: &b,
            },
            Candidate {
                name: "c",
                uid: "3",
                spec: &c,
            },
            Candidate {
                name: "d",
                uid: "4",
                spec: &d,
            },
        ];
        assert_eq!(choose(&all, &node()), Some(1));
        assert_eq!(choose(&[all.into_iter().next().unwrap()], &node()), Some(0));
        let only_d = [Candidate {
            name: "d",
            uid: "4",
            spec: &d,
        }];
        assert_eq!(choose(&only_d, &node()), None);
    }

    #[test]
    fn duplicates_count_each_time_and_patterns_match_below_the_xname() {
        let twice = spec(|s| s.groups = vec!["compute".into(), "compute".into()]);
        assert_eq!(score(&twice, &node()), 50);
        let chassis = spec(|s| s.hosts = vec!["x1000c0s*".into()]);
        let cabinet = spec(|s| s.hosts = vec!["x1000c*".into()]);
        let other = spec(|s| s.hosts = vec!["x1001c*".into()]);
        assert_eq!(score(&chassis, &node()), 38);
        assert_eq!(score(&cabinet, &node()), 34);
        assert_eq!(score(&other, &node()), 0);
    }
}
