//! Fixed-output downloads against loopback servers: hashes, retries, resume, sources, offline,
//! parallelism, credentials.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::http::{ranged, Response, Server};
use crate::common::*;

fn payload(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 131 + seed * 7919) % 251) as u8)
        .collect()
}

/// Every regular file under `dir`, as bytes (to grep a whole store root).
fn all_bytes(dir: &Path, out: &mut Vec<u8>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = fs::symlink_metadata(entry.path()).unwrap();
        if meta.is_dir() {
            all_bytes(&entry.path(), out);
        } else if meta.is_file() {
            out.extend(fs::read(entry.path()).unwrap());
            out.extend(entry.file_name().into_encoded_bytes());
        } else if meta.is_symlink() {
            out.extend(
                fs::read_link(entry.path())
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
            );
        }
    }
}

fn fast_retries(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.env("PYSTORE_HTTP_BACKOFF_MS", "5")
}

#[test]
fn a_hash_mismatch_names_both_hashes_and_the_source_and_leaves_nothing() {
    let body = payload(1, 5000);
    let server = Server::start(move |_| Response::ok(body.clone()));
    let store = TempStore::new();
    let wrong = "0".repeat(64);
    let err = run_fails(
        pystore(store.path())
            .args(["prefetch", "--sha256", &wrong])
            .arg(server.url("/files/a.whl")),
        1,
    );
    assert!(err.contains(&format!("expected sha256 {wrong}")), "{err}");
    assert!(
        err.contains(&format!("got {}", sha256_hex(&payload(1, 5000)))),
        "{err}"
    );
    assert!(
        err.contains(&server.url("/files/a.whl")),
        "names the source: {err}"
    );
    let (entries, tmp) = entries_and_tmp(store.path());
    assert!(entries.is_empty() && tmp.is_empty(), "{entries:?} {tmp:?}");
}

#[test]
fn two_503s_then_200_succeeds() {
    let body = payload(2, 3000);
    let hits = Arc::new(AtomicUsize::new(0));
    let (b, h) = (body.clone(), hits.clone());
    let server = Server::start(move |_| {
        if h.fetch_add(1, Ordering::SeqCst) < 2 {
            Response::status(503)
        } else {
            Response::ok(b.clone())
        }
    });
    let store = TempStore::new();
    let url = format!("{}#sha256={}", server.url("/f.bin"), sha256_hex(&body));
    let out = run_ok(fast_retries(
        pystore(store.path()).arg("prefetch").arg(&url),
    ));
    let (hash, path) = out.trim().split_once(' ').unwrap();
    assert_eq!(hash, sha256_hex(&body));
    assert_eq!(fs::read(path).unwrap(), body);
    assert_eq!(server.count("/f.bin"), 3);
}

#[test]
fn a_server_that_always_fails_is_given_up_on_after_the_configured_retries() {
    let server = Server::start(|_| Response::status(502));
    let store = TempStore::new();
    let url = format!("{}#sha256={}", server.url("/down.bin"), "1".repeat(64));
    let err = run_fails(
        fast_retries(pystore(store.path()).arg("prefetch").arg(&url))
            .env("PYSTORE_HTTP_RETRIES", "2"),
        1,
    );
    assert!(
        err.contains("failed after 3 attempts; last error: HTTP 502"),
        "{err}"
    );
    assert_eq!(server.count("/down.bin"), 3);
    assert!(entries_and_tmp(store.path()).0.is_empty());
}

#[test]
fn retry_after_is_honoured() {
    let body = payload(3, 100);
    let hits = Arc::new(AtomicUsize::new(0));
    let (b, h) = (body.clone(), hits.clone());
    let server = Server::start(move |_| {
        if h.fetch_add(1, Ordering::SeqCst) == 0 {
            Response::status(429).header("Retry-After", "1")
        } else {
            Response::ok(b.clone())
        }
    });
    let store = TempStore::new();
    let started = Instant::now();
    let url = format!("{}#sha256={}", server.url("/slow.bin"), sha256_hex(&body));
    run_ok(fast_retries(
        pystore(store.path()).arg("prefetch").arg(&url),
    ));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited as told: {:?}",
        started.elapsed()
    );
    assert_eq!(server.count("/slow.bin"), 2);
}

