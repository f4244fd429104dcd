//! Writes the reproducibility harness's inputs (`tests/repro/harness.sh`) into a directory, with
//! no network: a wheelhouse of wheels built in code (pure Python with console scripts and
//! `.data`, a platform wheel), a python-build-standalone-style interpreter archive made from the
//! machine's Debian python3.11, and a recipe `recipes/demo` whose lock pins those wheels.
//!
//! Usage: `cargo run --example repro_fixture -- DIR`; prints the recipe directory. The same
//! helpers build the integration tests' fixtures (tests/pyfixtures, tests/recipe_fixtures).

#[path = "../tests/pyfixtures/mod.rs"]
#[allow(dead_code)]
mod pyfixtures;
#[path = "../tests/recipe_fixtures/mod.rs"]
#[allow(dead_code)]
mod recipe_fixtures;

#[path = "../tests/common/http.rs"]
#[allow(dead_code)]
pub mod common_http;

/// What tests/recipe_fixtures needs of tests/common (which only integration tests can build).
mod common {
    pub(crate) use crate::common_http as http;

    /// sha256 of `bytes`, lower-case hex.
    pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(bytes))
    }
}

use std::path::PathBuf;

use pyfixtures::{demo_wheel, native_wheel, upstream_like_pbs_archive, WheelBuilder};
use recipe_fixtures::{greet_wheel, recipe_for, Spec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = match std::env::args_os().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => return Err("usage: repro_fixture DIR".into()),
    };
    let wheel_dir = dir.join("wheels");
    std::fs::create_dir_all(&wheel_dir)?;
    let dir = std::path::absolute(&dir)?;
    let greet = greet_wheel();
    let mut app = WheelBuilder::new("app_core", "0.3", "py3-none-any").file(
        "app_core/__init__.py",
        b"from greet_lib import hello\nMESSAGE = hello('bundle')\n",
    );
    // Enough files in one directory that a file system's listing order shows if anything
    // depended on it.
    for i in 0..40 {
        app = app.file(
            &format!("app_core/m{:02}.py", (i * 17) % 40),
            format!("VALUE = {i}\n").as_bytes(),
        );
    }
    let wheels = vec![
        greet.build(&wheel_dir),
        app.build(&wheel_dir),
        demo_wheel().build(&wheel_dir),
        native_wheel().build(&wheel_dir),
    ];
    let archive = upstream_like_pbs_archive(&dir);
    let spec = Spec {
        python: "3.11.2",
        platform: "x86_64-unknown-linux-gnu",
        archive: &archive,
    };
    let recipe = recipe_for(&dir, &spec, &wheels, &[]);
    println!("{}", recipe.display());
    Ok(())
}
