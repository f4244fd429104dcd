//! Parsing `oci://HOST[:PORT]/NAMESPACE/REPO:TAG` remote locations, with the distribution
//! spec's grammars for repository names and tags.

use reqwest::Url;

use super::client::is_loopback_host;

/// A parsed `oci://HOST[:PORT]/NAMESPACE/REPO:TAG`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// `https://HOST[:PORT]/`, or `http://` for loopback hosts.
    pub base: Url,
    /// `HOST[:PORT]`.
    pub host: String,
    /// `NAMESPACE/REPO`.
    pub repo: String,
    /// The tag.
    pub tag: String,
}

impl Spec {
    /// Parses the part after `oci://`.
    pub fn parse(rest: &str) -> Result<Spec, String> {
        let (host, path) = rest
            .split_once('/')
            .ok_or("expected oci://HOST[:PORT]/NAMESPACE/REPO:TAG")?;
        let (repo, tag) = path
            .rsplit_once(':')
            .filter(|(_, tag)| !tag.contains('/'))
            .ok_or("an OCI remote needs a tag: oci://HOST[:PORT]/NAMESPACE/REPO:TAG")?;
        if host.is_empty()
            || !host
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b".-:[]".contains(&c))
        {
            return Err(format!("{host:?} is not a registry host"));
        }
        if !is_repo_name(repo) {
            return Err(format!(
                "{repo:?} is not a repository name (lower-case components such as namespace/repo)"
            ));
        }
        if !is_tag(tag) {
            return Err(format!(
                "{tag:?} is not a tag (letters, digits, _ . -; at most 128)"
            ));
        }
        let bare_host = match host.rsplit_once(':') {
            Some((name, port)) if !name.is_empty() && port.bytes().all(|c| c.is_ascii_digit()) => {
                name
            }
            _ => host,
        };
        // As docker and oras do: plain HTTP only on loopback.
        let scheme = if is_loopback_host(bare_host) {
            "http"
        } else {
            "https"
        };
        let base = Url::parse(&format!("{scheme}://{host}/"))
            .map_err(|e| format!("{host:?} is not a registry host: {e}"))?;
        Ok(Spec {
            base,
            host: host.to_owned(),
            repo: repo.to_owned(),
            tag: tag.to_owned(),
        })
    }

    /// `oci://HOST/REPO:TAG`.
    pub fn location(&self) -> String {
        format!("oci://{}/{}:{}", self.host, self.repo, self.tag)
    }
}

/// The distribution spec's repository name grammar.
fn is_repo_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|component| {
            let bytes = component.as_bytes();
            !bytes.is_empty()
                && bytes[0].is_ascii_alphanumeric()
                && bytes[bytes.len() - 1].is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
                && !component.contains("..")
                && !component.contains("___")
                && !component.contains("._")
                && !component.contains("_.")
        })
}

/// The distribution spec's tag grammar.
fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}
