use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::lock::{Lock, LockedPackage, LockedTarget, LOCK_VERSION};
use crate::python::TargetSpec;

fn package(name: &str, version: &str, wheel: &str, by: &[&str]) -> LockedPackage {
    LockedPackage {
        name: name.parse().unwrap(),
        version: version.parse().unwrap(),
        wheel: wheel.parse().unwrap(),
        size: wheel.len() as u64 * 1000,
        sha256: blake3::hash(wheel.as_bytes()).to_hex().parse().unwrap(),
        required_by: by.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn sample() -> Lock {
    Lock {
        version: LOCK_VERSION,
        python: "3.12.7".into(),
        inputs: "blake3:0123".into(),
        targets: vec![
            LockedTarget {
                spec: TargetSpec::new("windows-x86_64", "x86_64-pc-windows-msvc", None).unwrap(),
                interpreter: None,
                packages: vec![
                    package("lxml", "6.1.3", "lxml-6.1.3-cp312-cp312-win_amd64.whl", &["requirements.txt:2"]),
                    package("psycopg2", "2.9.10", "psycopg2-2.9.10-cp312-cp312-win_amd64.whl", &["requirements.txt:1"]),
                    package("six", "1.17.0", "six-1.17.0-py2.py3-none-any.whl", &["lxml"]),
                ],
            },
            LockedTarget {
                spec: TargetSpec::new("linux-x86_64", "x86_64-unknown-linux-gnu", Some("2.28")).unwrap(),
                interpreter: None,
                packages: vec![
                    package("lxml", "6.1.3", "lxml-6.1.3-cp312-cp312-manylinux_2_28_x86_64.whl", &["requirements.txt:2"]),
                    package("psycopg2-binary", "2.9.10", "psycopg2_binary-2.9.10-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", &["requirements.txt:3"]),
                    package("six", "1.16.0", "six-1.16.0-py2.py3-none-any.whl", &["lxml"]),
                ],
            },
        ],
    }
}

fn targets_of(lock: &Lock) -> Vec<TargetSpec> {
    lock.targets.iter().map(|t| t.spec.clone()).collect()
}

#[test]
fn pystore_lock_round_trips_through_pylock() {
    let lock = sample();
    let text = to_pylock(&lock, &BTreeMap::new()).unwrap();
    let back = parse_pylock(
        Path::new("pylock.toml"),
        &text,
        "3.12.7",
        &targets_of(&lock),
    )
    .unwrap();
    assert!(back.written_by_pystore);
    assert_eq!(back.lock.to_toml(), lock.to_toml());
    // Writing is deterministic.
    assert_eq!(to_pylock(&back.lock, &BTreeMap::new()).unwrap(), text);
}

#[test]
fn written_file_is_standard_pep_751() {
    let mut locations = BTreeMap::new();
    locations.insert(
        "six-1.17.0-py2.py3-none-any.whl".to_owned(),
        WheelLocation::Url("http://127.0.0.1:9/files/six-1.17.0-py2.py3-none-any.whl".into()),
    );
    let text = to_pylock(&sample(), &locations).unwrap();
    let value: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(value["lock-version"].as_str(), Some("1.0"));
    assert_eq!(value["created-by"].as_str(), Some("pystore"));
    assert_eq!(value["requires-python"].as_str(), Some("==3.12.7"));
    let environments = value["environments"].as_array().unwrap();
    assert_eq!(environments.len(), 2);
    // A lock of `python = "3.12"` is for the release its interpreters pin, not 3.12.0.
    let mut minor = sample();
    minor.python = "3.12".into();
    for target in &mut minor.targets {
        target.interpreter = Some(crate::lock::LockedInterpreter {
            version: "3.12.14".into(),
            url: "https://example.invalid/cpython.tar.gz".into(),
            size: None,
            sha256: "ab".repeat(32).parse().unwrap(),
        });
    }
    let pinned: toml::Table = toml::from_str(&to_pylock(&minor, &locations).unwrap()).unwrap();
    assert_eq!(pinned["requires-python"].as_str(), Some("==3.12.14"));
    let packages = value["packages"].as_array().unwrap();
    let names: Vec<(&str, &str)> = packages
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["version"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("lxml", "6.1.3"),
            ("psycopg2", "2.9.10"),
            ("psycopg2-binary", "2.9.10"),
            ("six", "1.16.0"),
            ("six", "1.17.0")
        ]
    );
    // lxml is on both targets: no marker, both wheels.
    assert!(packages[0].get("marker").is_none());
    assert_eq!(packages[0]["wheels"].as_array().unwrap().len(), 2);
    // psycopg2 only on Windows.
    assert_eq!(
        packages[1]["marker"].as_str(),
        Some("sys_platform == 'win32' and platform_machine == 'AMD64'")
    );
    let six = &packages[4]["wheels"].as_array().unwrap()[0];
    assert_eq!(
        six["url"].as_str(),
        Some("http://127.0.0.1:9/files/six-1.17.0-py2.py3-none-any.whl")
    );
    assert_eq!(
        six["hashes"]["sha256"].as_str().unwrap(),
        blake3::hash(b"six-1.17.0-py2.py3-none-any.whl")
            .to_hex()
            .as_str()
    );
}

/// A lock in the shape uv and pip write: markers, several wheels, no `[tool.pystore]`.
const FOREIGN: &str = r#"
lock-version = "1.0"
requires-python = ">=3.9"
created-by = "some-tool"

[[packages]]
name = "LXML"
version = "6.1.3"
dependencies = [{ name = "six" }]
wheels = [
  { url = "https://example.com/lxml-6.1.3-cp312-cp312-win_amd64.whl", size = 10, hashes = { sha256 = "1111111111111111111111111111111111111111111111111111111111111111" } },
  { url = "https://example.com/lxml-6.1.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", size = 11, hashes = { sha256 = "2222222222222222222222222222222222222222222222222222222222222222" } },
  { url = "https://example.com/lxml-6.1.3-cp312-cp312-manylinux_2_28_x86_64.whl", size = 12, hashes = { sha256 = "3333333333333333333333333333333333333333333333333333333333333333" } },
]

[[packages]]
name = "pywin32"
version = "311"
marker = "sys_platform == 'win32'"
wheels = [{ name = "pywin32-311-cp312-cp312-win_amd64.whl", path = "wheels/pywin32-311-cp312-cp312-win_amd64.whl", size = 20, hashes = { sha256 = "4444444444444444444444444444444444444444444444444444444444444444" } }]

[[packages]]
name = "six"
version = "1.17.0"
wheels = [{ url = "https://example.com/six-1.17.0-py2.py3-none-any.whl", upload-time = 2024-12-04T17:35:26Z, size = 30, hashes = { sha256 = "5555555555555555555555555555555555555555555555555555555555555555" } }]
"#;

fn foreign_targets() -> Vec<TargetSpec> {
    vec![
        TargetSpec::new("linux", "x86_64-unknown-linux-gnu", None).unwrap(),
        TargetSpec::new("linux-228", "x86_64-unknown-linux-gnu", Some("2.28")).unwrap(),
        TargetSpec::new("win", "x86_64-pc-windows-msvc", None).unwrap(),
    ]
}

#[test]
fn foreign_locks_pick_per_target_by_marker_and_tags() {
    let read = parse_pylock(
        Path::new("pylock.toml"),
        FOREIGN,
        "3.12.7",
        &foreign_targets(),
    )
    .unwrap();
    assert!(!read.written_by_pystore);
    let wheels = |t: &str| -> Vec<String> {
        read.lock
            .target(t)
            .unwrap()
            .packages
            .iter()
            .map(|p| p.wheel.to_string())
            .collect()
    };
    assert_eq!(
        wheels("linux"),
        [
            "lxml-6.1.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "six-1.17.0-py2.py3-none-any.whl"
        ]
    );
    assert_eq!(
        wheels("linux-228")[0],
        "lxml-6.1.3-cp312-cp312-manylinux_2_28_x86_64.whl"
    );
    assert_eq!(
        wheels("win"),
        [
            "lxml-6.1.3-cp312-cp312-win_amd64.whl",
            "pywin32-311-cp312-cp312-win_amd64.whl",
            "six-1.17.0-py2.py3-none-any.whl"
        ]
    );
    let win = read.lock.packages_of("win");
    assert_eq!(win["lxml"].size, 10);
    assert_eq!(win["six"].required_by, ["lxml"]);
    assert_eq!(win["pywin32"].sha256.to_string(), "4".repeat(64));
}

#[test]
fn foreign_locks_that_cannot_be_pinned_are_refused_by_name() {
    let path = Path::new("/p/pylock.toml");
    let err = |text: &str| {
        parse_pylock(path, text, "3.12.7", &foreign_targets())
            .unwrap_err()
            .to_string()
    };
    let sdist = "lock-version = \"1.0\"\ncreated-by = \"x\"\n[[packages]]\nname = \"foo\"\nversion = \"1\"\nsdist = { name = \"foo-1.tar.gz\", size = 1, hashes = { sha256 = \"00\" } }\n";
    let e = err(sdist);
    assert!(
        e.contains("/p/pylock.toml: package foo: has only a source distribution"),
        "{e}"
    );
    let no_size = FOREIGN.replace("size = 30, ", "");
    let e = err(&no_size);
    assert!(
        e.contains("package six: six-1.17.0-py2.py3-none-any.whl has no size"),
        "{e}"
    );
    let linux_only = FOREIGN.replace(
        "{ url = \"https://example.com/lxml-6.1.3-cp312-cp312-win_amd64.whl\", size = 10, hashes = { sha256 = \"1111111111111111111111111111111111111111111111111111111111111111\" } },",
        "",
    );
    let e = err(&linux_only);
    assert!(
        e.contains("package lxml: none of its wheels") && e.contains("(target win)"),
        "{e}"
    );
    let e = err(&FOREIGN.replace(">=3.9", ">=3.13"));
    assert!(
        e.contains("target linux: the file's requires-python \">=3.13\" excludes CPython 3.12.7"),
        "{e}"
    );
    let e = err(&FOREIGN.replace("lock-version = \"1.0\"", "lock-version = \"2.0\""));
    assert!(e.contains("lock-version \"2.0\""), "{e}");
}

#[test]
fn own_files_must_lock_the_targets_asked_for() {
    let lock = sample();
    let text = to_pylock(&lock, &BTreeMap::new()).unwrap();
    let mut targets = targets_of(&lock);
    targets[1] = TargetSpec::new("linux-x86_64", "x86_64-unknown-linux-gnu", None).unwrap();
    let e = parse_pylock(Path::new("pylock.toml"), &text, "3.12.7", &targets)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("target linux-x86_64: is not locked in this file"),
        "{e}"
    );
    let e = parse_pylock(
        Path::new("pylock.toml"),
        &text,
        "3.13.1",
        &targets_of(&lock),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("locked for CPython 3.12.7, not 3.13.1"), "{e}");
}

