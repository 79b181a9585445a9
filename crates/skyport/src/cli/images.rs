//! `skyport image`: the boot-image registry. `upload` hashes the file locally, registers it,
//! sends the bytes straight to object storage through the signed URLs the registry returns
//! (in parts for large files), and asks the registry to verify them. An upload that fails or is
//! interrupted removes its pending registration; running the same command again starts it over,
//! and one that already finished is recognised by its SHA-256. A registered image therefore never
//! points at missing bytes.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use skyport_client::{Client, segment};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{CliResult, Global, delete, print, show};

const IMAGES: &str = "/images/v1/images";

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("KIND", "kind"),
    ("ARCH", "arch"),
    ("SIZE", "size"),
    ("STATE", "state"),
    ("SHA256", "sha256"),
];

#[derive(Subcommand, Debug)]
pub enum ImageCmd {
    /// Registers and uploads a kernel, initrd or root image; boot parameters then name it as
    /// `image:<id>`.
    ///
    /// Example:
    ///   skyport image upload vmlinuz-6.1 --name vmlinuz --version 6.1 --kind kernel
    Upload {
        file: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: String,
        #[arg(long, default_value = "x86_64")]
        arch: String,
        /// kernel, initrd or rootfs.
        #[arg(long)]
        kind: String,
    },
    List,
    Get {
        id: String,
    },
    Delete {
        id: String,
    },
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let b = ProgressBar::with_draw_target(
        Some(len),
        if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>9} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_message(what.to_string());
    b
}

async fn sha256_of(path: &Path, len: u64) -> anyhow::Result<String> {
    let mut f = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    let b = bar(len, "hashing");
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .await
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        b.inc(n as u64);
    }
    b.finish_and_clear();
    Ok(skyport_images::hex(&h.finalize()))
}

/// `len` bytes of `path` from `offset`, as a streamed request body that advances `bar`.
async fn body(
    path: &Path,
    offset: u64,
    len: u64,
    b: &ProgressBar,
) -> anyhow::Result<reqwest::Body> {
    let mut f = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    f.seek(std::io::SeekFrom::Start(offset)).await?;
    let b = b.clone();
    let stream = futures::stream::unfold((f, len), move |(mut f, left)| {
        let b = b.clone();
        async move {
            if left == 0 {
                return None;
            }
            let mut buf = vec![0u8; (1 << 20).min(left as usize)];
            match f.read(&mut buf).await {
                Ok(0) => Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the file got shorter while uploading",
                    )),
                    (f, 0),
                )),
                Ok(n) => {
                    buf.truncate(n);
                    b.inc(n as u64);
                    Some((Ok(buf), (f, left - n as u64)))
                }
                Err(e) => Some((Err(e), (f, 0))),
            }
        }
    });
    Ok(reqwest::Body::wrap_stream(stream))
}

async fn put(
    c: &Client,
    url: &str,
    body: reqwest::Body,
    len: u64,
) -> anyhow::Result<Option<String>> {
    let resp = c
        .http()
        .put(url)
        .header(reqwest::header::CONTENT_LENGTH, len)
        .body(body)
        .send()
        .await
        .map_err(|e| anyhow!("uploading to object storage: {e}"))?;
    let status = resp.status();
    let etag = resp
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        bail!(
            "object storage refused the upload: HTTP {}: {}",
            status.as_u16(),
            text.chars().take(300).collect::<String>()
        );
    }
    Ok(etag)
}

