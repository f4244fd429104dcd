//! `pystore python update` / `python list` against a loopback fake GitHub serving two
//! python-build-standalone-shaped releases with `SHA256SUMS`, then a recipe with
//! `python = "3.11"` locked to the newest fetched release (the archive pinned in the lock) and
//! realised offline from a store that never saw the catalogue.
//!
//! The archives are the machine's Debian python3.11 in python-build-standalone's layout, served
//! under made-up future 3.11 patch releases (3.11.20, 3.11.21). What pystore checks of them is
//! the layout and minor version (`lib/python3.11`); the patch level is checked only against an
//! `include/python3.11/patchlevel.h`, which real python-build-standalone archives have and this
//! fixture (stdlib only) does not — so here only the sums file and the lock's sha256 tie the
//! bytes to "3.11.21".

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::github::{Asset, FakeGithub, State, OWNER, REPO};
use crate::common::*;
use crate::recipe_fixtures::{demo_wheels, index_server, interpreter_archive, workspace};

const LINUX: &str = "x86_64-unknown-linux-gnu";
const MAC: &str = "aarch64-apple-darwin";

fn archive_name(version: &str, tag: &str, triple: &str) -> String {
    format!("cpython-{version}+{tag}-{triple}-install_only_stripped.tar.gz")
}

/// Adds a published release with `assets` (name, bytes) to the fake.
fn release(state: &mut State, tag: &str, assets: Vec<(String, Vec<u8>)>) {
    let id = state.create(tag, false, 0);
    let mut made = Vec::new();
    for (name, bytes) in assets {
        state.next_id += 1;
        made.push(Asset {
            id: state.next_id,
            name,
            state: "uploaded".into(),
            sha256: sha256_hex(&bytes),
            bytes,
        });
    }
    let release = state.releases.iter_mut().find(|r| r.id == id).unwrap();
    release.assets = made;
}

fn sums(lines: &[(&str, &[u8])]) -> Vec<u8> {
    lines
        .iter()
        .map(|(name, bytes)| format!("{}  {name}\n", sha256_hex(bytes)))
        .collect::<String>()
        .into_bytes()
}

/// Two releases, newest first as GitHub lists them:
/// - `20261201`: 3.11.21 for Linux (in SHA256SUMS); 3.11.22 for Linux, an asset the sums file
///   does not name; and a sums line for 3.11.23, which is no asset.
/// - `20261101`: 3.11.20 for Linux and macOS, both in SHA256SUMS.
fn fake_github() -> FakeGithub {
    let archive = fs::read(interpreter_archive()).unwrap();
    let mac = b"not unpacked by this test".to_vec();
    let mut state = State::default();
    let new = "20261201";
    let a21 = archive_name("3.11.21", new, LINUX);
    let a22 = archive_name("3.11.22", new, LINUX);
    let a23 = archive_name("3.11.23", new, LINUX);
    let new_sums = sums(&[(&a21, &archive), (&a23, b"gone")]);
    release(
        &mut state,
        new,
        vec![
            (a21.clone(), archive.clone()),
            (a22, archive.clone()),
            ("SHA256SUMS".into(), new_sums),
        ],
    );
    let old = "20261101";
    let l20 = archive_name("3.11.20", old, LINUX);
    let m20 = archive_name("3.11.20", old, MAC);
    let old_sums = sums(&[(&l20, &archive), (&m20, &mac)]);
    release(
        &mut state,
        old,
        vec![
            (l20, archive.clone()),
            (m20, mac),
            ("SHA256SUMS".into(), old_sums),
        ],
    );
    FakeGithub::start("unused-token", state)
}

fn with_github<'c>(cmd: &'c mut Command, github: &FakeGithub) -> &'c mut Command {
    cmd.env("PYSTORE_GITHUB_API", github.api())
        .env_remove("GITHUB_TOKEN")
        .env_remove("GH_TOKEN")
}

fn update(store: &Path, github: &FakeGithub) -> String {
    run_ok(with_github(&mut pystore(store), github).args([
        "python",
        "update",
        "--repository",
        &format!("{OWNER}/{REPO}"),
        "--releases",
        "2",
    ]))
}

