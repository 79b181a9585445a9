//! The boot board's figures, computed from the flight recorder's progress records and nothing
//! else, so the cloud, the local server and an edge agent draw the same board from the same
//! records: one cell per node (stuck nodes first, then failed ones, then the least advanced),
//! counts per stage, and how long boots took to phone home.

use skyport_boot::flight::{self, Progress, Stage};

/// How a stage is drawn: its colour class and its short label on a cell.
pub fn stage_class(stage: Stage) -> &'static str {
    match stage {
        Stage::DhcpDiscover | Stage::DhcpOffer | Stage::DhcpRequest | Stage::DhcpAck => "s-dhcp",
        Stage::DhcpNak => "s-fail",
        Stage::Tftp | Stage::Binary => "s-fw",
        Stage::BootScript => "s-script",
        Stage::Kernel | Stage::Initrd => "s-kernel",
        Stage::MetaData | Stage::UserData | Stage::VendorData => "s-ci",
        Stage::PhoneHome => "s-home",
    }
}

/// A stage as people read it.
pub fn stage_label(stage: Stage) -> &'static str {
    match stage {
        Stage::DhcpDiscover => "DHCP discover",
        Stage::DhcpOffer => "DHCP offer",
        Stage::DhcpRequest => "DHCP request",
        Stage::DhcpAck => "lease",
        Stage::DhcpNak => "DHCP refused",
        Stage::Tftp => "iPXE (TFTP)",
        Stage::Binary => "iPXE (HTTP)",
        Stage::BootScript => "boot script",
        Stage::Kernel => "kernel",
        Stage::Initrd => "initrd",
        Stage::MetaData => "cloud-init meta-data",
        Stage::UserData => "cloud-init user-data",
        Stage::VendorData => "cloud-init vendor-data",
        Stage::PhoneHome => "phoned home",
    }
}

/// One node on the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// Its xname, or its MAC while the inventory does not know it.
    pub node: String,
    pub stage: Stage,
    pub failed: bool,
    pub stuck: bool,
    /// Seconds since its last event.
    pub silent_s: i64,
}

/// The board of a set of nodes at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Board {
    pub nodes: usize,
    /// Every stage with how many nodes are at it, in boot order.
    pub counts: Vec<(Stage, usize)>,
    pub stuck: usize,
    pub failed: usize,
    pub phoned_home: usize,
    pub stuck_after_s: i64,
    /// The cells shown, at most [`MAX_CELLS`], in board order.
    pub cells: Vec<Cell>,
    /// Nodes left off the board beyond [`MAX_CELLS`] (counted above, not drawn).
    pub hidden: usize,
    /// Boots that phoned home, by how long they took: (label, count).
    pub histogram: Vec<(&'static str, usize)>,
    pub durations: Option<flight::Durations>,
}

/// Upper bounds of the histogram's bins, in seconds, and their labels (the last bin is open).
const BINS: [(i64, &str); 6] = [
    (30, "under 30 s"),
    (60, "30 s to 1 min"),
    (120, "1 to 2 min"),
    (300, "2 to 5 min"),
    (600, "5 to 10 min"),
    (i64::MAX, "10 min or more"),
];

/// Most cells drawn: a board refreshes every two seconds, and a Lambda answer is at most 6 MB,
/// so a page stays a few hundred KB however large the installation (about 200 bytes a cell).
/// Stuck and failed nodes come first, so they are never the ones left off.
pub const MAX_CELLS: usize = 2000;

