//! `realise --timings`: the spans of a realisation as JSON and as a self-contained HTML page
//! with a timeline (as `cargo build --timings` writes), to find where the time goes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::json;

use crate::build::timings::{How, Timing};

/// The steps in the order a realisation runs them, with their colours on the page.
const STEPS: [(&str, &str); 11] = [
    ("fetch", "#8da0cb"),
    ("present", "#b3b3b3"),
    ("unpack", "#66c2a5"),
    ("install", "#fc8d62"),
    ("compile", "#e78ac3"),
    ("bundle", "#a6d854"),
    ("validate", "#ffd92f"),
    ("zip", "#e5c494"),
    ("provenance", "#b3b3b3"),
    ("sbom", "#b3b3b3"),
    ("build", "#b3b3b3"),
];

/// Where the two reports go: `requested` (`FILE`, its `.json`/`.html` sibling beside it), or
/// `<store>/tmp/timings-<unix seconds>.{json,html}`.
pub(super) fn report_paths(requested: Option<&Path>, store_tmp: &Path) -> (PathBuf, PathBuf) {
    let base = match requested {
        Some(path) => match path.extension().and_then(|e| e.to_str()) {
            Some("json" | "html" | "htm") => path.with_extension(""),
            _ => path.to_path_buf(),
        },
        None => {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            store_tmp.join(format!("timings-{secs}"))
        }
    };
    (base.with_extension("json"), base.with_extension("html"))
}

/// Per step: how many entries were built or fetched, how many were valid already, and the
/// seconds spent (summed over entries, so parallel work counts twice).
fn per_step(spans: &[Timing]) -> BTreeMap<&'static str, (usize, usize, f64)> {
    let mut steps: BTreeMap<&'static str, (usize, usize, f64)> = BTreeMap::new();
    for span in spans {
        let step = steps.entry(span.step).or_default();
        if span.how == How::Valid {
            step.1 += 1;
        } else {
            step.0 += 1;
            step.2 += span.end - span.start;
        }
    }
    steps
}

/// The JSON report.
pub(super) fn to_json(
    recipe: &str,
    jobs: usize,
    total: f64,
    spans: &[Timing],
) -> serde_json::Value {
    let steps: serde_json::Map<String, serde_json::Value> = per_step(spans)
        .into_iter()
        .map(|(step, (done, valid, seconds))| {
            (
                step.to_owned(),
                json!({"done": done, "valid": valid, "seconds": round(seconds)}),
            )
        })
        .collect();
    json!({
        "format": 1,
        "recipe": recipe,
        "jobs": jobs,
        "total_seconds": round(total),
        "steps": steps,
        "entries": spans.iter().map(|s| json!({
            "name": s.name,
            "step": s.step,
            "how": s.how,
            "start": round(s.start),
            "end": round(s.end),
            "seconds": round(s.end - s.start),
        })).collect::<Vec<_>>(),
    })
}

fn round(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn colour(step: &str) -> &'static str {
    STEPS
        .iter()
        .find(|(name, _)| *name == step)
        .map_or("#b3b3b3", |(_, c)| c)
}

