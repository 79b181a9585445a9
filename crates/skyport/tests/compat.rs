//! OpenCHAMI compatibility as golden exchanges: every file in `tests/compat/` is a sequence of
//! requests in upstream's shapes and the answers upstream gives (status, JSON body, text body,
//! headers), read from upstream's source (each file says where). They run against everything
//! `skyport serve` mounts (auth off, as upstream SMD and BSS run by default), once on the
//! embedded store and once on DynamoDB Local behind the harness that adds the transaction
//! conflicts and throttling DynamoDB Local never produces, and every SMD or BSS answer is also
//! checked against upstream's OpenAPI spec where the spec documents the route.
//!
//! A file: `{"title", "upstream", "steps": [{"send": "METHOD /path?query", "body"?, "raw"?,
//! "headers"?, "status", "json"?, "text"?, "headers_out"?, "off_spec"?, "save"?}]}`. `json` is
//! compared whole, except that the string `"<any>"` matches any value that is present; `text` is
//! compared byte for byte. `save` keeps strings of an answer (by JSON pointer) that later steps
//! use as `${name}` in their path, body and expected answer (a reservation's random key).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use skyport_store::Store;
use skyport_testkit::app::Api;
use skyport_testkit::spec::Spec;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    title: String,
    upstream: String,
    steps: Vec<Step>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    send: String,
    #[serde(default)]
    body: Option<Value>,
    /// A body sent as these bytes (malformed input).
    #[serde(default)]
    raw: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    status: u16,
    #[serde(default)]
    json: Option<Value>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    headers_out: BTreeMap<String, String>,
    /// Why this answer is not checked against the spec: where upstream's code answers what
    /// its spec does not document (the code is what clients meet).
    #[serde(default)]
    off_spec: Option<String>,
    /// Strings of the answer kept for later steps: name → JSON pointer.
    #[serde(default)]
    save: BTreeMap<String, String>,
}

/// `text` with every `${name}` replaced by what was saved under `name`.
fn substitute(text: &str, saved: &BTreeMap<String, String>) -> String {
    saved.iter().fold(text.to_string(), |t, (k, v)| {
        t.replace(&format!("${{{k}}}"), v)
    })
}

/// [`substitute`] in every string of a JSON value.
fn substitute_json(v: &Value, saved: &BTreeMap<String, String>) -> Value {
    match v {
        Value::String(s) => Value::String(substitute(s, saved)),
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute_json(x, saved)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), substitute_json(x, saved)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn cases() -> Vec<(String, Case)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/compat");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no golden files in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let text = std::fs::read_to_string(&p).unwrap();
            let case: Case = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, case)
        })
        .collect()
}

/// Settings as upstream BSS's defaults, with a cloud-init address to advertise.
fn settings() -> skyport_ipxe::Settings {
    skyport_ipxe::Settings {
        advertise: Some("http://10.0.2.2:27777/cloud-init".into()),
        ..skyport_ipxe::Settings::default()
    }
}

struct Specs {
    smd: Spec,
    bss: Spec,
}

impl Specs {
    fn load() -> Self {
        let smd = Spec::openchami("OpenCHAMI-smd_api_swagger_v2.yaml")
            .unwrap()
            .deviation("Response_1.0.0", "code")
            .deviation("Values.1.0.0_Values", "*")
            // The lock routes' result: the spec requires `code` and `message`, which SMD's
            // CompLockV2UpdateResult never has.
            .deviation("XnameResponse_1.0.0", "code")
            .deviation("XnameResponse_1.0.0", "message")
            // SMD sends `"RedfishSubtype":""` when the BMC reports no type (no `omitempty`), which
            // the spec's enum does not list.
            .deviation(
                "ComponentEndpoint.1.0.0_ComponentEndpoint",
                "RedfishSubtype",
            )
            // SMD's SCNSubscription ID is an int64 (pkg/sm/subscriptions.go); the spec says
            // string.
            .deviation("Subscriptions_SCNSubscriptionArrayItem.1.0.0", "ID");
        Specs {
            smd,
            bss: Spec::openchami("OpenCHAMI-bss_api_swagger.yaml").unwrap(),
        }
    }

    /// Checks an answer against the spec of its service where the spec documents the route.
    fn check(&self, method: &str, path: &str, status: u16, body: &Value) -> anyhow::Result<()> {
        let (spec, p) = if let Some(p) = path.strip_prefix("/hsm/v2") {
            (&self.smd, p)
        } else if path.starts_with("/boot/v1") {
            (&self.bss, path)
        } else {
            return Ok(());
        };
        match spec.template(method, p) {
            Some(t) => spec.check(method, &t, status, body),
            None => Ok(()),
        }
    }
}

/// Whether `got` is `want`, `"<any>"` in `want` matching any value.
fn matches(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::String(w), _) if w == "<any>" => true,
        (Value::Object(w), Value::Object(g)) => {
            w.len() == g.len()
                && w.iter()
                    .all(|(k, v)| g.get(k).is_some_and(|gv| matches(v, gv)))
        }
        (Value::Array(w), Value::Array(g)) => {
            w.len() == g.len() && w.iter().zip(g).all(|(a, b)| matches(a, b))
        }
        _ => want == got,
    }
}

