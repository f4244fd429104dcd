//! The command line's grammar: the clap definitions of every command, subcommand, argument
//! and its help text, and the value parsers they use.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::build::sandbox::Mode;

fn parse_sandbox(text: &str) -> Result<Mode, String> {
    text.parse()
}

/// `TARGET=FILE`, as `--from-requirements` takes it.
fn parse_target_file(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((target, file)) if !target.is_empty() && !file.is_empty() => {
            Ok((target.to_owned(), PathBuf::from(file)))
        }
        _ => Err(format!(
            "{text:?} is not TARGET=FILE (a target name of the recipe, then a hashed requirements file)"
        )),
    }
}

const ABOUT: &str =
    "Build clean, reproducible Python bundles as immutable, content-addressed store entries";

const LONG_ABOUT: &str = "\
pystore builds Python bundles (a CPython interpreter plus pinned wheels) the way Nix builds
software: every input is pinned by hash, every step is hermetic, and every output is an immutable
entry in a content-addressed store, so the same inputs give bit-identical bundles on any machine.

The store lives in --store DIR, else $PYSTORE_STORE, else $XDG_DATA_HOME/pystore
(~/.local/share/pystore). Entries are at <store>/entries/<id>-<name>.";

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(name = "pystore", version, about = ABOUT, long_about = LONG_ABOUT, propagate_version = true)]
pub struct Cli {
    /// Store root directory [default: $XDG_DATA_HOME/pystore]
    #[arg(long, global = true, env = "PYSTORE_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Print one JSON document on stdout instead of text (no progress bars)
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only results and errors: no progress, no notices
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Parallel jobs: builds, hashing and verifying [default: number of cores]; downloads at
    /// once [default: 8]
    #[arg(short = 'j', long = "jobs", global = true, value_name = "N")]
    pub jobs: Option<usize>,
    /// Touch no network: use only the store, file:// mirrors and local wheelhouses
    #[arg(long, global = true)]
    pub offline: bool,
    /// Package index (simple API) [default: $PYSTORE_INDEX_URL, $PIP_INDEX_URL, pip.conf]
    #[arg(long, global = true, value_name = "URL")]
    pub index_url: Option<String>,
    /// Another index to consult after the primary one (repeatable; also $PIP_EXTRA_INDEX_URL)
    #[arg(long, global = true, value_name = "URL")]
    pub extra_index_url: Vec<String>,
    /// A local wheelhouse: a directory of files by name (repeatable; also $PYSTORE_FIND_LINKS)
    #[arg(long, global = true, value_name = "DIR")]
    pub find_links: Vec<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
/// How entries from remotes are trusted (realise's substituters, pull, challenge).
#[derive(clap::Args, Debug)]
pub struct TrustArgs {
    /// Public keys (NAME:BASE64, space-separated) that entries from remotes must be signed by
    #[arg(
        long,
        env = "PYSTORE_TRUSTED_KEYS",
        value_name = "KEYS",
        hide_env_values = true
    )]
    pub(super) trusted_keys: Option<String>,
    /// Accept unsigned or untrusted entries from remotes (their hashes are still checked)
    #[arg(long)]
    pub(super) no_require_sigs: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a recipe's bundles: one ZIP per target, bit-identical on any machine
    ///
    /// RECIPE is a name (./recipes/NAME/recipe.toml), a recipe directory or a recipe.toml. The
    /// lock (pystore.lock beside the recipe) pins every wheel; realise builds from it only, and
    /// refuses a lock that no longer matches the requirements. Everything is planned first;
    /// only what is missing is fetched (from the store, mirrors, wheelhouses, then the index)
    /// and built, so realising an unchanged recipe again does nothing. Prints each target's ZIP,
    /// bundle, provenance (SLSA v1, signed with --sign-key) and SBOM (CycloneDX 1.5) paths and
    /// keeps them with gc roots <recipe>-<target>[.provenance|.sbom]. ZIP times come from
    /// SOURCE_DATE_EPOCH (default 1980-01-01).
    Realise {
        /// Recipe name, directory or recipe.toml
        recipe: String,
        /// Realise only this target (repeatable) [default: all]
        #[arg(long = "target", value_name = "NAME")]
        targets: Vec<String>,
        /// Print the plan (what is valid, what would be fetched or built) and stop
        #[arg(long)]
        dry_run: bool,
        /// Also copy each ZIP into DIR as <recipe>-<version>-<target>.zip, with its provenance
        /// and SBOM beside it (<zip>.provenance.json or, signed, <zip>.intoto.jsonl; <zip>.cdx.json)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Sign each ZIP's provenance (a DSSE envelope) with this secret key file, made by
        /// `pystore key generate`
        #[arg(long, env = "PYSTORE_SIGNING_KEY", value_name = "FILE")]
        sign_key: Option<PathBuf>,
        /// How the validation imports are isolated: auto (namespaces when the machine allows
        /// them, else a cleared environment; the level is recorded in provenance), require
        /// (refuse without full isolation), off
        #[arg(long, value_name = "MODE", default_value = "auto", value_parser = parse_sandbox)]
        sandbox: Mode,
        /// Remotes to download built entries from instead of building them (space-separated:
        /// file:///DIR, https://..., github:OWNER/REPO@TAG)
        #[arg(long, env = "PYSTORE_SUBSTITUTERS", value_name = "REMOTES")]
        substituters: Option<String>,
        #[command(flatten)]
        trust: TrustArgs,
        /// After realising, rebuild every derived entry of the closure in a fresh temporary
        /// directory from its registered inputs and compare content hashes; on a difference
        /// keep the rebuild (never registered), print the first differing files, exit 1
        #[arg(long, conflicts_with = "dry_run")]
        check: bool,
        /// With --check: rebuild each entry N times (implies --check)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000), conflicts_with = "dry_run")]
        rounds: Option<u32>,
        /// Report when each entry was fetched, unpacked, installed, compiled, validated, bundled
        /// and zipped, and which were valid already: FILE.json and FILE.html (a timeline), by
        /// default <store>/tmp/timings-<seconds>.{json,html}
        #[arg(long, value_name = "FILE", num_args = 0..=1, require_equals = true, conflicts_with = "dry_run")]
        timings: Option<Option<PathBuf>>,
    },
    /// Run a target's bundle python in the sandbox, realising the bundle first if needed
    ///
    /// ARGS go to python (after -B: nothing writes byte code into the store); stdin, stdout and
    /// stderr pass through and python's exit code is pystore's. Inside the full sandbox the
    /// bundle is read-only at /inputs/bundle, /build is the writable working directory, and
    /// there is no network, no home and nothing else of the host.
    Run {
        /// Recipe name, directory or recipe.toml
        recipe: String,
        /// The target to run [default: the recipe's only target]
        #[arg(long = "target", value_name = "NAME")]
        target: Option<String>,
        /// auto, require or off (see `realise --sandbox`)
        #[arg(long, value_name = "MODE", default_value = "auto", value_parser = parse_sandbox)]
        sandbox: Mode,
        /// Arguments for python, after `--`
        #[arg(last = true, value_name = "ARGS")]
        args: Vec<std::ffi::OsString>,
    },
    /// Upload a recipe's bundles (or store entries) with their closures to a remote
    ///
    /// With a RECIPE, realises it first, then uploads each target's ZIP, provenance and SBOM as
    /// files, and the closure of all three as entries: each entry the remote lacks as
    /// <id>.tar.zst plus its signed description <id>.entry.json, then the signed closure index
    /// pystore-index.json. With store PATHs, uploads their closures. Anything already there
    /// (same name, size and digest) is skipped, so pushing again uploads nothing. REMOTE is
    /// file:///DIR or github:OWNER/REPO@TAG (token from GITHUB_TOKEN or GH_TOKEN; API base URL
    /// from PYSTORE_GITHUB_API).
    Push {
        /// A recipe (name, directory or recipe.toml), or store paths
        #[arg(required = true, value_name = "RECIPE|PATH")]
        what: Vec<String>,
        /// The remote
        #[arg(long, value_name = "REMOTE")]
        to: String,
        /// Push only this target of the recipe (repeatable) [default: all]
        #[arg(long = "target", value_name = "NAME")]
        targets: Vec<String>,
        /// Sign entry descriptions, the index and provenance with this secret key file
        #[arg(long, env = "PYSTORE_SIGNING_KEY", value_name = "FILE")]
        sign_key: Option<PathBuf>,
    },
    /// Compare a recipe built here with what a remote publishes, entry by entry
    ///
    /// Realises RECIPE here (never substituting, so every derived entry is this machine's own
    /// build), then fetches the remote's signed description of each derived entry of the
    /// closure of every target's ZIP, provenance and SBOM, and compares content hashes. Where
    /// they differ, the published archive is downloaded and the first differing files are
    /// named (path, type, size, blake3). Exit 1 if any published entry differs; entries the
    /// remote does not publish are listed, not failures (an unsigned provenance here is another
    /// entry than a signed one there: pass --sign-key to compare it too).
    Challenge {
        /// file:///DIR, https://... or github:OWNER/REPO@TAG
        remote: String,
        /// Recipe name, directory or recipe.toml
        recipe: String,
        /// Only this target (repeatable) [default: all]
        #[arg(long = "target", value_name = "NAME")]
        targets: Vec<String>,
        /// Sign this build's provenance with this secret key file, as the publisher did
        #[arg(long, value_name = "FILE")]
        sign_key: Option<PathBuf>,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Download entries and their closures from a remote, verified, into the store
    ///
    /// Without PATH, pulls every root in the remote's index (and keeps each with a gc root of
    /// its name). Each entry's description must be signed by a key in PYSTORE_TRUSTED_KEYS, its
    /// id must follow from its fingerprint, its archive must have the described sha256 and its
    /// tree the described content hash; otherwise nothing is registered.
    Pull {
        /// file:///DIR, https://... or github:OWNER/REPO@TAG
        remote: String,
        /// Entries to pull: ids, <id>-<name> or store paths [default: the index's roots]
        #[arg(value_name = "PATH")]
        paths: Vec<String>,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Resolve a recipe's requirements for each target and write its lock (pystore.lock)
    ///
    /// Each target is resolved for its own platform, wheel tags and Python version, never the
    /// host's: markers, Requires-Python, yanked files and wheel availability are all judged for
    /// the target. Versions already in the lock are kept while they still fit, unless --upgrade
    /// (everything) or --upgrade-package NAME (just NAME). Locking unchanged inputs against an
    /// unchanged index gives a byte-identical file. Each target's interpreter archive is chosen
    /// from the catalogue (`pystore python list`) and pinned too; `python = "3.13"` takes the
    /// newest 3.13 release every target has.
    Lock {
        /// Recipe name, directory or recipe.toml
        recipe: String,
        /// Resolve only this target again (repeatable) [default: all]; others keep their pins
        #[arg(long = "target", value_name = "NAME")]
        targets: Vec<String>,
        /// Ignore the versions in the existing lock: take the newest that fit
        #[arg(long)]
        upgrade: bool,
        /// Ignore the existing lock's version of NAME only (repeatable); `python` chooses the
        /// interpreter release again (the newest the catalogue has for the recipe's `python`)
        #[arg(long = "upgrade-package", value_name = "NAME")]
        upgrade_packages: Vec<crate::python::PackageName>,
        /// Also write each target's pins to DIR/requirements-<target>.txt, hashed (pip
        /// --require-hashes format), for tools that read requirements files
        #[arg(long, value_name = "DIR")]
        export_requirements: Option<PathBuf>,
        /// Also write the lock as FILE in PEP 751 format (pylock.toml), with every wheel's
        /// URL, for installers that read it; it reads back into the same lock
        #[arg(long, value_name = "FILE", conflicts_with = "from_pylock")]
        export_pylock: Option<PathBuf>,
        /// Resolve nothing: take the pins from FILE, a pylock.toml (PEP 751) written by
        /// pystore or another tool, after checking they meet the requirements of every
        /// target (needs no network)
        #[arg(long, value_name = "FILE", conflicts_with_all = ["upgrade", "upgrade_packages", "targets"])]
        from_pylock: Option<PathBuf>,
        /// Consult no index: resolve from the wheelhouses (--find-links DIR, $PYSTORE_FIND_LINKS)
        /// alone, reading metadata from their wheels, as pip's --no-index --find-links does
        /// (for machines without network); works with --offline
        #[arg(long, conflicts_with = "from_pylock")]
        no_index: bool,
        /// Resolve nothing for TARGET: take its pins from FILE, a hashed requirements file
        /// (pip-compile --generate-hashes, uv pip compile --generate-hashes, --export-requirements)
        /// whose every line is name==version with --hash=sha256: values (repeatable). Each
        /// wheel is found by hash in the wheelhouses, else on the index; the pins are checked
        /// against the recipe's requirements. Targets not named keep their pins (when the lock
        /// was made from the current requirements; otherwise name every target)
        #[arg(long = "from-requirements", value_name = "TARGET=FILE", value_parser = parse_target_file,
              conflicts_with_all = ["from_pylock", "upgrade", "upgrade_packages", "targets"])]
        from_requirements: Vec<(String, PathBuf)>,
    },
    /// Add local files or directories to the store; prints each store path
    ///
    /// A regular file becomes a fixed-output entry identified by its sha256 and name (the same
    /// entry a download of the same bytes gives); a directory becomes an entry identified by its
    /// content hash and name. Adding the same content again is a no-op that prints the same path.
    /// Refused: devices, fifos, sockets, absolute symlinks, symlinks leading outside the tree,
    /// names that are not UTF-8.
    Add {
        /// Files or directories to add
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Entry name [default: the path's file name]
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
    /// Show store entries: path, and with --json id, kind, hashes, size, references
    ///
    /// PATH is a store path (or any path inside an entry, or a gc root), an id, or <id>-<name>.
    PathInfo {
        /// Entries to show
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<String>,
        /// Show the closure: the entries and everything they refer to, transitively
        #[arg(long)]
        closure: bool,
        /// Show each entry's size in bytes (with --json also its closure size)
        #[arg(long, short = 's')]
        size: bool,
    },
    /// Re-hash entries against their recorded manifests; exit 1 naming each damaged file
    ///
    /// Without PATH, verifies every entry. Checks each file's type, size, blake3 digest,
    /// executable bit and read-only mode, each symlink's target, and that nothing was added or
    /// removed.
    ///
    /// A bundle ZIP outside the store (FILE.zip) is checked against the manifest it embeds: every
    /// file's size, blake3, executable bit and link target, and nothing else in the ZIP. With
    /// --provenance, the provenance must name the ZIP's sha256 as its subject, and with
    /// PYSTORE_TRUSTED_KEYS set it must be signed by one of those keys.
    ///
    /// With --repair, damaged entries (a missing directory included) and every entry built from
    /// them are invalidated (removed), so that the next realise rebuilds or refetches them; the
    /// exit code is then 0 once that is done.
    Verify {
        /// Entries to verify [default: all], or bundle ZIP files
        #[arg(value_name = "PATH")]
        paths: Vec<String>,
        /// Invalidate damaged entries and what was built from them (waits for other processes)
        #[arg(long, conflicts_with = "provenance")]
        repair: bool,
        /// The ZIP's provenance (<zip>.provenance.json or <zip>.intoto.jsonl); one ZIP only
        #[arg(long, value_name = "FILE")]
        provenance: Option<PathBuf>,
        /// Public keys (NAME:BASE64, space-separated) a provenance signature must be from
        #[arg(
            long,
            env = "PYSTORE_TRUSTED_KEYS",
            value_name = "KEYS",
            hide_env_values = true
        )]
        trusted_keys: Option<String>,
    },
    /// Download files into the store as fixed-output entries; prints "<sha256> <store path>"
    ///
    /// With --sha256 (or a URL ending in #sha256=HEX) the bytes must have that hash, and a file
    /// already in the store is not downloaded again; mirrors ($PYSTORE_MIRRORS) and wheelhouses
    /// (--find-links) are tried before the URL. Without a hash the file is downloaded and
    /// registered under the hash it has, like nix-prefetch-url. Several URLs are fetched in
    /// parallel (-j, default 8).
    Prefetch {
        /// http(s):// or file:// URLs, or absolute paths; each may end in #sha256=HEX
        #[arg(required = true, value_name = "URL")]
        urls: Vec<String>,
        /// Expected sha256 (hex) of the one URL
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
        /// Entry name [default: the URL's last path segment]
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
    /// List the files a package index offers for PROJECT (to check index configuration)
    ///
    /// Shows each file's sha256, Requires-Python, whether core metadata (PEP 658) is offered and
    /// whether it is yanked; --json for everything.
    Index {
        /// Project name (any spelling; normalised as PEP 503 says)
        project: String,
    },
    /// Manage gc roots: the entries (and their closures) that gc keeps
    #[command(subcommand)]
    Root(RootCommand),
    /// Delete every entry not reachable from a gc root; prints what it frees
    ///
    /// Waits until no other pystore process has the store open.
    Gc {
        /// Only print what would be deleted
        #[arg(long)]
        dry_run: bool,
    },
    /// Show what changed between two bundles: packages, versions, sizes, files
    ///
    /// A and B are bundle store paths, bundle ZIPs (in the store or anywhere) or
    /// pystore-manifest.json files. One line per change, as `nix store diff-closures` prints:
    /// `lxml: 6.1.2 → 6.1.3, +12.4 KiB` (∅ for a package only one side has). Exit 0 when the
    /// bundles are the same, 1 when they differ.
    Diff {
        /// The old bundle
        a: PathBuf,
        /// The new bundle
        b: PathBuf,
        /// Also list every added (+), removed (-) and changed (~) file with size and blake3
        #[arg(long)]
        files: bool,
    },
    /// Manage signing keys for provenance
    #[command(subcommand)]
    Key(KeyCommand),
    /// The CPython builds pystore knows (python-build-standalone): list them, fetch newer ones
    ///
    /// A recipe's `python = "3.13"` locks to the newest 3.13 release with a build for every
    /// target, and the lock pins that archive (URL, size, sha256) per target.
    #[command(subcommand)]
    Python(PythonCommand),
}

