//! The command line: parse arguments, call one library function, render its result.
//!
//! Exit codes: 0 success, 1 failure (including `verify` finding damage), 2 usage errors.

mod args;
mod diff_cmd;
mod fetch_cmds;
mod key_cmd;
mod lock_cmd;
mod output;
mod python_cmd;
mod realise_cmd;
mod remote_cmds;
mod store_cmds;
mod timings;
mod verify_cmd;

use std::process::ExitCode;

use clap::Parser;

use crate::store::{layout, Store};

pub use args::{Cli, Command, KeyCommand, PythonCommand, RootCommand, TrustArgs};
pub use output::Ui;

/// Runs the command line; the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let ui = Ui {
        json: cli.json,
        quiet: cli.quiet,
    };
    output::init_logging(ui);
    match run(cli, ui) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            // Each cause once: many errors already embed their source in their message.
            let chain = crate::errors::chain(err.as_ref());
            eprintln!("error: {}", chain[0]);
            for cause in &chain[1..] {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli, ui: Ui) -> anyhow::Result<bool> {
    if let Some(jobs) = cli.jobs {
        rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.max(1))
            .build_global()?;
    }
    // Commands that need no store.
    match &cli.command {
        Command::Diff { a, b, files } => return diff_cmd::diff(ui, a, b, *files),
        Command::Key(KeyCommand::Generate { name, out }) => {
            return key_cmd::generate(ui, name, out)
        }
        _ => {}
    }
    let root = match cli.store {
        Some(root) => root,
        None => layout::default_root().ok_or_else(|| {
            anyhow::anyhow!("cannot tell where the store is: set PYSTORE_STORE or pass --store DIR")
        })?,
    };
    let net = || {
        fetch_cmds::net_settings(
            ui,
            cli.jobs,
            cli.offline,
            cli.index_url.as_deref(),
            &cli.extra_index_url,
            &cli.find_links,
        )
    };
    let open = || Store::open(&root);
    // Commands that change nothing also work on a store this process cannot write.
    let open_for_reading = || Store::open_for_reading(&root);
    match &cli.command {
        Command::Realise {
            recipe,
            targets,
            dry_run,
            out,
            sign_key,
            sandbox,
            substituters,
            trust,
            check,
            rounds,
            timings,
        } => {
            let net = net()?;
            let trust = remote_cmds::trust(trust.trusted_keys.as_deref(), trust.no_require_sigs)?;
            let substituter =
                remote_cmds::substituters(substituters.as_deref(), &net, trust, cli.offline)?;
            realise_cmd::realise(
                &open()?,
                ui,
                net,
                realise_cmd::RealiseArgs {
                    recipe,
                    targets,
                    dry_run: *dry_run,
                    out: out.clone(),
                    sign_key: sign_key.clone(),
                    jobs: cli.jobs,
                    sandbox: *sandbox,
                    substituter: substituter.map(|s| s as _),
                    check_rounds: match (check, rounds) {
                        (_, Some(n)) => Some(*n as usize),
                        (true, None) => Some(1),
                        (false, None) => None,
                    },
                    timings: timings.clone(),
                },
            )
        }
        Command::Push {
            what,
            to,
            targets,
            sign_key,
        } => remote_cmds::push(
            &open()?,
            ui,
            net()?,
            remote_cmds::PushArgs {
                what,
                to,
                targets,
                sign_key: sign_key.clone(),
                jobs: cli.jobs,
            },
        ),
        Command::Run {
            recipe,
            target,
            sandbox,
            args,
        } => {
            let store = open()?;
            let code = realise_cmd::run(
                &store,
                net()?,
                realise_cmd::RealiseArgs {
                    recipe,
                    targets: &[],
                    dry_run: false,
                    out: None,
                    sign_key: None,
                    jobs: cli.jobs,
                    sandbox: *sandbox,
                    substituter: None,
                    check_rounds: None,
                    timings: None,
                },
                target.as_deref(),
                args,
            )?;
            drop(store);
            // The bundle's exit code is pystore's, whatever it is.
            std::process::exit(code)
        }
        Command::Challenge {
            remote,
            recipe,
            targets,
            sign_key,
            trust,
        } => {
            let trust = remote_cmds::trust(trust.trusted_keys.as_deref(), trust.no_require_sigs)?;
            remote_cmds::challenge(
                &open()?,
                ui,
                net()?,
                remote_cmds::ChallengeArgs {
                    remote,
                    recipe,
                    targets,
                    jobs: cli.jobs,
                    sign_key: sign_key.clone(),
                    trust,
                },
            )
        }
        Command::Pull {
            remote,
            paths,
            trust,
        } => {
            let trust = remote_cmds::trust(trust.trusted_keys.as_deref(), trust.no_require_sigs)?;
            remote_cmds::pull(&open()?, ui, net()?, remote, paths, trust)
        }
        Command::Lock {
            recipe,
            targets,
            upgrade,
            upgrade_packages,
            export_requirements,
            export_pylock,
            from_pylock,
            no_index,
            from_requirements,
        } => lock_cmd::lock(
            &open()?,
            ui,
            net()?,
            lock_cmd::LockArgs {
                recipe,
                targets,
                upgrade: *upgrade,
                upgrade_packages,
                export_requirements: export_requirements.clone(),
                export_pylock: export_pylock.clone(),
                from_pylock: from_pylock.clone(),
                no_index: *no_index,
                from_requirements,
            },
        ),
        Command::Add { paths, name } => {
            if name.is_some() && paths.len() > 1 {
                anyhow::bail!(
                    "--name applies to one PATH; add the paths one at a time to name them"
                );
            }
            store_cmds::add(&open()?, ui, paths, name.as_deref())
        }
        Command::PathInfo {
            paths,
            closure,
            size,
        } => store_cmds::path_info(&open_for_reading()?, ui, paths, *closure, *size),
        Command::Verify {
            paths,
            provenance,
            trusted_keys,
            repair,
        } => {
            let entries_dir = root.join("entries");
            let zip_files = !paths.is_empty()
                && paths.iter().all(|p| {
                    let path = std::path::Path::new(p);
                    p.ends_with(".zip") && path.is_file() && !path.starts_with(&entries_dir)
                });
            if zip_files && *repair {
                anyhow::bail!("--repair repairs store entries; a ZIP outside the store cannot be repaired (realise it again)");
            }
            if zip_files || provenance.is_some() {
                verify_cmd::verify_zips(ui, paths, provenance.as_deref(), trusted_keys.as_deref())
            } else {
                let mut store = if *repair {
                    open()?
                } else {
                    open_for_reading()?
                };
                store_cmds::verify(&mut store, ui, paths, *repair)
            }
        }
        Command::Prefetch { urls, sha256, name } => fetch_cmds::prefetch(
            &open()?,
            ui,
            net()?,
            urls,
            sha256.as_deref(),
            name.as_deref(),
        ),
        // Asks the index only: no store needed.
        Command::Index { project } => fetch_cmds::index(ui, net()?, project),
        Command::Root(RootCommand::Add { name, path }) => {
            store_cmds::root_add(&open()?, ui, name, path)
        }
        Command::Root(RootCommand::List) => store_cmds::root_list(&open_for_reading()?, ui),
        Command::Root(RootCommand::Remove { name }) => store_cmds::root_remove(&open()?, ui, name),
        Command::Gc { dry_run: true } => store_cmds::gc(&mut open_for_reading()?, ui, true),
        Command::Gc { dry_run } => store_cmds::gc(&mut open()?, ui, *dry_run),
        Command::Python(PythonCommand::List { all, recipe }) => {
            python_cmd::list(&open()?, ui, *all, recipe.as_deref())
        }
        Command::Python(PythonCommand::Update {
            repository,
            releases,
        }) => python_cmd::update_cmd(
            &open()?,
            ui,
            &net()?,
            repository.as_deref(),
            usize::from(*releases),
        ),
        Command::Diff { .. } | Command::Key(_) => unreachable!("handled above"),
    }
}
