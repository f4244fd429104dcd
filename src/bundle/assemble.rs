//! Merging the interpreter and every installed wheel into one bundle tree.
//!
//! Layers are merged in order; directories merge, and a path two layers both provide must hold
//! the same bytes (and kind) in both, else the error names both layers. Files are hard-linked
//! from the input entries when the file system allows (entries share canonical modes and
//! mtimes, so a shared inode is the same file in both), and copied otherwise.
//!
//! For a Windows target the names are checked as they are merged: Windows cannot hold two
//! names that differ only in case (extraction overwrites one with the other), reserved device
//! names (`CON`, `aux.py`), the characters `< > : " / \ | ? *` or control characters, nor a
//! name ending in a dot or a space. Such a bundle is refused, naming the files and the layers
//! (packages, or the interpreter) that ship them.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

/// One tree to merge, with a label for messages (`lxml 6.1.3`, `CPython 3.12.7`).
#[derive(Clone, Debug)]
pub struct Layer {
    /// Who provides these files.
    pub label: String,
    /// The tree's root.
    pub root: PathBuf,
}

/// Why layers cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    /// Two layers disagree about a path.
    #[error("{path}: {first} and {second} both install it, with different {what}; the bundle cannot hold both (drop one of the packages, or pin versions that agree)")]
    Conflict {
        path: String,
        first: String,
        second: String,
        what: &'static str,
    },
    /// A file-system error. The error comes from `fs-err`, whose message names the operation
    /// and the path (both paths for a copy or a link).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A name that is not UTF-8.
    #[error("{}: file name is not UTF-8", path.display())]
    NonUtf8 { path: PathBuf },
    /// A name Windows cannot hold, in a bundle for Windows.
    #[error("{path} (from {layer}): {reason}, which Windows cannot hold; this bundle cannot be built for Windows (drop the package, or pin a version without that file)")]
    WindowsName {
        path: String,
        layer: String,
        reason: String,
    },
    /// Two names that differ only in case, in a bundle for Windows.
    #[error("{first} (from {first_layer}) and {second} (from {second_layer}) differ only in case: on Windows they are one file, so extraction would overwrite one with the other; this bundle cannot be built for Windows (drop one of the packages, or pin versions that agree)")]
    WindowsCaseCollision {
        first: String,
        first_layer: String,
        second: String,
        second_layer: String,
    },
}

/// The rules names in the bundle follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Names {
    /// Any name a POSIX file system holds.
    Posix,
    /// Names Windows can hold: see the module documentation.
    Windows,
}

/// Why Windows cannot hold a file named `name` (one path component); `None` when it can.
pub fn windows_name_problem(name: &str) -> Option<String> {
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Some(format!("its name has the control character {:?}", c));
    }
    if let Some(c) = name
        .chars()
        .find(|c| matches!(c, '<' | '>' | ':' | '"' | '/' | '\\' | '|' | '?' | '*'))
    {
        return Some(format!("its name has the character {c:?}"));
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Some("its name ends in a dot or a space".to_owned());
    }
    // A device name is reserved with any extension and in any case (`aux.py`, `Con`).
    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    let upper = stem.to_ascii_uppercase();
    let reserved = matches!(upper.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((upper.starts_with("COM") || upper.starts_with("LPT"))
            && upper.len() == 4
            && matches!(upper.as_bytes()[3], b'1'..=b'9'));
    if reserved {
        return Some(format!("{stem:?} is a reserved device name"));
    }
    None
}

/// Every path merged so far, by its case-folded form (Windows bundles only).
#[derive(Default)]
struct Folded {
    seen: HashMap<String, (String, usize)>,
}

impl Folded {
    /// Checks the new path `rel` from `layer` (its last component `name`) for Windows.
    fn admit(
        &mut self,
        rel: &str,
        name: &str,
        layer: usize,
        layers: &[Layer],
    ) -> Result<(), AssembleError> {
        if let Some(reason) = windows_name_problem(name) {
            return Err(AssembleError::WindowsName {
                path: rel.to_owned(),
                layer: layers[layer].label.clone(),
                reason,
            });
        }
        let key = rel.to_lowercase();
        match self.seen.get(&key) {
            Some((first, first_layer)) if first != rel => {
                Err(AssembleError::WindowsCaseCollision {
                    first: first.clone(),
                    first_layer: layers[*first_layer].label.clone(),
                    second: rel.to_owned(),
                    second_layer: layers[layer].label.clone(),
                })
            }
            Some(_) => Ok(()),
            None => {
                self.seen.insert(key, (rel.to_owned(), layer));
                Ok(())
            }
        }
    }
}

