//! Member-name rules and the checks every archive's members pass together: no duplicate names,
//! nothing written through a symlink, links that stay inside the output, size limits.

use std::collections::BTreeMap;
use std::path::Path;

use super::{member_err, Limits, UnpackError};

/// Checks a member name and returns it without a trailing `/` (directories).
pub fn check_member_name(name: &str) -> Result<&str, String> {
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    if trimmed.is_empty() {
        return Err("empty name".into());
    }
    if trimmed.starts_with('/') {
        return Err("absolute path".into());
    }
    if trimmed.contains('\\') {
        return Err("backslash in name (ambiguous on Windows)".into());
    }
    if trimmed.contains('\0') {
        return Err("NUL in name".into());
    }
    let first = trimmed.split('/').next().unwrap_or_default();
    if first.len() >= 2 && first.as_bytes()[1] == b':' {
        return Err("drive letter in name".into());
    }
    for component in trimmed.split('/') {
        match component {
            "" => return Err("empty path component".into()),
            "." | ".." => return Err(format!("{component:?} component (path traversal)")),
            _ => {}
        }
    }
    Ok(trimmed)
}

/// What a member is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberKind {
    /// A directory.
    Dir,
    /// A regular file.
    File {
        /// Uncompressed size.
        size: u64,
        /// Owner-executable.
        executable: bool,
    },
    /// A symbolic link with this target.
    Symlink(String),
}

/// Tracks the members seen so far: duplicate names, writes through symlinks, limits.
#[derive(Default)]
pub(crate) struct MemberSet {
    kinds: BTreeMap<String, MemberKind>,
    total: u64,
}

impl MemberSet {
    /// Admits `name` of `kind`, or says why not.
    pub(crate) fn admit(
        &mut self,
        archive: &Path,
        name: &str,
        kind: MemberKind,
        limits: &Limits,
    ) -> Result<String, UnpackError> {
        let clean = check_member_name(name).map_err(|reason| member_err(archive, name, reason))?;
        if self.kinds.len() >= limits.max_members {
            return Err(member_err(
                archive,
                name,
                format!("more than {} members", limits.max_members),
            ));
        }
        // No member below a symlink: writing it would follow the link.
        let mut prefix = String::new();
        for component in clean.split('/') {
            if !prefix.is_empty() {
                if let Some(MemberKind::Symlink(_)) = self.kinds.get(&prefix) {
                    return Err(member_err(
                        archive,
                        name,
                        format!("it lies below the symlink {prefix:?}"),
                    ));
                }
                if let Some(MemberKind::File { .. }) = self.kinds.get(&prefix) {
                    return Err(member_err(archive, name, format!("{prefix:?} is a file")));
                }
                prefix.push('/');
            }
            prefix.push_str(component);
        }
        if let MemberKind::File { size, .. } = kind {
            if size > limits.max_member {
                return Err(UnpackError::TooLarge {
                    archive: archive.to_path_buf(),
                    member: name.to_owned(),
                    what: "one member",
                    limit: limits.max_member,
                });
            }
            self.total = self.total.saturating_add(size);
            if self.total > limits.max_total {
                return Err(UnpackError::TooLarge {
                    archive: archive.to_path_buf(),
                    member: name.to_owned(),
                    what: "the whole archive",
                    limit: limits.max_total,
                });
            }
        }
        if let MemberKind::Symlink(target) = &kind {
            if target.is_empty() || target.starts_with('/') || target.contains('\\') {
                return Err(member_err(
                    archive,
                    name,
                    format!("symlink to {target:?}: only relative links are allowed"),
                ));
            }
        }
        match self.kinds.get(clean) {
            // Tar archives may list a directory again; a repeated directory is harmless.
            Some(MemberKind::Dir) if kind == MemberKind::Dir => {}
            Some(_) => return Err(member_err(archive, name, "duplicate member name")),
            None => {
                self.kinds.insert(clean.to_owned(), kind);
            }
        }
        Ok(clean.to_owned())
    }

    /// Checks that every symlink, resolved through the others, stays inside the output.
    pub(crate) fn check_symlinks(&self, archive: &Path) -> Result<(), UnpackError> {
        for (name, kind) in &self.kinds {
            if let MemberKind::Symlink(target) = kind {
                let parent: Vec<&str> = match name.rsplit_once('/') {
                    Some((dir, _)) => dir.split('/').collect(),
                    None => Vec::new(),
                };
                self.resolve(parent, target, 0).map_err(|why| {
                    member_err(archive, name, format!("symlink to {target:?} {why}"))
                })?;
            }
        }
        Ok(())
    }

    /// Resolves `target` from the directory `base` (components from the root).
    fn resolve<'a>(
        &'a self,
        mut stack: Vec<&'a str>,
        target: &'a str,
        hops: usize,
    ) -> Result<Vec<&'a str>, &'static str> {
        if hops > 40 {
            return Err("does not resolve (a loop or more than 40 links)");
        }
        for component in target.split('/') {
            match component {
                "" | "." => {}
                ".." => {
                    stack.pop().ok_or("points outside the archive's tree")?;
                }
                _ => {
                    stack.push(component);
                    let path = stack.join("/");
                    if let Some(MemberKind::Symlink(next)) = self.kinds.get(&path) {
                        stack.pop();
                        stack = self.resolve(stack, next, hops + 1)?;
                    }
                }
            }
        }
        Ok(stack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names() {
        for ok in ["a", "a/b.py", "dir/", "a.dist-info/RECORD"] {
            assert!(check_member_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "C:/x",
            "a\\b",
            "a/./b",
        ] {
            assert!(check_member_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn symlink_resolution_through_links() {
        let archive = Path::new("t.tar");
        let limits = Limits::default();
        let mut set = MemberSet::default();
        set.admit(archive, "a", MemberKind::Dir, &limits).unwrap();
        set.admit(archive, "a/l", MemberKind::Symlink("..".into()), &limits)
            .unwrap();
        set.admit(archive, "b", MemberKind::Dir, &limits).unwrap();
        // Lexically inside (b/../a/l/.. = a/..= root), really the parent of the root.
        set.admit(
            archive,
            "b/m",
            MemberKind::Symlink("../a/l/..".into()),
            &limits,
        )
        .unwrap();
        let err = set.check_symlinks(archive).unwrap_err().to_string();
        assert!(err.contains("b/m") && err.contains("outside"), "{err}");

        let mut set = MemberSet::default();
        set.admit(
            archive,
            "bin/python3",
            MemberKind::Symlink("python3.12".into()),
            &limits,
        )
        .unwrap();
        set.admit(archive, "x", MemberKind::Symlink("y".into()), &limits)
            .unwrap();
        set.admit(archive, "y", MemberKind::Symlink("x".into()), &limits)
            .unwrap();
        let err = set.check_symlinks(archive).unwrap_err().to_string();
        assert!(err.contains("loop"), "{err}");

        let mut set = MemberSet::default();
        set.admit(archive, "l", MemberKind::Symlink("d".into()), &limits)
            .unwrap();
        let err = set
            .admit(
                archive,
                "l/f",
                MemberKind::File {
                    size: 1,
                    executable: false,
                },
                &limits,
            )
            .unwrap_err();
        assert!(err.to_string().contains("below the symlink"), "{err}");
    }
}