async fn run(store_name: &str, store: impl Fn(&str) -> futures_store::StoreFut) {
    let specs = Specs::load();
    for (name, case) in cases() {
        // As `skyport serve` wires it: component changes carry their SCN notifications.
        let store: Arc<dyn Store> = skyport_inventory::scn::Notifying::wrap(store(&name).await);
        let dir = tempfile::tempdir().unwrap();
        let blobs =
            Arc::new(skyport_images::FsBlobs::open(dir.path(), "http://127.0.0.1:1").unwrap());
        let app = skyport::api(
            store,
            settings(),
            blobs,
            "http://10.0.2.2:27777/cloud-init".into(),
            Arc::new(skyport_sites::LocalCredentials::new(None)),
            None,
            None,
        );
        let api = Api::new(skyport_http::app(app), Specs::load().bss);
        let mut saved = BTreeMap::new();
        for (i, step) in case.steps.iter().enumerate() {
            let at = format!(
                "{store_name}: {name} ({}) step {i}: {}",
                case.title, step.send
            );
            let send = substitute(&step.send, &saved);
            let (method, uri) = send.split_once(' ').expect("METHOD /path");
            let mut headers: Vec<(&str, &str)> = step
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let body = match (&step.body, &step.raw) {
                (Some(b), _) => {
                    headers.push(("content-type", "application/json"));
                    serde_json::to_vec(&substitute_json(b, &saved)).unwrap()
                }
                (None, Some(r)) => r.as_bytes().to_vec(),
                (None, None) => Vec::new(),
            };
            let r = api.raw(method, uri, &headers, body).await;
            let raw = String::from_utf8_lossy(&r.raw).to_string();
            if std::env::var_os("SKYPORT_COMPAT_SHOW").is_some() {
                // To write a new file: see every answer (then check each against upstream).
                eprintln!("{at}\n  -> {} {raw}", r.status.as_u16());
            }
            assert_eq!(r.status.as_u16(), step.status, "{at}: status; body: {raw}");
            let path = uri.split('?').next().unwrap_or(uri);
            match &step.off_spec {
                Some(why) => assert!(!why.is_empty(), "{at}: say why it is off the spec"),
                None => specs
                    .check(method, path, r.status.as_u16(), &r.body)
                    .unwrap_or_else(|e| panic!("{at}: {e:#}")),
            }
            if let Some(want) = &step.json {
                let want = &substitute_json(want, &saved);
                assert!(
                    matches(want, &r.body),
                    "{at}: body\n  want {want}\n  got  {raw}"
                );
            }
            if let Some(want) = &step.text {
                assert_eq!(&raw, want, "{at}: text body");
            }
            for (k, v) in &step.headers_out {
                let got = r.headers.get(k).map(|h| h.to_str().unwrap_or("<binary>"));
                assert_eq!(got, Some(v.as_str()), "{at}: header {k}");
            }
            for (k, pointer) in &step.save {
                let v = r.body.pointer(pointer).and_then(Value::as_str);
                let v = v.unwrap_or_else(|| panic!("{at}: no string at {pointer} to save"));
                saved.insert(k.clone(), v.to_string());
            }
        }
        assert!(
            !case.upstream.is_empty(),
            "{name}: say where upstream does this"
        );
    }
}

mod futures_store {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;

    pub type StoreFut = Pin<Box<dyn Future<Output = Arc<dyn skyport_store::Store>>>>;

    pub fn boxed(f: impl Future<Output = Arc<dyn skyport_store::Store>> + 'static) -> StoreFut {
        Box::pin(f)
    }
}

#[tokio::test]
async fn golden_exchanges_on_the_embedded_store() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    run("sqlite", |name| {
        let path = dir.path().join(format!("{name}.db"));
        futures_store::boxed(async move {
            Arc::new(skyport_store_sqlite::SqliteStore::open(path).unwrap()) as Arc<dyn Store>
        })
    })
    .await;
}

/// The same exchanges on DynamoDB Local, behind the harness that holds transactions' items
/// (so concurrent writers meet `TransactionConflict`) and throttles a few calls, as DynamoDB
/// does and DynamoDB Local never does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_exchanges_on_dynamodb_local() {
    use skyport_testkit::dynamo_harness::{DynamoHarness, HarnessConfig};
    let ddb = skyport_testkit::DynamoLocal::start().expect("DynamoDB Local");
    let harness = DynamoHarness::start(&ddb.endpoint(), HarnessConfig::api_suite())
        .await
        .unwrap();
    let endpoint = harness.endpoint();
    run("dynamodb", |name| {
        let endpoint = endpoint.clone();
        let table = format!(
            "compat-{}",
            name.trim_end_matches(".json")
                .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
        );
        futures_store::boxed(async move {
            let client = skyport_testkit::dynamo_client(&endpoint, None).await;
            let s = skyport_store_dynamo::DynamoStore::new(client, &table);
            s.ensure_table().await.unwrap();
            Arc::new(s) as Arc<dyn Store>
        })
    })
    .await;
}
