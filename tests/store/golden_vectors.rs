//! The golden vectors of store-layout.md §11, read from the document itself so that the spec and
//! the code cannot drift apart.

use std::fs;
use std::path::Path;

use crate::common::*;
use pystore::hash::{base32, canonical_json, to_hex, tree::Tree};
use pystore::store::id::id_of_canonical;

fn vectors() -> Vec<(String, String, String)> {
    let doc =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("store-layout.md")).unwrap();
    let block = doc
        .split("```golden\n")
        .nth(1)
        .expect("a golden block")
        .split("```")
        .next()
        .unwrap();
    block
        .lines()
        .map(|line| {
            let (lhs, expected) = line
                .split_once(" => ")
                .unwrap_or_else(|| panic!("bad line {line:?}"));
            let (kind, input) = lhs.split_once(' ').unwrap_or((lhs, ""));
            (
                kind.to_owned(),
                input.trim().to_owned(),
                expected.trim().to_owned(),
            )
        })
        .collect()
}

fn make(tree: &str, dir: &Path) -> std::path::PathBuf {
    match tree {
        "sample-tree" => {
            let root = dir.join("sample");
            make_sample_tree(&root);
            root
        }
        "hello-file" => {
            let file = dir.join("hello.txt");
            fs::write(&file, b"hello\n").unwrap();
            file
        }
        other => panic!("unknown tree {other}"),
    }
}

#[test]
fn golden_vectors_reproduce() {
    let vectors = vectors();
    assert!(vectors.len() >= 14, "all vectors found: {}", vectors.len());
    for (kind, input, expected) in vectors {
        let scratch = tempfile::tempdir().unwrap();
        let actual = match kind.as_str() {
            "base32" => base32::encode(&hex::decode(&input).unwrap()),
            "id" => {
                let value: serde_json::Value = serde_json::from_str(&input).unwrap();
                assert_eq!(
                    canonical_json::to_string(&value).unwrap(),
                    input,
                    "input is canonical"
                );
                id_of_canonical(&input).to_string()
            }
            "tree-serialisation" => {
                let mut bytes = Vec::new();
                Tree::read(&make(&input, scratch.path()))
                    .unwrap()
                    .write_canonical(&mut bytes)
                    .unwrap();
                to_hex(&bytes)
            }
            "tree-hash" => to_hex(
                &Tree::read(&make(&input, scratch.path()))
                    .unwrap()
                    .content_hash(),
            ),
            "add" => {
                let (tree, name) = input.split_once(' ').unwrap();
                let store = TempStore::new();
                let path = make(tree, scratch.path());
                let out = run_ok(
                    pystore(store.path())
                        .arg("add")
                        .arg(&path)
                        .arg("--name")
                        .arg(name),
                );
                let file_name = Path::new(out.trim())
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                assert_eq!(&file_name[33..], name);
                file_name[..32].to_owned()
            }
            other => panic!("unknown vector kind {other}"),
        };
        assert_eq!(actual, expected, "{kind} {input}");
    }
}
