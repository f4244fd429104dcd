//! Fixtures for the python-layer tests: wheels and archives built in code.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::Digest;

/// One member of a hand-built zip archive.
#[derive(Clone, Debug)]
pub(crate) struct ZipMember {
    pub name: String,
    pub data: Vec<u8>,
    /// Unix mode including the file type bits (0o100644, 0o100755, 0o120777 …); 0 for none.
    pub mode: u32,
    /// Deflate the data (else stored).
    pub deflate: bool,
    /// Lie about the uncompressed size (central and local headers).
    pub declared_size: Option<u32>,
    /// Write another name into the local header than into the central directory.
    pub local_name: Option<String>,
}

impl ZipMember {
    pub(crate) fn file(name: &str, data: &[u8]) -> ZipMember {
        ZipMember {
            name: name.to_owned(),
            data: data.to_vec(),
            mode: 0o100644,
            deflate: true,
            declared_size: None,
            local_name: None,
        }
    }
    pub(crate) fn executable(name: &str, data: &[u8]) -> ZipMember {
        ZipMember {
            mode: 0o100755,
            ..ZipMember::file(name, data)
        }
    }
}

/// Writes a zip archive byte by byte (so tests can make archives no zip library would: duplicate
/// names, lying sizes, disagreeing headers). Times are fixed at 1980-01-01.
pub(crate) fn write_zip(path: &Path, members: &[ZipMember]) {
    let mut out: Vec<u8> = Vec::new();
    let mut central: Vec<u8> = Vec::new();
    for m in members {
        let crc = crc32fast::hash(&m.data);
        let (method, compressed) = if m.deflate {
            let mut enc =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&m.data).unwrap();
            (8u16, enc.finish().unwrap())
        } else {
            (0u16, m.data.clone())
        };
        let size = m.declared_size.unwrap_or(m.data.len() as u32);
        let offset = out.len() as u32;
        let local_name = m.local_name.as_deref().unwrap_or(&m.name);
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&0x0800u16.to_le_bytes());
        out.extend_from_slice(&method.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&0x21u16.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(compressed.len() as u32).to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&(local_name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(local_name.as_bytes());
        out.extend_from_slice(&compressed);

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&((3u16 << 8) | 20).to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&0x0800u16.to_le_bytes());
        central.extend_from_slice(&method.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0x21u16.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&(compressed.len() as u32).to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&(m.name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 8]); // extra len, comment len, disk, internal attrs
        central.extend_from_slice(&(m.mode << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(m.name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    std::fs::write(path, out).unwrap();
}

/// RECORD's hash field of `data`.
pub(crate) fn record_hash(data: &[u8]) -> String {
    format!(
        "sha256={}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(data))
    )
}

/// Builds a wheel: add files, then `build` writes METADATA, WHEEL and a correct RECORD.
pub(crate) struct WheelBuilder {
    pub name: String,
    pub version: String,
    pub tag: String,
    pub root_is_purelib: bool,
    pub members: Vec<ZipMember>,
    /// Replace the RECORD hash of these members with a wrong one.
    pub corrupt_record_for: Vec<String>,
    /// More METADATA header lines (`Requires-Dist: idna>=2`), in order.
    pub metadata_lines: Vec<String>,
}

impl WheelBuilder {
    pub(crate) fn new(name: &str, version: &str, tag: &str) -> WheelBuilder {
        WheelBuilder {
            name: name.to_owned(),
            version: version.to_owned(),
            tag: tag.to_owned(),
            root_is_purelib: true,
            members: Vec::new(),
            corrupt_record_for: Vec::new(),
            metadata_lines: Vec::new(),
        }
    }

    /// Adds a METADATA header line, e.g. `Requires-Dist: idna>=2; extra == "idna"`.
    pub(crate) fn metadata(mut self, line: &str) -> Self {
        self.metadata_lines.push(line.to_owned());
        self
    }

    /// The METADATA file's text (what an index serves as the PEP 658 file).
    pub(crate) fn metadata_text(&self) -> String {
        let mut text = format!(
            "Metadata-Version: 2.1\nName: {}\nVersion: {}\n",
            self.name, self.version
        );
        for line in &self.metadata_lines {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    pub(crate) fn dist_info(&self) -> String {
        format!("{}-{}.dist-info", self.name, self.version)
    }

    pub(crate) fn data_dir(&self) -> String {
        format!("{}-{}.data", self.name, self.version)
    }

    pub(crate) fn file(mut self, name: &str, data: &[u8]) -> Self {
        self.members.push(ZipMember::file(name, data));
        self
    }

    pub(crate) fn executable(mut self, name: &str, data: &[u8]) -> Self {
        self.members.push(ZipMember::executable(name, data));
        self
    }

    pub(crate) fn member(mut self, member: ZipMember) -> Self {
        self.members.push(member);
        self
    }

    pub(crate) fn file_name(&self) -> String {
        format!("{}-{}-{}.whl", self.name, self.version, self.tag)
    }

    /// Writes the wheel into `dir` and returns its path.
    pub(crate) fn build(&self, dir: &Path) -> PathBuf {
        let info = self.dist_info();
        let mut members = self.members.clone();
        members.push(ZipMember::file(
            &format!("{info}/METADATA"),
            self.metadata_text().as_bytes(),
        ));
        members.push(ZipMember::file(
            &format!("{info}/WHEEL"),
            format!(
                "Wheel-Version: 1.0\nGenerator: pystore-tests\nRoot-Is-Purelib: {}\nTag: {}\n",
                self.root_is_purelib, self.tag
            )
            .as_bytes(),
        ));
        let mut record = String::new();
        for m in &members {
            let hash = if self.corrupt_record_for.contains(&m.name) {
                record_hash(b"something else")
            } else {
                record_hash(&m.data)
            };
            record.push_str(&format!("{},{},{}\n", m.name, hash, m.data.len()));
        }
        record.push_str(&format!("{info}/RECORD,,\n"));
        members.push(ZipMember::file(
            &format!("{info}/RECORD"),
            record.as_bytes(),
        ));
        let path = dir.join(self.file_name());
        write_zip(&path, &members);
        path
    }
}

/// A pure-Python wheel with `.data/scripts`, `.data/data`, `.data/purelib` and console and GUI
/// entry points.
pub(crate) fn demo_wheel() -> WheelBuilder {
    let b = WheelBuilder::new("demo_pkg", "1.0", "py3-none-any");
    let info = b.dist_info();
    let data = b.data_dir();
    b.file("demo_pkg/__init__.py", b"VERSION = '1.0'\n")
        .file(
            "demo_pkg/cli.py",
            b"import sys\n\ndef main():\n    print('demo main', sys.argv[1:])\n    return 0\n\ndef gui():\n    print('demo gui')\n",
        )
        .file("demo_pkg/data/table.csv", b"a,b\n1,2\n")
        .file(&format!("{data}/purelib/demo_extra.py"), b"EXTRA = True\n")
        .executable(
            &format!("{data}/scripts/demo-script"),
            b"#!python\nimport demo_pkg\nprint('script', demo_pkg.VERSION)\n",
        )
        .file(&format!("{data}/scripts/plain.sh"), b"#!/bin/sh\necho plain\n")
        .file(&format!("{data}/data/share/demo_pkg/readme.txt"), b"read me\n")
        .file(
            &format!("{info}/entry_points.txt"),
            b"[console_scripts]\ndemo-cli = demo_pkg.cli:main\n\n[gui_scripts]\ndemo-gui = demo_pkg.cli:gui\n",
        )
        .file(&format!("{info}/top_level.txt"), b"demo_pkg\ndemo_extra\n")
}

/// A platform wheel (Root-Is-Purelib: false) with an extension module for CPython 3.11 on
/// x86_64 glibc Linux.
pub(crate) fn native_wheel() -> WheelBuilder {
    let mut b = WheelBuilder::new("native_ext", "2.0", "cp311-cp311-manylinux_2_17_x86_64");
    b.root_is_purelib = false;
    let data = b.data_dir();
    // A real extension module (Debian's `_typing`, which needs no shared library), so the
    // bundle validation's ELF checks pass and `import native_ext` works in a bundle.
    let module = std::fs::read(format!(
        "{DEBIAN_STDLIB}/lib-dynload/_typing.cpython-311-x86_64-linux-gnu.so"
    ))
    .expect("Debian's python3.11 ships lib-dynload/_typing");
    b.file("native_ext/__init__.py", b"from . import _typing\n")
        .executable(
            "native_ext/_typing.cpython-311-x86_64-linux-gnu.so",
            &module,
        )
        .file(&format!("{data}/platlib/native_aux.py"), b"AUX = 1\n")
}

/// The machine's Debian CPython 3.11, which is relocatable: `/usr/bin/python3.11` and
/// `/usr/lib/python3.11`.
pub(crate) const DEBIAN_PYTHON: &str = "/usr/bin/python3.11";
pub(crate) const DEBIAN_STDLIB: &str = "/usr/lib/python3.11";

/// Directories of the Debian stdlib left out of fixtures to keep them small and fast.
const STDLIB_SKIP: &[&str] = &[
    "__pycache__",
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "lib2to3",
    "pydoc_data",
    "ensurepip",
    "EXTERNALLY-MANAGED",
    "sitecustomize.py",
    "dist-packages",
    "site-packages",
];

/// Adds a host directory tree to a tar under `prefix`, skipping `STDLIB_SKIP` (but for
/// `__pycache__` when `pycs`); in `config-*` directories only the Makefile is kept (the static
/// libraries are 25 MB).
fn add_tree<W: Write>(tar: &mut tar::Builder<W>, src: &Path, prefix: &str, pycs: bool) {
    let mut entries: Vec<_> = std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    let in_config = src
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("config-");
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let skipped = STDLIB_SKIP.contains(&name.as_str()) && !(pycs && name == "__pycache__");
        if skipped || (in_config && name != "Makefile") {
            continue;
        }
        let path = entry.path();
        let member = format!("{prefix}/{name}");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            tar_dir(tar, &member);
            add_tree(tar, &path, &member, pycs);
        } else if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            tar_symlink(tar, &member, target.to_str().unwrap());
        } else {
            use std::os::unix::fs::PermissionsExt;
            tar_file(
                tar,
                &member,
                &std::fs::read(&path).unwrap(),
                meta.permissions().mode() & 0o777,
            );
        }
    }
}

pub(crate) fn tar_dir<W: Write>(tar: &mut tar::Builder<W>, name: &str) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    tar.append_data(&mut h, name, std::io::empty()).unwrap();
}

pub(crate) fn tar_file<W: Write>(tar: &mut tar::Builder<W>, name: &str, data: &[u8], mode: u32) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    tar.append_data(&mut h, name, data).unwrap();
}

