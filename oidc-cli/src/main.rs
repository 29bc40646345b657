//! The `oidc` command: inspect and verify tokens, and check a provider's metadata and keys.
//!
//! Exit codes, for every subcommand:
//! - `0`: success (the token is valid, the metadata and keys were fetched and check out);
//! - `1`: the token was rejected, or the provider's answer failed a check;
//! - `2`: usage error, unreadable file or stdin, or a network failure.
//!
//! Results go to stdout, diagnostics (`oidc: ...` and a hint) to stderr. All logic lives in the
//! modules; this file only hands the process's arguments to [`app::run`].

mod app;
mod args;
mod commands;
mod error;
mod fetch;
mod input;
mod logging;
mod output;
mod proxy;
mod time_format;
mod token_cache;

use std::process::ExitCode;

fn main() -> ExitCode {
    app::run(std::env::args_os())
}