/// Merges `layers` into the new directory `out`, its names following `names`; returns which
/// layer provided each file path.
pub fn assemble(
    out: &Path,
    layers: &[Layer],
    names: Names,
) -> Result<BTreeMap<String, usize>, AssembleError> {
    fs_err::create_dir(out)?;
    let mut merger = Merger {
        layers,
        placed: HashMap::new(),
        links: Vec::new(),
        folded: (names == Names::Windows).then(Folded::default),
    };
    for (index, layer) in layers.iter().enumerate() {
        merger.merge_dir(&layer.root, out, "", index)?;
    }
    // Every directory exists now; the files are linked in parallel (tens of thousands of
    // links are most of a bundle's assembly).
    merger
        .links
        .par_iter()
        .try_for_each(|(source, target)| link_or_copy(source, target))?;
    Ok(merger
        .placed
        .into_iter()
        .filter_map(|(path, placed)| match placed {
            Placed::Dir => None,
            Placed::File { layer, .. } | Placed::Symlink { layer, .. } => Some((path, layer)),
        })
        .collect())
}

/// The state of one [`assemble`]: `out` is new, so what it holds is known without asking the
/// file system (a bundle has tens of thousands of files; two `stat`s each were a quarter of
/// its assembly).
struct Merger<'a> {
    layers: &'a [Layer],
    /// What is placed at each path of `out`, and by which layer.
    placed: HashMap<String, Placed>,
    /// The hard links (source, target) still to make, once every directory exists.
    links: Vec<(PathBuf, PathBuf)>,
    folded: Option<Folded>,
}

/// What a layer placed at a path.
enum Placed {
    Dir,
    File { layer: usize, source: PathBuf },
    Symlink { layer: usize, target: PathBuf },
}

impl Merger<'_> {
    fn merge_dir(
        &mut self,
        from: &Path,
        to: &Path,
        rel: &str,
        layer: usize,
    ) -> Result<(), AssembleError> {
        let mut children: Vec<(String, PathBuf, std::fs::FileType)> = Vec::new();
        for child in fs_err::read_dir(from)? {
            let child = child?;
            let name = child
                .file_name()
                .into_string()
                .map_err(|_| AssembleError::NonUtf8 { path: child.path() })?;
            // The type from the directory itself (no `stat` on Linux file systems).
            let file_type = child.file_type().map_err(|source| {
                io::Error::new(
                    source.kind(),
                    format!(
                        "failed to read the type of {}: {source}",
                        child.path().display()
                    ),
                )
            })?;
            children.push((name, child.path(), file_type));
        }
        children.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, source, file_type) in children {
            let rel_path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if let Some(folded) = self.folded.as_mut() {
                folded.admit(&rel_path, &name, layer, self.layers)?;
            }
            let target = to.join(&name);
            let conflict = |what, existing: &Placed| AssembleError::Conflict {
                path: rel_path.clone(),
                first: match existing {
                    Placed::File { layer, .. } | Placed::Symlink { layer, .. } => {
                        self.layers[*layer].label.clone()
                    }
                    Placed::Dir => "another layer".to_owned(),
                },
                second: self.layers[layer].label.clone(),
                what,
            };
            let existing = self.placed.get(&rel_path);
            if file_type.is_dir() {
                match existing {
                    Some(Placed::Dir) => {}
                    Some(other) => return Err(conflict("types", other)),
                    None => {
                        fs_err::create_dir(&target)?;
                        self.placed.insert(rel_path.clone(), Placed::Dir);
                    }
                }
                // Directories may be read-only in input entries; ours stay writable until sealed.
                self.merge_dir(&source, &target, &rel_path, layer)?;
            } else if file_type.is_symlink() {
                let link = fs_err::read_link(&source)?;
                match existing {
                    Some(Placed::Symlink { target, .. }) if *target == link => {}
                    Some(other @ Placed::Symlink { .. }) => {
                        return Err(conflict("symlink targets", other))
                    }
                    Some(other) => return Err(conflict("types", other)),
                    None => {
                        symlink(&link, &target)?;
                        self.placed.insert(
                            rel_path,
                            Placed::Symlink {
                                layer,
                                target: link,
                            },
                        );
                    }
                }
            } else {
                match existing {
                    Some(other @ Placed::File { source: first, .. }) => {
                        if !same_contents(first, &source)? {
                            return Err(conflict("contents", other));
                        }
                    }
                    Some(other) => return Err(conflict("types", other)),
                    None => {
                        self.links.push((source.clone(), target));
                        self.placed.insert(rel_path, Placed::File { layer, source });
                    }
                }
            }
        }
        Ok(())
    }
}

fn link_or_copy(source: &Path, target: &Path) -> io::Result<()> {
    // A link changes the file's change time: the digest this process knows of the input's file
    // is carried over, so the bundle's registration does not read tens of thousands of files
    // again to learn what their inputs' manifests already say.
    match crate::hash::hard_link_keeping_digest(source, target) {
        Ok(()) => Ok(()),
        Err(_) => fs_err::copy(source, target).map(|_| ()),
    }
}