/// A recipe directory `recipes/NAME` with `python`, the demo requirements and `triples`.
fn recipe(work: &Path, name: &str, python: &str, triples: &[&str]) -> PathBuf {
    let dir = work.join("recipes").join(name);
    fs::create_dir_all(&dir).unwrap();
    let mut text = format!(
        "name = \"{name}\"\nversion = \"1.0.0\"\npython = \"{python}\"\nvalidate = [\"app_core\"]\n"
    );
    for triple in triples {
        text.push_str(&format!(
            "\n[[targets]]\nname = \"{}\"\nplatform = \"{triple}\"\n",
            triple.split('-').next().unwrap().to_owned() + "-" + triple.split('-').nth(2).unwrap()
        ));
    }
    fs::write(dir.join("recipe.toml"), text).unwrap();
    fs::write(dir.join("requirements.txt"), "app-core\ngreet-lib\n").unwrap();
    dir
}

fn lock(store: &Path, recipe: &Path, index: &str, extra: &[&str]) -> std::process::Output {
    run(pystore(store)
        .arg("lock")
        .arg(recipe)
        .args(extra)
        .env("PYSTORE_INDEX_URL", index))
}

fn lock_ok(store: &Path, recipe: &Path, index: &str, extra: &[&str]) -> String {
    let out = lock(store, recipe, index, extra);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::read_to_string(recipe.join("pystore.lock")).unwrap()
}