pub(crate) fn tar_symlink<W: Write>(tar: &mut tar::Builder<W>, name: &str, target: &str) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    tar.append_link(&mut h, name, target).unwrap();
}

/// Writes a raw tar member header (for names the tar crate refuses to write, like `../x`).
pub(crate) fn tar_raw<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    kind: tar::EntryType,
    data: &[u8],
    link: &str,
) {
    let mut h = tar::Header::new_old();
    {
        let bytes = h.as_old_mut();
        bytes.name[..name.len()].copy_from_slice(name.as_bytes());
        bytes.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_cksum();
    tar.append(&h, data).unwrap();
}

/// A gzip tar builder writing to `path`.
pub(crate) fn tar_gz(path: &Path) -> tar::Builder<flate2::write::GzEncoder<std::fs::File>> {
    let file = std::fs::File::create(path).unwrap();
    tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::fast(),
    ))
}

/// Finishes a gzip tar.
pub(crate) fn finish_tar_gz(tar: tar::Builder<flate2::write::GzEncoder<std::fs::File>>) {
    tar.into_inner().unwrap().finish().unwrap();
}

/// A python-build-standalone-style install_only archive of the machine's Debian Python 3.11:
/// `python/bin/python3.11`, `python/bin/python3` → `python3.11`, `python/lib/python3.11/…`.
pub(crate) fn debian_pbs_archive(dir: &Path) -> PathBuf {
    pbs_archive_with(dir, &[], false)
}

