//! `oidc completions SHELL`: a completion script for the shell, on stdout.

use clap::CommandFactory;

use crate::args::{Cli, CompletionsArgs};
use crate::output::Outcome;

pub(crate) fn run(args: &CompletionsArgs) -> Outcome {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "oidc", &mut script);
    Outcome::ok(String::from_utf8_lossy(&script).into_owned())
}
