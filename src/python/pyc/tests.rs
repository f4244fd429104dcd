//! Tests of the pyc reader and normaliser: marshal round trips, PEP 552 checked-hash headers
//! and, where a CPython is on the machine, pycs it compiled.

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const PYTHON: &str = "/usr/bin/python3.11";
/// CPython 3.11's final magic, 3495 followed by `\r\n`.
const MAGIC_311: [u8; 4] = [0xa7, 0x0d, 0x0d, 0x0a];

/// The interpreter, or `None` (with a message) when this machine has none.
fn python(test: &str) -> Option<&'static str> {
    if Path::new(PYTHON).exists() {
        Some(PYTHON)
    } else {
        eprintln!("{test}: skipped, {PYTHON} does not exist");
        None
    }
}

/// Run a Python script with arguments; panic with its stderr if it fails.
fn run_python(python: &str, script: &str, args: &[&Path]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("script.py");
    std::fs::write(&path, script).expect("write script");
    let out = Command::new(python)
        .arg("-s")
        .arg(&path)
        .args(args)
        .env("PYTHONHASHSEED", "0")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A header for a 3.11 hash-based pyc around `body`.
fn pyc311(body: &[u8]) -> Vec<u8> {
    let mut pyc = MAGIC_311.to_vec();
    pyc.extend_from_slice(&[3, 0, 0, 0]);
    pyc.extend_from_slice(&[0; 8]);
    pyc.extend_from_slice(body);
    pyc
}

#[test]
fn source_hash_matches_cpython() {
    let Some(python) = python("source_hash_matches_cpython") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let sizes = [0usize, 1, 7, 8, 9, 15, 16, 17, 1000];
    let mut paths = Vec::new();
    for size in sizes {
        let data: Vec<u8> = (0..size).map(|i| (i * 131 + size * 7) as u8).collect();
        let path = dir.path().join(format!("{size}.bin"));
        std::fs::write(&path, &data).expect("write");
        paths.push((path, data));
    }
    let script = r#"
import sys, _imp, importlib._bootstrap_external as be
print(be.MAGIC_NUMBER.hex())
for p in sys.argv[1:]:
    print(_imp.source_hash(be._RAW_MAGIC_NUMBER, open(p, 'rb').read()).hex())
"#;
    let args: Vec<&Path> = paths.iter().map(|(p, _)| p.as_path()).collect();
    let out = run_python(python, script, &args);
    let mut lines = out.lines();
    let magic = hex::decode(lines.next().expect("magic line")).expect("hex");
    assert_eq!(magic, MAGIC_311, "python3.11's magic number");
    for (_, data) in &paths {
        let expected = lines.next().expect("hash line");
        assert_eq!(
            hex::encode(source_hash(MAGIC_311, data)),
            expected,
            "source of {} bytes",
            data.len()
        );
    }
}

/// The `.py` files the differential test compiles: the first 200 of the standard library in
/// sorted order (tests and site-packages left out) plus a few big ones.
fn stdlib_sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if !matches!(
                    name,
                    "site-packages" | "dist-packages" | "test" | "tests" | "idle_test"
                ) {
                    walk(&path, out);
                }
            } else if name.ends_with(".py") {
                out.push(path);
            }
        }
    }
    let root = Path::new("/usr/lib/python3.11");
    let mut all = Vec::new();
    walk(root, &mut all);
    all.truncate(200);
    for big in ["typing.py", "argparse.py", "email/_header_value_parser.py"] {
        let path = root.join(big);
        if path.exists() && !all.contains(&path) {
            all.push(path);
        }
    }
    all
}

const COMPILE_SCRIPT: &str = r#"
import sys, os, _imp, importlib._bootstrap_external as be
listing, outdir, mode = sys.argv[1], sys.argv[2], sys.argv[3]
files = list(enumerate(open(listing).read().splitlines()))
hold = []
if mode == 'B':
    # A process that has loaded a lot, and keeps every code object it compiles, so that
    # interned names and constants have other reference counts than in process A.
    import asyncio, email, json, http.client, unittest, xml.dom.minidom, argparse, typing
    files.reverse()
