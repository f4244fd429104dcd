//! The store commands: add, path-info, verify, root, gc.

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;
use serde_json::json;

use super::output::{count, human_bytes, print_json, Ui};
use crate::hash::to_hex;
use crate::store::{EntryInfo, Store};

/// The JSON form of an entry.
fn entry_json(
    store: &Store,
    entry: &EntryInfo,
    with_references: bool,
) -> Result<serde_json::Value> {
    let mut value = json!({
        "path": entry.path,
        "id": entry.id.as_str(),
        "name": entry.name,
        "kind": entry.kind.as_str(),
        "content_hash": to_hex(&entry.content_hash),
        "size": entry.size,
        "nodes": entry.nodes,
    });
    if with_references {
        let refs: Vec<PathBuf> = store
            .references(entry)?
            .into_iter()
            .map(|r| r.path)
            .collect();
        value["references"] = json!(refs);
        value["fingerprint"] = serde_json::from_str(&entry.fingerprint)?;
    }
    Ok(value)
}

/// `pystore add PATH... [--name N]`
pub(super) fn add(store: &Store, ui: Ui, paths: &[PathBuf], name: Option<&str>) -> Result<bool> {
    let mut results = Vec::new();
    // One sync for many new entries (group commit); the same entries as adding them in turn.
    for registration in store.add_paths(paths, name)? {
        if ui.json {
            let mut value = entry_json(store, &registration.entry, false)?;
            value["built"] = json!(registration.built);
            results.push(value);
        } else {
            println!("{}", registration.entry.path.display());
        }
    }
    if ui.json {
        print_json(&results)?;
    }
    Ok(true)
}

/// `pystore path-info PATH... [--closure] [--size]`
pub(super) fn path_info(
    store: &Store,
    ui: Ui,
    paths: &[String],
    closure: bool,
    size: bool,
) -> Result<bool> {
    let mut entries = paths
        .iter()
        .map(|p| store.resolve(p))
        .collect::<Result<Vec<_>, _>>()?;
    if closure {
        entries = store.closure(&entries)?;
    }
    if ui.json {
        let mut values = Vec::new();
        for entry in &entries {
            let mut value = entry_json(store, entry, true)?;
            if size {
                let closure_size: u64 = store
                    .closure(std::slice::from_ref(entry))?
                    .iter()
                    .map(|e| e.size)
                    .sum();
                value["closure_size"] = json!(closure_size);
            }
            values.push(value);
        }
        print_json(&values)?;
    } else {
        for entry in &entries {
            if size {
                println!("{}\t{}", entry.path.display(), entry.size);
            } else {
                println!("{}", entry.path.display());
            }
        }
    }
    Ok(true)
}

