//! The deterministic ZIP, checked with Python's zipfile as an independent reader, and golden
//! vectors that fail when the pinned deflate (or the writer) changes its bytes.

use std::process::Command;

use pystore::archive::deflate;
use pystore::archive::timestamp::DosDateTime;
use pystore::archive::zip::{write_zip, Contents, Member, MemberKind, ZipSummary};
use sha2::Digest;

fn file(name: &str, executable: bool, contents: Contents) -> Member {
    Member {
        name: name.into(),
        kind: MemberKind::File {
            executable,
            contents,
        },
    }
}

fn sample_members() -> Vec<Member> {
    let text: Vec<u8> = b"import sys\nprint(sys.version)\n".repeat(40);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..5000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect();
    let wheel_member = b"def hello():\n    return 'hi'\n".repeat(20);
    vec![
        file("python/lib/python3.11/os.py", false, Contents::Bytes(text)),
        file("python/bin/python3.11", true, Contents::Bytes(noise)),
        Member {
            name: "python/bin/python3".into(),
            kind: MemberKind::Symlink {
                target: "python3.11".into(),
            },
        },
        Member {
            name: "python/share/empty".into(),
            kind: MemberKind::Directory,
        },
        file(
            "python/lib/python3.11/site-packages/hello.py",
            false,
            Contents::Deflated {
                data: deflate::deflate(&wheel_member),
                crc32: crc32fast::hash(&wheel_member),
                size: wheel_member.len() as u64,
            },
        ),
        file(
            "python/lib/python3.11/site-packages/ünïcode.txt",
            false,
            Contents::Bytes(b"x".to_vec()),
        ),
        file("python/EMPTY", false, Contents::Bytes(Vec::new())),
    ]
}

fn write(members: Vec<Member>, time: DosDateTime) -> (Vec<u8>, ZipSummary) {
    let mut out = Vec::new();
    let summary = write_zip(&mut out, members, time).unwrap();
    (out, summary)
}

const ORACLE: &str = r#"
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
light = len(sys.argv) > 2
out = {"bad": None if light else z.testzip(), "members": []}
for i in z.infolist():
    if light:
        out["members"].append({"name": i.filename, "extra": i.extra.hex()})
        continue
    out["members"].append({
        "name": i.filename, "date_time": list(i.date_time), "extra": i.extra.hex(),
        "comment": i.comment.hex(), "flag_bits": i.flag_bits, "create_system": i.create_system,
        "create_version": i.create_version, "mode": i.external_attr >> 16,
        "compress_type": i.compress_type, "data": z.read(i).hex(),
    })
out["comment"] = z.comment.hex()
print(json.dumps(out))
"#;

fn oracle(bytes: &[u8]) -> serde_json::Value {
    oracle_with(bytes, &[])
}

fn oracle_with(bytes: &[u8], args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.zip");
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(ORACLE)
        .arg(&path)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn python_reads_one_canonical_form() {
    // 2024-02-29 13:45:30 UTC, as SOURCE_DATE_EPOCH would give it.
    let (bytes, summary) = write(sample_members(), DosDateTime::from_unix(1_709_214_330));
    assert_eq!(
        (
            summary.members,
            summary.copied,
            summary.deflated,
            summary.stored
        ),
        (7, 1, 1, 5)
    );
    let report = oracle(&bytes);
    assert_eq!(report["bad"], serde_json::Value::Null, "every CRC checks");
    assert_eq!(report["comment"], "");
    let members = report["members"].as_array().unwrap();
    let names: Vec<&str> = members
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(names, sorted, "names in byte order");
    assert_eq!(names[0], "python/EMPTY");
    for m in members {
        assert_eq!(
            m["date_time"],
            serde_json::json!([2024, 2, 29, 13, 45, 30]),
            "{}",
            m["name"]
        );
        assert_eq!(m["extra"], "", "no extra field: {}", m["name"]);
        assert_eq!(m["comment"], "");
        assert_eq!(
            m["flag_bits"].as_u64().unwrap() & 0x08,
            0,
            "no data descriptor"
        );
        assert_eq!(m["create_system"], 3);
        assert_eq!(m["create_version"], 20);
    }
    let by_name = |n: &str| members.iter().find(|m| m["name"] == n).unwrap();
    assert_eq!(by_name("python/bin/python3.11")["mode"], 0o100755);
    assert_eq!(by_name("python/lib/python3.11/os.py")["mode"], 0o100644);
    assert_eq!(by_name("python/share/empty/")["mode"], 0o040755);
    assert_eq!(by_name("python/bin/python3")["mode"], 0o120777);
    assert_eq!(
        by_name("python/bin/python3")["data"],
        hex::encode("python3.11")
    );
    assert_eq!(
        by_name("python/lib/python3.11/site-packages/ünïcode.txt")["flag_bits"],
        0x800
    );
    assert_eq!(
        by_name("python/lib/python3.11/site-packages/hello.py")["data"],
        hex::encode(b"def hello():\n    return 'hi'\n".repeat(20))
    );
}

#[test]
fn zip64_appears_only_when_needed_and_python_reads_it() {
    let members: Vec<Member> = (0..70_000)
        .map(|i| file(&format!("d/{i:06}"), false, Contents::Bytes(Vec::new())))
        .collect();
    let (bytes, summary) = write(members, DosDateTime::DEFAULT);
    assert_eq!(summary.members, 70_000);
    // A zip64 end record is present (more than 65535 entries), and no member has an extra field.
    assert!(bytes.windows(4).any(|w| w == 0x0606_4b50u32.to_le_bytes()));
    let report = oracle_with(&bytes, &["light"]);
    let members = report["members"].as_array().unwrap();
    assert_eq!(members.len(), 70_000);
    assert!(members.iter().all(|m| m["extra"] == ""));
    let (small, _) = write(sample_members(), DosDateTime::DEFAULT);
    assert!(
        !small.windows(4).any(|w| w == 0x0606_4b50u32.to_le_bytes()),
        "no zip64 when not needed"
    );
}

/// Fails when a dependency bump (libdeflater) or a writer change alters the bytes: update these
/// only knowingly, since every bundle ZIP's sha256 changes with them.
#[test]
fn golden_vectors() {
    let input: Vec<u8> = b"The quick brown fox jumps over the lazy dog. ".repeat(30);
    assert_eq!(deflate::IMPLEMENTATION, "libdeflater 1.26.1");
    assert_eq!(deflate::LEVEL, 6);
    assert_eq!(
        hex::encode(deflate::deflate(&input)),
        "0bc94855282ccd4cce56482aca2fcf5348cbaf50c82acd2d2856c82f4b2d5228c94855c849acaa5448c94fd7530819553caa7854f1a8e251c5a88a01"
    );
    let (bytes, _) = write(sample_members(), DosDateTime::DEFAULT);
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&bytes)),
        "e870382285801a235ab613d4f04c938983e85698de21a9645615b34663245088"
    );
}