for i, path in files:
    src = open(path, 'rb').read()
    try:
        code = compile(src, path, 'exec', dont_inherit=True)
    except (SyntaxError, ValueError):
        continue
    if mode == 'B':
        # In 3.11 names are interned and already shared, but a constant string, bytes, float
        # or tuple used once has one reference; an extra one (as any other holder would give
        # it) makes marshal flag it.
        todo = [code]
        while todo:
            c = todo.pop()
            hold.extend((c, c.co_consts, c.co_linetable, c.co_exceptiontable))
            for k in c.co_consts:
                hold.append(k)
                if hasattr(k, 'co_consts'):
                    todo.append(k)
    data = be._code_to_hash_pyc(code, _imp.source_hash(be._RAW_MAGIC_NUMBER, src), True)
    with open(os.path.join(outdir, '%04d.pyc' % i), 'wb') as f:
        f.write(data)
"#;

const EQUAL_SCRIPT: &str = r#"
import sys, marshal
a_dir, n_dir = sys.argv[1], sys.argv[2]
import os
names = sorted(os.listdir(a_dir))
bad = []
for name in names:
    a = open(os.path.join(a_dir, name), 'rb').read()
    n = open(os.path.join(n_dir, name), 'rb').read()
    if a[:16] != n[:16] or marshal.loads(a[16:]) != marshal.loads(n[16:]):
        bad.append(name)
print(len(names), len(bad), ' '.join(bad))
"#;

#[test]
fn normalize_makes_two_processes_agree() {
    let Some(python) = python("normalize_makes_two_processes_agree") else {
        return;
    };
    let sources = stdlib_sources();
    let tmp = tempfile::tempdir().expect("temp dir");
    let listing = tmp.path().join("files.txt");
    let text: Vec<String> = sources.iter().map(|p| p.display().to_string()).collect();
    std::fs::write(&listing, text.join("\n")).expect("write listing");
    let (dir_a, dir_b, dir_n) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("n"),
    );
    for dir in [&dir_a, &dir_b, &dir_n] {
        std::fs::create_dir(dir).expect("mkdir");
    }
    run_python(python, COMPILE_SCRIPT, &[&listing, &dir_a, Path::new("A")]);
    run_python(python, COMPILE_SCRIPT, &[&listing, &dir_b, Path::new("B")]);

    let mut names: Vec<_> = std::fs::read_dir(&dir_a)
        .expect("read a")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    assert!(names.len() >= 150, "only {} files compiled", names.len());
    let mut differed = 0;
    let mut flags_dropped = 0usize;
    for name in &names {
        let a = std::fs::read(dir_a.join(name)).expect("read a");
        let b = std::fs::read(dir_b.join(name)).expect("read b");
        if a != b {
            differed += 1;
        }
        let na = normalize(&a).unwrap_or_else(|e| panic!("{name:?} from A: {e}"));
        let nb = normalize(&b).unwrap_or_else(|e| panic!("{name:?} from B: {e}"));
        assert_eq!(na, nb, "{name:?} differs between processes after normalize");
        assert_eq!(normalize(&na).as_ref(), Ok(&na), "{name:?}: not idempotent");
        assert_eq!(na.len(), a.len(), "{name:?}: flags change no lengths");
        flags_dropped += a.iter().zip(&na).filter(|(x, y)| x != y).count();
        std::fs::write(dir_n.join(name), &na).expect("write normalised");
    }
    eprintln!(
        "{} stdlib files compiled in two processes: {differed} differed before normalize, \
         0 after; {flags_dropped} bytes of process A's pycs changed by normalize",
        names.len()
    );
    assert!(differed > 0, "no file differed, so the test proves nothing");

    let out = run_python(python, EQUAL_SCRIPT, &[&dir_a, &dir_n]);
    let mut fields = out.split_whitespace();
    assert_eq!(fields.next(), Some(names.len().to_string().as_str()));
    assert_eq!(fields.next(), Some("0"), "unequal code objects: {out}");
}

const TIMESTAMP_SCRIPT: &str = r#"
import sys, py_compile
from py_compile import PycInvalidationMode as M
src, ts, ch = sys.argv[1:4]
py_compile.compile(src, cfile=ts, doraise=True, invalidation_mode=M.TIMESTAMP)
py_compile.compile(src, cfile=ch, doraise=True, invalidation_mode=M.CHECKED_HASH)
"#;

