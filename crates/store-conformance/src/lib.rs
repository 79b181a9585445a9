//! The storage conformance suite: the semantics of [`skyport_store::Store`] written down as
//! executable cases. Each backend's tests call [`run_all`] on a fresh store; a case that fails
//! panics with its name, so the backends cannot drift apart silently.
//!
//! Every case uses its own tables, so cases never see each other's data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use futures::future::join_all;
use skyport_store::{IndexKey, PageRequest, Record, Store, StoreError, Table, Write};

type Case = (
    &'static str,
    fn(Arc<dyn Store>) -> futures::future::BoxFuture<'static, ()>,
);

macro_rules! case {
    ($f:ident) => {
        (stringify!($f), |s| Box::pin($f(s)))
    };
}

/// Every case, in order. Returns the names that ran.
pub async fn run_all(store: Arc<dyn Store>) -> Vec<&'static str> {
    let cases: Vec<Case> = vec![
        case!(create_get_and_versions),
        case!(create_twice_conflicts),
        case!(stale_replace_and_delete_conflict),
        case!(unique_keys_are_exclusive),
        case!(unique_keys_move_within_one_batch),
        case!(failed_batch_writes_nothing),
        case!(check_guards_a_batch),
        case!(pagination_is_ordered_and_complete),
        case!(lookups_follow_the_record),
        case!(get_many_skips_missing),
        case!(tables_are_independent),
        case!(concurrent_writers_lose_no_update),
        case!(large_batches_are_all_or_nothing),
        case!(upserts_overwrite_without_reading),
        case!(get_keys_reads_across_tables),
        case!(ping_answers),
    ];
    let mut ran = Vec::new();
    for (name, f) in cases {
        eprintln!("conformance[{}]: {name}", store.backend());
        f(store.clone()).await;
        ran.push(name);
    }
    ran
}

fn put(table: Table, record: Record, prev: Option<Record>) -> Write {
    Write::Put {
        table,
        record,
        prev,
    }
}

async fn create_get_and_versions(s: Arc<dyn Store>) {
    let t = Table("cfA");
    assert!(s.get(t, "a").await.unwrap().is_none());
    s.write(vec![put(t, Record::new("a", "{\"v\":1}"), None)])
        .await
        .unwrap();
    let a = s.get(t, "a").await.unwrap().expect("created");
    assert_eq!(a.version, 1);
    assert_eq!(a.body, "{\"v\":1}");
    s.write(vec![put(t, Record::new("a", "{\"v\":2}"), Some(a.clone()))])
        .await
        .unwrap();
    let a2 = s.get(t, "a").await.unwrap().unwrap();
    assert_eq!(a2.version, 2);
    assert_eq!(a2.body, "{\"v\":2}");
    s.write(vec![Write::Delete { table: t, prev: a2 }])
        .await
        .unwrap();
    assert!(s.get(t, "a").await.unwrap().is_none());
}

async fn create_twice_conflicts(s: Arc<dyn Store>) {
    let t = Table("cfB");
    s.write(vec![put(t, Record::new("a", "1"), None)])
        .await
        .unwrap();
    let e = s
        .write(vec![put(t, Record::new("a", "2"), None)])
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    assert_eq!(s.get(t, "a").await.unwrap().unwrap().body, "1");
}

async fn stale_replace_and_delete_conflict(s: Arc<dyn Store>) {
    let t = Table("cfC");
    s.write(vec![put(t, Record::new("a", "1"), None)])
        .await
        .unwrap();
    let v1 = s.get(t, "a").await.unwrap().unwrap();
    s.write(vec![put(t, Record::new("a", "2"), Some(v1.clone()))])
        .await
        .unwrap();
    let e = s
        .write(vec![put(t, Record::new("a", "3"), Some(v1.clone()))])
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    let e = s
        .write(vec![Write::Delete { table: t, prev: v1 }])
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    assert_eq!(s.get(t, "a").await.unwrap().unwrap().body, "2");
    // Replacing a record that was deleted meanwhile is a conflict too, not a resurrection.
    let v2 = s.get(t, "a").await.unwrap().unwrap();
    s.write(vec![Write::Delete {
        table: t,
        prev: v2.clone(),
    }])
    .await
    .unwrap();
    let e = s
        .write(vec![put(t, Record::new("a", "4"), Some(v2))])
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    assert!(s.get(t, "a").await.unwrap().is_none());
}

