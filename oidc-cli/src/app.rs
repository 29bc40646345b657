//! Runs one invocation: parse the arguments, dispatch, print, and pick the exit code.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::commands;
use crate::error::EXIT_USAGE_OR_IO;
use crate::output::{self, Outcome};

/// Runs `oidc` with `args` (the program name first) and returns the exit code.
pub(crate) fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            // clap prints help and version on stdout (exit 0) and usage errors on stderr (2).
            let _ = error.print();
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(EXIT_USAGE_OR_IO));
        }
    };
    let (json, result) = match cli.command {
        Command::Proxy(args) => return crate::proxy::run(&args),
        Command::DevProvider(args) => return commands::dev_provider::run(&args),
        Command::Demo(args) => return commands::demo::run(&args),
        Command::Login(args) => (args.json, commands::login::run_login(&args)),
        Command::Token(args) => (args.login.json, commands::login::run_token(&args)),
        Command::Decode(args) => (args.json, commands::decode::run(&args)),
        Command::Verify(args) => (args.json, commands::verify::run(&args)),
        Command::Dpop(args) => (args.json, commands::dpop::run(&args)),
        Command::Discover(args) => (args.json, commands::discover::run(&args)),
        Command::Jwks(args) => (args.json, commands::jwks::run(&args)),
        Command::Completions(args) => (false, Ok(commands::completions::run(&args))),
    };
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(error) => {
            output::report_error(&error);
            if json {
                Outcome::json(&commands::failure_json(&error), error.exit_code())
            } else {
                Outcome {
                    stdout: String::new(),
                    exit: error.exit_code(),
                }
            }
        }
    };
    match output::write_stdout(&outcome.stdout) {
        // A reader that stopped reading (`| head`) has what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            output::report_error(&crate::error::CliError::Usage {
                message: format!("cannot write the result: {e}"),
                hint: None,
            });
            ExitCode::from(EXIT_USAGE_OR_IO)
        }
        Ok(()) => ExitCode::from(outcome.exit),
    }
}
