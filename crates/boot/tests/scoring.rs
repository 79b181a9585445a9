//! The BootConfiguration choice (`skyport_boot::resources::select`) as properties over random
//! nodes and configurations: a more specific selector always wins over a less specific one
//! (MAC > NID > the node's xname > a deeper xname pattern > a shallower one > a group >
//! catch-all), priority breaks ties of equal score, the order is deterministic (the same
//! choice whatever order the configurations are listed in), and a configuration that names
//! nothing of the node is never chosen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use skyport_boot::resources::ConfigSpec;
use skyport_boot::resources::select::{Candidate, Facts, choose, score};
use skyport_model::Mac;

/// One selector of one kind, naming the node or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Sel {
    CatchAll,
    Group,
    Pattern(usize),
    Host,
    Nid,
    Mac,
}

const XNAME: &str = "x1000c2s3b0n1";

fn node(groups: Vec<String>) -> Facts {
    Facts {
        xname: XNAME.into(),
        hostname: "nid0007".into(),
        nid: Some(7),
        macs: vec![Mac::parse("02:00:00:00:00:07").unwrap()],
        groups,
    }
}

/// A spec whose one selector of kind `s` names the node (`hit`) or another node.
fn spec(s: Sel, hit: bool, priority: i64) -> ConfigSpec {
    let mut c = ConfigSpec {
        kernel: "http://k/v".into(),
        priority,
        ..ConfigSpec::default()
    };
    match s {
        Sel::CatchAll => {}
        Sel::Group => c.groups = vec![if hit { "compute" } else { "gpu" }.into()],
        Sel::Pattern(levels) => {
            let prefixes = ["x*", "x1000c*", "x1000c2s*", "x1000c2s3b*", "x1000c2s3b0n*"];
            let other = ["y*", "x1001c*", "x1000c9s*", "x1000c2s4b*", "x1000c2s3b1n*"];
            c.hosts = vec![if hit { prefixes[levels] } else { other[levels] }.into()];
        }
        Sel::Host => c.hosts = vec![if hit { XNAME } else { "x9c0s0b0n0" }.into()],
        Sel::Nid => c.nids = vec![if hit { 7 } else { 8 }],
        Sel::Mac => {
            c.macs = vec![
                if hit {
                    "02-00-00-00-00-07"
                } else {
                    "02:00:00:00:00:08"
                }
                .into(),
            ]
        }
    }
    c
}

fn sel() -> impl Strategy<Value = Sel> {
    prop_oneof![
        Just(Sel::CatchAll),
        Just(Sel::Group),
        (0usize..5).prop_map(Sel::Pattern),
        Just(Sel::Host),
        Just(Sel::Nid),
        Just(Sel::Mac),
    ]
}

fn candidates(specs: &[(String, ConfigSpec)]) -> Vec<Candidate<'_>> {
    specs
        .iter()
        .map(|(n, s)| Candidate {
            name: n.split('/').next().unwrap_or(n),
            uid: n,
            spec: s,
        })
        .collect()
}

proptest! {
    #[test]
    fn the_more_specific_selector_wins(a in sel(), b in sel(), pa in 0i64..=100, pb in 0i64..=100) {
        prop_assume!(a != b);
        let f = node(vec!["compute".into()]);
        let specs = vec![("a".to_string(), spec(a, true, pa)), ("b".to_string(), spec(b, true, pb))];
        let won = choose(&candidates(&specs), &f).unwrap();
        let want = if a > b { 0 } else { 1 };
        prop_assert_eq!(won, want, "{:?} vs {:?}: scores {} {}", a, b,
            score(&specs[0].1, &f), score(&specs[1].1, &f));
    }

    #[test]
    fn priority_breaks_ties_then_the_name(s in sel(), pa in 0i64..=100, pb in 0i64..=100) {
        let f = node(vec!["compute".into()]);
        let specs = vec![("b".to_string(), spec(s, true, pa)), ("a".to_string(), spec(s, true, pb))];
        let won = choose(&candidates(&specs), &f).unwrap();
        let want = if pa > pb { 0 } else { 1 };
        prop_assert_eq!(won, want);
    }

    #[test]
    fn the_choice_is_the_same_in_any_order(
        picks in prop::collection::vec((sel(), any::<bool>(), 0i64..=3), 1..8),
        seed in any::<u64>(),
    ) {
        let f = node(vec!["compute".into()]);
        // Names repeat (`c0`..`c2`); each configuration has its own uid (`c1/4`).
        let specs: Vec<(String, ConfigSpec)> = picks
            .iter()
            .enumerate()
            .map(|(i, (s, hit, p))| (format!("c{}/{i}", i % 3), spec(*s, *hit, *p)))
            .collect();
        let first = choose(&candidates(&specs), &f).map(|i| specs[i].0.clone());
        let mut shuffled = specs.clone();
        // A deterministic shuffle from the seed (xorshift).
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let again = choose(&candidates(&shuffled), &f).map(|i| shuffled[i].0.clone());
        prop_assert_eq!(first, again);
    }

    #[test]
    fn what_names_nothing_of_the_node_is_never_chosen(s in sel(), p in 0i64..=100) {
        prop_assume!(s != Sel::CatchAll);
        let f = node(vec!["compute".into()]);
        let specs = vec![("only".to_string(), spec(s, false, p))];
        prop_assert_eq!(choose(&candidates(&specs), &f), None);
        prop_assert_eq!(score(&specs[0].1, &f), 0);
    }
}
