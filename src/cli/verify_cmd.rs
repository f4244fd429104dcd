//! `pystore verify FILE.zip... [--provenance FILE]`: bundle ZIPs outside the store.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde_json::json;

use super::output::{print_json, Ui};
use crate::bundle::check::{check_provenance, check_zip, Problem};
use crate::sign::TrustedKeys;

/// Checks each ZIP against its manifest (and the one ZIP against `provenance`); true when all
/// is well.
pub(super) fn verify_zips(
    ui: Ui,
    paths: &[String],
    provenance: Option<&Path>,
    trusted_keys: Option<&str>,
) -> Result<bool> {
    if provenance.is_some() && paths.len() != 1 {
        bail!("--provenance checks one ZIP: give exactly one FILE.zip");
    }
    let trusted = TrustedKeys::parse(trusted_keys.unwrap_or(""))?;
    let mut reports = Vec::new();
    for path in paths {
        let path = PathBuf::from(path);
        let mut problems = check_zip(&path)?;
        let mut signed_by = None;
        if let Some(provenance) = provenance {
            let report = check_provenance(&path, provenance, &trusted)?;
            signed_by = report.signed_by;
            problems.extend(report.problems);
        }
        reports.push((path, problems, signed_by));
    }
    let ok = reports.iter().all(|(_, problems, _)| problems.is_empty());
    if ui.json {
        let list: Vec<_> = reports
            .iter()
            .map(|(path, problems, signed_by)| {
                json!({"path": path, "ok": problems.is_empty(), "problems": problems, "signed_by": signed_by})
            })
            .collect();
        print_json(&json!({"zips": list, "ok": ok}))?;
    } else {
        for (path, problems, signed_by) in &reports {
            if problems.is_empty() {
                let signature = match signed_by {
                    Some(key) => format!(", provenance signed by {key}"),
                    None if provenance.is_some() => ", provenance matches".to_owned(),
                    None => String::new(),
                };
                if !ui.quiet {
                    println!("ok: {}{signature}", path.display());
                }
            } else {
                println!("damaged: {}", path.display());
                for Problem { what, message } in problems {
                    println!("  {what}: {message}");
                }
            }
        }
        if provenance.is_some() && trusted.0.is_empty() && !ui.quiet {
            eprintln!("note: the signature was not checked: set PYSTORE_TRUSTED_KEYS to the signer's public key");
        }
    }
    Ok(ok)
}
