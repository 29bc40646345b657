//! Where results and diagnostics go: results on stdout, `oidc: ...` and hints on stderr, colour
//! only on a terminal (and never with `NO_COLOR`), a closed pipe ends the program quietly.

use std::io::{IsTerminal, Write};

use serde_json::Value;

use crate::error::CliError;

/// What a command produced: text for stdout and the exit code to end with.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) stdout: String,
    pub(crate) exit: u8,
}

impl Outcome {
    pub(crate) fn ok(stdout: String) -> Self {
        Outcome { stdout, exit: 0 }
    }

    pub(crate) fn json(value: &Value, exit: u8) -> Self {
        let mut stdout = serde_json::to_string_pretty(value).unwrap_or_else(|_| "{}".into());
        stdout.push('\n');
        Outcome { stdout, exit }
    }
}

/// ANSI styling, switched off when the stream is not a terminal.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Style {
    enabled: bool,
}

impl Style {
    pub(crate) fn for_stdout() -> Self {
        Style {
            enabled: colour_wanted() && std::io::stdout().is_terminal(),
        }
    }

    pub(crate) fn for_stderr() -> Self {
        Style {
            enabled: colour_wanted() && std::io::stderr().is_terminal(),
        }
    }

    /// No styling, whatever the streams are.
    #[cfg(test)]
    pub(crate) fn plain() -> Self {
        Style { enabled: false }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub(crate) fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    pub(crate) fn red(self, text: &str) -> String {
        self.paint("1;31", text)
    }

    pub(crate) fn yellow(self, text: &str) -> String {
        self.paint("1;33", text)
    }

    pub(crate) fn green(self, text: &str) -> String {
        self.paint("1;32", text)
    }

    pub(crate) fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }
}

fn colour_wanted() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The JSON form of an error: `{"code": ..., "message": ...}`.
pub(crate) fn error_json(error: &CliError) -> Value {
    serde_json::json!({ "code": error.code(), "message": error.to_string() })
}

/// Prints `oidc: <error>` and its hint on stderr.
pub(crate) fn report_error(error: &CliError) {
    let style = Style::for_stderr();
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(
        stderr,
        "{} {} {}",
        style.red("oidc:"),
        error,
        style.dim(&format!("[{}]", error.code()))
    );
    if let Some(hint) = error.hint() {
        let _ = writeln!(stderr, "{} {hint}", style.bold("hint:"));
    }
}

/// Prints a warning on stderr.
pub(crate) fn warn(text: &str) {
    let style = Style::for_stderr();
    let _ = writeln!(
        std::io::stderr().lock(),
        "{} {text}",
        style.yellow("warning:")
    );
}

/// Writes `text` to stdout. A reader that went away (`oidc ... | head`) is not an error.
pub(crate) fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}
