//! The `pystore` command.

fn main() -> std::process::ExitCode {
    pystore::cli::main()
}
