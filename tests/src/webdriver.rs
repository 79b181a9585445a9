//! A real browser for the console's end-to-end tests: Debian's headless Chromium driven by its
//! own `chromedriver` over the W3C WebDriver protocol (a handful of JSON calls, spoken here
//! directly rather than through a client crate), and the axe-core accessibility checker run in
//! the page. The driver is killed and the session ended when the [`Browser`] drops.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    /// Where screenshots are written.
    pub shots: PathBuf,
}

/// `chromedriver` and `chromium`: from `SKYPORT_CHROMEDRIVER`/`SKYPORT_CHROMIUM`, else Debian's.
fn tools() -> (PathBuf, PathBuf) {
    let pick = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(default))
    };
    (
        pick("SKYPORT_CHROMEDRIVER", "/usr/bin/chromedriver"),
        pick("SKYPORT_CHROMIUM", "/usr/bin/chromium"),
    )
}

impl Browser {
    /// Starts a driver and a headless browser with a laptop-sized window; screenshots go to
    /// `shots`.
    pub async fn start(shots: &Path) -> anyhow::Result<Browser> {
        let (driver_bin, chromium) = tools();
        std::fs::create_dir_all(shots)?;
        let port = skyport_testkit::free_port()?;
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", driver_bin.display()))?;
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            if Instant::now() > deadline {
                bail!("{} did not start", driver_bin.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = shots.join(".profile");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1366,900",
                         format!("--user-data-dir={}", profile.display())],
            }
        }}});
        let mut b = Browser {
            driver,
            http,
            session: String::new(),
            shots: shots.to_path_buf(),
        };
        let v = b
            .call("POST", &format!("{base}/session"), Some(caps))
            .await?;
        b.session = format!(
            "{base}/session/{}",
            v["sessionId"].as_str().context("no session id")?
        );
        b.cmd(
            "POST",
            "/timeouts",
            json!({"script": 60_000, "pageLoad": 60_000}),
        )
        .await?;
        Ok(b)
    }

    async fn call(&self, method: &str, url: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let m = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut r = self.http.request(m, url);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .with_context(|| format!("{method} {url}"))?;
        if !status.is_success() {
            bail!("{method} {url}: {status}: {}", v["value"]);
        }
        Ok(v["value"].clone())
    }

    async fn cmd(&self, method: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        let body = (method != "GET").then_some(body);
        self.call(method, &format!("{}{path}", self.session), body)
            .await
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.cmd("POST", "/url", json!({ "url": url })).await?;
        Ok(())
    }

    pub async fn url(&self) -> anyhow::Result<String> {
        Ok(self
            .cmd("GET", "/url", Value::Null)
            .await?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    async fn element(&self, css: &str) -> anyhow::Result<String> {
        let v = self
            .cmd(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await
            .with_context(|| format!("finding {css:?}"))?;
        Ok(v[ELEMENT].as_str().context("no element id")?.to_string())
    }

    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let e = self.element(css).await?;
        self.cmd("POST", &format!("/element/{e}/click"), json!({}))
            .await?;
        Ok(())
    }

    pub async fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let e = self.element(css).await?;
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            json!({ "text": text }),
        )
        .await?;
        Ok(())
    }

    /// The text of the first element matching `css`, `None` if there is none. Read in the
    /// page in one step, so a page replaced meanwhile (a navigation, a live refresh) cannot
    /// leave a stale reference behind.
    pub async fn text(&self, css: &str) -> anyhow::Result<Option<String>> {
        let v = self
            .cmd(
                "POST",
                "/execute/sync",
                json!({"script": "const e = document.querySelector(arguments[0]); \
                                  return e ? e.innerText : null;", "args": [css]}),
            )
            .await?;
        Ok(v.as_str().map(str::to_string))
    }

    /// Waits until an element matching `css` exists (the page's live refresh may bring it).
    pub async fn wait_for(&self, css: &str, within: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(t) = self.text(css).await? {
                return Ok(t);
            }
            if Instant::now() > deadline {
                let body = self.text("main").await?.unwrap_or_default();
                bail!(
                    "no {css:?} within {within:?} on {}; the page says:\n{body}",
                    self.url().await?
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Waits until the first element matching `css` says `want` (after a click, the old page
    /// may still be the one shown for a moment).
    pub async fn wait_text(&self, css: &str, want: &str, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.text(css).await?;
            if got.as_deref() == Some(want) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{css:?} says {got:?}, not {want:?}, within {within:?} on {}",
                    self.url().await?
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Writes a PNG of the window to `<shots>/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        use base64::Engine;
        let v = self.cmd("GET", "/screenshot", Value::Null).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().context("no screenshot")?)?;
        let p = self.shots.join(format!("{name}.png"));
        std::fs::write(&p, png)?;
        Ok(p)
    }

    /// Runs `script` in the page (its `return` value comes back).
    pub async fn execute(&self, script: &str) -> anyhow::Result<Value> {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// A screenshot of the page (`<shots>/<shot>.png`), and a panic listing any WCAG 2 A/AA
    /// violation axe-core (`axe`, its source) finds in it: what the console's tests do on every
    /// page they open.
    pub async fn check_page(&self, axe: &str, shot: &str) {
        if let Err(e) = self.screenshot(shot).await {
            panic!("{shot}: no screenshot: {e:#}");
        }
        let v = match self.accessibility(axe).await {
            Ok(v) => v,
            Err(e) => panic!("{shot}: axe did not run: {e:#}"),
        };
        assert!(
            v.is_empty(),
            "{shot}: accessibility violations:\n{}",
            v.join("\n")
        );
    }

    /// The WCAG 2 A and AA violations axe-core finds in the current page (`axe` is the source
    /// of axe.min.js), as "rule: target" lines.
    pub async fn accessibility(&self, axe: &str) -> anyhow::Result<Vec<String>> {
        self.execute(axe).await?;
        let v = self
            .cmd(
                "POST",
                "/execute/async",
                json!({"script": "const done = arguments[arguments.length - 1]; \
                    axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}}) \
                    .then(r => done(r.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', ')))) \
                    .catch(e => done(['axe failed: ' + e]));",
                    "args": []}),
            )
            .await?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes the browser (killing the driver alone would leave it
        // running); a blocking request, since drop cannot await.
        use std::io::{Read, Write};
        if let Some((addr, path)) = self
            .session
            .strip_prefix("http://")
            .and_then(|r| r.split_once('/'))
            && let Ok(mut s) = std::net::TcpStream::connect(addr)
        {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                s,
                "DELETE /{path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = s.read_to_end(&mut Vec::new());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// axe-core's source, from `SKYPORT_AXE_JS` (installed by `scripts/install-test-tools`).
pub fn axe_source() -> anyhow::Result<String> {
    let p = std::env::var_os("SKYPORT_AXE_JS")
        .map(PathBuf::from)
        .context("SKYPORT_AXE_JS is not set: run `eval \"$(scripts/install-test-tools)\"` first")?;
    std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
}