#[test]
fn a_truncated_body_is_resumed_with_range() {
    let body = payload(4, 200_000);
    let hits = Arc::new(AtomicUsize::new(0));
    let (b, h) = (body.clone(), hits.clone());
    let server = Server::start(move |req| {
        let mut response = ranged(req, &b);
        if h.fetch_add(1, Ordering::SeqCst) == 0 {
            response.truncate_at = Some(70_000);
        }
        response
    });
    let store = TempStore::new();
    let url = format!("{}#sha256={}", server.url("/big.whl"), sha256_hex(&body));
    let out = run_ok(fast_retries(
        pystore(store.path()).arg("prefetch").arg(&url),
    ));
    assert_eq!(
        fs::read(out.trim().split_once(' ').unwrap().1).unwrap(),
        body
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].header("range"),
        Some("bytes=70000-"),
        "resumed where it stopped"
    );
}

#[test]
fn a_truncated_body_from_a_server_without_ranges_is_restarted() {
    let body = payload(5, 100_000);
    let hits = Arc::new(AtomicUsize::new(0));
    let (b, h) = (body.clone(), hits.clone());
    let server = Server::start(move |_| {
        let mut response = Response::ok(b.clone());
        if h.fetch_add(1, Ordering::SeqCst) == 0 {
            response.truncate_at = Some(10_000);
        }
        response
    });
    let store = TempStore::new();
    let url = format!(
        "{}#sha256={}",
        server.url("/norange.whl"),
        sha256_hex(&body)
    );
    let out = run_ok(fast_retries(
        pystore(store.path()).arg("prefetch").arg(&url),
    ));
    assert_eq!(
        fs::read(out.trim().split_once(' ').unwrap().1).unwrap(),
        body
    );
}

#[test]
fn a_body_that_is_always_short_is_never_registered() {
    let body = payload(6, 50_000);
    let b = body.clone();
    let server = Server::start(move |_| Response {
        truncate_at: Some(1000),
        ..Response::ok(b.clone())
    });
    let store = TempStore::new();
    let url = format!("{}#sha256={}", server.url("/short.whl"), sha256_hex(&body));
    let err = run_fails(
        fast_retries(pystore(store.path()).arg("prefetch").arg(&url))
            .env("PYSTORE_HTTP_RETRIES", "1"),
        1,
    );
    assert!(err.contains("failed after 2 attempts"), "{err}");
    let (entries, tmp) = entries_and_tmp(store.path());
    assert!(entries.is_empty() && tmp.is_empty(), "{entries:?} {tmp:?}");
}

