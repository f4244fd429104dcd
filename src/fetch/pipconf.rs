//! The parts of pip's configuration files that name indexes.
//!
//! pip reads, lowest precedence first: the global files (`$XDG_CONFIG_DIRS/pip/pip.conf`,
//! `/etc/pip.conf`), the user files (`~/.pip/pip.conf`, `$XDG_CONFIG_HOME/pip/pip.conf`), the
//! site file (`$VIRTUAL_ENV/pip.conf`); `PIP_CONFIG_FILE` adds one more (or, set to `os.devnull`,
//! disables them all). Within a file, `[install]` overrides `[global]`.

use std::path::PathBuf;

use super::config::Env;

/// Index settings found in pip's configuration, with the file each came from.
#[derive(Clone, Debug, Default)]
pub struct PipConfig {
    /// `index-url`, and its file.
    pub index_url: Option<(String, String)>,
    /// `extra-index-url` values (whitespace- or line-separated), and their files.
    pub extra_index_urls: Vec<(String, String)>,
}

impl PipConfig {
    /// Reads every pip configuration file that exists.
    pub fn load(env: Env<'_>) -> PipConfig {
        let mut config = PipConfig::default();
        let config_file = env("PIP_CONFIG_FILE");
        if config_file.as_deref() == Some("/dev/null")
            || config_file.as_deref() == Some("os.devnull")
        {
            return config;
        }
        let mut files: Vec<PathBuf> = Vec::new();
        let xdg_dirs = env("XDG_CONFIG_DIRS").unwrap_or_else(|| "/etc/xdg".into());
        files.extend(
            xdg_dirs
                .split(':')
                .filter(|d| !d.is_empty())
                .map(|d| PathBuf::from(d).join("pip/pip.conf")),
        );
        files.push(PathBuf::from("/etc/pip.conf"));
        if let Some(home) = env("HOME") {
            files.push(PathBuf::from(&home).join(".pip/pip.conf"));
            let xdg_home = env("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(&home).join(".config"));
            files.push(xdg_home.join("pip/pip.conf"));
        }
        if let Some(venv) = env("VIRTUAL_ENV") {
            files.push(PathBuf::from(venv).join("pip.conf"));
        }
        files.extend(config_file.map(PathBuf::from));
        for file in files {
            if let Ok(text) = std::fs::read_to_string(&file) {
                config.read(&file.display().to_string(), &text);
            }
        }
        config
    }

    fn read(&mut self, file: &str, text: &str) {
        let mut extras_here: Vec<(String, String)> = Vec::new();
        let mut section = String::new();
        let mut key = String::new();
        let mut global_index = None;
        let mut install_index = None;
        for raw in text.lines() {
            let line = raw.split_once(" #").map_or(raw, |(l, _)| l);
            if line.trim_start().starts_with(['#', ';']) || line.trim().is_empty() {
                continue;
            }
            if raw.starts_with([' ', '\t']) && !key.is_empty() {
                // A continuation line of a multi-valued option.
                if key == "extra-index-url" && ["global", "install"].contains(&section.as_str()) {
                    extras_here.extend(
                        line.split_whitespace()
                            .map(|v| (file.to_owned(), v.to_owned())),
                    );
                }
                continue;
            }
            let line = line.trim();
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.trim().to_ascii_lowercase();
                key.clear();
                continue;
            }
            let Some((k, v)) = line.split_once(['=', ':']) else {
                continue;
            };
            key = k.trim().to_ascii_lowercase().replace('_', "-");
            let value = v.trim().to_owned();
            match (section.as_str(), key.as_str()) {
                ("global", "index-url") => global_index = Some(value),
                ("install", "index-url") => install_index = Some(value),
                ("global" | "install", "extra-index-url") => {
                    extras_here.extend(
                        value
                            .split_whitespace()
                            .map(|v| (file.to_owned(), v.to_owned())),
                    );
                }
                _ => {}
            }
        }
        if let Some(index) = install_index.or(global_index) {
            self.index_url = Some((file.to_owned(), index));
        }
        self.extra_index_urls.extend(extras_here);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_index_urls_with_install_overriding_global() {
        let mut config = PipConfig::default();
        config.read(
            "pip.conf",
            "[global]\nindex-url = http://127.0.0.1:1/simple\nextra-index-url =\n    http://127.0.0.1:2/simple\n    http://127.0.0.1:3/simple\n[install]\nindex_url=http://127.0.0.1:4/simple\n[other]\nindex-url = http://127.0.0.1:5\n",
        );
        assert_eq!(
            config.index_url,
            Some(("pip.conf".into(), "http://127.0.0.1:4/simple".into()))
        );
        let extras: Vec<&str> = config
            .extra_index_urls
            .iter()
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            extras,
            ["http://127.0.0.1:2/simple", "http://127.0.0.1:3/simple"]
        );
    }
}
