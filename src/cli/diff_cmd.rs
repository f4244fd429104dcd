//! `pystore diff A B`: rendering a [`BundleDiff`] as `nix store diff-closures` does, or as JSON.

use std::path::Path;

use anyhow::Result;

use super::output::{human_bytes, print_json, Ui};
use crate::bundle::manifest::FileRef;
use crate::diff::{diff as diff_manifests, load, BundleDiff, Change};

/// `pystore diff A B [--files]`: true (exit 0) when the bundles are the same.
pub(super) fn diff(ui: Ui, a: &Path, b: &Path, files: bool) -> Result<bool> {
    let result = diff_manifests(&load(a)?, &load(b)?);
    if ui.json {
        print_json(&result)?;
    } else {
        print!("{}", render(&result, files));
    }
    Ok(result.is_empty())
}

fn side(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("∅")
}

/// `, +12.4 KiB`, `, -3 B`, or nothing for no change.
fn size_suffix(delta: i64) -> String {
    match delta {
        0 => String::new(),
        d if d > 0 => format!(", +{}", human_bytes(d.unsigned_abs())),
        d => format!(", -{}", human_bytes(d.unsigned_abs())),
    }
}

fn changed(label: &str, change: &Option<Change<String>>, out: &mut String) {
    if let Some(c) = change {
        out.push_str(&format!("{label}: {} → {}\n", side(&c.from), side(&c.to)));
    }
}

fn describe(file: &FileRef) -> String {
    match (&file.size, &file.blake3, &file.target) {
        (Some(size), Some(hash), _) => format!("{} blake3:{hash}", human_bytes(*size)),
        (_, _, Some(target)) => format!("-> {target}"),
        _ => file.kind.clone(),
    }
}

/// The text form: one line per change, then files with `--files`.
pub(super) fn render(diff: &BundleDiff, files: bool) -> String {
    let mut out = String::new();
    changed("recipe", &diff.recipe, &mut out);
    changed("target", &diff.target, &mut out);
    if let Some(i) = &diff.interpreter {
        let python = if i.python.from == i.python.to {
            format!(
                "{} (rebuilt: {} → {})",
                side(&i.python.to),
                side(&i.name.from),
                side(&i.name.to)
            )
        } else {
            format!("{} → {}", side(&i.python.from), side(&i.python.to))
        };
        out.push_str(&format!("python: {python}{}\n", size_suffix(i.size_delta)));
    }
    for p in &diff.packages {
        let versions = if p.version.from == p.version.to {
            // Same version, another wheel (a rebuild or another platform tag).
            format!(
                "{} (wheel {} → {})",
                side(&p.version.to),
                side(&p.wheel.from),
                side(&p.wheel.to)
            )
        } else {
            format!("{} → {}", side(&p.version.from), side(&p.version.to))
        };
        out.push_str(&format!(
            "{}: {versions}{}\n",
            p.name,
            size_suffix(p.size_delta)
        ));
    }
    if files {
        for f in &diff.files {
            let line = match (&f.from, &f.to) {
                (None, Some(to)) => format!("+ {}  {}", f.path, describe(to)),
                (Some(from), None) => format!("- {}  {}", f.path, describe(from)),
                (Some(from), Some(to)) => {
                    format!("~ {}  {} → {}", f.path, describe(from), describe(to))
                }
                (None, None) => continue,
            };
            out.push_str(&line);
            out.push('\n');
        }
    } else if !diff.files.is_empty() {
        let count = |pred: fn(&crate::diff::FileChange) -> bool| {
            diff.files.iter().filter(|f| pred(f)).count()
        };
        out.push_str(&format!(
            "files: {} added, {} removed, {} changed (--files lists them)\n",
            count(|f| f.from.is_none()),
            count(|f| f.to.is_none()),
            count(|f| f.from.is_some() && f.to.is_some()),
        ));
    }
    out
}
