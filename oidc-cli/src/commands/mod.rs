//! One module per subcommand; each turns its arguments into an [`Outcome`](crate::output::Outcome) or a [`CliError`].

pub(crate) mod completions;
pub(crate) mod decode;
pub(crate) mod demo;
pub(crate) mod dev_provider;
pub(crate) mod discover;
pub(crate) mod dpop;
pub(crate) mod jwks;
pub(crate) mod login;
pub(crate) mod verify;

use serde_json::{Value, json};

use crate::error::CliError;
use crate::output::{self, Style};
use crate::time_format::{relative, utc_date};

/// The claims shown as times, in the order shown.
const TIME_CLAIMS: [&str; 4] = ["iat", "nbf", "exp", "auth_time"];

/// `{"valid": false, "error": {...}}`, the `--json` answer of every failed command.
pub(crate) fn failure_json(error: &CliError) -> Value {
    json!({ "valid": false, "error": output::error_json(error) })
}

/// The time claims of `claims`, each as `{"unix", "utc", "relative"}`.
pub(crate) fn times_json(claims: &Value, now: u64) -> Value {
    let mut times = serde_json::Map::new();
    for name in TIME_CLAIMS {
        if let Some(at) = claims.get(name).and_then(Value::as_u64) {
            times.insert(
                name.to_owned(),
                json!({ "unix": at, "utc": utc_date(at), "relative": relative(name, at, now) }),
            );
        }
    }
    Value::Object(times)
}

/// Header, claims and times as text.
pub(crate) fn render_token(style: Style, header: &Value, claims: &Value, now: u64) -> String {
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let mut text = format!(
        "{}\n{}\n\n{}\n{}\n",
        style.bold("Header"),
        pretty(header),
        style.bold("Claims"),
        pretty(claims)
    );
    let mut times = String::new();
    for name in TIME_CLAIMS {
        if let Some(at) = claims.get(name).and_then(Value::as_u64) {
            let when = relative(name, at, now);
            let when = if name == "exp" && at <= now {
                style.red(&when)
            } else {
                when
            };
            times.push_str(&format!("  {name:<9} {}  ({when})\n", utc_date(at)));
        }
    }
    if !times.is_empty() {
        text.push_str(&format!("\n{}\n{times}", style.bold("Times")));
    }
    text
}
