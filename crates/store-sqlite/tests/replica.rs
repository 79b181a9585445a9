//! The replica operations the edge agent applies sync pages with: records held as given
//! (versions and keys), unchanged ones not counted, a unique key following its newest holder,
//! and a staged copy swapped in whole without reading it into memory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use skyport_store::{IndexKey, Record, Store, Table};
use skyport_store_sqlite::SqliteStore;

const T: Table = Table("Components");
const META: Table = Table("Meta");

fn rec(id: &str, version: u64, body: &str, nid: &str) -> Record {
    let mut r = Record::new(id, body)
        .with_lookup("type", "Node")
        .with_unique("nid", nid);
    r.version = version;
    r
}

#[tokio::test]
async fn merged_records_are_held_as_given_and_counted_only_when_they_change() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path().join("r.db")).unwrap();
    let state = |n: usize| Ok(vec![(META, Record::new("state", n.to_string()))]);
    let n = s
        .merge_records(
            vec![(T, rec("a", 7, "{}", "1")), (T, rec("b", 3, "{}", "2"))],
            vec![],
            state,
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(s.get(T, "a").await.unwrap().unwrap().version, 7);
    assert_eq!(s.get(META, "state").await.unwrap().unwrap().body, "2");
    // The same records again change nothing and count nothing; the state is still written.
    let n = s
        .merge_records(vec![(T, rec("a", 7, "{}", "1"))], vec![], state)
        .await
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(s.get(META, "state").await.unwrap().unwrap().body, "0");
    // NID 2 moves from b to a in one page, b is dropped, a missing id is no change.
    let n = s
        .merge_records(
            vec![(T, rec("a", 8, "{\"n\":2}", "2"))],
            vec![(T, "b".into()), (T, "zz".into())],
            state,
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert!(s.get(T, "b").await.unwrap().is_none());
    let holder = s.get_unique(&IndexKey::new("nid", "2")).await.unwrap();
    assert_eq!(holder, Some(("Components".into(), "a".into())));
    assert_eq!(
        s.get_unique(&IndexKey::new("nid", "1")).await.unwrap(),
        None
    );
    let by_type = s
        .list_all(T, Some(&IndexKey::new("type", "Node")))
        .await
        .unwrap();
    assert_eq!(by_type.len(), 1);
    // A unique key still held by a record the page does not carry goes to the newer holder.
    s.merge_records(vec![(T, rec("c", 1, "{}", "2"))], vec![], state)
        .await
        .unwrap();
    let holder = s.get_unique(&IndexKey::new("nid", "2")).await.unwrap();
    assert_eq!(holder, Some(("Components".into(), "c".into())));
}

#[tokio::test]
async fn a_staged_copy_replaces_the_tables_whole() {
    let dir = tempfile::tempdir().unwrap();
    let live = SqliteStore::open(dir.path().join("live.db")).unwrap();
    let staged = SqliteStore::open(dir.path().join("staged.db")).unwrap();
    let none = |_| Ok(Vec::new());
    live.merge_records(
        vec![
            (T, rec("old", 1, "{}", "1")),
            (META, Record::new("state", "s0")),
        ],
        vec![],
        none,
    )
    .await
    .unwrap();
    live.merge_records(vec![(Table("Kept"), Record::new("k", "{}"))], vec![], none)
        .await
        .unwrap();
    staged
        .merge_records(
            (0..1500)
                .map(|i| (T, rec(&format!("n{i:04}"), 1, "{}", &i.to_string())))
                .collect(),
            vec![],
            none,
        )
        .await
        .unwrap();
    let copied = live
        .replace_tables_from(
            &staged,
            &[T, META],
            vec![(META, Record::new("state", "s1"))],
        )
        .await
        .unwrap();
    assert_eq!(copied, 1500);
    assert!(live.get(T, "old").await.unwrap().is_none());
    assert_eq!(live.list_all(T, None).await.unwrap().len(), 1500);
    let holder = live.get_unique(&IndexKey::new("nid", "1")).await.unwrap();
    assert_eq!(holder, Some(("Components".into(), "n0001".into())));
    assert_eq!(live.get(META, "state").await.unwrap().unwrap().body, "s1");
    assert!(live.get(Table("Kept"), "k").await.unwrap().is_some());
    // The staged file can be used again (it was detached).
    staged.replace_tables(&[T], Vec::new()).await.unwrap();
    assert!(staged.list_all(T, None).await.unwrap().is_empty());
}
