//! Fuzzing, bounded in time, as ordinary tests on stable Rust (cargo-fuzz needs nightly): the
//! wheel (ZIP) reader and installer, the tar reader, the lock and recipe parsers and the index
//! page parsers get mutated inputs grown from a committed corpus (`tests/fuzz_corpus/`) and
//! from archives built here. Properties: no panic (an error is fine), nothing written outside
//! the destination, memory bounded.
//!
//! Each target runs for `PYSTORE_FUZZ_SECS` seconds (default 4) or `PYSTORE_FUZZ_CASES` cases
//! (default 5000), whichever ends first, from the seed `PYSTORE_FUZZ_SEED` (default fixed, so a
//! failure repeats). A failing input is saved under `target/fuzz-failures/` and named in the
//! failure; add it to the corpus once fixed.

use std::fs;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use crate::pyfixtures::{tar_dir, tar_file, tar_symlink, WheelBuilder, ZipMember};
use pystore::archive::extract::{extract_tar, CheckedZip, Limits, TarCompression};
use pystore::python::{install_wheel, InstallOptions, Scheme, Target};
use reqwest::Url;

/// Small limits: a mutated size field must be refused, never allocated or written.
const LIMITS: Limits = Limits {
    max_member: 1 << 20,
    max_total: 4 << 20,
    max_members: 2000,
};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Tokens that reach deeper than random bytes: path escapes, format keywords, big numbers.
const DICTIONARY: &[&[u8]] = &[
    b"../",
    b"/",
    b"\\",
    b"..",
    b"\0",
    b"C:",
    b"\"",
    b"[[",
    b"]]",
    b"=",
    b"\n",
    b"{",
    b"}",
    b"<a href=",
    b"#sha256=",
    b"file:///",
    b"4294967295",
    b"18446744073709551615",
    b"-1",
    b"\xff\xff\xff\xff",
    b"PK\x03\x04",
    b"PK\x01\x02",
    b"PK\x05\x06",
    b"ustar",
    b".dist-info/",
    b".data/scripts/",
    b"RECORD",
];

/// One mutation of `input`: bit flips, byte changes, truncation, duplication, insertion of a
/// dictionary token, or a splice with another corpus item.
fn mutate(rng: &mut fastrand::Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..rng.usize(1..=4) {
        let len = data.len();
        match rng.u8(0..8) {
            0 if len > 0 => {
                let i = rng.usize(0..len);
                data[i] ^= 1 << rng.u8(0..8);
            }
            1 if len > 0 => {
                let i = rng.usize(0..len);
                data[i] = [0, 0xff, 0x7f, 0x80, b'/', b'.'][rng.usize(0..6)];
            }
            2 if len > 0 => data.truncate(rng.usize(0..len)),
            3 if len > 0 => {
                let start = rng.usize(0..len);
                let end = (start + rng.usize(1..64)).min(len);
                let chunk = data[start..end].to_vec();
                let at = rng.usize(0..=len);
                data.splice(at..at, chunk);
            }
            4 => {
                let token = DICTIONARY[rng.usize(0..DICTIONARY.len())];
                let at = rng.usize(0..=len);
                data.splice(at..at, token.iter().copied());
            }
            5 if len > 0 => {
                let token = DICTIONARY[rng.usize(0..DICTIONARY.len())];
                let at = rng.usize(0..len);
                let end = (at + token.len()).min(len);
                data.splice(at..end, token.iter().copied());
            }
            6 if !corpus.is_empty() => {
                let other = &corpus[rng.usize(0..corpus.len())];
                if !other.is_empty() && len > 0 {
                    let cut = rng.usize(0..len);
                    let from = rng.usize(0..other.len());
                    data.truncate(cut);
                    data.extend_from_slice(&other[from..]);
                }
            }
            _ if len > 0 => {
                // Little-endian and decimal fields: set 4 bytes to a large value.
                let i = rng.usize(0..len);
                for (k, b) in 0x7fff_fff0u32.to_le_bytes().iter().enumerate() {
                    if let Some(slot) = data.get_mut(i + k) {
                        *slot = *b;
                    }
                }
            }
            _ => data.push(rng.u8(..)),
        }
    }
    data
}

