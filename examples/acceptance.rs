//! Helpers of the acceptance stage (`tests/acceptance/run.sh`), reusing the test fixtures:
//!
//! - `acceptance interpreter DIR`: writes a python-build-standalone-style archive of the
//!   machine's Debian python3.11 into DIR (as the integration tests do) and prints its path;
//!   `acceptance interpreter-with-pycs DIR`: the same with the standard library's pycs, as
//!   python-build-standalone's archives ship them (the benchmarks' interpreter);
//! - `acceptance github`: serves the strict fake GitHub releases API of tests/common/github.rs
//!   on loopback, prints its base URL (for `PYSTORE_GITHUB_API`) and serves until killed. The
//!   token it accepts is `ACCEPTANCE_GITHUB_TOKEN`, which must be set.

#[path = "../tests/pyfixtures/mod.rs"]
#[allow(dead_code)]
mod pyfixtures;

#[path = "../tests/common/github.rs"]
#[allow(dead_code)]
pub mod common_github;
#[path = "../tests/common/http.rs"]
#[allow(dead_code)]
pub mod common_http;

/// What tests/common/github.rs uses of tests/common (whose mod.rs needs the integration tests'
/// crate): the loopback server and one helper.
mod common {
    pub(crate) use crate::common_github as github;
    pub(crate) use crate::common_http as http;

    /// sha256 of `bytes`, lower-case hex.
    pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(bytes))
    }
}

use std::io::Write;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["interpreter", dir] => {
            let dir = std::path::absolute(PathBuf::from(dir))?;
            std::fs::create_dir_all(&dir)?;
            println!("{}", pyfixtures::upstream_like_pbs_archive(&dir).display());
            Ok(())
        }
        ["interpreter-with-pycs", dir] => {
            let dir = std::path::absolute(PathBuf::from(dir))?;
            std::fs::create_dir_all(&dir)?;
            let archive = pyfixtures::upstream_like_pbs_archive_with(&dir, true);
            println!("{}", archive.display());
            Ok(())
        }
        ["github"] => {
            let token = std::env::var("ACCEPTANCE_GITHUB_TOKEN")
                .map_err(|_| "set ACCEPTANCE_GITHUB_TOKEN to the token the fake server accepts")?;
            let github = common::github::FakeGithub::start(
                &token,
                common::github::State {
                    digests: true,
                    ..Default::default()
                },
            );
            println!("{}", github.api());
            std::io::stdout().flush()?;
            loop {
                std::thread::park();
            }
        }
        _ => Err("usage: acceptance interpreter DIR | acceptance interpreter-with-pycs DIR | acceptance github".into()),
    }
}
