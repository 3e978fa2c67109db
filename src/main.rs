//! The `skewless` command: parse arguments, run, print the error, exit.
//! Exit codes: 0 success, 1 user error (SQL, data, arguments), 2 internal error.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = match skewless::cli::Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            // --help and --version print to stdout and succeed; a usage error
            // is the user's: exit code 1, not clap's default 2.
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    skewless::cli::init_logging(args.verbose);
    match skewless::cli::main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!: a closed stderr must not turn an error into a panic.
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
