//! Credentials for index and download requests: from URL userinfo and netrc, kept only in
//! memory. URLs are stripped of userinfo before they are requested, logged, stored or shown.

use std::collections::HashMap;
use std::path::Path;

use reqwest::Url;

/// A user name and password for HTTP basic auth.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// User name.
    pub user: String,
    /// Password (may be empty).
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login({:?}, <redacted>)", self.user)
    }
}

/// Logins by host (and port), from URLs' userinfo first, then netrc.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    by_origin: HashMap<String, Login>,
    netrc: HashMap<String, Login>,
    netrc_default: Option<Login>,
}

fn origin_key(url: &Url) -> Option<String> {
    Some(format!(
        "{}:{}",
        url.host_str()?,
        url.port_or_known_default()?
    ))
}

/// `url` without user name and password.
pub fn strip(url: &Url) -> Url {
    let mut clean = url.clone();
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    clean
}

/// `url` as text without user name and password: the only form in which URLs are shown, logged
/// or written anywhere.
pub fn redact(url: &Url) -> String {
    strip(url).to_string()
}

impl Credentials {
    /// Takes the userinfo out of `url`, remembering it for every request to the same host and
    /// port, and returns the clean URL.
    pub fn absorb(&mut self, url: &Url) -> Url {
        if !url.username().is_empty() || url.password().is_some() {
            if let Some(key) = origin_key(url) {
                let login = Login {
                    user: percent_decode(url.username()),
                    password: percent_decode(url.password().unwrap_or("")),
                };
                self.by_origin.insert(key, login);
            }
        }
        strip(url)
    }

    /// Reads a netrc file (`machine`, `login`, `password`, `account`, `default`, `macdef`,
    /// quoting and comments, as Python's netrc module reads them, so pystore finds the logins
    /// pip finds). A file that cannot be read is ignored; one that cannot be parsed is ignored
    /// with a warning, which never quotes the parser's message (it may hold part of a password).
    pub fn load_netrc(&mut self, path: &Path) {
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        let parsed = match text.parse::<netrc::Netrc>() {
            Ok(parsed) => parsed,
            Err(_) => {
                tracing::warn!(
                    "ignoring netrc file {}: it is not in netrc syntax",
                    path.display()
                );
                return;
            }
        };
        for (machine, auth) in parsed.hosts {
            let entry = Login {
                user: auth.login,
                password: auth.password,
            };
            // The parser files the `default` entry under the name "default".
            if machine == "default" {
                self.netrc_default = Some(entry);
            } else {
                self.netrc.insert(machine, entry);
            }
        }
    }

    /// The login to use for a request to `url` (which must already be stripped).
    pub fn login_for(&self, url: &Url) -> Option<&Login> {
        let key = origin_key(url)?;
        self.by_origin
            .get(&key)
            .or_else(|| url.host_str().and_then(|host| self.netrc.get(host)))
            .or(self.netrc_default.as_ref())
    }

    /// Every password known, to scrub from any text before it is shown.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.by_origin
            .values()
            .chain(self.netrc.values())
            .chain(self.netrc_default.iter())
            .map(|login| login.password.as_str())
            .filter(|p| !p.is_empty())
    }
}

/// Decodes `%XX` escapes (as in URL userinfo and path segments); invalid escapes stay as they
/// are, and bytes that are not UTF-8 become U+FFFD.
pub fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_absorbed_and_stripped() {
        let mut creds = Credentials::default();
        let base = "http://127.0.0.1:8443";
        let url = Url::parse(&base.replace("//", "//alice:p%40ss@"))
            .unwrap()
            .join("/simple/")
            .unwrap();
        let clean = creds.absorb(&url);
        assert_eq!(clean.as_str(), format!("{base}/simple/"));
        let file = Url::parse(&format!("{base}/files/a.whl")).unwrap();
        let login = creds.login_for(&file).unwrap();
        assert_eq!(
            (login.user.as_str(), login.password.as_str()),
            ("alice", "p@ss")
        );
        let other_port = Url::parse("http://127.0.0.1:8080/x").unwrap();
        assert!(creds.login_for(&other_port).is_none());
        assert!(!format!("{creds:?}").contains("p@ss"));
        assert_eq!(redact(&url), format!("{base}/simple/"));
    }

    #[test]
    fn netrc_machines_and_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netrc");
        std::fs::write(
            &path,
            "machine localhost login bob password hunter2\nmacdef init\ncd /\n\ndefault login anon password x\n",
        )
        .unwrap();
        let mut creds = Credentials::default();
        creds.load_netrc(&path);
        let a = creds
            .login_for(&Url::parse("https://localhost/x").unwrap())
            .unwrap();
        assert_eq!((a.user.as_str(), a.password.as_str()), ("bob", "hunter2"));
        let other = creds
            .login_for(&Url::parse("https://127.0.0.1/x").unwrap())
            .unwrap();
        assert_eq!(other.user, "anon");
    }

    #[test]
    fn an_unparsable_netrc_gives_no_logins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netrc");
        // An unquoted password with a space: the second word is no netrc keyword.
        std::fs::write(&path, "machine localhost login bob password hun ter2\n").unwrap();
        let mut creds = Credentials::default();
        creds.load_netrc(&path);
        assert!(creds
            .login_for(&Url::parse("https://localhost/x").unwrap())
            .is_none());
        assert_eq!(creds.secrets().count(), 0);
    }
}