/// Runs `case` on mutations of `corpus` until the time or case budget ends; a panic fails the
/// test naming the saved input.
fn fuzz(name: &str, corpus: Vec<Vec<u8>>, mut case: impl FnMut(&[u8], usize)) {
    assert!(!corpus.is_empty(), "{name}: empty corpus");
    let budget = Duration::from_secs(env_number("PYSTORE_FUZZ_SECS", 4));
    let max_cases = env_number("PYSTORE_FUZZ_CASES", 5000) as usize;
    let seed = env_number("PYSTORE_FUZZ_SEED", 0x5eed_1234);
    let mut rng = fastrand::Rng::with_seed(seed);
    let started = Instant::now();
    let mut cases = 0;
    // The corpus itself first, unmutated.
    let mut inputs: Vec<Vec<u8>> = corpus.clone();
    while cases < max_cases && (cases < corpus.len() || started.elapsed() < budget) {
        let input = match inputs.pop() {
            Some(input) => input,
            None => {
                let base = &corpus[rng.usize(0..corpus.len())];
                mutate(&mut rng, base, &corpus)
            }
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| case(&input, cases)));
        if let Err(panic) = outcome {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../fuzz-failures");
            fs::create_dir_all(&dir).unwrap();
            let saved = dir.join(format!("{name}-{seed}-{cases}"));
            fs::write(&saved, &input).unwrap();
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!(
                "{name}: case {cases} (seed {seed}) failed: {message}; input saved at {}",
                saved.display()
            );
        }
        cases += 1;
    }
    eprintln!(
        "{name}: {cases} cases in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_memory_bounded(name);
}

/// The process's peak resident memory stays far below what an unbounded read would take.
fn assert_memory_bounded(name: &str) {
    let Ok(status) = fs::read_to_string("/proc/self/status") else {
        return;
    };
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    assert!(
        peak_kib < 1536 * 1024,
        "{name}: peak memory {peak_kib} KiB (more than 1.5 GiB)"
    );
}

fn corpus_dir(kind: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_corpus")
        .join(kind);
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths.into_iter().map(|p| fs::read(p).unwrap()).collect()
}

/// Lexically resolves `target` from the directory `from`, inside `root`; false if it leaves it.
fn stays_inside(root: &Path, from: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let Ok(relative) = from.strip_prefix(root) else {
        return false;
    };
    let mut depth: Vec<Component> = relative.components().collect();
    for component in target.components() {
        match component {
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            Component::Normal(_) => depth.push(component),
            Component::CurDir => {}
            _ => return false,
        }
    }
    true
}

/// Everything under `out` is a directory, a regular file or a symlink resolving inside it.
fn assert_contained(out: &Path, dir: &Path) {
    let Ok(children) = fs::read_dir(dir) else {
        return;
    };
    for child in children {
        let path = child.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).unwrap();
            assert!(
                stays_inside(out, dir, &target),
                "{} -> {} leaves the destination",
                path.display(),
                target.display()
            );
        } else if meta.is_dir() {
            assert_contained(out, &path);
        } else {
            assert!(meta.is_file(), "{} is a special file", path.display());
        }
    }
}

/// A scratch directory for one case: `archive_name` is written there, `out` is the destination,
/// and a sentinel beside them must survive. Afterwards nothing else may exist there.
fn with_case(archive_name: &str, input: &[u8], run: impl FnOnce(&Path, &Path)) {
    let scratch = tempfile::tempdir().unwrap();
    let case = scratch.path().join("case");
    fs::create_dir(&case).unwrap();
    fs::write(scratch.path().join("sentinel"), b"keep").unwrap();
    let archive = case.join(archive_name);
    fs::write(&archive, input).unwrap();
    let out = case.join("out");
    run(&archive, &out);
    let mut names: Vec<String> = fs::read_dir(&case)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.retain(|n| n != archive_name && n != "out");
    assert!(
        names.is_empty(),
        "written beside the destination: {names:?}"
    );
    let mut top: Vec<String> = fs::read_dir(scratch.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["case", "sentinel"], "written outside the case");
    assert_eq!(fs::read(scratch.path().join("sentinel")).unwrap(), b"keep");
    if out.exists() {
        assert_contained(&out, &out);
    }
    make_removable(scratch.path());
}

fn make_removable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::symlink_metadata(path) {
        if meta.is_dir() {
            let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o755));
            if let Ok(children) = fs::read_dir(path) {
                for child in children.flatten() {
                    make_removable(&child.path());
                }
            }
        }
    }
}

