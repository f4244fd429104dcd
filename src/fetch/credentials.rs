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

    /// Reads a netrc file (`machine`, `login`, `password`, `default`; `macdef` skipped).
    pub fn load_netrc(&mut self, path: &Path) {
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        let mut tokens = text.split_whitespace().peekable();
        let mut current: Option<Option<String>> = None; // Some(None) = default
        let mut login = String::new();
        let mut password = String::new();
        let finish = |machine: Option<Option<String>>,
                      login: &mut String,
                      password: &mut String,
                      this: &mut Self| {
            if let Some(machine) = machine {
                let entry = Login {
                    user: std::mem::take(login),
                    password: std::mem::take(password),
                };
                match machine {
                    Some(host) => {
                        this.netrc.entry(host).or_insert(entry);
                    }
                    None => this.netrc_default = Some(entry),
                }
            }
        };
        while let Some(token) = tokens.next() {
            match token {
                "machine" => {
                    finish(current.take(), &mut login, &mut password, self);
                    current = tokens.next().map(|host| Some(host.to_owned()));
                }
                "default" => {
                    finish(current.take(), &mut login, &mut password, self);
                    current = Some(None);
                }
                "login" => login = tokens.next().unwrap_or_default().to_owned(),
                "password" => password = tokens.next().unwrap_or_default().to_owned(),
                "account" => {
                    tokens.next();
                }
                "macdef" => {
                    // A macro runs to the next blank line, which split_whitespace cannot see;
                    // skip to the next keyword instead.
                    while let Some(next) = tokens.peek() {
                        if ["machine", "default"].contains(next) {
                            break;
                        }
                        tokens.next();
                    }
                }
                _ => {}
            }
        }
        finish(current.take(), &mut login, &mut password, self);
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

/// Decodes `%XX` escapes (as in URL userinfo and path segments); invalid escapes stay as they are.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
}
