//! The DynamoDB backend of the Skyport store.
//!
//! # Key design
//!
//! One table (default name `skyport`, on-demand billing), string keys `pk` (partition) and `sk`
//! (sort), and three kinds of item:
//!
//! | item | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | record | `r#<table>` | record id (xname, MAC id, group label) | `v` version, `body`, `lk`/`uq` (its index keys) |
//! | lookup | `l#<table>#<name>#<value>` | record id | a full copy of the record's attributes |
//! | unique | `u#<name>#<value>` | `-` | `ot`, `oi`: the owning table and id |
//!
//! * **Single-record reads** (`GET /State/Components/{xname}`) are one `GetItem` on the record item.
//! * **Listing a table** is a `Query` on `pk = r#<table>`, paginated by `sk`: no `Scan` ever.
//! * **Lookups** take the place of GSIs for type, MAC, IP, NID and group-member queries:
//!   `?type=Node` is one `Query` on `pk = l#Components#type#Node`, returning whole records because
//!   each lookup item carries a copy. Lookup items are written in the *same transaction* as their
//!   record. A GSI could not do this job: GSIs are eventually consistent (a node's new IP would not
//!   be found for a moment after it was written, and cloud-init identifies nodes by IP), they index
//!   one value per item (an interface has several IPs, a group many members), and they cannot
//!   enforce uniqueness.
//! * **Uniqueness** (one NID per node, one MAC per BMC) is a unique item claimed with a conditional
//!   `Put` (`attribute_not_exists(pk) OR ot/oi = me`) inside the record's transaction. A concurrent
//!   second claimant fails its condition: there is no read-then-write anywhere.
//! * **Optimistic concurrency**: a replace or delete is conditioned on `v = <version read>`; a
//!   create on `attribute_not_exists(pk)`.
//!
//! A batch that fits in one `TransactWriteItems` (100 items) is atomic in DynamoDB itself. A larger
//! batch (a 1,000-node bulk POST) is split into transactions along groups of operations that share
//! a unique key; if a later transaction fails, the earlier ones are undone with compensating
//! conditional writes before the error is returned, so a rejected bulk request leaves nothing
//! behind. (Between the first commit and the undo, a reader may briefly see part of the batch.)
//! A batch of one item uses a plain conditional `PutItem`/`DeleteItem` at half the write cost.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, KeySchemaElement,
    KeyType, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure, ScalarAttributeType,
    TransactWriteItem, Update,
};
use skyport_store::{
    IndexKey, Page, PageRequest, Record, Result, Store, StoreError, Table, Write, validate_batch,
};

/// DynamoDB's limit on items in one `TransactWriteItems`.
const MAX_TX_ITEMS: usize = 100;
/// DynamoDB's limit on keys in one `BatchGetItem`.
const MAX_BATCH_GET: usize = 100;

type Item = HashMap<String, AttributeValue>;

/// Calls made to DynamoDB, by operation; read by the benchmark to report calls per request.
#[derive(Debug, Default)]
pub struct CallCounts {
    pub get_item: AtomicU64,
    pub batch_get_item: AtomicU64,
    pub query: AtomicU64,
    pub put_item: AtomicU64,
    pub delete_item: AtomicU64,
    pub update_item: AtomicU64,
    pub transact_write_items: AtomicU64,
}

impl CallCounts {
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BTreeMap::from([
            ("GetItem", l(&self.get_item)),
            ("BatchGetItem", l(&self.batch_get_item)),
            ("Query", l(&self.query)),
            ("PutItem", l(&self.put_item)),
            ("DeleteItem", l(&self.delete_item)),
            ("UpdateItem", l(&self.update_item)),
            ("TransactWriteItems", l(&self.transact_write_items)),
        ])
    }

    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

pub struct DynamoStore {
    client: Client,
    table: String,
    calls: Arc<CallCounts>,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn rec_pk(t: Table) -> String {
    format!("r#{}", t.name())
}

fn lookup_pk(t: Table, k: &IndexKey) -> String {
    format!("l#{}#{}#{}", t.name(), k.name, k.value)
}

fn unique_pk(k: &IndexKey) -> String {
    format!("u#{}#{}", k.name, k.value)
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn encode_keys(keys: &[IndexKey]) -> String {
    let pairs: Vec<(&str, &str)> = keys
        .iter()
        .map(|k| (k.name.as_str(), k.value.as_str()))
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into())
}

fn corrupt(table: &str, id: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        table: table.to_string(),
        id: id.to_string(),
        reason: reason.into(),
    }
}