async fn unique_keys_are_exclusive(s: Arc<dyn Store>) {
    let t = Table("cfD");
    let t2 = Table("cfD2");
    s.write(vec![put(
        t,
        Record::new("a", "{}").with_unique("cfD-nid", "7"),
        None,
    )])
    .await
    .unwrap();
    // Another record, even in another table, cannot take the key.
    for (table, id) in [(t, "b"), (t2, "a")] {
        let e = s
            .write(vec![put(
                table,
                Record::new(id, "{}").with_unique("cfD-nid", "7"),
                None,
            )])
            .await
            .unwrap_err();
        match e {
            StoreError::Duplicate { key, owner } => {
                assert_eq!(key, IndexKey::new("cfD-nid", "7"));
                assert_eq!(owner, "cfD/a");
            }
            other => panic!("expected Duplicate, got {other:?}"),
        }
        assert!(
            s.get(table, id).await.unwrap().is_none(),
            "nothing half-written"
        );
    }
    assert_eq!(
        s.get_unique(&IndexKey::new("cfD-nid", "7")).await.unwrap(),
        Some(("cfD".to_string(), "a".to_string()))
    );
    // Re-putting the holder with the same key is fine; changing it frees the old value.
    let a = s.get(t, "a").await.unwrap().unwrap();
    s.write(vec![put(
        t,
        Record::new("a", "{}").with_unique("cfD-nid", "8"),
        Some(a),
    )])
    .await
    .unwrap();
    assert_eq!(
        s.get_unique(&IndexKey::new("cfD-nid", "7")).await.unwrap(),
        None
    );
    s.write(vec![put(
        t,
        Record::new("b", "{}").with_unique("cfD-nid", "7"),
        None,
    )])
    .await
    .unwrap();
    // Deleting frees the key.
    let a = s.get(t, "a").await.unwrap().unwrap();
    s.write(vec![Write::Delete { table: t, prev: a }])
        .await
        .unwrap();
    s.write(vec![put(
        t2,
        Record::new("z", "{}").with_unique("cfD-nid", "8"),
        None,
    )])
    .await
    .unwrap();
}

async fn unique_keys_move_within_one_batch(s: Arc<dyn Store>) {
    let t = Table("cfE");
    s.write(vec![
        put(t, Record::new("a", "{}").with_unique("cfE-nid", "1"), None),
        put(t, Record::new("b", "{}").with_unique("cfE-nid", "2"), None),
    ])
    .await
    .unwrap();
    let a = s.get(t, "a").await.unwrap().unwrap();
    let b = s.get(t, "b").await.unwrap().unwrap();
    // Swap: each record releases the key the other one claims.
    s.write(vec![
        put(
            t,
            Record::new("a", "{}").with_unique("cfE-nid", "2"),
            Some(a),
        ),
        put(
            t,
            Record::new("b", "{}").with_unique("cfE-nid", "1"),
            Some(b),
        ),
    ])
    .await
    .unwrap();
    assert_eq!(
        s.get_unique(&IndexKey::new("cfE-nid", "1")).await.unwrap(),
        Some(("cfE".into(), "b".into()))
    );
    assert_eq!(
        s.get_unique(&IndexKey::new("cfE-nid", "2")).await.unwrap(),
        Some(("cfE".into(), "a".into()))
    );
    // Two records claiming one key in one batch is refused before anything is written.
    let e = s
        .write(vec![
            put(t, Record::new("c", "{}").with_unique("cfE-nid", "9"), None),
            put(t, Record::new("d", "{}").with_unique("cfE-nid", "9"), None),
        ])
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Duplicate { .. }), "{e:?}");
    assert!(s.get(t, "c").await.unwrap().is_none());
}

async fn failed_batch_writes_nothing(s: Arc<dyn Store>) {
    let t = Table("cfF");
    s.write(vec![put(
        t,
        Record::new("held", "{}").with_unique("cfF-mac", "m1"),
        None,
    )])
    .await
    .unwrap();
    let e = s
        .write(vec![
            put(
                t,
                Record::new("x1", "{}")
                    .with_lookup("type", "Node")
                    .with_unique("cfF-mac", "m2"),
                None,
            ),
            put(
                t,
                Record::new("x2", "{}")
                    .with_lookup("type", "Node")
                    .with_unique("cfF-mac", "m1"),
                None,
            ),
        ])
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Duplicate { .. }), "{e:?}");
    assert!(s.get(t, "x1").await.unwrap().is_none());
    assert!(
        s.get_unique(&IndexKey::new("cfF-mac", "m2"))
            .await
            .unwrap()
            .is_none()
    );
    let by = IndexKey::new("type", "Node");
    assert!(
        s.list(t, Some(&by), PageRequest::first(10))
            .await
            .unwrap()
            .records
            .is_empty()
    );
    // The key is still claimable: the failed batch left no stray entry behind.
    s.write(vec![put(
        t,
        Record::new("x3", "{}").with_unique("cfF-mac", "m2"),
        None,
    )])
    .await
    .unwrap();
}

