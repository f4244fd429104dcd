//! The package index client: the simple repository API in its JSON (PEP 691) and HTML (PEP 503)
//! forms, with file hashes, `requires-python`, yanked files (PEP 592) and core metadata files
//! (PEP 658, with PEP 714's key names).

use std::collections::{BTreeMap, HashSet};

use reqwest::Url;
use serde_json::Value;

use super::credentials::redact;
use super::http::HttpClient;
use super::name::normalize_name;
use super::FetchError;
use crate::hash::{to_hex, Sha256Digest};

/// What we ask the index for: JSON preferred, HTML accepted.
pub const ACCEPT_SIMPLE: &str =
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// Whether a core metadata file (`<file-url>.metadata`) is offered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoreMetadata {
    /// Not offered: read METADATA from the file itself.
    Absent,
    /// Offered, with its hashes when the index gives them.
    Present { hashes: BTreeMap<String, String> },
}

/// One file of a project, as an index lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexFile {
    /// The file name.
    pub filename: String,
    /// Where to download it: absolute, without fragment or credentials.
    pub url: Url,
    /// Hashes by algorithm name (lower-case hex), e.g. `sha256`.
    pub hashes: BTreeMap<String, String>,
    /// The `Requires-Python` specifier, unescaped.
    pub requires_python: Option<String>,
    /// `Some(reason)` when yanked (the reason may be empty).
    pub yanked: Option<String>,
    /// The core metadata file, if offered.
    pub core_metadata: CoreMetadata,
    /// Size in bytes, when the index says (PEP 700).
    pub size: Option<u64>,
}

impl IndexFile {
    /// The sha256 the index gives, if any.
    /// (`None` also when what it gives is not 64 hex digits: such a file is measured instead).
    pub fn sha256(&self) -> Option<Sha256Digest> {
        self.hashes.get("sha256")?.parse().ok()
    }
}

/// A project's files, from every configured index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectPage {
    /// The normalised project name.
    pub name: String,
    /// Files, in the order the indexes list them (primary index first); a file name listed by
    /// more than one index is kept from the first.
    pub files: Vec<IndexFile>,
}

impl ProjectPage {
    /// The files a resolver may choose from: yanked files only when `allow_yanked` (PEP 592: a
    /// yanked file is used only when a requirement pins its version exactly).
    pub fn usable(&self, allow_yanked: bool) -> impl Iterator<Item = &IndexFile> {
        self.files
            .iter()
            .filter(move |file| allow_yanked || file.yanked.is_none())
    }
}

/// Queries the configured indexes.
pub struct IndexClient<'a> {
    http: &'a HttpClient,
    indexes: Vec<Url>,
}

