//! The TFTP server against a client written here from RFC 1350/2347/2348/2349, over loopback:
//! option negotiation, whole transfers (with the final short or empty block and block number
//! wrap-around), refusals on the wire, and a client that stops acknowledging.

use std::sync::Mutex;

use proptest::prelude::*;

use super::*;

fn rrq(name: &str, opts: &[(&str, &str)]) -> Vec<u8> {
    let mut p = RRQ.to_be_bytes().to_vec();
    for f in [name, "octet"] {
        p.extend_from_slice(f.as_bytes());
        p.push(0);
    }
    for (k, v) in opts {
        for f in [k, v] {
            p.extend_from_slice(f.as_bytes());
            p.push(0);
        }
    }
    p
}

#[test]
fn requests_and_options_are_read_as_the_rfcs_say() {
    let r = parse_request(&rrq(
        "/undionly.kpxe",
        &[
            ("blksize", "1468"),
            ("tsize", "0"),
            ("timeout", "3"),
            ("windowsize", "8"),
        ],
    ))
    .unwrap();
    assert_eq!(
        r,
        ReadRequest {
            file: "/undionly.kpxe".into(),
            blksize: Some(1468),
            tsize: true,
            timeout: Some(Duration::from_secs(3)),
        }
    );
    // Too big a block is lowered to what fits a frame; out-of-range values are ignored.
    let r = parse_request(&rrq("a", &[("BLKSIZE", "65464"), ("timeout", "0")])).unwrap();
    assert_eq!((r.blksize, r.timeout), (Some(MAX_BLOCK), None));
    // A long timeout would let one request hold a session for minutes: not granted.
    let r = parse_request(&rrq("a", &[("timeout", "30")])).unwrap();
    assert_eq!(r.timeout, None);
    let mut wrq = rrq("a", &[]);
    wrq[1] = 2;
    assert_eq!(parse_request(&wrq), Err(TftpError::NotRead(2)));
    assert!(parse_request(b"\x00\x01a\x00").is_err(), "no mode");
    assert!(
        parse_request(b"\x00\x01a\x00octet").is_err(),
        "not terminated"
    );
    assert!(parse_request(b"\x00\x01a\x00mail\x00").is_err());
    assert!(parse_request(b"\x00\x01a\x00octet\x00blksize\x00").is_err());
}

#[test]
fn nothing_outside_the_root_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ipxe");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("ipxe.efi"), b"efi").unwrap();
    std::fs::write(dir.path().join("secret"), b"s").unwrap();
    // Debian's /usr/lib/ipxe/ipxe.efi is a link to /boot/ipxe.efi: links in the root work.
    std::os::unix::fs::symlink(dir.path().join("secret"), root.join("linked.efi")).unwrap();
    std::fs::create_dir(root.join("sub")).unwrap();
    assert_eq!(resolve(&root, "ipxe.efi").unwrap(), root.join("ipxe.efi"));
    assert_eq!(
        resolve(&root, "linked.efi").unwrap(),
        root.join("linked.efi")
    );
    assert!(
        resolve(&root, "/ipxe.efi").is_ok(),
        "a leading slash is the root"
    );
    for bad in [
        "../secret",
        "..",
        "/etc/passwd",
        "sub/../../secret",
        "a\\b",
        ".hidden",
        "",
    ] {
        assert!(
            matches!(resolve(&root, bad), Err(TftpError::Refused { .. })),
            "{bad}"
        );
    }
    assert!(matches!(resolve(&root, "sub"), Err(TftpError::NotFound(_))));
    assert!(matches!(
        resolve(&root, "missing.efi"),
        Err(TftpError::NotFound(_))
    ));
}

proptest! {
    #[test]
    fn any_datagram_is_parsed_or_refused_without_panicking(
        bytes in proptest::collection::vec(any::<u8>(), 0..600)
    ) {
        let _ = parse_request(&bytes);
        if let Ok(r) = parse_request(&bytes) {
            let _ = resolve(Path::new("/nonexistent-root"), &r.file);
        }
    }
}

type Seen = Arc<Mutex<Vec<(String, Ended)>>>;

async fn server(
    files: &[(&str, Vec<u8>)],
) -> (
    tempfile::TempDir,
    Arc<TftpServer>,
    SocketAddr,
    Seen,
    CancellationToken,
) {
    let dir = tempfile::tempdir().unwrap();
    for (n, b) in files {
        std::fs::write(dir.path().join(n), b).unwrap();
    }
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    let srv = TftpServer::open(
        &[Ipv4Addr::LOCALHOST],
        0,
        dir.path().to_path_buf(),
        Arc::new(Metrics::default()),
        Arc::new(move |_, f: &str, e: &Ended| s2.lock().unwrap().push((f.to_string(), e.clone()))),
    )
    .await
    .unwrap();
    let addr = srv.local_addrs()[0];
    let cancel = CancellationToken::new();
    let (s, c) = (srv.clone(), cancel.clone());
    tokio::spawn(async move { s.serve(c).await });
    (dir, srv, addr, seen, cancel)
}