#[test]
fn timestamp_to_checked_hash_matches_py_compile() {
    let Some(python) = python("timestamp_to_checked_hash_matches_py_compile") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = tmp.path().join("mod.py");
    let source = b"import os\n\nclass A:\n    x = (1, 2.5, 3j, 'os', b'b', None)\n\n    def f(self, y=os.sep):\n        return [self.x, y, {1: frozenset({'a', 'b'})}]\n";
    std::fs::write(&src, source).expect("write source");
    let (ts, ch) = (tmp.path().join("ts.pyc"), tmp.path().join("ch.pyc"));
    run_python(python, TIMESTAMP_SCRIPT, &[&src, &ts, &ch]);
    let ts = std::fs::read(ts).expect("read ts");
    let ch = std::fs::read(ch).expect("read ch");
    assert_eq!(&ts[4..8], &[0, 0, 0, 0], "a timestamp pyc");

    let converted = timestamp_to_checked_hash(&ts, source).expect("sizes match");
    assert_eq!(
        &converted[..16],
        &ch[..16],
        "header as py_compile writes it"
    );
    assert_eq!(&converted[16..], &ts[16..], "body kept");
    assert_eq!(normalize(&converted), normalize(&ch));

    let mut longer = source.to_vec();
    longer.push(b'\n');
    assert_eq!(
        timestamp_to_checked_hash(&ts, &longer),
        None,
        "size differs"
    );
    assert_eq!(
        timestamp_to_checked_hash(&ch, source),
        None,
        "already hash-based"
    );
    assert_eq!(
        timestamp_to_checked_hash(&ts[..15], source),
        None,
        "too short"
    );
}

#[test]
fn timestamp_to_checked_hash_without_python() {
    let source = b"x = 1\n";
    let mut ts = MAGIC_311.to_vec();
    ts.extend_from_slice(&0u32.to_le_bytes());
    ts.extend_from_slice(&1_700_000_000u32.to_le_bytes());
    ts.extend_from_slice(&(source.len() as u32).to_le_bytes());
    ts.extend_from_slice(b"N");
    let out = timestamp_to_checked_hash(&ts, source).expect("converted");
    assert_eq!(&out[..4], &MAGIC_311);
    assert_eq!(&out[4..8], &[3, 0, 0, 0]);
    assert_eq!(&out[8..16], &source_hash(MAGIC_311, source));
    assert_eq!(&out[16..], b"N");
    assert_eq!(timestamp_to_checked_hash(&ts, b"x = 12\n"), None);
}

/// `(s, s, 'abc')` where the tuple and the first string are flagged but only the string is
/// referenced, and an unreferenced flagged int.
fn small_body() -> Vec<u8> {
    let mut body = vec![b')' | FLAG_REF, 4];
    body.extend_from_slice(&[b'z' | FLAG_REF, 1, b's']);
    body.extend_from_slice(&[b'r', 1, 0, 0, 0]);
    body.extend_from_slice(&[b'i' | FLAG_REF, 7, 0, 0, 0]);
    body.extend_from_slice(&[b'z', 3, b'a', b'b', b'c']);
    body
}

#[test]
fn normalize_keeps_only_referenced_flags_and_renumbers() {
    let pyc = pyc311(&small_body());
    let out = normalize(&pyc).expect("valid");
    let mut expected = vec![b')', 4];
    expected.extend_from_slice(&[b'z' | FLAG_REF, 1, b's']);
    expected.extend_from_slice(&[b'r', 0, 0, 0, 0]);
    expected.extend_from_slice(&[b'i', 7, 0, 0, 0]);
    expected.extend_from_slice(&[b'z', 3, b'a', b'b', b'c']);
    assert_eq!(&out[16..], &expected[..]);
    assert_eq!(&out[..16], &pyc[..16]);
    assert_eq!(normalize(&out), Ok(out.clone()));
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    let mut pycs = vec![pyc311(&small_body())];
    if let Some(python) = python("truncation_at_every_offset_is_an_error (real pyc)") {
        let tmp = tempfile::tempdir().expect("temp dir");
        let src = tmp.path().join("m.py");
        std::fs::write(&src, "def f(x, *a, k=2.0, **kw):\n    return {x: (a, k, 10**30, -7)}\nclass C:\n    s = {1, 2}\n")
            .expect("write");
        let (ts, ch) = (tmp.path().join("ts.pyc"), tmp.path().join("ch.pyc"));
        run_python(python, TIMESTAMP_SCRIPT, &[&src, &ts, &ch]);
        pycs.push(std::fs::read(ch).expect("read"));
    }
    for pyc in pycs {
        assert!(normalize(&pyc).is_ok());
        for len in 0..pyc.len() {
            let result = normalize(&pyc[..len]);
            assert!(
                result.is_err(),
                "prefix of {len} bytes accepted: {result:?}"
            );
        }
    }
}