async fn check_guards_a_batch(s: Arc<dyn Store>) {
    let t = Table("cfG");
    s.write(vec![put(t, Record::new("member", "1"), None)])
        .await
        .unwrap();
    let m = s.get(t, "member").await.unwrap().unwrap();
    s.write(vec![
        Write::Check {
            table: t,
            prev: m.clone(),
        },
        put(t, Record::new("group", "g1"), None),
    ])
    .await
    .unwrap();
    s.write(vec![put(t, Record::new("member", "2"), Some(m.clone()))])
        .await
        .unwrap();
    let g = s.get(t, "group").await.unwrap().unwrap();
    let e = s
        .write(vec![
            Write::Check { table: t, prev: m },
            put(t, Record::new("group", "g2"), Some(g)),
        ])
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    assert_eq!(s.get(t, "group").await.unwrap().unwrap().body, "g1");
    assert_eq!(
        s.get(t, "member").await.unwrap().unwrap().version,
        2,
        "Check does not bump"
    );
}

async fn pagination_is_ordered_and_complete(s: Arc<dyn Store>) {
    let t = Table("cfH");
    let mut ids: Vec<String> = (0..230).map(|i| format!("x{i}c0s0b0n0")).collect();
    for chunk in ids.chunks(20) {
        let ops = chunk
            .iter()
            .map(|id| {
                put(
                    t,
                    Record::new(id.clone(), "{}").with_lookup("type", "Node"),
                    None,
                )
            })
            .collect();
        s.write(ops).await.unwrap();
    }
    ids.sort();
    for by in [None, Some(IndexKey::new("type", "Node"))] {
        let mut seen = Vec::new();
        let mut req = PageRequest::first(100);
        let mut pages = 0;
        loop {
            let p = s.list(t, by.as_ref(), req.clone()).await.unwrap();
            assert!(p.records.len() <= 100);
            pages += 1;
            seen.extend(p.records.into_iter().map(|r| r.id));
            match p.next {
                Some(n) => req.after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, ids);
        assert!(pages >= 3);
        assert_eq!(s.list_all(t, by.as_ref()).await.unwrap().len(), 230);
    }
}

async fn lookups_follow_the_record(s: Arc<dyn Store>) {
    let t = Table("cfI");
    s.write(vec![put(
        t,
        Record::new("eth0", "{}")
            .with_lookup("ip", "10.0.0.1")
            .with_lookup("ip", "10.0.0.2"),
        None,
    )])
    .await
    .unwrap();
    let ip1 = IndexKey::new("ip", "10.0.0.1");
    let ip3 = IndexKey::new("ip", "10.0.0.3");
    assert_eq!(s.list_all(t, Some(&ip1)).await.unwrap().len(), 1);
    let r = s.get(t, "eth0").await.unwrap().unwrap();
    assert_eq!(r.lookups.len(), 2);
    s.write(vec![put(
        t,
        Record::new("eth0", "{}").with_lookup("ip", "10.0.0.3"),
        Some(r),
    )])
    .await
    .unwrap();
    assert!(s.list_all(t, Some(&ip1)).await.unwrap().is_empty());
    let found = s.list_all(t, Some(&ip3)).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].version, 2);
    let r = s.get(t, "eth0").await.unwrap().unwrap();
    s.write(vec![Write::Delete { table: t, prev: r }])
        .await
        .unwrap();
    assert!(s.list_all(t, Some(&ip3)).await.unwrap().is_empty());
}

async fn get_many_skips_missing(s: Arc<dyn Store>) {
    let t = Table("cfJ");
    let ops = (0..120)
        .map(|i| put(t, Record::new(format!("r{i:03}"), "{}"), None))
        .collect();
    s.write(ops).await.unwrap();
    let mut want: Vec<String> = (0..120).step_by(3).map(|i| format!("r{i:03}")).collect();
    want.push("missing".into());
    let got = s.get_many(t, &want).await.unwrap();
    assert_eq!(got.len(), 40);
    assert!(got.windows(2).all(|w| w[0].id < w[1].id));
}

async fn tables_are_independent(s: Arc<dyn Store>) {
    let (a, b) = (Table("cfK1"), Table("cfK2"));
    s.write(vec![
        put(a, Record::new("same", "A"), None),
        put(b, Record::new("same", "B"), None),
    ])
    .await
    .unwrap();
    assert_eq!(s.get(a, "same").await.unwrap().unwrap().body, "A");
    assert_eq!(s.get(b, "same").await.unwrap().unwrap().body, "B");
    assert_eq!(s.list_all(a, None).await.unwrap().len(), 1);
}

