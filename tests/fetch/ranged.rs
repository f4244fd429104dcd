//! Reading one member of a remote wheel by HTTP range requests, against loopback servers that
//! serve ranges, ignore them, or answer the wrong ones.

use std::path::Path;

use crate::common::http::{ranged, Response, Server};
use crate::pyfixtures::{write_zip, ZipMember};
use pystore::fetch::credentials::Credentials;
use pystore::fetch::http::{HttpClient, HttpConfig};
use pystore::fetch::ranged::RangedFile;
use pystore::python::metadata::CoreMetadata;
use reqwest::Url;

/// Bytes that do not compress (xorshift), so the wheel is really large.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A 2 MiB wheel whose METADATA is its *first* member, far from the ZIP directory at the end.
fn big_wheel(dir: &Path) -> Vec<u8> {
    let path = dir.join("big-1.0-py3-none-any.whl");
    let mut data = ZipMember::file("big/data.bin", &noise(2 << 20));
    data.deflate = false;
    write_zip(
        &path,
        &[
            ZipMember::file(
                "big-1.0.dist-info/METADATA",
                b"Metadata-Version: 2.1\nName: big\nVersion: 1.0\nRequires-Dist: small>=2\n",
            ),
            data,
            ZipMember::file("big/__init__.py", b""),
        ],
    );
    std::fs::read(path).unwrap()
}

fn client() -> HttpClient {
    let config = HttpConfig {
        retries: 1,
        backoff: std::time::Duration::from_millis(10),
        ..HttpConfig::default()
    };
    HttpClient::new(config, Credentials::default()).unwrap()
}

#[test]
fn metadata_is_read_with_two_small_range_requests() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = big_wheel(dir.path());
    let served = wheel.clone();
    let server = Server::start(move |req| ranged(req, &served));
    let http = client();
    let url = Url::parse(&server.url("/big-1.0-py3-none-any.whl")).unwrap();
    let mut remote = RangedFile::open(&http, &url, 64 << 10).unwrap().unwrap();
    assert_eq!(remote.len(), wheel.len() as u64);
    let meta = CoreMetadata::from_wheel_reader(&mut remote, Path::new("big.whl")).unwrap();
    assert_eq!(meta.name, "big");
    assert_eq!(meta.requires_dist[0].name.as_ref(), "small");
    // The tail (the ZIP directory), then one block at the start (METADATA): not the 2 MiB.
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].header("range"), Some("bytes=-65536"));
    assert_eq!(requests[1].header("range"), Some("bytes=0-65535"));
    assert_eq!(remote.requests(), 2);
    assert!(remote.fetched() <= 128 << 10, "{}", remote.fetched());
}

#[test]
fn reads_anywhere_give_the_file_s_bytes() {
    let body = noise(300_000);
    let served = body.clone();
    let server = Server::start(move |req| ranged(req, &served));
    let http = client();
    let url = Url::parse(&server.url("/f")).unwrap();
    let mut remote = RangedFile::open(&http, &url, 1000).unwrap().unwrap();
    use std::io::{Read, Seek, SeekFrom};
    let mut all = Vec::new();
    remote.seek(SeekFrom::Start(0)).unwrap();
    remote.read_to_end(&mut all).unwrap();
    assert_eq!(all, body);
    let mut middle = [0u8; 10];
    remote.seek(SeekFrom::End(-5000)).unwrap();
    remote.read_exact(&mut middle).unwrap();
    assert_eq!(&middle[..], &body[body.len() - 5000..body.len() - 4990]);
    assert!(remote.seek(SeekFrom::Current(-1_000_000)).is_err());
}

#[test]
fn a_server_without_ranges_is_reported_not_read() {
    let body = noise(100_000);
    let server = Server::start(move |_| Response::ok(body.clone()));
    let http = client();
    let url = Url::parse(&server.url("/f")).unwrap();
    assert!(RangedFile::open(&http, &url, 1000).unwrap().is_none());
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_wrong_range_answer_is_an_error_naming_the_url() {
    let body = noise(300_000);
    // Always answers the first 1000 bytes, whatever was asked.
    let server = Server::start(move |_| {
        Response {
            status: 206,
            body: body[..1000].to_vec(),
            ..Default::default()
        }
        .header("Content-Range", "bytes 0-999/300000")
    });
    let http = client();
    let url = Url::parse(&server.url("/liar.whl")).unwrap();
    let mut remote = RangedFile::open(&http, &url, 1000).unwrap().unwrap();
    use std::io::{Read, Seek, SeekFrom};
    remote.seek(SeekFrom::Start(200_000)).unwrap();
    let err = remote.read(&mut [0u8; 16]).unwrap_err().to_string();
    assert!(
        err.contains("/liar.whl") && err.contains("asked for bytes 200000-"),
        "{err}"
    );
    let err = CoreMetadata::from_wheel_reader(&mut remote, Path::new("liar.whl"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("liar.whl"), "{err}");
}
