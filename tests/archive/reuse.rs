//! Reusing wheels' compressed bytes in bundle ZIPs: copied only when provably the same bytes.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use pystore::archive::deflate;
use pystore::archive::reuse::WheelMembers;
use pystore::archive::timestamp::DosDateTime;
use pystore::archive::zip::{write_zip, Contents, Member, MemberKind};

fn text(seed: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b"abcdefgh ijklmnop\n"[((i as u32 * 7 + seed) % 18) as usize])
        .collect()
}

#[test]
fn members_from_another_compressor_are_copied_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let content = text(1, 20_000);
    let file = dir.path().join("module.py");
    fs::write(&file, &content).unwrap();
    // A wheel written by Python's zipfile at level 9: bytes our pinned deflate would not make.
    let wheel = dir.path().join("pkg-1.0-py3-none-any.whl");
    let script = "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED, compresslevel=9)\n\
                  z.write(sys.argv[2], 'pkg/module.py')\nz.close()\n\
                  z = zipfile.ZipFile(sys.argv[1])\ni = z.getinfo('pkg/module.py')\n\
                  f = open(sys.argv[1], 'rb'); f.seek(i.header_offset + 26)\n\
                  n, m = int.from_bytes(f.read(2), 'little'), int.from_bytes(f.read(2), 'little')\n\
                  f.seek(i.header_offset + 30 + n + m); sys.stdout.buffer.write(f.read(i.compress_size))\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&wheel)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let python_raw = out.stdout;
    assert_ne!(
        python_raw,
        deflate::deflate(&content),
        "the two compressors differ, so a copy is visible"
    );

    let members = WheelMembers::index(&[wheel], None);
    assert_eq!(members.len(), 1);
    let digest = *blake3::hash(&content).as_bytes();
    match members.contents_for(&file, content.len() as u64, &digest) {
        Contents::Deflated { data, crc32, size } => {
            assert_eq!(data, python_raw);
            assert_eq!(crc32, crc32fast::hash(&content));
            assert_eq!(size, content.len() as u64);
        }
        other => panic!("expected a copy, got {other:?}"),
    }
    // A file with other bytes is compressed anew.
    let other = dir.path().join("other.py");
    fs::write(&other, text(2, 20_000)).unwrap();
    let other_digest = *blake3::hash(&text(2, 20_000)).as_bytes();
    assert!(matches!(
        members.contents_for(&other, 20_000, &other_digest),
        Contents::Bytes(_)
    ));
}

#[test]
fn a_member_that_lies_about_its_crc_is_never_copied() {
    let dir = tempfile::tempdir().unwrap();
    let honest = text(3, 5000);
    let impostor = text(4, 5000);
    // A "wheel" whose member holds the impostor's bytes but claims the honest file's CRC-32.
    let wheel = dir.path().join("evil-1.0-py3-none-any.whl");
    let member = Member {
        name: "evil/module.py".into(),
        kind: MemberKind::File {
            executable: false,
            contents: Contents::Deflated {
                data: deflate::deflate(&impostor),
                crc32: crc32fast::hash(&honest),
                size: 5000,
            },
        },
    };
    write_zip(
        fs::File::create(&wheel).unwrap(),
        vec![member],
        DosDateTime::DEFAULT,
    )
    .unwrap();
    let members = WheelMembers::index(&[wheel], None);
    assert_eq!(members.len(), 1, "indexed under the claimed CRC");
    let file = dir.path().join("module.py");
    fs::write(&file, &honest).unwrap();
    let contents = members.contents_for(&file, 5000, blake3::hash(&honest).as_bytes());
    match contents {
        Contents::Bytes(bytes) => assert_eq!(bytes, honest),
        other => panic!("the impostor's bytes were trusted: {other:?}"),
    }
}