#[test]
fn malformed_input_is_refused() {
    // A reference to an index nothing has yet.
    let err = normalize(&pyc311(&[b')', 2, b'z' | FLAG_REF, 0, b'r', 1, 0, 0, 0])).unwrap_err();
    assert_eq!(
        err,
        PycError::BadRef {
            offset: 20,
            index: 1,
            known: 1
        }
    );
    // A reference to itself from inside a frozenset (CPython registers it only when read).
    let err = normalize(&pyc311(&[b'>' | FLAG_REF, 1, 0, 0, 0, b'r', 0, 0, 0, 0])).unwrap_err();
    assert_eq!(
        err,
        PycError::RefToIncomplete {
            offset: 21,
            index: 0
        }
    );
    // A negative length.
    let err = normalize(&pyc311(&[b's', 0xff, 0xff, 0xff, 0xff])).unwrap_err();
    assert_eq!(
        err,
        PycError::NegativeSize {
            offset: 17,
            size: -1
        }
    );
    // An unknown type code, and a slice before 3.14.
    assert!(matches!(
        normalize(&pyc311(b"?")),
        Err(PycError::UnknownType {
            code: b'?',
            offset: 16,
            ..
        })
    ));
    assert!(matches!(
        normalize(&pyc311(b":NNN")),
        Err(PycError::UnknownType { code: b':', .. })
    ));
    // NULL outside a dict key, trailing bytes.
    assert_eq!(
        normalize(&pyc311(b"0")),
        Err(PycError::UnexpectedNull { offset: 16 })
    );
    assert_eq!(
        normalize(&pyc311(b")\x010")),
        Err(PycError::UnexpectedNull { offset: 18 })
    );
    assert_eq!(
        normalize(&pyc311(b"NN")),
        Err(PycError::TrailingBytes {
            offset: 17,
            extra: 1
        })
    );
    // Too deep: nested one-element tuples.
    let mut deep = Vec::new();
    for _ in 0..3000 {
        deep.extend_from_slice(&[b')', 1]);
    }
    deep.push(b'N');
    assert!(matches!(
        normalize(&pyc311(&deep)),
        Err(PycError::TooDeep {
            limit: MAX_DEPTH,
            ..
        })
    ));
    // An unknown magic is named in the error.
    let mut pyc = pyc311(b"N");
    pyc[..2].copy_from_slice(&3439u16.to_le_bytes());
    let err = normalize(&pyc).unwrap_err();
    assert_eq!(
        err,
        PycError::UnknownMagic {
            bytes: [0x6f, 0x0d, 0x0d, 0x0a]
        }
    );
    assert!(err.to_string().contains("3439"), "{err}");
    assert_eq!(normalize(b"short"), Err(PycError::TooShort { len: 5 }));
}

#[test]
fn slices_and_dicts_on_314() {
    let mut pyc = pyc311(&[]);
    pyc[..2].copy_from_slice(&3627u16.to_le_bytes());
    // {slice(1, None, None) flagged and referenced: r} with a flagged unreferenced key.
    pyc.extend_from_slice(&[b'{', b'z' | FLAG_REF, 1, b'k', b':' | FLAG_REF]);
    pyc.extend_from_slice(&[b'i', 1, 0, 0, 0, b'N', b'N']);
    pyc.extend_from_slice(&[b'z', 1, b'j', b'r', 1, 0, 0, 0, b'0']);
    let out = normalize(&pyc).expect("valid");
    let mut expected = vec![b'{', b'z', 1, b'k', b':' | FLAG_REF];
    expected.extend_from_slice(&[b'i', 1, 0, 0, 0, b'N', b'N']);
    expected.extend_from_slice(&[b'z', 1, b'j', b'r', 0, 0, 0, 0, b'0']);
    assert_eq!(&out[16..], &expected[..]);
}