impl<'a> IndexClient<'a> {
    /// A client over `indexes` (primary first; credentials already stripped). Errors when none is
    /// configured, saying what to set.
    pub fn new(http: &'a HttpClient, indexes: Vec<Url>) -> Result<IndexClient<'a>, FetchError> {
        if indexes.is_empty() {
            return Err(FetchError::NoIndex);
        }
        Ok(IndexClient { http, indexes })
    }

    /// The files of project `name` across all indexes.
    pub fn project(&self, name: &str) -> Result<ProjectPage, FetchError> {
        let normalized = normalize_name(name);
        let mut files: Vec<IndexFile> = Vec::new();
        // File names kept so far: a set, so a page of n links costs O(n), not O(n²).
        let mut seen: HashSet<String> = HashSet::new();
        let mut found = false;
        for index in &self.indexes {
            let base = if index.path().ends_with('/') {
                index.clone()
            } else {
                Url::parse(&format!("{index}/")).map_err(|e| bad_url(index, e))?
            };
            let url = base
                .join(&format!("{normalized}/"))
                .map_err(|e| bad_url(index, e))?;
            let document = match self.http.get(&url, ACCEPT_SIMPLE) {
                Ok(document) => document,
                Err(FetchError::Status { status: 404, .. }) => continue,
                Err(err) => return Err(err),
            };
            found = true;
            let parsed = if document.content_type == "application/vnd.pypi.simple.v1+json" {
                parse_json(&document.url, &document.body)
            } else {
                parse_html(&document.url, &document.body)
            }
            .map_err(|reason| FetchError::BadIndexPage {
                url: redact(&document.url),
                reason,
            })?;
            let (parsed, refused) = same_scheme_family(&document.url, parsed);
            if refused > 0 {
                tracing::warn!(
                    "{}: ignored {refused} link(s) of another URL scheme than the index's ({}); an index may only link to files it serves the same way",
                    redact(&document.url),
                    document.url.scheme()
                );
            }
            for file in parsed {
                if seen.insert(file.filename.clone()) {
                    files.push(file);
                }
            }
        }
        if !found {
            return Err(FetchError::ProjectNotFound {
                name: name.to_owned(),
                indexes: self.indexes.iter().map(redact).collect(),
            });
        }
        Ok(ProjectPage {
            name: normalized,
            files,
        })
    }

    /// The file's core metadata (its METADATA) from the index, when offered, checked against the
    /// index's hash; `None` when the index does not offer it.
    pub fn core_metadata(&self, file: &IndexFile) -> Result<Option<Vec<u8>>, FetchError> {
        let CoreMetadata::Present { hashes } = &file.core_metadata else {
            return Ok(None);
        };
        let url =
            Url::parse(&format!("{}.metadata", file.url)).map_err(|e| bad_url(&file.url, e))?;
        let document = match self.http.get(&url, "*/*") {
            Ok(document) => document,
            // An index that advertises metadata it cannot serve: fall back to the file.
            Err(FetchError::Status { status: 404, .. }) => return Ok(None),
            Err(err) => return Err(err),
        };
        if let Some(expected) = hashes.get("sha256") {
            use sha2::Digest;
            let actual = to_hex(&sha2::Sha256::digest(&document.body));
            if &actual != expected {
                return Err(FetchError::HashMismatch {
                    name: format!("{}.metadata", file.filename),
                    from: redact(&url),
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        Ok(Some(document.body))
    }
}

/// The files of `parsed` whose URLs are in the scheme family of `page` (http and https for an
/// HTTP(S) index, file for a file index), and how many were dropped: an index on a server must
/// not send pystore to `file://` paths on this machine (nor a local index to the network).
pub fn same_scheme_family(page: &Url, parsed: Vec<IndexFile>) -> (Vec<IndexFile>, usize) {
    fn family(url: &Url) -> &str {
        match url.scheme() {
            "https" => "http",
            other => other,
        }
    }
    let want = family(page).to_owned();
    let total = parsed.len();
    let kept: Vec<IndexFile> = parsed
        .into_iter()
        .filter(|file| family(&file.url) == want)
        .collect();
    let refused = total - kept.len();
    (kept, refused)
}

fn bad_url(url: &Url, err: impl std::fmt::Display) -> FetchError {
    FetchError::BadUrl {
        value: redact(url),
        reason: err.to_string(),
    }
}

/// Resolves an href against the page, dropping the fragment and any credentials.
fn resolve(page: &Url, href: &str) -> Result<(Url, Option<String>), String> {
    let mut url = page
        .join(href)
        .map_err(|e| format!("bad link {href:?}: {e}"))?;
    let fragment = url.fragment().map(str::to_owned);
    url.set_fragment(None);
    Ok((super::credentials::strip(&url), fragment))
}

fn hashes_from_fragment(fragment: Option<&str>) -> BTreeMap<String, String> {
    fragment
        .and_then(|f| f.split_once('='))
        .map(|(algo, hex)| {
            [(algo.to_ascii_lowercase(), hex.to_ascii_lowercase())]
                .into_iter()
                .collect()
        })
        .unwrap_or_default()
}

/// Parses a PEP 691 JSON project page.
pub fn parse_json(page: &Url, body: &[u8]) -> Result<Vec<IndexFile>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let files = value
        .get("files")
        .and_then(Value::as_array)
        .ok_or("no \"files\" array")?;
    let hash_map = |v: &Value| -> BTreeMap<String, String> {
        v.as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| {
                        Some((k.to_ascii_lowercase(), v.as_str()?.to_ascii_lowercase()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let filename = file
            .get("filename")
            .and_then(Value::as_str)
            .ok_or("a file without \"filename\"")?;
        let href = file
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{filename} has no \"url\""))?;
        let (url, fragment) = resolve(page, href)?;
        let mut hashes = hashes_from_fragment(fragment.as_deref());
        hashes.extend(file.get("hashes").map(hash_map).unwrap_or_default());
        let yanked = match file.get("yanked") {
            Some(Value::Bool(true)) => Some(String::new()),
            Some(Value::String(reason)) => Some(reason.clone()),
            _ => None,
        };
        let metadata = file
            .get("core-metadata")
            .or_else(|| file.get("dist-info-metadata"));
        let core_metadata = match metadata {
            Some(Value::Bool(true)) => CoreMetadata::Present {
                hashes: BTreeMap::new(),
            },
            Some(v @ Value::Object(_)) => CoreMetadata::Present {
                hashes: hash_map(v),
            },
            _ => CoreMetadata::Absent,
        };
        out.push(IndexFile {
            filename: filename.to_owned(),
            url,
            hashes,
            requires_python: file
                .get("requires-python")
                .and_then(Value::as_str)
                .map(str::to_owned),
            yanked,
            core_metadata,
            size: file.get("size").and_then(Value::as_u64),
        });
    }
    Ok(out)
}

/// Parses a PEP 503 HTML project page.
pub fn parse_html(page: &Url, body: &[u8]) -> Result<Vec<IndexFile>, String> {
    let text = String::from_utf8_lossy(body);
    let dom =
        tl::parse(&text, tl::ParserOptions::default()).map_err(|e| format!("invalid HTML: {e}"))?;
    let parser = dom.parser();
    let attr = |tag: &tl::HTMLTag<'_>, name: &str| -> Option<String> {
        tag.attributes()
            .get(name)
            .map(|v| v.map(|b| unescape(&b.as_utf8_str())).unwrap_or_default())
    };
    let base = dom
        .query_selector("base")
        .and_then(|mut nodes| nodes.next())
        .and_then(|handle| {
            handle
                .get(parser)?
                .as_tag()
                .and_then(|tag| attr(tag, "href"))
        })
        .and_then(|href| page.join(&href).ok())
        .unwrap_or_else(|| page.clone());
    let mut out = Vec::new();
    for handle in dom.query_selector("a").into_iter().flatten() {
        let Some(tag) = handle.get(parser).and_then(|node| node.as_tag()) else {
            continue;
        };
        let Some(href) = attr(tag, "href") else {
            continue;
        };
        let (url, fragment) = resolve(&base, &href)?;
        let text = unescape(&tag.inner_text(parser)).trim().to_owned();
        let filename = if text.is_empty() {
            url.path_segments()
                .and_then(|mut s| s.next_back())
                .unwrap_or_default()
                .to_owned()
        } else {
            text
        };
        let metadata =
            attr(tag, "data-core-metadata").or_else(|| attr(tag, "data-dist-info-metadata"));
        let core_metadata = match metadata.as_deref() {
            None | Some("false") => CoreMetadata::Absent,
            Some(value) => CoreMetadata::Present {
                hashes: hashes_from_fragment(Some(value)),
            },
        };
        out.push(IndexFile {
            filename,
            url,
            hashes: hashes_from_fragment(fragment.as_deref()),
            requires_python: attr(tag, "data-requires-python").filter(|s| !s.is_empty()),
            yanked: attr(tag, "data-yanked"),
            core_metadata,
            size: None,
        });
    }
    Ok(out)
}

/// Decodes the HTML character references that occur in simple-API attributes and text.
fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';').filter(|&i| i <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if entity.starts_with("#x") || entity.starts_with("#X") => {
                u32::from_str_radix(&entity[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
            }
            _ if entity.starts_with('#') => entity[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise() {
        assert_eq!(normalize_name("Foo.Bar__baz-"), "foo-bar-baz-");
        assert_eq!(normalize_name("psycopg2_binary"), "psycopg2-binary");
    }

    #[test]
    fn entities_decode() {
        assert_eq!(
            unescape("&gt;=3.8, &lt;4 &amp;&#39;&#x41;&bogus; & x"),
            ">=3.8, <4 &'A&bogus; & x"
        );
    }

    #[test]
    fn links_stay_in_the_index_scheme_family() {
        let page = Url::parse("https://127.0.0.1:1/simple/demo/").unwrap();
        let html =
            br#"<a href="http://127.0.0.1:1/a-1.0-py3-none-any.whl">a-1.0-py3-none-any.whl</a>
            <a href="file:///etc/passwd">b-1.0-py3-none-any.whl</a>
            <a href="/c-1.0-py3-none-any.whl">c-1.0-py3-none-any.whl</a>"#;
        let (kept, refused) = same_scheme_family(&page, parse_html(&page, html).unwrap());
        let names: Vec<&str> = kept.iter().map(|f| f.filename.as_str()).collect();
        assert_eq!(names, ["a-1.0-py3-none-any.whl", "c-1.0-py3-none-any.whl"]);
        assert_eq!(refused, 1);
        let local = Url::parse("file:///srv/simple/demo/").unwrap();
        let (kept, refused) = same_scheme_family(&local, parse_html(&local, html).unwrap());
        let names: Vec<&str> = kept.iter().map(|f| f.filename.as_str()).collect();
        assert_eq!(names, ["b-1.0-py3-none-any.whl", "c-1.0-py3-none-any.whl"]);
        assert_eq!(refused, 1);
    }

    #[test]
    fn html_and_json_forms_agree() {
        let page = Url::parse("http://127.0.0.1:1/simple/demo/").unwrap();
        let html = br#"<!DOCTYPE html><html><body>
            <a href="../../files/demo-1.0-py3-none-any.whl#sha256=AB12" data-requires-python="&gt;=3.8"
               data-core-metadata="sha256=cd34">demo-1.0-py3-none-any.whl</a>
            <a href="/files/demo-0.9-py3-none-any.whl#sha256=ef56" data-yanked="broken">demo-0.9-py3-none-any.whl</a>
            <a href="http://127.0.0.1:2/demo-0.8.tar.gz" data-yanked>demo-0.8.tar.gz</a>
        </body></html>"#;
        let json = br#"{"meta":{"api-version":"1.1"},"name":"demo","files":[
            {"filename":"demo-1.0-py3-none-any.whl","url":"../../files/demo-1.0-py3-none-any.whl",
             "hashes":{"sha256":"ab12"},"requires-python":">=3.8","core-metadata":{"sha256":"cd34"}},
            {"filename":"demo-0.9-py3-none-any.whl","url":"/files/demo-0.9-py3-none-any.whl",
             "hashes":{"sha256":"ef56"},"yanked":"broken","dist-info-metadata":false},
            {"filename":"demo-0.8.tar.gz","url":"http://127.0.0.1:2/demo-0.8.tar.gz","hashes":{},"yanked":true}]}"#;
        let from_html = parse_html(&page, html).unwrap();
        let from_json = parse_json(&page, json).unwrap();
        assert_eq!(from_html, from_json);
        assert_eq!(
            from_html[0].url.as_str(),
            "http://127.0.0.1:1/files/demo-1.0-py3-none-any.whl"
        );
        assert_eq!(from_html[0].requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(from_html[1].yanked.as_deref(), Some("broken"));
        assert_eq!(from_html[2].yanked.as_deref(), Some(""));
        let page = ProjectPage {
            name: "demo".into(),
            files: from_html,
        };
        assert_eq!(page.usable(false).count(), 1);
        assert_eq!(page.usable(true).count(), 3);
    }
}