/// A wheel `name` in `dir` holding `content` as `member`, deflated as `data`.
fn wheel_with(dir: &std::path::Path, name: &str, content: &[u8], data: Vec<u8>) -> PathBuf {
    let wheel = dir.join(name);
    let member = Member {
        name: "pkg/module.py".into(),
        kind: MemberKind::File {
            executable: false,
            contents: Contents::Deflated {
                data,
                crc32: crc32fast::hash(content),
                size: content.len() as u64,
            },
        },
    };
    write_zip(
        fs::File::create(&wheel).unwrap(),
        vec![member],
        DosDateTime::DEFAULT,
    )
    .unwrap();
    wheel
}

/// Proves (by inflating) that a member of `wheels` holds `file`, and records it in `cache`.
fn prove_and_record(
    wheels: &[PathBuf],
    cache: &std::path::Path,
    file: &std::path::Path,
    size: u64,
    digest: &[u8; 32],
) {
    let members = WheelMembers::index(wheels, Some(cache));
    assert!(matches!(
        members.contents_for(file, size, digest),
        Contents::Deflated { .. }
    ));
    assert_eq!(members.save(), 1, "one wheel got records");
}

/// A match proved once (by inflating) is recorded in the member cache, and a later index
/// copies the member without reading the bundle's file at all.
#[test]
fn a_member_proved_once_is_copied_later_without_reading_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let content = text(5, 20_000);
    let (size, digest) = (content.len() as u64, *blake3::hash(&content).as_bytes());
    let compressed = deflate::deflate(&content);
    let wheel = wheel_with(
        dir.path(),
        "pkg-1.0-py3-none-any.whl",
        &content,
        compressed.clone(),
    );
    let file = dir.path().join("module.py");
    fs::write(&file, &content).unwrap();

    prove_and_record(std::slice::from_ref(&wheel), &cache, &file, size, &digest);

    // The file is gone: only the record can say what the member holds.
    fs::remove_file(&file).unwrap();
    let second = WheelMembers::index(std::slice::from_ref(&wheel), Some(&cache));
    match second.contents_for(&file, size, &digest) {
        Contents::Deflated {
            data,
            crc32,
            size: s,
        } => {
            assert_eq!(
                (data, crc32, s),
                (compressed, crc32fast::hash(&content), size)
            );
        }
        other => panic!("expected a copy from the record, got {other:?}"),
    }
    // Without the cache the file must be read, as before.
    let uncached = WheelMembers::index(std::slice::from_ref(&wheel), None);
    assert!(matches!(
        uncached.contents_for(&file, size, &digest),
        Contents::Path(_)
    ));
}

/// A record is used only for the member the index itself picks for the file's (size, CRC-32):
/// when a wheel that sorts first holds the same bytes compressed otherwise, its member is the
/// one copied, with the cache as without it.
#[test]
fn a_recorded_member_the_index_would_not_pick_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let content = text(6, 20_000);
    let (size, digest) = (content.len() as u64, *blake3::hash(&content).as_bytes());
    let ours = deflate::deflate(&content);
    let other = miniz_oxide::deflate::compress_to_vec(&content, 1);
    assert_ne!(
        ours, other,
        "two compressions, so the chosen one is visible"
    );
    let later = wheel_with(dir.path(), "b-1.0-py3-none-any.whl", &content, ours);
    let earlier = wheel_with(
        dir.path(),
        "a-1.0-py3-none-any.whl",
        &content,
        other.clone(),
    );
    let file = dir.path().join("module.py");
    fs::write(&file, &content).unwrap();

    prove_and_record(std::slice::from_ref(&later), &cache, &file, size, &digest);

    let both = [later, earlier];
    let with_cache = WheelMembers::index(&both, Some(&cache)).contents_for(&file, size, &digest);
    let without = WheelMembers::index(&both, None).contents_for(&file, size, &digest);
    match (with_cache, without) {
        (Contents::Deflated { data: a, .. }, Contents::Deflated { data: b, .. }) => {
            assert_eq!(a, other, "the earlier wheel's member");
            assert_eq!(a, b, "the same bytes with the cache as without");
        }
        other => panic!("expected two copies, got {other:?}"),
    }
}