#[test]
fn pylock_file_names() {
    assert!(is_pylock_name("pylock.toml"));
    assert!(is_pylock_name("pylock.samai.toml"));
    assert!(!is_pylock_name("pylock..toml"));
    assert!(!is_pylock_name("pylock.a.b.toml"));
    assert!(!is_pylock_name("pystore.lock"));
}

/// The bytes `to_pylock` wrote for [`sample`] before targets became [`TargetSpec`]s (the
/// held file was written by that code): the shape of `[tool.pystore]` and of every marker
/// must not move.
#[test]
fn written_bytes_are_held() {
    let text = to_pylock(&sample(), &BTreeMap::new()).unwrap();
    assert_eq!(
        text,
        include_str!("../../../tests/data/lock/sample.pylock.toml")
    );
    let back = parse_pylock(
        Path::new("pylock.toml"),
        &text,
        "3.12.7",
        &targets_of(&sample()),
    )
    .unwrap();
    let mut expected = sample();
    expected
        .targets
        .sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    assert_eq!(back.lock, expected);
}

#[test]
fn a_bad_platform_in_tool_pystore_is_refused() {
    let text = to_pylock(&sample(), &BTreeMap::new()).unwrap().replace(
        "platform = \"x86_64-pc-windows-msvc\"",
        "platform = \"x86_64-pc-windows-gnu\"",
    );
    let e = parse_pylock(Path::new("pylock.toml"), &text, "3.12.7", &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unsupported platform \"x86_64-pc-windows-gnu\""),
        "{e}"
    );
}

#[test]
fn refusals_are_typed_problems() {
    let sdist = "lock-version = \"1.0\"\ncreated-by = \"x\"\n[[packages]]\nname = \"foo\"\nversion = \"1\"\nsdist = { name = \"foo-1.tar.gz\", size = 1, hashes = { sha256 = \"00\" } }\n";
    let err = parse_pylock(Path::new("p"), sdist, "3.12.7", &foreign_targets()).unwrap_err();
    assert!(
        matches!(
            &err,
            PylockError::PackageForTarget { package, problem, .. }
                if package == "foo" && matches!(**problem, PackageProblem::NoWheels(NotAWheel::Sdist))
        ),
        "{err:?}"
    );
    let err = parse_pylock(Path::new("p"), "lock-version = ", "3.12.7", &[]).unwrap_err();
    assert!(
        matches!(
            err,
            PylockError::Parse {
                problem: FileProblem::Toml(_),
                ..
            }
        ),
        "{err:?}"
    );
    // The TOML error is said once, without toml's trailing line break.
    assert_eq!(crate::errors::chain(&err).len(), 1);
    assert_eq!(err.to_string().trim_end(), err.to_string());
}
