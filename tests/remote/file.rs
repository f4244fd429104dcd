//! push and pull through a `file:///DIR` remote: identical entries and ZIP after a round trip,
//! nothing uploaded twice, and tampered, untrusted or substituted descriptions refused with the
//! store left unchanged.

use std::fs;
use std::path::Path;

use crate::common::*;
use crate::remote_fixtures::{blobs, closure, copy_dir, Setup};

fn file_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

fn push(setup: &Setup, store: &Path, remote: &Path, key: Option<&Path>) -> serde_json::Value {
    let mut cmd = setup.pystore(store);
    cmd.args(["push"])
        .arg(&setup.recipe)
        .arg("--to")
        .arg(file_url(remote));
    if let Some(key) = key {
        cmd.env("PYSTORE_SIGNING_KEY", key);
    }
    json(&mut cmd)
}

#[test]
fn push_then_pull_gives_the_same_entries_and_zip_and_a_second_push_uploads_nothing() {
    let setup = Setup::new();
    let a = TempStore::new();
    let remote = setup.work.path().join("cache");
    let first = push(&setup, a.path(), &remote, Some(&setup.secret));
    let uploaded: Vec<&str> = first["uploaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(uploaded.contains(&"demo-1.0.0-t.zip"), "{first}");
    assert!(
        uploaded.contains(&"demo-1.0.0-t.zip.intoto.jsonl"),
        "{first}"
    );
    assert!(uploaded.contains(&"demo-1.0.0-t.zip.cdx.json"), "{first}");
    assert_eq!(uploaded.last(), Some(&"pystore-index.json"), "index last");
    let entries = first["closure"].as_u64().unwrap() as usize;
    assert_eq!(blobs(&remote, ".entry.json").len(), entries);
    assert_eq!(blobs(&remote, ".tar.zst").len(), entries);

    let again = push(&setup, a.path(), &remote, Some(&setup.secret));
    assert_eq!(again["uploaded"], serde_json::json!([]), "{again}");
    assert_eq!(again["new_entries"], serde_json::json!([]), "{again}");

    let zip_a = setup.realise(a.path())["zip"].as_str().unwrap().to_owned();
    let b = TempStore::new();
    let pulled = json(
        pystore(b.path())
            .args(["pull", &file_url(&remote)])
            .env("PYSTORE_TRUSTED_KEYS", &setup.public),
    );
    let downloaded = pulled["downloaded"].as_array().unwrap().len();
    assert_eq!(downloaded, entries, "{pulled}");
    let zip_b = b
        .path()
        .join("entries")
        .join(Path::new(&zip_a).file_name().unwrap());
    assert_eq!(fs::read(&zip_b).unwrap(), fs::read(&zip_a).unwrap());
    assert_eq!(
        fs::read(&zip_b).unwrap(),
        fs::read(remote.join("demo-1.0.0-t.zip")).unwrap()
    );
    assert_eq!(
        closure(b.path(), zip_b.to_str().unwrap()),
        closure(a.path(), &zip_a)
    );
    assert!(
        b.path().join("roots/demo-t").exists(),
        "pulled roots are kept"
    );
    run_ok(pystore(b.path()).arg("verify"));

    // Pulling again downloads nothing; a realise in B builds nothing.
    let again = json(
        pystore(b.path())
            .args(["pull", &file_url(&remote)])
            .env("PYSTORE_TRUSTED_KEYS", &setup.public),
    );
    assert_eq!(again["downloaded"], serde_json::json!([]));
}

/// Pulls `remote` into a new store and expects a refusal mentioning `expected`; the store must
/// have no entry afterwards.
fn refused(remote: &Path, trusted: &str, expected: &str, extra: &[&str]) {
    let store = TempStore::new();
    let stderr = run_fails(
        pystore(store.path())
            .args(["pull", &file_url(remote)])
            .args(extra)
            .env("PYSTORE_TRUSTED_KEYS", trusted),
        1,
    );
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in:\n{stderr}"
    );
    let (entries, tmp) = entries_and_tmp(store.path());
    assert!(entries.is_empty(), "registered {entries:?}");
    assert!(tmp.is_empty(), "left {tmp:?}");
}

