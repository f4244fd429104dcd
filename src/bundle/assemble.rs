//! Merging the interpreter and every installed wheel into one bundle tree.
//!
//! Layers are merged in order; directories merge, and a path two layers both provide must hold
//! the same bytes (and kind) in both, else the error names both layers. Files are hard-linked
//! from the input entries when the file system allows (entries share canonical modes and
//! mtimes, so a shared inode is the same file in both), and copied otherwise.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

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
    /// A file-system error.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// A name that is not UTF-8.
    #[error("{}: file name is not UTF-8", path.display())]
    NonUtf8 { path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> AssembleError + '_ {
    move |source| AssembleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Merges `layers` into the new directory `out`; returns which layer provided each file path.
pub fn assemble(out: &Path, layers: &[Layer]) -> Result<BTreeMap<String, usize>, AssembleError> {
    fs::create_dir(out).map_err(io_err(out))?;
    let mut owners: BTreeMap<String, usize> = BTreeMap::new();
    for (index, layer) in layers.iter().enumerate() {
        merge_dir(&layer.root, out, "", index, layers, &mut owners)?;
    }
    Ok(owners)
}

fn merge_dir(
    from: &Path,
    to: &Path,
    rel: &str,
    layer: usize,
    layers: &[Layer],
    owners: &mut BTreeMap<String, usize>,
) -> Result<(), AssembleError> {
    let mut children: Vec<(String, PathBuf)> = Vec::new();
    for child in fs::read_dir(from).map_err(io_err(from))? {
        let child = child.map_err(io_err(from))?;
        let name = child
            .file_name()
            .into_string()
            .map_err(|_| AssembleError::NonUtf8 { path: child.path() })?;
        children.push((name, child.path()));
    }
    children.sort();
    for (name, source) in children {
        let rel_path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let target = to.join(&name);
        let meta = fs::symlink_metadata(&source).map_err(io_err(&source))?;
        let existing = fs::symlink_metadata(&target).ok();
        let conflict = |what| AssembleError::Conflict {
            path: rel_path.clone(),
            first: owners
                .get(&rel_path)
                .map_or_else(|| "another layer".to_owned(), |&i| layers[i].label.clone()),
            second: layers[layer].label.clone(),
            what,
        };
        if meta.is_dir() {
            match existing {
                Some(e) if e.is_dir() => {}
                Some(_) => return Err(conflict("types")),
                None => fs::create_dir(&target).map_err(io_err(&target))?,
            }
            // Directories may be read-only in input entries; ours stay writable until sealed.
            merge_dir(&source, &target, &rel_path, layer, layers, owners)?;
        } else if meta.file_type().is_symlink() {
            let link = fs::read_link(&source).map_err(io_err(&source))?;
            match existing {
                Some(e) if e.file_type().is_symlink() => {
                    if fs::read_link(&target).map_err(io_err(&target))? != link {
                        return Err(conflict("symlink targets"));
                    }
                }
                Some(_) => return Err(conflict("types")),
                None => {
                    symlink(&link, &target).map_err(io_err(&target))?;
                    owners.insert(rel_path, layer);
                }
            }
        } else {
            match existing {
                Some(e) if e.is_file() => {
                    if !same_contents(&source, &target).map_err(io_err(&target))? {
                        return Err(conflict("contents"));
                    }
                }
                Some(_) => return Err(conflict("types")),
                None => {
                    link_or_copy(&source, &target).map_err(io_err(&target))?;
                    owners.insert(rel_path, layer);
                }
            }
        }
    }
    Ok(())
}

fn link_or_copy(source: &Path, target: &Path) -> io::Result<()> {
    match fs::hard_link(source, target) {
        Ok(()) => Ok(()),
        Err(_) => fs::copy(source, target).map(|_| ()),
    }
}

fn same_contents(a: &Path, b: &Path) -> io::Result<bool> {
    let (ma, mb) = (fs::metadata(a)?, fs::metadata(b)?);
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
    Ok(fs::read(a)? == fs::read(b)?)
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::windows::fs::symlink_file(target, link)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let owners = assemble(&out, &[python.clone(), a.clone(), b.clone()]).unwrap();
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
        let err = assemble(&dir.path().join("out2"), &[python, a, c])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("lib/site-packages/alpha/__init__.py: alpha 1.0 and gamma 3.0 both install it, with different contents"), "{err}");
    }
}