/// Sends the bytes as the registration asked and completes it.
async fn send_bytes(
    c: &Client,
    id: &str,
    upload: &Value,
    path: &Path,
    len: u64,
) -> anyhow::Result<Value> {
    let b = bar(len, "uploading");
    let mut complete = json!({});
    if upload["method"] == "multipart" {
        let part_size = upload["part_size"]
            .as_u64()
            .context("multipart upload without part_size")?;
        let mut done = Vec::new();
        for p in upload["parts"]
            .as_array()
            .context("multipart upload without parts")?
        {
            let number = p["number"].as_u64().context("part without number")?;
            let url = p["url"].as_str().context("part without url")?;
            let offset = (number - 1) * part_size;
            let n = part_size.min(len.saturating_sub(offset));
            let etag = put(c, url, body(path, offset, n, &b).await?, n)
                .await?
                .with_context(|| format!("part {number}: object storage sent no ETag"))?;
            done.push(json!({"number": number, "etag": etag}));
        }
        complete = json!({"parts": done});
    } else {
        let url = upload["url"].as_str().context("upload without url")?;
        put(c, url, body(path, 0, len, &b).await?, len).await?;
    }
    b.finish_and_clear();
    Ok(c.send(
        Method::POST,
        &format!("{IMAGES}/{}/complete", segment(id)),
        Some(&complete),
    )
    .await?)
}

async fn upload(
    g: &Global,
    file: &Path,
    name: &str,
    version: &str,
    arch: &str,
    kind: &str,
) -> anyhow::Result<Value> {
    let len = std::fs::metadata(file)
        .with_context(|| format!("{}", file.display()))?
        .len();
    if len == 0 {
        bail!("{} is empty", file.display());
    }
    if !["kernel", "initrd", "rootfs"].contains(&kind) {
        bail!("--kind must be kernel, initrd or rootfs, got {kind:?}");
    }
    let c = g.client().map_err(|e| anyhow!("{e}"))?;
    let sha = sha256_of(file, len).await?;
    let reg = json!({"name": name, "version": version, "arch": arch, "kind": kind,
        "size": len, "sha256": sha});
    let id = format!("{name}-{version}-{arch}-{kind}");
    let registered = match c.send(Method::POST, IMAGES, Some(&reg)).await {
        Ok(v) => v,
        Err(e) if e.status() == Some(409) => {
            let have = c
                .get_json(&format!("{IMAGES}/{}", segment(&id)), &[])
                .await?;
            if have["state"] == "ready" {
                if have["sha256"] == sha.as_str() && have["size"] == len {
                    eprintln!("skyport: image {id} is already uploaded with these bytes");
                    return Ok(have);
                }
                bail!(
                    "image {id} is already registered with other bytes (SHA-256 {}); delete it first or choose another --version",
                    have["sha256"].as_str().unwrap_or("?")
                );
            }
            // A pending registration is an upload that never finished: start it over.
            eprintln!("skyport: image {id} has an unfinished upload; starting it over");
            c.send(Method::DELETE, &format!("{IMAGES}/{}", segment(&id)), None)
                .await?;
            c.send(Method::POST, IMAGES, Some(&reg)).await?
        }
        Err(e) => return Err(e.into()),
    };
    let id = registered["image"]["id"]
        .as_str()
        .context("registration without an image id")?
        .to_string();
    let sent = tokio::select! {
        r = send_bytes(&c, &id, &registered["upload"], file, len) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    match sent {
        Ok(v) => Ok(v),
        Err(e) => {
            // Never leave a registration whose bytes are missing.
            if let Err(d) = c
                .send(Method::DELETE, &format!("{IMAGES}/{}", segment(&id)), None)
                .await
            {
                eprintln!("skyport: could not remove the pending registration of {id}: {d}");
            }
            Err(e.context(format!("uploading {} as image {id}", file.display())))
        }
    }
}

pub async fn image(g: &Global, cmd: &ImageCmd) -> CliResult {
    match cmd {
        ImageCmd::Upload {
            file,
            name,
            version,
            arch,
            kind,
        } => {
            let v = upload(g, file, name, version, arch, kind).await?;
            print(g.output, &v, COLUMNS)
        }
        ImageCmd::List => {
            let v = g.client()?.get_json(IMAGES, &[]).await?;
            print(g.output, &v, COLUMNS)
        }
        ImageCmd::Get { id } => {
            show(
                g,
                &g.client()?,
                &format!("{IMAGES}/{}", segment(id)),
                COLUMNS,
            )
            .await
        }
        ImageCmd::Delete { id } => delete(&g.client()?, &format!("{IMAGES}/{}", segment(id))).await,
    }
}