/// Fetches `name` as a well-behaved client; returns the negotiated options and the bytes.
async fn fetch(
    server: SocketAddr,
    name: &str,
    opts: &[(&str, &str)],
) -> Result<(Vec<(String, String)>, Vec<u8>), (u16, String)> {
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.send_to(&rrq(name, opts), server).await.unwrap();
    let mut buf = vec![0u8; 70_000];
    let mut got = Vec::new();
    let mut negotiated = Vec::new();
    let mut block = 512;
    let mut expect: u16 = 1;
    loop {
        let (n, from) = tokio::time::timeout(Duration::from_secs(10), c.recv_from(&mut buf))
            .await
            .expect("server went silent")
            .unwrap();
        let op = u16::from_be_bytes([buf[0], buf[1]]);
        match op {
            OACK => {
                let f: Vec<String> = buf[2..n - 1]
                    .split(|b| *b == 0)
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect();
                for kv in f.chunks(2) {
                    if kv[0] == "blksize" {
                        block = kv[1].parse().unwrap();
                    }
                    negotiated.push((kv[0].clone(), kv[1].clone()));
                }
                c.send_to(&[0, 4, 0, 0], from).await.unwrap();
            }
            DATA => {
                let b = u16::from_be_bytes([buf[2], buf[3]]);
                if b == expect {
                    got.extend_from_slice(&buf[4..n]);
                    expect = expect.wrapping_add(1);
                }
                c.send_to(&[0, 4, buf[2], buf[3]], from).await.unwrap();
                if n - 4 < block {
                    return Ok((negotiated, got));
                }
            }
            ERROR => {
                let code = u16::from_be_bytes([buf[2], buf[3]]);
                return Err((code, String::from_utf8_lossy(&buf[4..n - 1]).into_owned()));
            }
            o => panic!("unexpected opcode {o}"),
        }
    }
}

#[tokio::test]
async fn whole_files_arrive_with_negotiated_options_and_refusals_are_errors() {
    let efi: Vec<u8> = (0..1468 * 3).map(|i| (i % 251) as u8).collect(); // an exact multiple
    let kpxe: Vec<u8> = (0..70_001).map(|i| (i % 13) as u8).collect();
    let (_d, _srv, addr, seen, cancel) =
        server(&[("ipxe.efi", efi.clone()), ("undionly.kpxe", kpxe.clone())]).await;
    let (opts, bytes) = fetch(addr, "ipxe.efi", &[("blksize", "1468"), ("tsize", "0")])
        .await
        .unwrap();
    assert_eq!(bytes, efi, "an empty last block ends an exact multiple");
    assert_eq!(
        opts,
        vec![
            ("blksize".into(), "1468".into()),
            ("tsize".into(), efi.len().to_string())
        ]
    );
    let (opts, bytes) = fetch(addr, "/undionly.kpxe", &[]).await.unwrap();
    assert!(opts.is_empty(), "no options asked, no OACK");
    assert_eq!(bytes, kpxe);
    assert_eq!(fetch(addr, "../etc/passwd", &[]).await.unwrap_err().0, 2);
    assert_eq!(fetch(addr, "/etc/passwd", &[]).await.unwrap_err().0, 2);
    assert_eq!(fetch(addr, "snponly.efi", &[]).await.unwrap_err().0, 1);
    let mut wrq = rrq("x", &[]);
    wrq[1] = 2;
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.send_to(&wrq, addr).await.unwrap();
    let mut buf = [0u8; 100];
    let n = c.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..4], &[0, 5, 0, 2], "{:?}", &buf[..n]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter()
            .filter(|(_, e)| matches!(e, Ended::Done { .. }))
            .count(),
        2
    );
    assert!(seen.contains(&(
        "ipxe.efi".into(),
        Ended::Done {
            bytes: efi.len() as u64
        }
    )));
    cancel.cancel();
}

#[tokio::test]
async fn block_numbers_wrap_and_a_silent_client_is_given_up_on() {
    // 8-byte blocks: 70,000 blocks, past 65,535.
    let big: Vec<u8> = (0..8 * 70_000 + 3).map(|i| (i % 7) as u8).collect();
    let (_d, _srv, addr, seen, cancel) = server(&[("big.bin", big.clone())]).await;
    let (_, bytes) = fetch(addr, "big.bin", &[("blksize", "8")]).await.unwrap();
    assert_eq!(bytes.len(), big.len());
    assert_eq!(bytes, big);
    // A client that asks and never acknowledges: the server retries, then lets go.
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.send_to(&rrq("big.bin", &[("timeout", "1")]), addr)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 600];
    let mut sends = 0;
    while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(3), c.recv(&mut buf)).await {
        sends += 1;
    }
    assert_eq!(
        sends,
        RETRIES + 1,
        "the OACK is sent again each timeout, then no more"
    );
    assert!(started.elapsed() < Duration::from_secs(12));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|(f, e)| f == "big.bin" && matches!(e, Ended::Aborted { .. })),
        "{:?}",
        seen.lock().unwrap()
    );
    cancel.cancel();
}
