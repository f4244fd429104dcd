//! Reusing wheels' compressed bytes in bundle ZIPs: copied only when provably the same bytes.

use std::fs;
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

    let members = WheelMembers::index(&[wheel]);
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
    let members = WheelMembers::index(&[wheel]);
    assert_eq!(members.len(), 1, "indexed under the claimed CRC");
    let file = dir.path().join("module.py");
    fs::write(&file, &honest).unwrap();
    let contents = members.contents_for(&file, 5000, blake3::hash(&honest).as_bytes());
    match contents {
        Contents::Bytes(bytes) => assert_eq!(bytes, honest),
        other => panic!("the impostor's bytes were trusted: {other:?}"),
    }
}