fn decode_record(table: &str, item: &Item) -> Result<Record> {
    let get_s = |name: &str| -> Result<String> {
        match item.get(name) {
            Some(AttributeValue::S(v)) => Ok(v.clone()),
            _ => Err(corrupt(table, "?", format!("attribute {name} missing"))),
        }
    };
    let id = get_s("sk")?;
    let version = match item.get("v") {
        Some(AttributeValue::N(n)) => n
            .parse::<u64>()
            .map_err(|e| corrupt(table, &id, format!("version: {e}")))?,
        _ => return Err(corrupt(table, &id, "version missing")),
    };
    let keys = |name: &str| -> Result<Vec<IndexKey>> {
        let raw = get_s(name)?;
        let pairs: Vec<(String, String)> =
            serde_json::from_str(&raw).map_err(|e| corrupt(table, &id, format!("{name}: {e}")))?;
        Ok(pairs
            .into_iter()
            .map(|(n, v)| IndexKey::new(n, v))
            .collect())
    };
    Ok(Record {
        body: get_s("body")?,
        lookups: keys("lk")?,
        uniques: keys("uq")?,
        version,
        id,
    })
}

/// The attributes of a record item or lookup item for `record` at `version`.
fn record_attrs(pk: String, record: &Record, version: u64) -> Item {
    let mut item = key(pk, &record.id);
    item.insert("v".into(), AttributeValue::N(version.to_string()));
    item.insert("body".into(), s(record.body.clone()));
    item.insert("lk".into(), s(encode_keys(&record.lookups)));
    item.insert("uq".into(), s(encode_keys(&record.uniques)));
    item
}

#[derive(Debug, Clone)]
enum Cond {
    NotExists,
    Version(u64),
    /// Unique item: free, or already ours.
    FreeOrOwner(String, String),
    /// Unique item: held by this owner (who releases or hands it over).
    Owner(String, String),
}

impl Cond {
    fn expression(&self) -> (String, HashMap<String, AttributeValue>) {
        match self {
            Cond::NotExists => ("attribute_not_exists(pk)".into(), HashMap::new()),
            Cond::Version(v) => (
                "v = :v".into(),
                HashMap::from([(":v".into(), AttributeValue::N(v.to_string()))]),
            ),
            Cond::FreeOrOwner(t, i) => (
                "attribute_not_exists(pk) OR (ot = :ot AND oi = :oi)".into(),
                HashMap::from([(":ot".into(), s(t.clone())), (":oi".into(), s(i.clone()))]),
            ),
            Cond::Owner(t, i) => (
                "ot = :ot AND oi = :oi".into(),
                HashMap::from([(":ot".into(), s(t.clone())), (":oi".into(), s(i.clone()))]),
            ),
        }
    }
}

#[derive(Debug, Clone)]
enum ItemOp {
    /// Overwrite body and bump the version without a condition (for `Write::Upsert`).
    Upsert(Item, String),
    Put(Item, Option<Cond>),
    Delete(Item, Option<Cond>),
    Check(Item, Cond),
}

/// What an item op stands for, to turn a cancelled condition back into a store error.
#[derive(Debug, Clone)]
enum Origin {
    Record {
        table: String,
        id: String,
    },
    Unique {
        key: IndexKey,
        releaser: Option<(String, String)>,
    },
    Lookup,
}

#[derive(Debug)]
struct Tagged {
    op: ItemOp,
    origin: Origin,
}

fn build_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("building DynamoDB request: {e}"))
}

fn sdk_error<E: std::fmt::Debug>(what: &str, e: &SdkError<E>) -> StoreError {
    StoreError::Unavailable(format!("DynamoDB {what}: {e:?}"))
}