/// The board of `nodes` at `now_ms`: a node short of phone-home silent for `stuck_after_s` is
/// stuck; at most `max_cells` cells are drawn.
pub fn board(nodes: &[Progress], now_ms: i64, stuck_after_s: i64, max_cells: usize) -> Board {
    let status = flight::status(nodes, now_ms, stuck_after_s);
    let counts = Stage::ALL
        .iter()
        .map(|s| (*s, status.stages.get(s.name()).copied().unwrap_or(0)))
        .collect();
    let mut cells: Vec<Cell> = nodes
        .iter()
        .map(|p| {
            let silent_s = ((now_ms - p.at_ms) / 1000).max(0);
            Cell {
                node: p.node.clone(),
                stage: p.stage,
                failed: p.failed,
                stuck: p.stage != Stage::PhoneHome && silent_s >= stuck_after_s,
                silent_s,
            }
        })
        .collect();
    // Stuck first, longest silent first; then failed; then the least advanced; names last, so
    // a cell does not jump around between refreshes when nothing changed.
    cells.sort_by(|a, b| {
        let silence = |c: &Cell| std::cmp::Reverse(if c.stuck { c.silent_s } else { 0 });
        (!a.stuck, silence(a), !a.failed, a.stage)
            .cmp(&(!b.stuck, silence(b), !b.failed, b.stage))
            .then_with(|| natural(&a.node, &b.node))
    });
    let stuck = cells.iter().filter(|c| c.stuck).count();
    let failed = cells.iter().filter(|c| c.failed).count();
    let hidden = cells.len().saturating_sub(max_cells);
    cells.truncate(max_cells);
    let mut histogram: Vec<(&'static str, usize)> = BINS.iter().map(|(_, l)| (*l, 0)).collect();
    for ms in nodes.iter().filter_map(|p| p.phoned_home_after_ms) {
        let s = ms / 1000;
        if let Some(i) = BINS.iter().position(|(upper, _)| s < *upper) {
            histogram[i].1 += 1;
        }
    }
    Board {
        nodes: nodes.len(),
        counts,
        stuck,
        failed,
        phoned_home: status.phoned_home,
        stuck_after_s,
        cells,
        hidden,
        histogram,
        durations: status.time_to_phone_home_s,
    }
}

/// Names in the order people count: digit runs compare as numbers (`x1000c0s9b0n0` before
/// `x1000c0s10b0n0`).
pub fn natural(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(p), Some(q)) if p.is_ascii_digit() && q.is_ascii_digit() => {
                let dx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let dy = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let nx = trim_zeros(&x[..dx]);
                let ny = trim_zeros(&y[..dy]);
                let o = nx.len().cmp(&ny.len()).then_with(|| nx.cmp(ny));
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
                (x, y) = (&x[dx..], &y[dy..]);
            }
            (Some(p), Some(q)) => {
                if p != q {
                    return p.cmp(q);
                }
                (x, y) = (&x[1..], &y[1..]);
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let z = d.iter().take_while(|c| **c == b'0').count();
    &d[z.min(d.len().saturating_sub(1))..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(node: &str, stage: Stage, at_ms: i64, failed: bool, home: Option<i64>) -> Progress {
        Progress {
            node: node.into(),
            site: String::new(),
            stage,
            failed,
            at_ms,
            started_ms: 0,
            phoned_home_after_ms: home,
        }
    }

    #[test]
    fn stuck_nodes_come_first_then_failed_then_the_least_advanced() {
        let now = 1_000_000;
        let nodes = [
            p(
                "x1c0s0b0n0",
                Stage::PhoneHome,
                now - 900_000,
                false,
                Some(45_000),
            ),
            p("x1c0s1b0n0", Stage::Kernel, now - 1_000, false, None),
            p("x1c0s2b0n0", Stage::DhcpAck, now - 1_000, false, None),
            p("x1c0s3b0n0", Stage::Tftp, now - 400_000, false, None),
            p("x1c0s4b0n0", Stage::BootScript, now - 2_000, true, None),
            p("x1c0s5b0n0", Stage::DhcpAck, now - 600_000, false, None),
            p(
                "x1c0s6b0n0",
                Stage::PhoneHome,
                now - 5_000,
                false,
                Some(700_000),
            ),
        ];
        let b = board(&nodes, now, 300, MAX_CELLS);
        let order: Vec<&str> = b.cells.iter().map(|c| c.node.as_str()).collect();
        assert_eq!(
            order,
            [
                "x1c0s5b0n0",
                "x1c0s3b0n0",
                "x1c0s4b0n0",
                "x1c0s2b0n0",
                "x1c0s1b0n0",
                "x1c0s0b0n0",
                "x1c0s6b0n0"
            ]
        );
        assert_eq!((b.nodes, b.stuck, b.failed, b.phoned_home), (7, 2, 1, 2));
        // A phoned-home node is never stuck, however long ago it phoned home.
        assert!(!b.cells[5].stuck);
        let count = |s: Stage| b.counts.iter().find(|(t, _)| *t == s).map(|(_, n)| *n);
        assert_eq!(count(Stage::DhcpAck), Some(2));
        assert_eq!(count(Stage::Initrd), Some(0));
        assert_eq!(b.counts.len(), Stage::ALL.len());
        assert_eq!(b.histogram[1], ("30 s to 1 min", 1));
        assert_eq!(b.histogram[5], ("10 min or more", 1));
        assert_eq!(b.histogram.iter().map(|(_, n)| n).sum::<usize>(), 2);
        // Among stuck nodes the longest silent comes first, whatever its stage.
        let two = [
            p("x1c0s0b0n0", Stage::DhcpAck, now - 310_000, false, None),
            p(
                "x1c0s1b0n0",
                Stage::Kernel,
                now - 3 * 86_400_000,
                false,
                None,
            ),
        ];
        let b2 = board(&two, now, 300, MAX_CELLS);
        assert_eq!(b2.cells[0].node, "x1c0s1b0n0");
        // A capped board draws the stuck and failed first and counts every node.
        let capped = board(&nodes, now, 300, 3);
        assert_eq!(capped.cells, b.cells[..3]);
        assert_eq!(
            (
                capped.hidden,
                capped.nodes,
                capped.stuck,
                capped.phoned_home
            ),
            (4, 7, 2, 2)
        );
    }

    #[test]
    fn names_sort_as_people_count() {
        let mut v = [
            "x1c0s10b0n0",
            "x1c0s9b0n0",
            "x1c0s9b0n1",
            "x10c0s0b0n0",
            "x2c0s0b0n0",
        ];
        v.sort_by(|a, b| natural(a, b));
        assert_eq!(
            v,
            [
                "x1c0s9b0n0",
                "x1c0s9b0n1",
                "x1c0s10b0n0",
                "x2c0s0b0n0",
                "x10c0s0b0n0"
            ]
        );
        assert_eq!(natural("a01", "a1"), "a01".cmp("a1"));
        assert_eq!(natural("02:00", "02:00"), std::cmp::Ordering::Equal);
    }

    #[test]
    fn an_empty_board_has_every_stage_at_zero() {
        let b = board(&[], 0, 300, MAX_CELLS);
        assert_eq!(b.nodes, 0);
        assert!(b.counts.iter().all(|(_, n)| *n == 0));
        assert!(b.durations.is_none());
    }
}
