//! pystore's tag lists against golden lists produced by `packaging.tags` (see
//! `tests/data/python_tags/generate.py`, which regenerates them).

use std::fs;
use std::path::Path;

use pystore::python::{target_tags, Target};

#[test]
fn tags_match_packaging() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/python_tags");
    let cases = fs::read_to_string(dir.join("cases.tsv")).expect("read cases.tsv");
    let mut checked = 0;
    for line in cases
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let fields: Vec<&str> = line.split('\t').collect();
        let [file, triple, python, floor] = fields[..] else {
            panic!("bad line in cases.tsv: {line:?}");
        };
        let floor = (!floor.is_empty()).then_some(floor);
        let target = Target::new(triple, floor, python).expect("target");
        let expected: Vec<String> = fs::read_to_string(dir.join(file))
            .expect("read golden file")
            .lines()
            .map(str::to_owned)
            .collect();
        let actual: Vec<String> = target_tags(&target).iter().map(|t| t.to_string()).collect();
        if actual != expected {
            let first = actual
                .iter()
                .zip(&expected)
                .position(|(a, e)| a != e)
                .unwrap_or(actual.len().min(expected.len()));
            panic!(
                "{file}: tags differ from packaging's at index {first}: ours {:?}, packaging {:?} \
                 (ours has {}, packaging {})",
                actual.get(first),
                expected.get(first),
                actual.len(),
                expected.len()
            );
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} cases checked");
}

#[test]
fn default_floors_are_documented_ones() {
    // The golden cases use explicit floors; make sure the defaults are the ones documented.
    let t = Target::new("x86_64-unknown-linux-gnu", None, "3.12.7").unwrap();
    let explicit = Target::new("x86_64-unknown-linux-gnu", Some("2.17"), "3.12.7").unwrap();
    assert_eq!(target_tags(&t), target_tags(&explicit));
    let t = Target::new("aarch64-apple-darwin", None, "3.12.7").unwrap();
    let explicit = Target::new("aarch64-apple-darwin", Some("11.0"), "3.12.7").unwrap();
    assert_eq!(target_tags(&t), target_tags(&explicit));
}