/// `pystore verify [PATH...] [--repair]`; false when something is damaged (and, with `repair`,
/// was not invalidated).
pub(super) fn verify(store: &mut Store, ui: Ui, paths: &[String], repair: bool) -> Result<bool> {
    let entries = if paths.is_empty() {
        None
    } else {
        Some(
            paths
                .iter()
                .map(|p| store.resolve(p))
                .collect::<Result<Vec<_>, _>>()?,
        )
    };
    if let Some(message) = store.lost_database() {
        eprintln!("error: {message}");
        return Ok(false);
    }
    let total = entries
        .as_ref()
        .map_or_else(|| store.entries().map(|e| e.len()), |e| Ok(e.len()))?;
    let bar = ui.progress_bar(total as u64, "verifying");
    let started = std::time::Instant::now();
    let (report, invalidated) = if repair {
        store.repair(entries, &|_| bar.inc(1))?
    } else {
        (store.verify(entries, &|_| bar.inc(1))?, Vec::new())
    };
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    if ui.json {
        #[derive(Serialize)]
        struct Damaged<'a> {
            path: &'a PathBuf,
            id: &'a str,
            problems: &'a [crate::store::verify::Problem],
        }
        let damaged: Vec<Damaged> = report
            .damaged
            .iter()
            .map(|r| Damaged {
                path: &r.entry.path,
                id: r.entry.id.as_str(),
                problems: &r.problems,
            })
            .collect();
        print_json(&json!({
            "checked": report.checked,
            "bytes": report.bytes,
            "damaged": damaged,
            "unregistered": report.unregistered,
            "invalidated": invalidated,
            "ok": report.damaged.is_empty(),
        }))?;
    } else {
        for damaged in &report.damaged {
            println!("damaged: {}", damaged.entry.path.display());
            for problem in &damaged.problems {
                println!(
                    "  {}: {}: {}",
                    problem.file, problem.problem, problem.detail
                );
            }
        }
        for path in &invalidated {
            println!("invalidated: {}", path.display());
        }
        if !repair && !report.damaged.is_empty() {
            eprintln!("hint: `pystore verify --repair` invalidates the damaged entries and everything built from them; the next realise rebuilds or refetches them");
        }
        for path in &report.unregistered {
            tracing::warn!("{} is not a registered entry (left by an interrupted build); `pystore gc` removes it", path.display());
        }
        if !ui.quiet {
            let secs = elapsed.as_secs_f64().max(1e-9);
            eprintln!(
                "verified {}, {} in {:.2}s ({:.0} MB/s): {}",
                count(report.checked, "entry", "entries"),
                human_bytes(report.bytes),
                secs,
                report.bytes as f64 / 1e6 / secs,
                if report.damaged.is_empty() {
                    "all intact".to_owned()
                } else if repair {
                    format!(
                        "{} damaged; invalidated {} (with what was built from them)",
                        report.damaged.len(),
                        count(invalidated.len(), "entry", "entries")
                    )
                } else {
                    format!("{} damaged", report.damaged.len())
                }
            );
        }
    }
    // After a repair the store is consistent again: what was damaged is no longer registered.
    Ok(report.damaged.is_empty() || repair)
}

/// `pystore root add NAME PATH`
pub(super) fn root_add(store: &Store, ui: Ui, name: &str, path: &str) -> Result<bool> {
    let entry = store.resolve(path)?;
    let link = store.add_root(name, &entry)?;
    if ui.json {
        print_json(&json!({"name": name, "root": link, "path": entry.path}))?;
    } else {
        println!("{} -> {}", link.display(), entry.path.display());
    }
    Ok(true)
}

/// `pystore root list`
pub(super) fn root_list(store: &Store, ui: Ui) -> Result<bool> {
    let roots = store.roots()?;
    if ui.json {
        print_json(&roots)?;
    } else {
        for root in &roots {
            let note = if root.valid {
                ""
            } else {
                " (not a valid entry)"
            };
            println!("{} -> {}{note}", root.name, root.path.display());
        }
    }
    Ok(true)
}

/// `pystore root remove NAME`
pub(super) fn root_remove(store: &Store, ui: Ui, name: &str) -> Result<bool> {
    store.remove_root(name)?;
    if ui.json {
        print_json(&json!({"removed": name}))?;
    }
    Ok(true)
}

/// `pystore gc [--dry-run]`
pub(super) fn gc(store: &mut Store, ui: Ui, dry_run: bool) -> Result<bool> {
    let report = store.gc(dry_run)?;
    let entries = report.removed.len() + report.unregistered.len();
    if ui.json {
        let removed: Vec<_> = report
            .removed
            .iter()
            .map(|(p, size)| json!({"path": p, "size": size}))
            .collect();
        print_json(&json!({
            "dry_run": report.dry_run,
            "removed": removed,
            "unregistered": report.unregistered,
            "entries": entries,
            "bytes": report.bytes,
            "kept": report.kept,
        }))?;
    } else {
        for (path, _) in &report.removed {
            println!("{}", path.display());
        }
        for path in &report.unregistered {
            println!("{}", path.display());
        }
        let verb = if dry_run { "would free" } else { "freed" };
        println!(
            "{verb} {}, {} bytes ({}); {} kept alive by roots",
            count(entries, "entry", "entries"),
            report.bytes,
            human_bytes(report.bytes),
            count(report.kept, "entry", "entries")
        );
    }
    Ok(true)
}