/// The HTML page: a summary table per step and one bar per entry that took time.
pub(super) fn to_html(recipe: &str, jobs: usize, total: f64, spans: &[Timing]) -> String {
    let total = total.max(0.001);
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>pystore realise {r}: timings</title>\n<style>\
body{{font:13px sans-serif;margin:1.5em}}table{{border-collapse:collapse}}td,th{{padding:2px 8px;text-align:right}}\
td:first-child,th:first-child{{text-align:left}}.row{{position:relative;height:16px;margin:1px 0;background:#f4f4f4}}\
.bar{{position:absolute;top:0;height:16px;border-radius:2px}}.label{{position:absolute;left:4px;top:1px;font-size:11px;white-space:nowrap}}\
</style></head><body>\n<h1>pystore realise {r}</h1>\n<p>{total:.2} s in all, {jobs} jobs. Entries valid already took no time and are left out of the timeline.</p>\n",
        r = escape(recipe),
    );
    page.push_str("<table><tr><th>step</th><th>done</th><th>valid already</th><th>seconds (summed)</th></tr>\n");
    for (step, (done, valid, seconds)) in per_step(spans) {
        let _ = writeln!(
            page,
            "<tr><td><span style=\"color:{}\">&#9632;</span> {step}</td><td>{done}</td><td>{valid}</td><td>{seconds:.2}</td></tr>",
            colour(step)
        );
    }
    page.push_str("</table>\n<h2>Timeline</h2>\n");
    for span in spans.iter().filter(|s| s.how != How::Valid) {
        let left = 100.0 * span.start / total;
        let width = (100.0 * (span.end - span.start) / total).max(0.2);
        let _ = writeln!(
            page,
            "<div class=\"row\" title=\"{name}: {step}, {how:?}, {start:.3}-{end:.3} s\"><div class=\"bar\" style=\"left:{left:.3}%;width:{width:.3}%;background:{c}\"></div><span class=\"label\" style=\"left:calc({left:.3}% + 4px)\">{name} {secs:.2} s</span></div>",
            name = escape(&span.name),
            step = span.step,
            how = span.how,
            start = span.start,
            end = span.end,
            secs = span.end - span.start,
            c = colour(span.step),
        );
    }
    page.push_str("</body></html>\n");
    page
}

/// Writes both reports and returns their paths.
pub(super) fn write(
    requested: Option<&Path>,
    store_tmp: &Path,
    recipe: &str,
    jobs: usize,
    total: f64,
    spans: &[Timing],
) -> Result<(PathBuf, PathBuf)> {
    let (json_path, html_path) = report_paths(requested, store_tmp);
    if let Some(dir) = json_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut bytes = serde_json::to_vec_pretty(&to_json(recipe, jobs, total, spans))?;
    bytes.push(b'\n');
    std::fs::write(&json_path, bytes)
        .with_context(|| format!("cannot write the timings to {}", json_path.display()))?;
    std::fs::write(&html_path, to_html(recipe, jobs, total, spans))
        .with_context(|| format!("cannot write the timings to {}", html_path.display()))?;
    Ok((json_path, html_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(name: &str, step: &'static str, how: How, start: f64, end: f64) -> Timing {
        Timing {
            name: name.into(),
            step,
            how,
            start,
            end,
        }
    }

    #[test]
    fn steps_sum_work_done_and_count_valid_entries_apart() {
        let spans = [
            span("a.whl", "fetch", How::Fetched, 0.0, 0.5),
            span("a-py311", "install", How::Built, 0.5, 1.0),
            span("b-py311", "install", How::Valid, 0.0, 0.0),
            span("a-py311-pyc", "compile", How::Built, 1.0, 3.0),
        ];
        let report = to_json("demo", 2, 3.0, &spans);
        assert_eq!(
            report["steps"]["install"],
            json!({"done": 1, "valid": 1, "seconds": 0.5})
        );
        assert_eq!(report["steps"]["compile"]["seconds"], json!(2.0));
        assert_eq!(report["entries"].as_array().unwrap().len(), 4);
        let page = to_html("<demo>", 2, 3.0, &spans);
        assert!(page.contains("&lt;demo&gt;"), "{page}");
        // Valid entries are in the table, not on the timeline.
        assert!(page.contains("a-py311-pyc 2.00 s"), "{page}");
        assert!(!page.contains("b-py311 0.00 s"), "{page}");
    }

    #[test]
    fn a_requested_file_gives_both_reports_beside_it() {
        let tmp = Path::new("/store/tmp");
        assert_eq!(
            report_paths(Some(Path::new("out/t.html")), tmp),
            (PathBuf::from("out/t.json"), PathBuf::from("out/t.html"))
        );
        assert_eq!(
            report_paths(Some(Path::new("t")), tmp),
            (PathBuf::from("t.json"), PathBuf::from("t.html"))
        );
        let (json_path, _) = report_paths(None, tmp);
        assert!(json_path.starts_with(tmp) && json_path.to_string_lossy().contains("timings-"));
    }
}