/// Debian's `site.py` ignores `lib/python3.X/site-packages` (Debian installs into
/// `dist-packages`), where upstream CPython and python-build-standalone look. This shim makes
/// the fixture interpreter behave like upstream; it is test-only and never part of pystore.
pub(crate) const UPSTREAM_SITE_SHIM: &[u8] = b"import os, site, sys\n\
site.addsitedir(os.path.join(sys.prefix, 'lib', 'python%d.%d' % sys.version_info[:2], 'site-packages'))\n";

/// Like [`debian_pbs_archive`], but whose python finds `lib/python3.11/site-packages` as an
/// upstream build does (see [`UPSTREAM_SITE_SHIM`]). Debian's own sitecustomize.py (an absolute
/// symlink into /etc) is skipped by `add_tree`, so this one takes its place.
pub(crate) fn upstream_like_pbs_archive(dir: &Path) -> PathBuf {
    upstream_like_pbs_archive_with(dir, false)
}

/// [`upstream_like_pbs_archive`], with the standard library's pycs that Debian compiled at
/// install (`__pycache__`, timestamp-based) when `pycs`, as python-build-standalone's archives
/// ship theirs: what a real archive costs to realise (the benchmarks use it).
pub(crate) fn upstream_like_pbs_archive_with(dir: &Path, pycs: bool) -> PathBuf {
    pbs_archive_with(
        dir,
        &[("python/lib/python3.11/sitecustomize.py", UPSTREAM_SITE_SHIM)],
        pycs,
    )
}

/// The Debian Python 3.11 archive, plus `extra` files, with the standard library's
/// `__pycache__` directories when `pycs`.
fn pbs_archive_with(dir: &Path, extra: &[(&str, &[u8])], pycs: bool) -> PathBuf {
    let path = dir.join("cpython-3.11.2-x86_64-unknown-linux-gnu-install_only.tar.gz");
    let mut tar = tar_gz(&path);
    tar_dir(&mut tar, "python");
    tar_dir(&mut tar, "python/bin");
    tar_file(
        &mut tar,
        "python/bin/python3.11",
        &std::fs::read(DEBIAN_PYTHON).unwrap(),
        0o755,
    );
    tar_symlink(&mut tar, "python/bin/python3", "python3.11");
    tar_dir(&mut tar, "python/lib");
    tar_dir(&mut tar, "python/lib/python3.11");
    add_tree(
        &mut tar,
        Path::new(DEBIAN_STDLIB),
        "python/lib/python3.11",
        pycs,
    );
    for (name, data) in extra {
        tar_file(&mut tar, name, data, 0o644);
    }
    finish_tar_gz(tar);
    path
}
