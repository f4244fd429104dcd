//! The built-in table of known python-build-standalone archives: (version, triple) → URL and
//! sha256. `data/python-build-standalone.tsv` is compiled in.

use super::target::{PythonVersion, Target};

const TABLE: &str = include_str!("data/python-build-standalone.tsv");
const URL_TEMPLATE: &str = "https://github.com/indygreg/python-build-standalone/releases/download/{tag}/cpython-{version}%2B{tag}-{triple}-install_only_stripped.tar.gz";

/// A known interpreter archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownBuild {
    /// CPython version (`3.12.7`).
    pub version: String,
    /// Release tag (`20241008`).
    pub tag: String,
    /// Target triple.
    pub triple: String,
    /// Where to download it.
    pub url: String,
    /// sha256 of the archive, lower-case hex.
    pub sha256: String,
    /// The archive's file name.
    pub file_name: String,
}

/// Every row of the built-in table.
pub fn known_builds() -> Vec<KnownBuild> {
    TABLE
        .lines()
        .filter(|line| !line.starts_with('#') && !line.starts_with("version\t") && !line.is_empty())
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let (version, tag, triple, sha256) = (
                fields.next()?,
                fields.next()?,
                fields.next()?,
                fields.next()?,
            );
            let url = URL_TEMPLATE
                .replace("{tag}", tag)
                .replace("{version}", version)
                .replace("{triple}", triple);
            Some(KnownBuild {
                version: version.to_owned(),
                tag: tag.to_owned(),
                triple: triple.to_owned(),
                file_name: format!("cpython-{version}+{tag}-{triple}-install_only_stripped.tar.gz"),
                url,
                sha256: sha256.to_owned(),
            })
        })
        .collect()
}

/// The known archive for a target's exact Python version and triple.
pub fn known_build(python: &PythonVersion, triple: &str) -> Option<KnownBuild> {
    let version = python.to_string();
    known_builds()
        .into_iter()
        .find(|b| b.version == version && b.triple == triple)
}

/// The known archive for `target`.
pub fn known_build_for(target: &Target) -> Option<KnownBuild> {
    known_build(&target.python, target.platform.triple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_complete_and_well_formed() {
        let builds = known_builds();
        let rows = TABLE
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("version\t") && !l.is_empty())
            .count();
        assert_eq!(builds.len(), rows, "every row parses");
        for b in &builds {
            assert_eq!(b.sha256.len(), 64, "{b:?}");
            assert!(b.sha256.bytes().all(|c| c.is_ascii_hexdigit()));
            assert!(
                crate::python::target::Platform::from_triple(&b.triple).is_ok(),
                "{b:?}"
            );
            PythonVersion::parse(&b.version).unwrap();
        }
        let t = Target::new("x86_64-pc-windows-msvc", None, "3.12.7").unwrap();
        let b = known_build_for(&t).unwrap();
        assert_eq!(
            b.sha256,
            "480688c69be99f1fb9974c8a50f1efd214aaa3440ab5c8653a68d8a3d4ce1179"
        );
        assert!(b.url.ends_with("/20241008/cpython-3.12.7%2B20241008-x86_64-pc-windows-msvc-install_only_stripped.tar.gz"));
        let t = Target::new("x86_64-pc-windows-msvc", None, "3.12.1").unwrap();
        assert!(known_build_for(&t).is_none());
    }
}