fn wheel_seeds() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let plain = WheelBuilder::new("demo_pkg", "1.0", "py3-none-any")
        .file("demo_pkg/__init__.py", b"X = 1\n")
        .file("demo_pkg/data.txt", b"payload\n");
    let info = plain.dist_info();
    let rich = WheelBuilder::new("demo_pkg", "1.0", "py3-none-any")
        .file("demo_pkg/__init__.py", b"def main():\n    pass\n")
        .executable(
            &format!("{}/scripts/tool", plain.data_dir()),
            b"#!python\nprint('x')\n",
        )
        .file(&format!("{}/data/share/x.txt", plain.data_dir()), b"x\n")
        .file(
            &format!("{info}/entry_points.txt"),
            b"[console_scripts]\ndemo = demo_pkg:main\n",
        )
        .member(ZipMember {
            deflate: true,
            ..ZipMember::file("demo_pkg/big.txt", &b"abcdefgh".repeat(512))
        })
        .metadata("Requires-Dist: other>=1; python_version >= \"3.8\"");
    let mut seeds = Vec::new();
    for (i, builder) in [plain, rich].iter().enumerate() {
        let sub = dir.path().join(i.to_string());
        fs::create_dir(&sub).unwrap();
        seeds.push(fs::read(builder.build(&sub)).unwrap());
    }
    seeds
}

#[test]
fn fuzz_the_wheel_reader_and_installer() {
    let target = Target::new("x86_64-unknown-linux-gnu", None, "3.11.2").unwrap();
    let scheme = Scheme::for_target(&target);
    fuzz("wheel", wheel_seeds(), |input, _| {
        with_case("demo_pkg-1.0-py3-none-any.whl", input, |archive, out| {
            if let Ok(mut zip) = CheckedZip::open(archive, &LIMITS) {
                let names: Vec<String> = zip.members().map(|(n, _)| n.to_owned()).collect();
                for name in names {
                    let _ = zip.copy_member(&name, &mut std::io::sink());
                }
            }
            let options = InstallOptions {
                limits: LIMITS,
                ..Default::default()
            };
            let _ = install_wheel(archive, &target, &scheme, out, &options);
        });
    });
}

fn tar_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let mut tar = tar::Builder::new(Vec::new());
    tar_dir(&mut tar, "python");
    tar_dir(&mut tar, "python/bin");
    tar_file(
        &mut tar,
        "python/bin/python3.11",
        b"\x7fELF not really",
        0o755,
    );
    tar_symlink(&mut tar, "python/bin/python3", "python3.11");
    tar_dir(&mut tar, "python/lib");
    tar_file(
        &mut tar,
        "python/lib/os.py",
        &b"import sys\n".repeat(40),
        0o644,
    );
    tar_symlink(&mut tar, "python/lib/up", "../bin");
    tar_file(
        &mut tar,
        "other/ignored.txt",
        b"outside the strip directory",
        0o644,
    );
    seeds.push(tar.into_inner().unwrap());
    let mut small = tar::Builder::new(Vec::new());
    tar_file(&mut small, "python/a", b"a", 0o644);
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Link);
    header.set_size(0);
    small
        .append_link(&mut header, "python/b", "python/a")
        .unwrap();
    seeds.push(small.into_inner().unwrap());
    seeds
}

#[test]
fn fuzz_the_tar_reader() {
    // Mutations go into the tar layer; the result is then compressed, as archives are.
    fuzz("tar", tar_seeds(), |input, _| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(input).unwrap();
        let compressed = gz.finish().unwrap();
        with_case("python.tar.gz", &compressed, |archive, out| {
            let _ = extract_tar(archive, TarCompression::Gzip, "python", out, &LIMITS);
        });
    });
}

#[test]
fn fuzz_the_lock_parser() {
    let path = Path::new("/recipes/demo/pystore.lock");
    fuzz("lock", corpus_dir("lock"), |input, _| {
        let text = String::from_utf8_lossy(input);
        if let Ok(lock) = pystore::lock::Lock::parse(path, &text) {
            // What parses also writes and parses back the same.
            let again =
                pystore::lock::Lock::parse(path, &lock.to_toml()).expect("a written lock parses");
            assert_eq!(again.to_toml(), lock.to_toml());
        }
    });
}

#[test]
fn fuzz_the_recipe_parser() {
    let path = Path::new("/recipes/demo/recipe.toml");
    fuzz("recipe", corpus_dir("recipe"), |input, _| {
        let text = String::from_utf8_lossy(input);
        // Errors are fine; a panic is not. (Where `lock` and `requirements` may point is
        // checked by the recipe's own tests.)
        let _ = pystore::recipe::parse(path, &text);
    });
}

#[test]
fn fuzz_the_index_page_parsers() {
    let page = Url::parse("https://index.example/simple/app/").unwrap();
    fuzz("index", corpus_dir("index"), |input, _| {
        let _ = pystore::fetch::index::parse_json(&page, input);
        let _ = pystore::fetch::index::parse_html(&page, input);
    });
}