/// A request builder for one conditional item (`Put`, `Delete`, `ConditionCheck`, in a
/// transaction or alone) on `table`, addressed by `$set` (the item or its key), asking for the
/// old item when the condition fails. The SDK's builders share no trait, so the calls they
/// have in common are written once here.
macro_rules! conditional {
    ($builder:expr, $table:expr, $set:ident($arg:expr), $cond:expr) => {{
        let (expr, vals) = condition_parts($cond);
        $builder
            .table_name($table)
            .$set(Some($arg.clone()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .set_condition_expression(expr)
            .set_expression_attribute_values(vals)
    }};
}

/// One conditional single-item call, sent: `Some(old item)` when its condition failed (`$failed`
/// is that operation's own error variant for it), and the call's result.
macro_rules! send_conditional {
    ($self:ident.$op:ident().$set:ident($arg:expr), $cond:expr, $what:literal, $failed:path) => {{
        let r = conditional!($self.client.$op(), &$self.table, $set($arg), $cond)
            .send()
            .await;
        conditional_outcome($what, r, |e| match e {
            $failed(c) => Some(c.item().cloned()),
            _ => None,
        })
    }};
}

/// A condition as the SDK's optional setters take it: no values map where the condition has
/// no values (DynamoDB rejects an empty `ExpressionAttributeValues`).
fn condition_parts(cond: Option<&Cond>) -> (Option<String>, Option<Item>) {
    match cond.map(Cond::expression) {
        Some((expr, vals)) => (Some(expr), (!vals.is_empty()).then_some(vals)),
        None => (None, None),
    }
}

/// What a conditional single-item write came to: `Some(old item)` when its condition failed
/// (`failed` reads that from the operation's own error type), and the call's result.
fn conditional_outcome<O, E: std::fmt::Debug>(
    what: &str,
    r: std::result::Result<O, SdkError<E>>,
    failed: impl FnOnce(&E) -> Option<Option<Item>>,
) -> (Option<Option<Item>>, Result<()>) {
    let old = r
        .as_ref()
        .err()
        .and_then(|e| e.as_service_error())
        .and_then(failed);
    (old, r.map(|_| ()).map_err(|e| sdk_error(what, &e)))
}

impl DynamoStore {
    /// Wraps an SDK client built once at start-up. `table` is the DynamoDB table name.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            calls: Arc::new(CallCounts::default()),
        }
    }

    pub fn calls(&self) -> Arc<CallCounts> {
        self.calls.clone()
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// Creates the table if it does not exist (local development and tests; in AWS the SAM
    /// template owns the table).
    pub async fn ensure_table(&self) -> Result<()> {
        let exists = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await;
        if exists.is_ok() {
            return Ok(());
        }
        let attr = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_error)
        };
        let ks = |n: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(t)
                .build()
                .map_err(build_error)
        };
        let r = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .key_schema(ks("pk", KeyType::Hash)?)
            .key_schema(ks("sk", KeyType::Range)?)
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            // Lost a creation race with another process: the table exists, which is the goal.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error("CreateTable", &e)),
        }
    }

    async fn get_item(&self, pk: String, sk: &str) -> Result<Option<Item>> {
        bump(&self.calls.get_item);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &e))?;
        Ok(out.item)
    }

    /// `BatchGetItem` of records from any tables (they share one DynamoDB table), 100 keys a
    /// call, retrying unprocessed keys with backoff.
    async fn batch_get(&self, keys: &[(Table, String)]) -> Result<Vec<(Table, Record)>> {
        let mut out = Vec::new();
        for chunk in keys.chunks(MAX_BATCH_GET) {
            let items: Vec<Item> = chunk.iter().map(|(t, id)| key(rec_pk(*t), id)).collect();
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(items))
                    .consistent_read(true)
                    .build()
                    .map_err(build_error)?,
            );
            let mut attempts = 0u32;
            while let Some(req) = pending.take() {
                bump(&self.calls.batch_get_item);
                let resp = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, req)
                    .send()
                    .await
                    .map_err(|e| sdk_error("BatchGetItem", &e))?;
                if let Some(mut responses) = resp.responses
                    && let Some(items) = responses.remove(&self.table)
                {
                    for item in &items {
                        let pk = match item.get("pk") {
                            Some(AttributeValue::S(pk)) => pk.as_str(),
                            _ => "",
                        };
                        let Some(table) = chunk.iter().map(|(t, _)| *t).find(|t| rec_pk(*t) == pk)
                        else {
                            return Err(corrupt(
                                pk,
                                "?",
                                "BatchGetItem returned an item nobody asked for",
                            ));
                        };
                        out.push((table, decode_record(table.name(), item)?));
                    }
                }
                pending = resp
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys().is_empty());
                if pending.is_some() {
                    attempts += 1;
                    if attempts > 8 {
                        return Err(StoreError::Unavailable(
                            "BatchGetItem kept leaving keys unprocessed".into(),
                        ));
                    }
                    // Unprocessed keys mean throttling: back off before asking again.
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempts.min(6)))
                        .await;
                }
            }
        }
        Ok(out)
    }

    /// Translates a batch into item operations, grouped so that operations sharing a unique key
    /// (a NID handed from one node to another) always land in the same transaction.
    fn plan(&self, ops: &[Write]) -> Vec<Vec<Tagged>> {
        // Unique keys: who releases and who claims each one in this batch.
        let mut uniq: BTreeMap<IndexKey, (Option<usize>, Option<usize>)> = BTreeMap::new();
        for (i, op) in ops.iter().enumerate() {
            let (released, claimed) = skyport_store::unique_changes(op);
            for k in released {
                uniq.entry(k.clone()).or_default().0 = Some(i);
            }
            for k in claimed {
                uniq.entry(k.clone()).or_default().1 = Some(i);
            }
        }
        // Union-find over operations linked by a shared unique key.
        let mut parent: Vec<usize> = (0..ops.len()).collect();
        fn find(p: &mut [usize], i: usize) -> usize {
            let mut r = i;
            while p[r] != r {
                r = p[r];
            }
            p[i] = r;
            r
        }
        for (rel, cl) in uniq.values() {
            if let (Some(a), Some(b)) = (rel, cl) {
                let (ra, rb) = (find(&mut parent, *a), find(&mut parent, *b));
                parent[ra] = rb;
            }
        }
        let mut per_op: Vec<Vec<Tagged>> = ops.iter().map(|op| self.record_items(op)).collect();
        let owner = |i: usize| (ops[i].table().name().to_string(), ops[i].id().to_string());
        for (k, (rel, cl)) in &uniq {
            let pk = unique_pk(k);
            let (op, at) = match (rel, cl) {
                (Some(r), Some(c)) => {
                    let (t, i) = owner(*c);
                    let mut item = key(pk, "-");
                    item.insert("ot".into(), s(t));
                    item.insert("oi".into(), s(i));
                    let (rt, ri) = owner(*r);
                    (ItemOp::Put(item, Some(Cond::Owner(rt, ri))), *c)
                }
                (None, Some(c)) => {
                    let (t, i) = owner(*c);
                    let mut item = key(pk, "-");
                    item.insert("ot".into(), s(t.clone()));
                    item.insert("oi".into(), s(i.clone()));
                    (ItemOp::Put(item, Some(Cond::FreeOrOwner(t, i))), *c)
                }
                (Some(r), None) => {
                    let (t, i) = owner(*r);
                    (ItemOp::Delete(key(pk, "-"), Some(Cond::Owner(t, i))), *r)
                }
                (None, None) => continue,
            };
            let releaser = rel.map(owner);
            per_op[at].push(Tagged {
                op,
                origin: Origin::Unique {
                    key: k.clone(),
                    releaser,
                },
            });
        }
        // Pack groups into transactions of at most MAX_TX_ITEMS items.
        let mut groups: BTreeMap<usize, Vec<Tagged>> = BTreeMap::new();
        for (i, items) in per_op.into_iter().enumerate() {
            let root = find(&mut parent, i);
            groups.entry(root).or_default().extend(items);
        }
        let mut chunks: Vec<Vec<Tagged>> = vec![Vec::new()];
        for (_, g) in groups {
            let last_len = chunks.last().map_or(0, Vec::len);
            if last_len > 0 && last_len + g.len() > MAX_TX_ITEMS {
                chunks.push(Vec::new());
            }
            if let Some(last) = chunks.last_mut() {
                last.extend(g);
            }
        }
        chunks
    }

    /// The record item and lookup items of one operation.
    fn record_items(&self, op: &Write) -> Vec<Tagged> {
        let table = op.table();
        let origin = Origin::Record {
            table: table.name().to_string(),
            id: op.id().to_string(),
        };
        let mut out = Vec::new();
        let cond = match op.prev() {
            Some(p) => Cond::Version(p.version),
            None => Cond::NotExists,
        };
        match op {
            Write::Put { record, prev, .. } => {
                let version = prev.as_ref().map_or(1, |p| p.version + 1);
                out.push(Tagged {
                    op: ItemOp::Put(record_attrs(rec_pk(table), record, version), Some(cond)),
                    origin,
                });
                // Every current lookup item is rewritten: each carries a copy of the record.
                for k in distinct_lookups(record) {
                    out.push(Tagged {
                        op: ItemOp::Put(record_attrs(lookup_pk(table, k), record, version), None),
                        origin: Origin::Lookup,
                    });
                }
                let (removed, _) = skyport_store::lookup_changes(op);
                for k in removed {
                    out.push(Tagged {
                        op: ItemOp::Delete(key(lookup_pk(table, k), &record.id), None),
                        origin: Origin::Lookup,
                    });
                }
            }
            Write::Delete { prev, .. } => {
                out.push(Tagged {
                    op: ItemOp::Delete(key(rec_pk(table), &prev.id), Some(cond)),
                    origin,
                });
                for k in distinct_lookups(prev) {
                    out.push(Tagged {
                        op: ItemOp::Delete(key(lookup_pk(table, k), &prev.id), None),
                        origin: Origin::Lookup,
                    });
                }
            }
            Write::Check { prev, .. } => out.push(Tagged {
                op: ItemOp::Check(key(rec_pk(table), &prev.id), cond),
                origin,
            }),
            Write::Upsert { record, .. } => out.push(Tagged {
                op: ItemOp::Upsert(key(rec_pk(table), &record.id), record.body.clone()),
                origin,
            }),
        }
        out
    }

    fn to_transact(&self, t: &Tagged) -> Result<TransactWriteItem> {
        let b = TransactWriteItem::builder();
        Ok(match &t.op {
            ItemOp::Upsert(k, body) => {
                let (expr, vals) = upsert_expression(body);
                let u = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(k.clone()))
                    .update_expression(expr)
                    .set_expression_attribute_values(Some(vals))
                    .build()
                    .map_err(build_error)?;
                b.update(u).build()
            }
            ItemOp::Put(item, cond) => {
                let p = conditional!(Put::builder(), &self.table, set_item(item), cond.as_ref());
                b.put(p.build().map_err(build_error)?).build()
            }
            ItemOp::Delete(k, cond) => {
                let d = conditional!(Delete::builder(), &self.table, set_key(k), cond.as_ref());
                b.delete(d.build().map_err(build_error)?).build()
            }
            ItemOp::Check(k, c) => {
                let cc = conditional!(ConditionCheck::builder(), &self.table, set_key(k), Some(c));
                b.condition_check(cc.build().map_err(build_error)?).build()
            }
        })
    }

    /// The store error for a failed condition on `t`, given the item as it was (if returned).
    fn condition_failed(t: &Tagged, old: Option<&Item>) -> StoreError {
        match &t.origin {
            Origin::Record { table, id } => StoreError::Conflict {
                table: table.clone(),
                id: id.clone(),
            },
            Origin::Unique { key, releaser } => {
                let holder = old.and_then(|item| match (item.get("ot"), item.get("oi")) {
                    (Some(AttributeValue::S(t)), Some(AttributeValue::S(i))) => Some((t, i)),
                    _ => None,
                });
                match (holder, releaser) {
                    // We meant to release or hand over a key we no longer hold: our view is stale.
                    (_, Some((t, i))) => StoreError::Conflict {
                        table: t.clone(),
                        id: i.clone(),
                    },
                    (Some((t, i)), None) => StoreError::Duplicate {
                        key: key.clone(),
                        owner: format!("{t}/{i}"),
                    },
                    (None, None) => {
                        StoreError::Unavailable(format!("unique key {key}: condition failed"))
                    }
                }
            }
            Origin::Lookup => StoreError::Unavailable("lookup item condition failed".into()),
        }
    }

    async fn apply_chunk(&self, chunk: &[Tagged]) -> Result<()> {
        if let [single] = chunk {
            return self.apply_single(single).await;
        }
        let items = chunk
            .iter()
            .map(|t| self.to_transact(t))
            .collect::<Result<Vec<_>>>()?;
        bump(&self.calls.transact_write_items);
        let r = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(tc)) => {
                    for (t, reason) in chunk.iter().zip(tc.cancellation_reasons()) {
                        match reason.code() {
                            Some("ConditionalCheckFailed") => {
                                return Err(Self::condition_failed(t, reason.item()));
                            }
                            // Another transaction was writing the same item at the same moment.
                            Some("TransactionConflict") => {
                                if let Origin::Record { table, id } = &t.origin {
                                    return Err(StoreError::Conflict {
                                        table: table.clone(),
                                        id: id.clone(),
                                    });
                                }
                                return Err(StoreError::Conflict {
                                    table: "unique".into(),
                                    id: "-".into(),
                                });
                            }
                            _ => {}
                        }
                    }
                    Err(sdk_error("TransactWriteItems", &e))
                }
                _ => Err(sdk_error("TransactWriteItems", &e)),
            },
        }
    }

    async fn apply_single(&self, t: &Tagged) -> Result<()> {
        let (cond, result) = match &t.op {
            ItemOp::Upsert(k, body) => {
                bump(&self.calls.update_item);
                let (expr, vals) = upsert_expression(body);
                return self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(k.clone()))
                    .update_expression(expr)
                    .set_expression_attribute_values(Some(vals))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| sdk_error("UpdateItem", &e));
            }
            ItemOp::Put(item, cond) => {
                bump(&self.calls.put_item);
                send_conditional!(
                    self.put_item().set_item(item),
                    cond.as_ref(),
                    "PutItem",
                    PutItemError::ConditionalCheckFailedException
                )
            }
            ItemOp::Delete(k, cond) => {
                bump(&self.calls.delete_item);
                send_conditional!(
                    self.delete_item().set_key(k),
                    cond.as_ref(),
                    "DeleteItem",
                    DeleteItemError::ConditionalCheckFailedException
                )
            }
            ItemOp::Check(k, c) => {
                // A lone check writes nothing: read and compare instead.
                let (pk, sk) = match (k.get("pk"), k.get("sk")) {
                    (Some(AttributeValue::S(p)), Some(AttributeValue::S(s))) => {
                        (p.clone(), s.clone())
                    }
                    _ => return Err(StoreError::Unavailable("malformed check key".into())),
                };
                let item = self.get_item(pk, &sk).await?;
                let ok = match (c, &item) {
                    (Cond::Version(v), Some(i)) => {
                        matches!(i.get("v"), Some(AttributeValue::N(n)) if *n == v.to_string())
                    }
                    (Cond::NotExists, None) => true,
                    _ => false,
                };
                return if ok {
                    Ok(())
                } else {
                    Err(Self::condition_failed(t, item.as_ref()))
                };
            }
        };
        match cond {
            Some(old) => Err(Self::condition_failed(t, old.as_ref())),
            None => result,
        }
    }
}

