//! Terminal output: the log format, progress bars, byte sizes, JSON printing.

use std::fmt;
use std::io::IsTerminal;

use serde::Serialize;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How chatty to be.
#[derive(Clone, Copy, Debug)]
pub struct Ui {
    /// `--json`: stdout carries one JSON document.
    pub json: bool,
    /// `-q`: no progress or notices.
    pub quiet: bool,
}

impl Ui {
    /// Progress bars only on a terminal, and never with `-q` or `--json`.
    pub fn progress_bar(&self, len: u64, message: &'static str) -> indicatif::ProgressBar {
        if self.quiet || self.json || !std::io::stderr().is_terminal() {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::new(len);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(message);
        bar
    }
}

/// Log lines as a CLI user expects them: `warning: ...`, `error: ...`, notices bare.
struct PlainFormat;

impl<S, N> FormatEvent<S, N> for PlainFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let prefix = match *event.metadata().level() {
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            Level::INFO => "",
            _ => "debug: ",
        };
        write!(writer, "{prefix}")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Sends `tracing` events to stderr: notices and warnings by default, warnings only with `-q` or
/// `--json`; `RUST_LOG` overrides.
pub(super) fn init_logging(ui: Ui) {
    let default = if ui.quiet || ui.json {
        "pystore=warn"
    } else {
        "pystore=info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(PlainFormat)
        .try_init();
}

/// Prints `value` as pretty JSON on stdout.
pub(super) fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `1 entry`, `2 entries`.
pub(super) fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `1536` → `1.5 KiB`.
pub(super) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `file, 12 bytes, blake3 1a2b3c4d5e6f`
fn describe(state: &crate::build::check::PathState) -> String {
    let mut text = state.kind.to_owned();
    if let Some(size) = state.size {
        text.push_str(&format!(", {size} bytes"));
    }
    if let Some(blake3) = &state.blake3 {
        text.push_str(&format!(", blake3 {blake3}"));
    }
    if let Some(target) = &state.target {
        text.push_str(&format!(" to {target:?}"));
    }
    text
}

/// Prints the differing paths of two versions of an entry, four spaces in; `sides` names them
/// (`("the registered entry", "the rebuild")`); `total` counts all, `differences` the first.
pub(super) fn print_differences(
    differences: &[crate::build::check::PathDifference],
    total: usize,
    sides: (&str, &str),
) {
    for d in differences {
        let path = if d.path.is_empty() {
            "(the entry itself)"
        } else {
            &d.path
        };
        match (&d.registered, &d.rebuilt) {
            (Some(a), Some(b)) => println!("    {path}: {} -> {}", describe(a), describe(b)),
            (Some(a), None) => println!("    {path}: only in {} ({})", sides.0, describe(a)),
            (None, Some(b)) => println!("    {path}: only in {} ({})", sides.1, describe(b)),
            (None, None) => {}
        }
    }
    if total > differences.len() {
        println!(
            "    ... and {} more differing paths",
            total - differences.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(12_700_000), "12.1 MiB");
    }
}