/// `pystore python ...`
#[derive(Debug, Subcommand)]
pub enum PythonCommand {
    /// List known builds, newest first: version, release tag, triple, flavour, size, sha256
    /// and origin (built-in, or fetched by `pystore python update`)
    ///
    /// Without --all, only the newest patch release of each minor version.
    List {
        /// Every known release, not just the newest of each minor version
        #[arg(long)]
        all: bool,
        /// Only builds for RECIPE's targets, naming the targets each serves
        #[arg(long, value_name = "RECIPE")]
        recipe: Option<String>,
    },
    /// Fetch python-build-standalone's newest releases and their SHA256SUMS into the store's
    /// catalogue (a store entry, gc root `python-catalogue`)
    ///
    /// Goes through the GitHub API (PYSTORE_GITHUB_API, GITHUB_TOKEN or GH_TOKEN optional).
    /// Only archives named in their release's SHA256SUMS are taken; rows fetched before are
    /// kept. `lock` and `python list` read the built-in table and this catalogue.
    Update {
        /// The repository to read [default: astral-sh/python-build-standalone]
        #[arg(long, value_name = "OWNER/REPO")]
        repository: Option<String>,
        /// How many of the newest releases to read
        #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=100))]
        releases: u16,
    },
}

/// `pystore key ...`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make an ed25519 key pair: NAME.secret (mode 0600) and NAME.public
    ///
    /// Prints the public key as its last line, NAME:BASE64, ready for PYSTORE_TRUSTED_KEYS. The
    /// secret key is only ever written to its file; sign with --sign-key FILE or
    /// PYSTORE_SIGNING_KEY=FILE.
    Generate {
        /// Key name (letters, digits, '.', '_', '-'), e.g. ci-2026
        name: String,
        /// Directory to write the key files into
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
    },
}

/// `pystore root ...`
#[derive(Debug, Subcommand)]
pub enum RootCommand {
    /// Make PATH a gc root called NAME (replacing a root of that name)
    Add {
        /// Root name
        name: String,
        /// Store path, id or <id>-<name> of the entry to keep
        path: String,
    },
    /// List gc roots
    List,
    /// Remove the gc root NAME (the entry stays until the next gc)
    Remove {
        /// Root name
        name: String,
    },
}