/// The lookup keys of `r`, each once and in order (one transaction may not write an item twice).
fn distinct_lookups(r: &Record) -> Vec<&IndexKey> {
    let mut seen = Vec::new();
    for k in &r.lookups {
        if !seen.contains(&k) {
            seen.push(k);
        }
    }
    seen
}

/// `SET body, empty key lists; ADD 1 to the version` (creating the item at version 1).
fn upsert_expression(body: &str) -> (String, HashMap<String, AttributeValue>) {
    (
        "SET body = :b, lk = :e, uq = :e ADD v :one".into(),
        HashMap::from([
            (":b".into(), s(body)),
            (":e".into(), s("[]")),
            (":one".into(), AttributeValue::N("1".into())),
        ]),
    )
}

/// The writes that take `op` back, once it has been applied.
fn inverse(op: &Write) -> Option<Write> {
    match op {
        Write::Put {
            table,
            record,
            prev,
        } => {
            let applied = Record {
                version: prev.as_ref().map_or(1, |p| p.version + 1),
                ..record.clone()
            };
            Some(match prev {
                None => Write::Delete {
                    table: *table,
                    prev: applied,
                },
                Some(p) => Write::Put {
                    table: *table,
                    record: p.clone(),
                    prev: Some(applied),
                },
            })
        }
        Write::Delete { table, prev } => Some(Write::Put {
            table: *table,
            record: prev.clone(),
            prev: None,
        }),
        // An upsert overwrote a value nobody depends on; there is nothing to restore.
        Write::Check { .. } | Write::Upsert { .. } => None,
    }
}

