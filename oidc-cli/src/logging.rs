//! Logs of the long-running commands (`proxy`, `dev-provider`, `demo`): on stderr, filtered by
//! `RUST_LOG` (default `info`). The one-shot commands log nothing.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the stderr logger once; a second call does nothing.
pub(crate) fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .with_target(false)
        .try_init();
}
