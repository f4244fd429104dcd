//! A wheel's own METADATA must match what it was locked by: an index whose PEP 658 file says
//! `evil 1.0` while the wheel holds `evil-2.0.dist-info`, or whose file hides a `Requires-Dist`,
//! fails the build naming both.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::http::{Response, Server};
use crate::common::*;
use crate::pyfixtures::WheelBuilder;
use crate::recipe_fixtures::{linux, recipe_for, workspace};

/// A wheel file under `name` and the PEP 658 metadata the index serves for it.
struct Offer {
    name: String,
    bytes: Vec<u8>,
    metadata: String,
}

/// A PEP 691 index offering each wheel with its (possibly lying) PEP 658 file.
fn index(offers: Vec<Offer>) -> Server {
    Server::start(move |req| {
        for offer in &offers {
            let project = offer.name.split('-').next().unwrap().to_lowercase();
            if req.path == format!("/simple/{project}/") {
                let page = serde_json::json!({
                    "meta": {"api-version": "1.1"},
                    "name": project,
                    "files": [{
                        "filename": offer.name,
                        "url": format!("/files/{}", offer.name),
                        "hashes": {"sha256": sha256_hex(&offer.bytes)},
                        "core-metadata": {"sha256": sha256_hex(offer.metadata.as_bytes())},
                        "size": offer.bytes.len(),
                    }],
                });
                return Response::ok(page.to_string())
                    .header("Content-Type", "application/vnd.pypi.simple.v1+json");
            }
            if req.path == format!("/files/{}", offer.name) {
                return Response::ok(offer.bytes.clone());
            }
            if req.path == format!("/files/{}.metadata", offer.name) {
                return Response::ok(offer.metadata.clone());
            }
        }
        Response::status(404)
    })
}

fn offer(builder: &WheelBuilder, dir: &Path, as_name: &str, metadata: &str) -> Offer {
    let path = builder.build(dir);
    Offer {
        name: as_name.to_owned(),
        bytes: fs::read(path).unwrap(),
        metadata: metadata.to_owned(),
    }
}

/// A recipe requiring `requirement`, locked by `pystore lock` against `server`; then realised.
fn lock_and_realise(work: &Path, server: &Server, requirement: &str) -> String {
    let recipe: PathBuf = recipe_for(work, &linux(), &[], &[]);
    fs::write(recipe.join("requirements.txt"), format!("{requirement}\n")).unwrap();
    let store = TempStore::new();
    run_ok(
        pystore(store.path())
            .arg("lock")
            .arg(&recipe)
            .env("PYSTORE_INDEX_URL", server.url("/simple/")),
    );
    run_fails(
        pystore(store.path())
            .arg("realise")
            .arg(&recipe)
            .env("PYSTORE_INDEX_URL", server.url("/simple/")),
        1,
    )
}

#[test]
fn a_wheel_whose_metadata_is_another_version_than_locked_is_refused() {
    let (work, wheels) = workspace();
    // Built as 2.0, offered as evil-1.0 with a PEP 658 file that says 1.0.
    let evil =
        WheelBuilder::new("evil", "2.0", "py3-none-any").file("evil/__init__.py", b"X = 2\n");
    let server = index(vec![offer(
        &evil,
        &wheels,
        "evil-1.0-py3-none-any.whl",
        "Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n",
    )]);
    let err = lock_and_realise(work.path(), &server, "evil");
    assert!(
        err.contains("evil-1.0-py3-none-any.whl: the lock says evil 1.0, but the wheel's own evil-2.0.dist-info/METADATA says evil 2.0"),
        "{err}"
    );
}

#[test]
fn a_wheel_that_requires_more_than_its_index_metadata_said_is_refused() {
    let (work, wheels) = workspace();
    let app = WheelBuilder::new("app", "1.0", "py3-none-any")
        .file("app/__init__.py", b"import util\n")
        .metadata("Requires-Dist: util");
    let util = WheelBuilder::new("util", "0.1", "py3-none-any").file("util/__init__.py", b"");
    let server = index(vec![
        offer(
            &app,
            &wheels,
            "app-1.0-py3-none-any.whl",
            "Metadata-Version: 2.1\nName: app\nVersion: 1.0\n",
        ),
        offer(
            &util,
            &wheels,
            "util-0.1-py3-none-any.whl",
            &util.metadata_text(),
        ),
    ]);
    let err = lock_and_realise(work.path(), &server, "app");
    assert!(
        err.contains("app-1.0-py3-none-any.whl: the lock says app 1.0 depends on nothing, but the wheel's own app-1.0.dist-info/METADATA says it requires util"),
        "{err}"
    );
}
