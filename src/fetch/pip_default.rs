//! The index the machine's pip would use, asked of pip itself when nothing names one.
//!
//! pystore has no index built in (no registry's host is written in its code). When neither a
//! flag, `PYSTORE_INDEX_URL`, `PIP_INDEX_URL` nor a pip.conf that pystore reads names an index,
//! pystore asks the installed pip, once per process and only when an index is needed: first its
//! configuration (pip knows every place it reads, on every platform, including a virtual
//! environment's own `pip.conf`), then its built-in default. That way `pystore realise` works
//! wherever `pip install` does, and the index is still the user's choice.

use std::process::{Command, Stdio};
use std::sync::OnceLock;

use reqwest::Url;

/// The environment variable naming the Python whose pip is asked (default: `python3`, then
/// `python`, on `PATH`). Set it empty to never ask pip.
pub const PIP_PYTHON_VAR: &str = "PYSTORE_PIP_PYTHON";

/// Prints what pip's configuration says of the index, then pip's built-in default, as JSON.
/// Only pip's long-stable internals are touched; any failure leaves that field out.
const ASK_PIP: &str = r#"
import json
out = {}
try:
    import pip
    out["version"] = pip.__version__
except Exception:
    pass
try:
    from pip._internal.configuration import Configuration
    config = Configuration(isolated=False)
    config.load()
    values = dict(config.items())
    for key in (":env:.index-url", "install.index-url", "download.index-url", "global.index-url"):
        if values.get(key):
            out["configured"] = [key, values[key].split()[0]]
            break
except Exception:
    pass
try:
    from pip._internal.models.index import PyPI
    out["default"] = PyPI.simple_url
except Exception:
    pass
print(json.dumps(out))
"#;

/// The index pip chose, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipIndex {
    /// The simple-API URL (may carry credentials; the caller strips them).
    pub url: String,
    /// Why: pip's configuration key, or its built-in default, with pip's version.
    pub reason: String,
}

/// Asks pip, once per process, which index it would use.
#[derive(Debug, Default)]
pub struct PipIndexQuery {
    /// The Python to run (`None`: never ask).
    python: Option<String>,
    answer: OnceLock<Option<PipIndex>>,
}

impl PipIndexQuery {
    /// A query that runs `python` (a program name or path) when first needed; `None` never asks.
    pub fn new(python: Option<String>) -> PipIndexQuery {
        PipIndexQuery {
            python,
            answer: OnceLock::new(),
        }
    }

    /// The query configured by [`PIP_PYTHON_VAR`]: unset means `python3` (then `python`), empty
    /// means never ask.
    pub fn from_env(value: Option<String>) -> PipIndexQuery {
        match value {
            Some(v) if v.trim().is_empty() => PipIndexQuery::new(None),
            Some(v) => PipIndexQuery::new(Some(v)),
            None => PipIndexQuery::new(Some(String::new())),
        }
    }

    /// pip's answer; runs pip the first time only.
    pub fn answer(&self) -> Option<&PipIndex> {
        self.answer
            .get_or_init(|| {
                let python = self.python.as_deref()?;
                let candidates: Vec<&str> = if python.is_empty() {
                    vec!["python3", "python"]
                } else {
                    vec![python]
                };
                candidates.into_iter().find_map(ask)
            })
            .as_ref()
    }
}

/// Runs `python` with [`ASK_PIP`]; `None` when it cannot run or has no pip.
fn ask(python: &str) -> Option<PipIndex> {
    let output = Command::new(python)
        .arg("-c")
        .arg(ASK_PIP)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let answer = parse_answer(&output.stdout);
    tracing::debug!("asked {python}'s pip for its index: {answer:?}");
    answer
}

/// Reads [`ASK_PIP`]'s output.
fn parse_answer(stdout: &[u8]) -> Option<PipIndex> {
    let value: serde_json::Value = serde_json::from_slice(stdout).ok()?;
    let version = value["version"].as_str()?;
    if let Some([key, url]) = value["configured"]
        .as_array()
        .and_then(|a| <&[serde_json::Value; 2]>::try_from(a.as_slice()).ok())
    {
        let (key, url) = (key.as_str()?, url.as_str()?);
        let key = if let Some(name) = key.strip_prefix(":env:.") {
            format!("PIP_{}", name.to_ascii_uppercase().replace('-', "_"))
        } else {
            key.to_owned()
        };
        return Some(PipIndex {
            url: url.to_owned(),
            reason: format!("pip {version}'s configuration ({key})"),
        });
    }
    let default = value["default"].as_str()?;
    // Only an http(s) URL is taken; anything else is not an index pip itself would use.
    let parsed = Url::parse(default).ok()?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return None;
    }
    Some(PipIndex {
        url: default.to_owned(),
        reason: format!("pip {version}'s built-in default"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_wins_over_the_default_and_names_its_key() {
        let out = br#"{"version": "24.0", "configured": ["install.index-url", "http://127.0.0.1:9/simple"], "default": "https://HOST/simple"}"#;
        assert_eq!(
            parse_answer(out),
            Some(PipIndex {
                url: "http://127.0.0.1:9/simple".into(),
                reason: "pip 24.0's configuration (install.index-url)".into()
            })
        );
        let env = br#"{"version": "24.0", "configured": [":env:.index-url", "http://127.0.0.1:9/simple"]}"#;
        assert_eq!(
            parse_answer(env).map(|a| a.reason),
            Some("pip 24.0's configuration (PIP_INDEX_URL)".into())
        );
    }

    #[test]
    fn the_default_is_used_when_nothing_is_configured() {
        let out = br#"{"version": "23.2.1", "default": "https://HOST/simple"}"#;
        assert_eq!(
            parse_answer(out),
            Some(PipIndex {
                url: "https://HOST/simple".into(),
                reason: "pip 23.2.1's built-in default".into()
            })
        );
    }

    #[test]
    fn no_pip_or_garbage_gives_no_answer() {
        assert_eq!(parse_answer(b"{}"), None);
        assert_eq!(parse_answer(b"not json"), None);
        assert_eq!(
            parse_answer(br#"{"version": "1", "default": "file:///etc"}"#),
            None
        );
        assert_eq!(PipIndexQuery::from_env(Some(String::new())).answer(), None);
        assert_eq!(
            PipIndexQuery::new(Some("/nonexistent/python".into())).answer(),
            None
        );
    }

    /// The question is asked of the machine's real pip (CPython 3.11 with pip on this project's
    /// machines): whatever it answers (its configuration or its built-in default) is an http(s)
    /// index and the reason names pip's version. Nothing is requested from the index.
    #[test]
    fn the_real_pip_answers() {
        let has_pip = Command::new("python3")
            .args(["-c", "import pip"])
            .status()
            .is_ok_and(|s| s.success());
        if !has_pip {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have python3 with pip"
            );
            eprintln!("SKIPPED: python3 has no pip");
            return;
        }
        let answer = PipIndexQuery::new(Some("python3".into()))
            .answer()
            .cloned()
            .expect("pip answers");
        let url = Url::parse(&answer.url).expect("an index URL");
        assert!(matches!(url.scheme(), "http" | "https"), "{answer:?}");
        assert!(answer.reason.starts_with("pip "), "{answer:?}");
    }
}