#[async_trait::async_trait]
impl Store for DynamoStore {
    fn backend(&self) -> &'static str {
        "dynamodb"
    }

    async fn get(&self, table: Table, id: &str) -> Result<Option<Record>> {
        self.get_item(rec_pk(table), id)
            .await?
            .map(|i| decode_record(table.name(), &i))
            .transpose()
    }

    async fn get_many(&self, table: Table, ids: &[String]) -> Result<Vec<Record>> {
        let mut ids = ids.to_vec();
        ids.sort();
        ids.dedup();
        if let [one] = ids.as_slice() {
            // A single key is a plain GetItem: cheaper and one round trip.
            return Ok(self.get(table, one).await?.into_iter().collect());
        }
        let keys: Vec<(Table, String)> = ids.into_iter().map(|id| (table, id)).collect();
        let mut out: Vec<Record> = self
            .batch_get(&keys)
            .await?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn get_keys(&self, keys: &[(Table, String)]) -> Result<Vec<(Table, Record)>> {
        let mut keys = keys.to_vec();
        keys.sort();
        keys.dedup();
        if let [(table, id)] = keys.as_slice() {
            return Ok(self
                .get(*table, id)
                .await?
                .into_iter()
                .map(|r| (*table, r))
                .collect());
        }
        self.batch_get(&keys).await
    }

    async fn list(&self, table: Table, by: Option<&IndexKey>, page: PageRequest) -> Result<Page> {
        let pk = match by {
            Some(k) => lookup_pk(table, k),
            None => rec_pk(table),
        };
        let limit = page.limit.clamp(1, 10_000);
        let mut records = Vec::new();
        let mut after = page.after.clone();
        // DynamoDB may return fewer items than asked (1 MB page cap); keep going to fill the page.
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .limit(i32::try_from(limit - records.len()).unwrap_or(i32::MAX))
                .expression_attribute_values(":pk", s(pk.clone()));
            q = match &after {
                Some(a) => q
                    .key_condition_expression("pk = :pk AND sk > :after")
                    .expression_attribute_values(":after", s(a.clone())),
                None => q.key_condition_expression("pk = :pk"),
            };
            bump(&self.calls.query);
            let resp = q.send().await.map_err(|e| sdk_error("Query", &e))?;
            for item in resp.items() {
                records.push(decode_record(table.name(), item)?);
            }
            let more = resp.last_evaluated_key.is_some();
            if !more {
                return Ok(Page {
                    records,
                    next: None,
                });
            }
            if records.len() >= limit {
                let next = records.last().map(|r| r.id.clone());
                return Ok(Page { records, next });
            }
            after = match resp.last_evaluated_key.as_ref().and_then(|k| k.get("sk")) {
                Some(AttributeValue::S(sk)) => Some(sk.clone()),
                _ => {
                    return Err(StoreError::Unavailable(
                        "Query returned a malformed LastEvaluatedKey".into(),
                    ));
                }
            };
        }
    }

    async fn get_unique(&self, key: &IndexKey) -> Result<Option<(String, String)>> {
        let item = self.get_item(unique_pk(key), "-").await?;
        Ok(item.and_then(|i| match (i.get("ot"), i.get("oi")) {
            (Some(AttributeValue::S(t)), Some(AttributeValue::S(id))) => {
                Some((t.clone(), id.clone()))
            }
            _ => None,
        }))
    }

    async fn write(&self, ops: Vec<Write>) -> Result<()> {
        validate_batch(&ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        let chunks = self.plan(&ops);
        if chunks.len() == 1 {
            return self.apply_chunk(&chunks[0]).await;
        }
        // Several transactions: remember which operations each committed, to undo on failure.
        let op_of = |t: &Tagged| -> Option<(String, String)> {
            match &t.origin {
                Origin::Record { table, id } => Some((table.clone(), id.clone())),
                _ => None,
            }
        };
        let mut committed: Vec<(String, String)> = Vec::new();
        for chunk in &chunks {
            if let Err(e) = self.apply_chunk(chunk).await {
                let undo: Vec<Write> = ops
                    .iter()
                    .filter(|op| {
                        committed
                            .iter()
                            .any(|(t, i)| t == op.table().name() && i == op.id())
                    })
                    .filter_map(inverse)
                    .collect();
                if !undo.is_empty() {
                    tracing::warn!(error = %e, undo = undo.len(), "bulk write failed part-way; undoing committed part");
                    if let Err(ue) = Box::pin(self.write(undo)).await {
                        tracing::error!(error = %ue, "undo of a partially applied bulk write failed");
                        return Err(StoreError::Unavailable(format!(
                            "bulk write failed ({e}) and its undo failed ({ue}); some records may have been written"
                        )));
                    }
                }
                return Err(e);
            }
            committed.extend(chunk.iter().filter_map(op_of));
        }
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        self.get_item("ping".into(), "-").await.map(|_| ())
    }
}