#[test]
fn tampered_untrusted_and_swapped_descriptions_are_refused_and_register_nothing() {
    let setup = Setup::new();
    let a = TempStore::new();
    let remote = setup.work.path().join("cache");
    push(&setup, a.path(), &remote, Some(&setup.secret));
    let zip = setup.realise(a.path())["zip"].as_str().unwrap().to_owned();
    let zip_id = Path::new(&zip).file_name().unwrap().to_str().unwrap()[..32].to_owned();

    // One byte changed in one archive (the smallest, a leaf: found before anything registers).
    let tampered = setup.work.path().join("tampered");
    copy_dir(&remote, &tampered);
    let archives = blobs(&tampered, ".tar.zst");
    let victim = archives
        .iter()
        .min_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = fs::read(victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    fs::write(victim, bytes).unwrap();
    refused(&tampered, &setup.public, "signed description says", &[]);

    // Signed by a key nobody trusts.
    refused(
        &remote,
        &setup.rogue_public,
        "none of these is a trusted key",
        &[],
    );
    refused(
        &remote,
        &setup.rogue_public,
        "none of these is a trusted key",
        &[&zip_id],
    );
    refused(&remote, "", "none of these is a trusted key", &[&zip_id]);

    // A valid signature over another entry's description, put in place of the ZIP's.
    let swapped = setup.work.path().join("swapped");
    copy_dir(&remote, &swapped);
    let other = blobs(&swapped, ".entry.json")
        .into_iter()
        .find(|p| !p.to_str().unwrap().contains(&zip_id))
        .unwrap();
    fs::copy(&other, swapped.join(format!("{zip_id}.entry.json"))).unwrap();
    let store = TempStore::new();
    let stderr = run_fails(
        pystore(store.path())
            .args(["pull", &file_url(&swapped), &zip_id])
            .env("PYSTORE_TRUSTED_KEYS", &setup.public),
        1,
    );
    assert!(
        stderr.contains("a valid signature over a different description"),
        "{stderr}"
    );
    assert!(entries_and_tmp(store.path()).0.is_empty());

    // A description edited after signing.
    let edited = setup.work.path().join("edited");
    copy_dir(&remote, &edited);
    let description = edited.join(format!("{zip_id}.entry.json"));
    let envelope: serde_json::Value =
        serde_json::from_slice(&fs::read(&description).unwrap()).unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = String::from_utf8(b64.decode(envelope["payload"].as_str().unwrap()).unwrap())
        .unwrap()
        .replace("\"size\":", "\"size\":1");
    let mut forged = envelope.clone();
    forged["payload"] = b64.encode(payload).into();
    fs::write(&description, serde_json::to_vec(&forged).unwrap()).unwrap();
    let store = TempStore::new();
    let stderr = run_fails(
        pystore(store.path())
            .args(["pull", &file_url(&edited), &zip_id])
            .env("PYSTORE_TRUSTED_KEYS", &setup.public),
        1,
    );
    assert!(stderr.contains("does not match the payload"), "{stderr}");
    assert!(entries_and_tmp(store.path()).0.is_empty());
}

#[test]
fn unsigned_pushes_are_refused_unless_no_require_sigs() {
    let setup = Setup::new();
    let a = TempStore::new();
    let remote = setup.work.path().join("cache");
    push(&setup, a.path(), &remote, None);
    refused(&remote, &setup.public, "is not signed", &[]);
    let b = TempStore::new();
    let pulled = json(
        pystore(b.path())
            .args(["pull", &file_url(&remote), "--no-require-sigs"])
            .env("PYSTORE_TRUSTED_KEYS", &setup.public),
    );
    assert!(!pulled["downloaded"].as_array().unwrap().is_empty());
    // Even unsigned, the bytes are checked.
    let tampered = setup.work.path().join("tampered");
    copy_dir(&remote, &tampered);
    let archive = blobs(&tampered, ".tar.zst").remove(0);
    let mut bytes = fs::read(&archive).unwrap();
    bytes[10] ^= 0x40;
    fs::write(&archive, bytes).unwrap();
    refused(
        &tampered,
        "",
        "signed description says",
        &["--no-require-sigs"],
    );
}

#[test]
fn store_paths_push_and_pull_by_id_or_path_with_a_signature() {
    let setup = Setup::new();
    let a = TempStore::new();
    let tree = setup.work.path().join("tree");
    make_sample_tree(&tree);
    let entry = add(a.path(), &tree);
    let file = setup.work.path().join("hello.txt");
    fs::write(&file, b"hello\n").unwrap();
    let single = add(a.path(), &file);
    let remote = setup.work.path().join("cache");
    let pushed = json(
        pystore(a.path())
            .arg("push")
            .arg(&entry)
            .arg(&single)
            .args(["--to", &file_url(&remote)])
            .env("PYSTORE_SIGNING_KEY", &setup.secret),
    );
    assert_eq!(pushed["closure"], 2, "{pushed}");
    let b = TempStore::new();
    // By store path of the other store, and by <id>-<name>.
    let single_name = single.file_name().unwrap().to_str().unwrap();
    let out = run_ok(
        pystore(b.path())
            .arg("pull")
            .arg(file_url(&remote))
            .arg(&entry)
            .arg(single_name)
            .env("PYSTORE_TRUSTED_KEYS", &setup.public),
    );
    let paths: Vec<&str> = out.lines().collect();
    assert_eq!(paths.len(), 2);
    assert_eq!(
        closure(b.path(), paths[0]),
        closure(a.path(), entry.to_str().unwrap())
    );
    assert_eq!(fs::read(paths[1]).unwrap(), b"hello\n");
    assert_eq!(
        Path::new(paths[0]).file_name(),
        entry.file_name(),
        "the same id and name"
    );
    run_ok(pystore(b.path()).arg("verify"));
    // Something that is neither a recipe nor an entry of this store.
    let stderr = run_fails(
        pystore(a.path()).args(["push", "no-such-thing", "--to", &file_url(&remote)]),
        1,
    );
    assert!(stderr.contains("no-such-thing"), "{stderr}");
}

#[test]
fn a_signed_description_that_lies_about_the_tree_registers_nothing() {
    use pystore::remote::description::{seal, ENTRY_PAYLOAD_TYPE};
    use pystore::sign::SecretKey;
    let setup = Setup::new();
    let a = TempStore::new();
    let tree = setup.work.path().join("tree");
    make_sample_tree(&tree);
    let entry = add(a.path(), &tree);
    let id = entry.file_name().unwrap().to_str().unwrap()[..32].to_owned();
    let remote = setup.work.path().join("cache");
    run_ok(
        pystore(a.path())
            .arg("push")
            .arg(&entry)
            .args(["--to", &file_url(&remote)])
            .env("PYSTORE_SIGNING_KEY", &setup.secret),
    );
    // The trusted key itself signs a description whose content hash is wrong (a compromised or
    // buggy builder): the archive's bytes match, the unpacked tree does not.
    let path = remote.join(format!("{id}.entry.json"));
    let envelope: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    use base64::Engine;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let text = String::from_utf8(payload).unwrap();
    let at = text.find("\"content_hash\":\"").unwrap() + 16;
    let mut lie = text.clone();
    lie.replace_range(
        at..at + 4,
        if &text[at..at + 4] == "0000" {
            "1111"
        } else {
            "0000"
        },
    );
    let key = SecretKey::read(&setup.secret).unwrap();
    fs::write(&path, seal(ENTRY_PAYLOAD_TYPE, lie.as_bytes(), Some(&key))).unwrap();
    let b = TempStore::new();
    let stderr = run_fails(
        pystore(b.path())
            .args(["pull", &file_url(&remote), &id])
            .env("PYSTORE_TRUSTED_KEYS", &setup.public),
        1,
    );
    assert!(stderr.contains("content hash mismatch"), "{stderr}");
    let (entries, tmp) = entries_and_tmp(b.path());
    assert!(entries.is_empty() && tmp.is_empty(), "{entries:?} {tmp:?}");

    // A static HTTP cache cannot be pushed to.
    let stderr = run_fails(
        pystore(a.path())
            .arg("push")
            .arg(&entry)
            .args(["--to", "http://127.0.0.1:9/cache"]),
        1,
    );
    assert!(stderr.contains("read-only"), "{stderr}");
}