#[test]
fn mirror_wheelhouse_and_url_give_the_same_entry_and_a_stored_file_costs_no_request() {
    let body = payload(7, 4096);
    let hash = sha256_hex(&body);
    let name = "demo-1.0-py3-none-any.whl";
    let routes: HashMap<String, Vec<u8>> = [
        (format!("/mirror/sha256/{hash}"), body.clone()),
        (format!("/files/{name}"), body.clone()),
    ]
    .into();
    let server = Server::start(move |req| match routes.get(&req.path) {
        Some(bytes) => Response::ok(bytes.clone()),
        None => Response::status(404),
    });
    let wheelhouse = tempfile::tempdir().unwrap();
    fs::write(wheelhouse.path().join(name), &body).unwrap();
    let missing_url = format!("{}#sha256={hash}", server.url(&format!("/nowhere/{name}")));
    let file_url = format!("{}#sha256={hash}", server.url(&format!("/files/{name}")));

    let via_mirror = TempStore::new();
    let a = run_ok(
        pystore(via_mirror.path())
            .args(["prefetch", &missing_url])
            .env("PYSTORE_MIRRORS", server.url("/mirror")),
    );
    let via_wheelhouse = TempStore::new();
    let b = run_ok(
        pystore(via_wheelhouse.path())
            .args(["prefetch", &missing_url, "--find-links"])
            .arg(wheelhouse.path()),
    );
    let via_url = TempStore::new();
    let c = run_ok(pystore(via_url.path()).args(["prefetch", &file_url]));
    let file_name = |out: &str| {
        Path::new(out.trim().split_once(' ').unwrap().1)
            .file_name()
            .unwrap()
            .to_owned()
    };
    assert_eq!(file_name(&a), file_name(&b));
    assert_eq!(file_name(&b), file_name(&c));
    assert_eq!(server.count(&format!("/mirror/sha256/{hash}")), 1);

    let before = server.requests().len();
    let again = run_ok(
        pystore(via_url.path())
            .args(["prefetch", &file_url])
            .env("PYSTORE_MIRRORS", server.url("/mirror")),
    );
    assert_eq!(again, c);
    assert_eq!(
        server.requests().len(),
        before,
        "no request at all for a file in the store"
    );
}

#[test]
fn offline_lists_everything_missing_in_one_error_and_uses_local_copies() {
    let server = Server::start(|_| Response::status(500));
    let store = TempStore::new();
    let wheelhouse = tempfile::tempdir().unwrap();
    let local = payload(8, 10);
    fs::write(wheelhouse.path().join("local.whl"), &local).unwrap();
    let args: Vec<String> = vec![
        format!("{}#sha256={}", server.url("/a.whl"), "a".repeat(64)),
        format!("{}#sha256={}", server.url("/local.whl"), sha256_hex(&local)),
        format!("{}#sha256={}", server.url("/b.whl"), "b".repeat(64)),
    ];
    let err = run_fails(
        pystore(store.path())
            .args(["--offline", "prefetch"])
            .args(&args)
            .arg("--find-links")
            .arg(wheelhouse.path()),
        1,
    );
    assert!(
        err.contains("--offline, and 2 files are not in the store"),
        "{err}"
    );
    assert!(
        err.contains(&format!("a.whl (sha256 {})", "a".repeat(64))),
        "{err}"
    );
    assert!(
        err.contains(&format!("b.whl (sha256 {})", "b".repeat(64))),
        "{err}"
    );
    assert!(server.requests().is_empty(), "offline made no request");
    let out = run_ok(
        pystore(store.path())
            .args(["--offline", "prefetch", &args[1], "--find-links"])
            .arg(wheelhouse.path()),
    );
    assert!(out.starts_with(&sha256_hex(&local)), "{out}");
    assert!(server.requests().is_empty());
}

#[test]
fn fifty_files_with_j8_are_all_correct_and_quiet_without_a_terminal() {
    let bodies: Vec<Vec<u8>> = (0..50)
        .map(|i| payload(100 + i, 20_000 + i * 100))
        .collect();
    let served = bodies.clone();
    let server = Server::start(move |req| {
        let index: usize = req
            .path
            .trim_start_matches("/f/")
            .trim_end_matches(".bin")
            .parse()
            .unwrap_or(usize::MAX);
        std::thread::sleep(Duration::from_millis(20));
        match served.get(index) {
            Some(body) => Response::ok(body.clone()),
            None => Response::status(404),
        }
    });
    let store = TempStore::new();
    let urls: Vec<String> = (0..50)
        .map(|i| {
            format!(
                "{}#sha256={}",
                server.url(&format!("/f/{i}.bin")),
                sha256_hex(&bodies[i])
            )
        })
        .collect();
    let out = run(pystore(store.path())
        .args(["-j", "8", "prefetch"])
        .args(&urls));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "no progress output without a terminal: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 50);
    for (i, line) in lines.iter().enumerate() {
        let (hash, path) = line.split_once(' ').unwrap();
        assert_eq!(hash, sha256_hex(&bodies[i]), "line {i} in order");
        assert_eq!(fs::read(path).unwrap(), bodies[i]);
    }
    assert!(
        server.max_concurrency() <= 8,
        "at most 8 at once: {}",
        server.max_concurrency()
    );
    assert_eq!(server.requests().len(), 50);
}

