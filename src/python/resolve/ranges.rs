//! PEP 440 version specifiers as pubgrub version sets, and the two facts about specifiers that
//! change which files a resolver may use (pre-releases named, exact pins).
//!
//! The conversion itself is pep440_rs's (`From<VersionSpecifiers> for Ranges<Version>`, the same
//! `version-ranges` type pubgrub uses), which follows PEP 440's special cases: `<V` excludes V's
//! pre-releases unless V is one, `>V` excludes V's post-releases unless V is one. The tests here
//! pin that behaviour, since a dependency bump that changed it would change locks.

use pep440_rs::{Operator, Version, VersionSpecifiers};
use pubgrub::Ranges;

/// The versions `specifiers` allow (all of them when empty).
pub fn specifiers_to_ranges(specifiers: &VersionSpecifiers) -> Ranges<Version> {
    Ranges::from(specifiers.clone())
}

/// Whether any specifier names a pre-release (which allows pre-releases for that package).
pub fn names_prerelease(specifiers: &VersionSpecifiers) -> bool {
    specifiers.iter().any(|s| s.version().any_prerelease())
}

/// The version pinned exactly (`==V`, `===V`), if any: PEP 592 lets such a pin use a yanked file.
pub fn exact_pin(specifiers: &VersionSpecifiers) -> Option<Version> {
    specifiers
        .iter()
        .find(|s| matches!(s.operator(), Operator::Equal | Operator::ExactEqual))
        .map(|s| s.version().clone())
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn allows(spec: &str, version: &str) -> bool {
        specifiers_to_ranges(&VersionSpecifiers::from_str(spec).unwrap())
            .contains(&Version::from_str(version).unwrap())
    }

    #[test]
    fn operators_follow_pep_440() {
        let cases = [
            ("==1.2", "1.2", true),
            ("==1.2", "1.2.1", false),
            ("!=1.2", "1.2", false),
            ("!=1.2", "1.3", true),
            (">=1.2,<2", "1.9.9", true),
            (">=1.2,<2", "2.0", false),
            ("<2", "2.0rc1", false),
            ("<2rc2", "2.0rc1", true),
            ("<=2", "2", true),
            (">1.2", "1.2.post1", false),
            (">1.2", "1.2.1", true),
            (">1.2.post1", "1.2.post2", true),
            ("~=1.4.5", "1.4.9", true),
            ("~=1.4.5", "1.5", false),
            ("~=1.4.5", "1.4.4", false),
            ("~=1.4", "1.9", true),
            ("~=1.4", "2.0", false),
            ("==1.4.*", "1.4.0rc1", true),
            ("==1.4.*", "1.4.99.post3", true),
            ("==1.4.*", "1.5.dev0", false),
            ("!=1.4.*", "1.5", true),
            ("!=1.4.*", "1.4.2", false),
            ("===1.0", "1.0", true),
        ];
        for (spec, version, expected) in cases {
            assert_eq!(allows(spec, version), expected, "{spec} vs {version}");
        }
    }

    #[test]
    fn prereleases_and_pins() {
        let spec = VersionSpecifiers::from_str(">=2.0b1").unwrap();
        assert!(names_prerelease(&spec));
        assert!(!names_prerelease(
            &VersionSpecifiers::from_str(">=2").unwrap()
        ));
        let pin = VersionSpecifiers::from_str("==1.3").unwrap();
        assert_eq!(exact_pin(&pin).unwrap().to_string(), "1.3");
        assert!(exact_pin(&VersionSpecifiers::from_str("==1.*").unwrap()).is_none());
    }
}
