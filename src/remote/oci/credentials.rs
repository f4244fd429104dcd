//! Registry credentials, found as docker and oras find them: `PYSTORE_OCI_USERNAME` /
//! `PYSTORE_OCI_PASSWORD` first, then `~/.docker/config.json` (`$DOCKER_CONFIG/config.json`):
//! a credential helper named for the host in `credHelpers`, the `auths` entry's base64 `auth`,
//! then the default helper of `credsStore`. Helpers run as `docker-credential-NAME get` with the
//! registry host on stdin. The password never leaves this module but in an `Authorization`
//! header; nothing here prints or stores it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::Value;

use crate::fetch::credentials::Login;

/// Where credentials are looked up (the environment is read by the CLI, not here).
#[derive(Clone, Default)]
pub struct OciCredentialSources {
    /// `PYSTORE_OCI_USERNAME` / `PYSTORE_OCI_PASSWORD`.
    pub login: Option<Login>,
    /// The docker config file (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`).
    pub docker_config: Option<PathBuf>,
}

impl std::fmt::Debug for OciCredentialSources {
    /// Never shows the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciCredentialSources")
            .field("login", &self.login.as_ref().map(|l| l.user.as_str()))
            .field("docker_config", &self.docker_config)
            .finish()
    }
}

/// A login and where it came from (for messages: "credentials from …").
#[derive(Clone, Debug)]
pub struct Found {
    /// The login.
    pub login: Login,
    /// Its source, e.g. `PYSTORE_OCI_USERNAME/PYSTORE_OCI_PASSWORD`.
    pub source: String,
}

impl OciCredentialSources {
    /// Where credentials for a host are looked for, in order, for error messages.
    pub fn describe(&self) -> String {
        let config = self.docker_config.as_ref().map_or_else(
            || "~/.docker/config.json".to_owned(),
            |p| p.display().to_string(),
        );
        format!("PYSTORE_OCI_USERNAME/PYSTORE_OCI_PASSWORD, or {config} (credHelpers, auths, credsStore)")
    }

    /// The login for `host` (`HOST[:PORT]`), if any source has one. A helper that fails is
    /// reported as an error: silently going anonymous would hide the cause of a later 401.
    pub fn lookup(&self, host: &str) -> Result<Option<Found>, String> {
        if let Some(login) = &self.login {
            return Ok(Some(Found {
                login: login.clone(),
                source: "PYSTORE_OCI_USERNAME/PYSTORE_OCI_PASSWORD".into(),
            }));
        }
        let Some(path) = &self.docker_config else {
            return Ok(None);
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let config: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
        if let Some(helper) = config
            .get("credHelpers")
            .and_then(Value::as_object)
            .and_then(|helpers| {
                helpers
                    .iter()
                    .find(|(key, _)| same_host(key, host))
                    .and_then(|(_, v)| v.as_str())
            })
        {
            return run_helper(helper, host).map(Some);
        }
        if let Some(found) = from_auths(&config, host, path)? {
            return Ok(Some(found));
        }
        if let Some(store) = config.get("credsStore").and_then(Value::as_str) {
            return match run_helper(store, host) {
                Ok(found) => Ok(Some(found)),
                // The default store not knowing this host is normal: anonymous access.
                Err(e) if e.contains("credentials not found") => Ok(None),
                Err(e) => Err(e),
            };
        }
        Ok(None)
    }
}

/// Whether a docker config key (`HOST`, `HOST:PORT`, `https://HOST/v1/`) names `host`.
fn same_host(key: &str, host: &str) -> bool {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next() == Some(host)
}

fn from_auths(config: &Value, host: &str, path: &Path) -> Result<Option<Found>, String> {
    let Some((key, entry)) = config
        .get("auths")
        .and_then(Value::as_object)
        .and_then(|auths| auths.iter().find(|(key, _)| same_host(key, host)))
    else {
        return Ok(None);
    };
    let source = format!("{} (auths.{key})", path.display());
    if let Some(auth) = entry.get("auth").and_then(Value::as_str) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| format!("{source}: \"auth\" is not base64 of USER:PASSWORD"))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| format!("{source}: \"auth\" is not base64 of USER:PASSWORD"))?;
        return Ok(Some(Found {
            login: Login {
                user: user.to_owned(),
                password: password.to_owned(),
            },
            source,
        }));
    }
    // `docker login` of old wrote the two fields apart.
    match (
        entry.get("username").and_then(Value::as_str),
        entry.get("password").and_then(Value::as_str),
    ) {
        (Some(user), Some(password)) => Ok(Some(Found {
            login: Login {
                user: user.to_owned(),
                password: password.to_owned(),
            },
            source,
        })),
        _ => Ok(None),
    }
}