#[test]
fn update_lists_sums_vouched_builds_and_a_minor_version_locks_pins_and_realises_offline() {
    let github = fake_github();
    let store = TempStore::new();
    let archive = fs::read(interpreter_archive()).unwrap();
    let archive_sha = sha256_hex(&archive);

    // Before any update, only the built-in table.
    let before = json(pystore(store.path()).args(["python", "list", "--all"]));
    let builds = before["builds"].as_array().unwrap();
    assert!(builds.iter().all(|b| b["origin"] == "built-in"));
    assert!(builds.iter().any(|b| b["version"] == "3.14.7"));

    let out = update(store.path(), &github);
    assert!(out.contains("20261201: 1 archives (1 not in SHA256SUMS, ignored: cpython-3.11.22+20261201-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz; 1 SHA256SUMS lines name no asset, ignored)"), "{out}");
    assert!(out.contains("20261101: 2 archives\n"), "{out}");
    assert!(out.contains("3 builds in the catalogue (3 new): "), "{out}");
    assert_eq!(
        github.count("GET", "/repos/acme/bundles/releases/assets/"),
        2,
        "one sums download per release"
    );

    let list = json(pystore(store.path()).args(["python", "list", "--all"]));
    let fetched: Vec<&serde_json::Value> = list["builds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["origin"] == "fetched")
        .collect();
    let described: Vec<String> = fetched
        .iter()
        .map(|b| {
            format!(
                "{} {} {} {}",
                b["version"].as_str().unwrap(),
                b["tag"].as_str().unwrap(),
                b["triple"].as_str().unwrap(),
                b["size"]
            )
        })
        .collect();
    let mac_size = "not unpacked by this test".len();
    assert_eq!(
        described,
        [
            format!("3.11.21 20261201 {LINUX} {}", archive.len()),
            format!("3.11.20 20261101 {MAC} {mac_size}"),
            format!("3.11.20 20261101 {LINUX} {}", archive.len()),
        ],
        "newest first; the archive SHA256SUMS does not name is not listed"
    );
    assert_eq!(fetched[0]["sha256"], archive_sha.as_str());
    // Without --all: the newest release of each minor version, 3.11.21 for 3.11.
    let text = run_ok(pystore(store.path()).args(["python", "list"]));
    assert!(
        text.lines().any(
            |l| l.starts_with("3.11.21  20261201  x86_64-unknown-linux-gnu")
                && l.ends_with("fetched")
        ),
        "{text}"
    );
    assert!(!text.contains("3.11.20"), "{text}");
    assert!(!text.contains("3.11.22"), "{text}");

    // The catalogue is a canonical store entry: updating from the same releases gives the
    // very same entry.
    let path = list["catalogue"].as_str().unwrap().to_owned();
    let catalogue = fs::read_to_string(&path).unwrap();
    assert!(
        catalogue
            .starts_with("version\ttag\ttriple\tflavour\tsize\tsha256\turl\n3.11.21\t20261201\t"),
        "{catalogue}"
    );
    let again = update(store.path(), &github);
    assert!(
        again.contains(&format!("3 builds in the catalogue (0 new): {path}")),
        "{again}"
    );

    // Lock: the newest 3.11 with a build for the target, its archive pinned.
    let (work, wheel_dir) = workspace();
    let wheels = demo_wheels(&wheel_dir);
    let index = index_server(&wheels);
    let index_url = index.url("/simple/");
    let linux = recipe(work.path(), "linux", "3.11", &[LINUX]);
    let locked = lock_ok(store.path(), &linux, &index_url, &[]);
    let pin = format!(
        "[targets.interpreter]\nversion = \"3.11.21\"\nurl = \"https://github.com/acme/bundles/releases/download/20261201/cpython-3.11.21%2B20261201-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz\"\nsize = {}\nsha256 = \"{archive_sha}\"\n",
        archive.len()
    );
    assert!(locked.contains(&pin), "{locked}");
    assert!(locked.contains("python = \"3.11\"\n"), "{locked}");

    // With a macOS target too, the newest release both have is 3.11.20.
    let both = recipe(work.path(), "both", "3.11", &[LINUX, MAC]);
    let locked = lock_ok(store.path(), &both, &index_url, &[]);
    assert_eq!(
        locked.matches("version = \"3.11.20\"").count(),
        2,
        "{locked}"
    );

    // Realise in a store that has no catalogue, offline: the lock alone says which archive, and
    // a content-addressed mirror serves its bytes.
    let mirror = work.path().join("mirror");
    fs::create_dir_all(mirror.join("sha256")).unwrap();
    fs::copy(
        interpreter_archive(),
        mirror.join("sha256").join(&archive_sha),
    )
    .unwrap();
    let fresh = TempStore::new();
    let out = run(pystore(fresh.path())
        .args(["--offline", "--find-links"])
        .arg(&wheel_dir)
        .arg("realise")
        .arg(&linux)
        .env("PYSTORE_MIRRORS", format!("file://{}", mirror.display())));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: Vec<String> = fs::read_dir(fresh.path().join("entries"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        entries.iter().any(|e| e.ends_with(
            "-cpython-3.11.21+20261201-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz"
        )),
        "{entries:?}"
    );
    assert!(
        !entries.iter().any(|e| e.ends_with("catalogue.tsv")),
        "{entries:?}"
    );
}

#[test]
fn a_pinned_interpreter_stays_until_python_is_upgraded_and_unknown_versions_are_refused() {
    let github = fake_github();
    let store = TempStore::new();
    let (work, wheel_dir) = workspace();
    let wheels = demo_wheels(&wheel_dir);
    let index = index_server(&wheels);
    let index_url = index.url("/simple/");

    // Built-in table only: the newest built-in 3.11.
    let linux = recipe(work.path(), "linux", "3.11", &[LINUX]);
    let first = lock_ok(store.path(), &linux, &index_url, &[]);
    assert!(first.contains("version = \"3.11.16\""), "{first}");

    // Newer builds fetched: the lock keeps its pin until python is upgraded.
    update(store.path(), &github);
    assert_eq!(lock_ok(store.path(), &linux, &index_url, &[]), first);
    let upgraded = lock_ok(
        store.path(),
        &linux,
        &index_url,
        &["--upgrade-package", "python"],
    );
    assert!(upgraded.contains("version = \"3.11.21\""), "{upgraded}");

    // An exact version is pinned too.
    let exact = recipe(work.path(), "exact", "3.11.20", &[LINUX]);
    let locked = lock_ok(store.path(), &exact, &index_url, &[]);
    assert!(locked.contains("version = \"3.11.20\"\nurl = \"https://github.com/acme/bundles/releases/download/20261101/"), "{locked}");

    // A version only an archive outside SHA256SUMS has is refused, naming the nearest ones,
    // and no lock is written.
    for (name, python, wanted) in [
        ("unlisted", "3.11.22", "no known CPython 3.11.22 build for every target (x86_64-unknown-linux-gnu); nearest that are: 3.11.21, 3.12.14, 3.13.15, 3.14.7;"),
        ("future", "3.15", "no known CPython 3.15 build for every target (x86_64-unknown-linux-gnu); nearest that are: 3.14.7, 3.13.15, 3.12.14, 3.11.21;"),
    ] {
        let dir = recipe(work.path(), name, python, &[LINUX]);
        let out = lock(store.path(), &dir, &index_url, &[]);
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(wanted), "{stderr}");
        assert!(stderr.contains("pystore python update"), "{stderr}");
        assert!(!dir.join("pystore.lock").exists());
    }
}