async fn concurrent_writers_lose_no_update(s: Arc<dyn Store>) {
    let t = Table("cfL");
    s.write(vec![put(t, Record::new("counter", "0"), None)])
        .await
        .unwrap();
    let writers = 8;
    let per_writer = 10;
    let tasks = (0..writers).map(|_| {
        let s = s.clone();
        tokio::spawn(async move {
            for _ in 0..per_writer {
                loop {
                    let cur = s.get(t, "counter").await.unwrap().unwrap();
                    let n: u64 = cur.body.parse().unwrap();
                    match s
                        .write(vec![put(
                            t,
                            Record::new("counter", (n + 1).to_string()),
                            Some(cur),
                        )])
                        .await
                    {
                        Ok(()) => break,
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        })
    });
    for r in join_all(tasks).await {
        r.unwrap();
    }
    let c = s.get(t, "counter").await.unwrap().unwrap();
    assert_eq!(c.body, (writers * per_writer).to_string());
    assert_eq!(c.version, 1 + (writers * per_writer) as u64);
}

async fn large_batches_are_all_or_nothing(s: Arc<dyn Store>) {
    let t = Table("cfM");
    // Larger than one DynamoDB transaction (100 items): a backend must still apply it whole.
    let ops: Vec<Write> = (0..150)
        .map(|i| {
            put(
                t,
                Record::new(format!("n{i:04}"), "{}")
                    .with_unique("cfM-nid", i.to_string())
                    .with_lookup("type", "Node"),
                None,
            )
        })
        .collect();
    s.write(ops).await.unwrap();
    assert_eq!(s.list_all(t, None).await.unwrap().len(), 150);
    // A conflict at the very end of a large batch must undo everything before it.
    let existing = s.get(t, "n0149").await.unwrap().unwrap();
    let mut ops: Vec<Write> = (150..300)
        .map(|i| {
            put(
                t,
                Record::new(format!("n{i:04}"), "{}").with_unique("cfM-nid", i.to_string()),
                None,
            )
        })
        .collect();
    ops.push(put(
        t,
        Record::new("n0149", "late"),
        Some(Record {
            version: existing.version + 7,
            ..existing
        }),
    ));
    let e = s.write(ops).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    assert_eq!(
        s.list_all(t, None).await.unwrap().len(),
        150,
        "nothing of the failed batch remains"
    );
    assert!(
        s.get_unique(&IndexKey::new("cfM-nid", "200"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(s.get(t, "n0149").await.unwrap().unwrap().body, "{}");
}

async fn upserts_overwrite_without_reading(s: Arc<dyn Store>) {
    let t = Table("cfN");
    let up = |body: &str| Write::Upsert {
        table: t,
        record: Record::new("last", body),
    };
    s.write(vec![up("1")]).await.unwrap();
    let r = s.get(t, "last").await.unwrap().unwrap();
    assert_eq!((r.version, r.body.as_str()), (1, "1"));
    s.write(vec![up("2")]).await.unwrap();
    let r = s.get(t, "last").await.unwrap().unwrap();
    assert_eq!((r.version, r.body.as_str()), (2, "2"));
    // An ordinary compare-and-swap on top of an upserted record works.
    s.write(vec![put(t, Record::new("last", "3"), Some(r))])
        .await
        .unwrap();
    assert_eq!(s.get(t, "last").await.unwrap().unwrap().version, 3);
    // Upserts cannot carry index keys: nothing could retire stale ones.
    let bad = Write::Upsert {
        table: t,
        record: Record::new("x", "{}").with_lookup("a", "b"),
    };
    assert!(matches!(
        s.write(vec![bad]).await,
        Err(StoreError::InvalidBatch(_))
    ));
    assert!(s.get(t, "x").await.unwrap().is_none());
}

async fn get_keys_reads_across_tables(s: Arc<dyn Store>) {
    let (a, b) = (Table("cfO1"), Table("cfO2"));
    s.write(vec![
        put(a, Record::new("x", "A"), None),
        put(b, Record::new("x", "B"), None),
        put(b, Record::new("y", "BY"), None),
    ])
    .await
    .unwrap();
    let keys = [
        (a, "x".to_string()),
        (b, "x".to_string()),
        (b, "y".to_string()),
        (a, "missing".to_string()),
    ];
    let mut got: Vec<(Table, String, String)> = s
        .get_keys(&keys)
        .await
        .unwrap()
        .into_iter()
        .map(|(t, r)| (t, r.id, r.body))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (a, "x".into(), "A".into()),
            (b, "x".into(), "B".into()),
            (b, "y".into(), "BY".into())
        ]
    );
    assert_eq!(s.get_keys(&keys[..1]).await.unwrap().len(), 1);
    assert!(s.get_keys(&[]).await.unwrap().is_empty());
}

async fn ping_answers(s: Arc<dyn Store>) {
    s.ping().await.unwrap();
}