/// Runs `docker-credential-NAME get` for `host`.
fn run_helper(name: &str, host: &str) -> Result<Found, String> {
    let program = format!("docker-credential-{name}");
    if name.is_empty()
        || !name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
    {
        return Err(format!("{program:?} is not a credential helper name"));
    }
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program} (named in the docker config): {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is judged by its exit status below.
        let _ = stdin.write_all(host.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{program} get: {e}"))?;
    if !out.status.success() {
        let message = String::from_utf8_lossy(&out.stdout);
        let message = message.trim();
        return Err(format!(
            "{program} get for {host} failed ({}): {}",
            out.status,
            if message.is_empty() {
                "no message"
            } else {
                message
            }
        ));
    }
    let value: Value = serde_json::from_slice(&out.stdout)
        .map_err(|_| format!("{program} get for {host} did not print JSON"))?;
    match (
        value.get("Username").and_then(Value::as_str),
        value.get("Secret").and_then(Value::as_str),
    ) {
        (Some(user), Some(secret)) => Ok(Found {
            login: Login {
                user: user.to_owned(),
                password: secret.to_owned(),
            },
            source: format!("the credential helper {program}"),
        }),
        _ => Err(format!(
            "{program} get for {host} printed no Username and Secret"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_auths_are_matched_by_host_and_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"127.0.0.1:5000":{"auth":"YWxpY2U6czNjcjN0"},
                        "https://registry.example/v1/":{"username":"bob","password":"pw"}}}"#,
        )
        .unwrap();
        let sources = OciCredentialSources {
            login: None,
            docker_config: Some(path.clone()),
        };
        let found = sources.lookup("127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(
            (found.login.user.as_str(), found.login.password.as_str()),
            ("alice", "s3cr3t")
        );
        assert!(
            found.source.contains("auths.127.0.0.1:5000"),
            "{}",
            found.source
        );
        let hub = sources.lookup("registry.example").unwrap().unwrap();
        assert_eq!(hub.login.user, "bob");
        assert!(sources.lookup("127.0.0.1:5001").unwrap().is_none());
        assert!(!format!("{sources:?}").contains("s3cr3t"));

        std::fs::write(&path, r#"{"auths":{"h":{"auth":"bm9jb2xvbg=="}}}"#).unwrap();
        let err = sources.lookup("h").unwrap_err();
        assert!(
            err.contains("USER:PASSWORD") && err.contains("config.json"),
            "{err}"
        );

        // The environment wins over the file.
        let env = OciCredentialSources {
            login: Some(Login {
                user: "u".into(),
                password: "p".into(),
            }),
            docker_config: Some(path),
        };
        assert_eq!(
            env.lookup("h").unwrap().unwrap().source,
            "PYSTORE_OCI_USERNAME/PYSTORE_OCI_PASSWORD"
        );
    }

    #[test]
    fn a_missing_helper_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"credHelpers":{"r.example":"pystore-test-absent"}}"#,
        )
        .unwrap();
        let sources = OciCredentialSources {
            login: None,
            docker_config: Some(path),
        };
        let err = sources.lookup("r.example").unwrap_err();
        assert!(
            err.contains("docker-credential-pystore-test-absent"),
            "{err}"
        );
        assert!(sources.lookup("other.example").unwrap().is_none());
    }
}
