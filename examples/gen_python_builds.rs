//! Regenerates the built-in interpreter table, `src/python/data/python-build-standalone.tsv`.
//!
//! Usage:
//! `cargo run --example gen_python_builds -- [--min-minor 3.11] [--out FILE] INPUT...`
//!
//! Each INPUT is either a table in the built-in TSV format (`version tag triple sha256`, or the
//! fetched catalogue's columns, e.g. `pystore python list --all --tsv` output saved from a store
//! after `pystore python update`) or a `.json` download table as uv publishes it
//! (`crates/uv-python/download-metadata.json`: objects with `url` and `sha256`). Rows are
//! filtered to what pystore can use (supported triples, `install_only_stripped`, final releases,
//! CPython `--min-minor` and later) and written sorted, one per (version, triple).
//!
//! Inputs are read in order and **the first input naming a (version, triple) wins**: pass the
//! current table first, so rows already built in never change (a recipe that pins `3.12.7`
//! keeps its archive) and only new releases are added:
//!
//! ```text
//! cargo run --example gen_python_builds -- --out src/python/data/python-build-standalone.tsv \
//!     src/python/data/python-build-standalone.tsv /path/to/download-metadata.json
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use pystore::hash::Sha256Digest;
use pystore::python::builds::{
    parse_asset_name, parse_table, render_builtin, KnownBuild, Origin, PBS_REPOSITORY,
};
use pystore::python::PythonVersion;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut min_minor = (3, 11);
    let mut out: Option<PathBuf> = None;
    let mut inputs = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--min-minor" => {
                let text = args.next().context("--min-minor needs a value like 3.11")?;
                let version =
                    PythonVersion::parse(&text).with_context(|| format!("--min-minor {text:?}"))?;
                min_minor = (version.major, version.minor);
            }
            "--out" => out = Some(PathBuf::from(args.next().context("--out needs a file")?)),
            "-h" | "--help" => {
                println!("usage: gen_python_builds [--min-minor 3.11] [--out FILE] INPUT...");
                return Ok(());
            }
            other if other.starts_with('-') => bail!("unknown option {other}"),
            _ => inputs.push(PathBuf::from(arg)),
        }
    }
    if inputs.is_empty() {
        bail!("no input tables; see --help");
    }
    let mut builds = Vec::new();
    for input in &inputs {
        let text = std::fs::read_to_string(input)
            .with_context(|| format!("cannot read {}", input.display()))?;
        let rows = if input.extension().is_some_and(|e| e == "json") {
            from_download_metadata(&text)
        } else {
            parse_table(&text, Origin::BuiltIn).map_err(anyhow::Error::from)
        }
        .with_context(|| format!("{}", input.display()))?;
        eprintln!("{}: {} usable rows", input.display(), rows.len());
        builds.extend(rows);
    }
    let table = render_builtin(&builds, min_minor);
    eprintln!(
        "{} rows for CPython {}.{} and later",
        table
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("version\t"))
            .count(),
        min_minor.0,
        min_minor.1
    );
    match out {
        Some(path) => std::fs::write(&path, table)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{table}"),
    }
    Ok(())
}

/// The rows of a uv-style download table: every entry whose URL is a python-build-standalone
/// release asset pystore can use.
fn from_download_metadata(text: &str) -> Result<Vec<KnownBuild>> {
    let value: serde_json::Value = serde_json::from_str(text).context("not JSON")?;
    let Some(entries) = value.as_object() else {
        bail!("expected an object of downloads");
    };
    let prefix = format!("https://github.com/{PBS_REPOSITORY}/releases/download/");
    let mut builds = Vec::new();
    for entry in entries.values() {
        let (Some(url), Some(sha256)) = (
            entry.get("url").and_then(|u| u.as_str()),
            entry.get("sha256").and_then(|s| s.as_str()),
        ) else {
            continue;
        };
        let Some(rest) = url.strip_prefix(&prefix) else {
            continue;
        };
        let Some((_, file)) = rest.rsplit_once('/') else {
            continue;
        };
        let file = file.replace("%2B", "+");
        let Some((version, tag, triple, flavour)) = parse_asset_name(&file) else {
            continue;
        };
        let sha256: Sha256Digest = sha256.parse().with_context(|| format!("{file}: sha256"))?;
        builds.push(KnownBuild {
            version,
            tag,
            triple,
            flavour,
            size: None,
            sha256,
            url: url.to_owned(),
            file_name: file,
            origin: Origin::BuiltIn,
        });
    }
    // Deterministic whatever the JSON's key order: newest release tag first, so the first-wins
    // rule keeps the latest rebuild of a version that was released twice.
    builds.sort_by(|a, b| {
        (b.version, &b.tag, &a.triple, &a.flavour).cmp(&(a.version, &a.tag, &b.triple, &b.flavour))
    });
    Ok(builds)
}