fn same_contents(a: &Path, b: &Path) -> io::Result<bool> {
    let (ma, mb) = (fs_err::metadata(a)?, fs_err::metadata(b)?);
    if ma.len() != mb.len() {
        return Ok(false);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if ma.dev() == mb.dev() && ma.ino() == mb.ino() {
            return Ok(true);
        }
        if (ma.mode() & 0o100) != (mb.mode() & 0o100) {
            return Ok(false);
        }
    }
    Ok(fs_err::read(a)? == fs_err::read(b)?)
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    fs_err::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    fs_err::os::windows::fs::symlink_file(target, link)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn layer(dir: &Path, label: &str, files: &[(&str, &str)]) -> Layer {
        let root = dir.join(label.replace(' ', "_"));
        for (path, text) in files {
            let p = root.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        Layer {
            label: label.into(),
            root,
        }
    }

    #[test]
    fn merges_and_names_both_sides_of_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let python = layer(
            dir.path(),
            "CPython 3.12.7",
            &[("bin/python", "py"), ("lib/site-packages/README", "x")],
        );
        let a = layer(
            dir.path(),
            "alpha 1.0",
            &[
                ("lib/site-packages/alpha/__init__.py", "a"),
                ("lib/site-packages/shared.pth", "same"),
            ],
        );
        let b = layer(
            dir.path(),
            "beta 2.0",
            &[
                ("lib/site-packages/beta.py", "b"),
                ("lib/site-packages/shared.pth", "same"),
            ],
        );
        let out = dir.path().join("out");
        let owners = assemble(&out, &[python.clone(), a.clone(), b.clone()], Names::Posix).unwrap();
        assert_eq!(
            fs::read_to_string(out.join("lib/site-packages/beta.py")).unwrap(),
            "b"
        );
        assert_eq!(
            owners["lib/site-packages/shared.pth"], 1,
            "the first provider owns a shared identical file"
        );

        let c = layer(
            dir.path(),
            "gamma 3.0",
            &[("lib/site-packages/alpha/__init__.py", "different")],
        );
        let err = assemble(&dir.path().join("out2"), &[python, a, c], Names::Posix)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("lib/site-packages/alpha/__init__.py: alpha 1.0 and gamma 3.0 both install it, with different contents"), "{err}");
    }

    #[test]
    fn windows_bundles_refuse_case_collisions_across_layers() {
        let dir = tempfile::tempdir().unwrap();
        let python = layer(dir.path(), "CPython 3.12.7", &[("Lib/os.py", "os")]);
        let cases: [(&str, &str, &str); 4] = [
            (
                "Lib/site-packages/A.py",
                "Lib/site-packages/a.py",
                "Lib/site-packages/a.py",
            ),
            (
                "Lib/site-packages/Sub/x.py",
                "Lib/site-packages/sub/y.py",
                "Lib/site-packages/sub",
            ),
            ("Scripts/Tool.exe", "Scripts/tool.exe", "Scripts/tool.exe"),
            // Against the interpreter's own files too.
            ("Lib/site-packages/x.py", "lib/OS.py", "lib"),
        ];
        for (i, (one, two, second)) in cases.into_iter().enumerate() {
            let a = layer(
                &dir.path().join(format!("a{i}")),
                "alpha 1.0",
                &[(one, "1")],
            );
            let b = layer(&dir.path().join(format!("b{i}")), "beta 2.0", &[(two, "2")]);
            let layers = [python.clone(), a, b];
            let out = dir.path().join(format!("posix{i}"));
            assemble(&out, &layers, Names::Posix).unwrap();
            let out = dir.path().join(format!("windows{i}"));
            let err = assemble(&out, &layers, Names::Windows)
                .unwrap_err()
                .to_string();
            assert!(err.contains("(from beta 2.0)"), "{err}");
            assert!(err.contains(&format!("{second} (from")), "{err}");
            assert!(err.contains("differ only in case"), "{err}");
        }
        let err = assemble(
            &dir.path().join("w"),
            &[
                python,
                layer(&dir.path().join("c"), "gamma 3.0", &[("lib/os.py", "x")]),
            ],
            Names::Windows,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(
                "Lib (from CPython 3.12.7) and lib (from gamma 3.0) differ only in case"
            ),
            "{err}"
        );
    }

    #[test]
    fn windows_names_are_checked() {
        for bad in [
            "CON",
            "con.exe",
            "aux.py",
            "Nul.txt",
            "com1",
            "LPT9.dll",
            "a:b",
            "a*b",
            "a?b",
            "a\"b",
            "a<b",
            "a>b",
            "a|b",
            "a\\b",
            "tab\there",
            "dot.",
            "space ",
        ] {
            assert!(windows_name_problem(bad).is_some(), "{bad:?} passes");
        }
        for good in [
            "console.py",
            "com10",
            "COM0",
            "auxiliary.py",
            "con_",
            "a.b.c",
            "LPT",
        ] {
            assert_eq!(windows_name_problem(good), None, "{good:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let python = layer(dir.path(), "CPython 3.12.7", &[("python.exe", "py")]);
        let evil = layer(
            &dir.path().join("e"),
            "evil 1.0",
            &[("Lib/site-packages/aux.py", "x")],
        );
        let err = assemble(&dir.path().join("out"), &[python, evil], Names::Windows)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "Lib/site-packages/aux.py (from evil 1.0): \"aux\" is a reserved device name"
            ),
            "{err}"
        );
    }
}