#[test]
fn prefetch_without_a_hash_registers_what_it_got() {
    let body = payload(9, 777);
    let b = body.clone();
    let server = Server::start(move |_| Response::ok(b.clone()));
    let store = TempStore::new();
    let out = run_ok(
        pystore(store.path())
            .args(["prefetch"])
            .arg(server.url("/pkg/thing-1.0.tar.gz")),
    );
    let (hash, path) = out.trim().split_once(' ').unwrap();
    assert_eq!(hash, sha256_hex(&body));
    assert!(path.ends_with("-thing-1.0.tar.gz"), "{path}");
    // The same entry as pinning the hash gives.
    let pinned = run_ok(
        pystore(store.path())
            .args(["prefetch", "--sha256", hash])
            .arg(server.url("/pkg/thing-1.0.tar.gz")),
    );
    assert_eq!(pinned, out);
}

#[test]
fn a_password_in_a_url_never_appears_in_output_or_the_store() {
    const SECRET: &str = "s3cr3t-Pa55";
    let body = payload(10, 1234);
    let b = body.clone();
    let expected_auth = format!(
        "Basic {}",
        base64_encode(format!("alice:{SECRET}").as_bytes())
    );
    let server = Server::start(move |req| {
        if req.header("authorization") != Some(expected_auth.as_str()) {
            return Response::status(401);
        }
        match req.path.as_str() {
            "/private/ok.whl" => Response::ok(b.clone()),
            _ => Response::status(404),
        }
    });
    let store = TempStore::new();
    let with_secret =
        |path: &str| format!("http://alice:{SECRET}@127.0.0.1:{}{path}", server.port());
    let good = format!(
        "{}#sha256={}",
        with_secret("/private/ok.whl"),
        sha256_hex(&body)
    );
    let bad = format!(
        "{}#sha256={}",
        with_secret("/private/missing.whl"),
        sha256_hex(&body[..10])
    );
    let mut seen = Vec::new();
    for (args, code) in [
        (vec!["prefetch", &good], 0),
        (vec!["prefetch", &bad], 1),
        (vec!["--json", "prefetch", &good], 0),
    ] {
        let out = run(pystore(store.path())
            .args(&args)
            .env("RUST_LOG", "pystore=debug"));
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        seen.extend(out.stdout);
        seen.extend(out.stderr);
    }
    all_bytes(store.path(), &mut seen);
    let text = String::from_utf8_lossy(&seen);
    assert!(
        text.contains("127.0.0.1"),
        "the URLs are shown, without credentials"
    );
    assert!(!text.contains(SECRET), "the password leaked");
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.header("authorization").is_some()),
        "credentials were sent"
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn a_401_or_403_says_credentials_are_missing_or_refused_and_where_they_come_from() {
    for status in [401u16, 403] {
        let server = Server::start(move |_| Response::status(status));
        let store = TempStore::new();
        let url = format!("{}#sha256={}", server.url("/private.whl"), "1".repeat(64));
        let err = run_fails(
            fast_retries(pystore(store.path()).arg("prefetch").arg(&url))
                .env("NETRC", store.path().join("no-netrc")),
            1,
        );
        assert!(
            err.contains(&format!(
                "HTTP {status}: credentials missing or refused for 127.0.0.1"
            )) && err.contains("netrc")
                && err.contains("USER:PASSWORD@"),
            "{err}"
        );
        assert_eq!(server.count("/private.whl"), 1, "not retried");
    }
}
