//! Reading one option as a typed value (text, list, boolean, duration, address, URL, secret),
//! and collecting every problem found on the way, each with the option and its source.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use oidc_core::Secret;
use url::Url;

use super::SettingError;
use crate::proxy::sources::{Layers, Source, Sourced};

/// The layered values being read, and the problems found so far.
pub(super) struct Resolver<'a> {
    pub(super) layers: &'a Layers,
    pub(super) errors: Vec<SettingError>,
}

impl Resolver<'_> {
    pub(super) fn fail(
        &mut self,
        option: &'static str,
        source: &Source,
        code: &'static str,
        problem: String,
    ) {
        self.errors.push(SettingError {
            option,
            origin: source.clone(),
            problem,
            code,
        });
    }

    pub(super) fn missing(&mut self, option: &'static str, problem: &str) {
        self.fail(option, &Source::Default, "missing", problem.to_owned());
    }

    pub(super) fn text(&self, option: &'static str) -> Option<&Sourced> {
        self.layers
            .value(option)
            .filter(|s| !s.value.trim().is_empty())
    }

    pub(super) fn text_or(&self, option: &'static str, default: &str) -> String {
        self.text(option)
            .map_or_else(|| default.to_owned(), |s| s.value.trim().to_owned())
    }

    pub(super) fn list(&self, option: &'static str) -> Vec<Sourced> {
        self.layers
            .values(option)
            .iter()
            .filter(|s| !s.value.trim().is_empty())
            .cloned()
            .collect()
    }

    pub(super) fn bool(&mut self, option: &'static str, default: bool) -> bool {
        let Some(sourced) = self.layers.value(option).cloned() else {
            return default;
        };
        match parse_bool(&sourced.value) {
            Some(value) => value,
            None => {
                self.fail(
                    option,
                    &sourced.source,
                    "invalid_bool",
                    format!("{:?} is not a boolean (true or false)", sourced.value),
                );
                default
            }
        }
    }

    pub(super) fn duration(&mut self, option: &'static str, default: Duration) -> Duration {
        let Some(sourced) = self.text(option).cloned() else {
            return default;
        };
        match parse_duration(sourced.value.trim()) {
            Some(value) => value,
            None => {
                self.fail(
                    option,
                    &sourced.source,
                    "invalid_duration",
                    format!(
                        "{:?} is not a duration such as 168h, 30m, 1h30m or 45s",
                        sourced.value
                    ),
                );
                default
            }
        }
    }

    pub(super) fn address(
        &mut self,
        option: &'static str,
        default: Option<&str>,
    ) -> Option<SocketAddr> {
        let (value, source) = match self.text(option) {
            Some(s) => (s.value.trim().to_owned(), s.source.clone()),
            None => (default?.to_owned(), Source::Default),
        };
        // oauth2-proxy accepts ":4180" for all interfaces.
        let candidate = if value.starts_with(':') {
            format!("0.0.0.0{value}")
        } else {
            value.clone()
        };
        match candidate.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.fail(
                    option,
                    &source,
                    "invalid_address",
                    format!("{value:?} is not HOST:PORT with an IP address, e.g. 127.0.0.1:4180"),
                );
                None
            }
        }
    }

    pub(super) fn url(&mut self, option: &'static str, sourced: &Sourced) -> Option<Url> {
        match Url::parse(sourced.value.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Some(url)
            }
            Ok(_) => {
                self.fail(
                    option,
                    &sourced.source,
                    "invalid_url",
                    format!("{:?} is not an http(s) URL with a host", sourced.value),
                );
                None
            }
            Err(e) => {
                self.fail(
                    option,
                    &sourced.source,
                    "invalid_url",
                    format!("{:?} is not a URL: {e}", sourced.value),
                );
                None
            }
        }
    }

    /// A secret from its option or, failing that, from its file option.
    pub(super) fn secret_lines(
        &mut self,
        option: &'static str,
        file_option: &'static str,
    ) -> (Vec<(Secret, Source)>, Option<Source>) {
        let direct = self.list(option);
        let file = self.text(file_option).cloned();
        if let (Some(first), Some(file)) = (direct.first(), &file) {
            self.fail(
                option,
                &first.source,
                "conflicting_options",
                format!(
                    "give either --{option} or --{file_option} ({}), not both",
                    file.source
                ),
            );
        }
        if !direct.is_empty() {
            let source = direct.first().map(|s| s.source.clone());
            return (
                direct
                    .into_iter()
                    .map(|s| (Secret::new(s.value.trim().to_owned()), s.source))
                    .collect(),
                source,
            );
        }
        let Some(file) = file else {
            return (Vec::new(), None);
        };
        match read_secret_file(Path::new(file.value.trim())) {
            Ok(lines) => (
                lines
                    .into_iter()
                    .map(|line| (Secret::new(line), file.source.clone()))
                    .collect(),
                Some(file.source),
            ),
            Err(e) => {
                self.fail(
                    file_option,
                    &file.source,
                    "unreadable_file",
                    format!("cannot read {}: {e}", file.value.trim()),
                );
                (Vec::new(), Some(file.source))
            }
        }
    }
}

pub(super) fn values(list: &[Sourced]) -> Vec<String> {
    list.iter().map(|s| s.value.trim().to_owned()).collect()
}

/// Go's boolean spellings, as oauth2-proxy takes them.
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    match value.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A Go duration as oauth2-proxy takes it (`168h`, `1h30m`, `45s`, `500ms`, `0`), or a plain
/// number of seconds.
pub(crate) fn parse_duration(value: &str) -> Option<Duration> {
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().ok().map(Duration::from_secs);
    }
    let mut total = Duration::ZERO;
    let mut rest = value;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let number: u64 = rest.get(..digits)?.parse().ok()?;
        rest = rest.get(digits..)?;
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = rest.get(..unit_len)?;
        rest = rest.get(unit_len..)?;
        let part = match unit {
            "h" => Duration::from_secs(number.checked_mul(3600)?),
            "m" => Duration::from_secs(number.checked_mul(60)?),
            "s" => Duration::from_secs(number),
            "ms" => Duration::from_millis(number),
            _ => return None,
        };
        total = total.checked_add(part)?;
    }
    Some(total)
}

fn read_secret_file(path: &Path) -> std::io::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_and_booleans_parse() {
        assert_eq!(parse_duration("168h"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("1h30m15s"), Some(Duration::from_secs(5415)));
        assert_eq!(
            parse_duration("168h0m0s"),
            Some(Duration::from_secs(604_800))
        );
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        for bad in [
            "",
            "h",
            "1x",
            "1h30",
            "-1s",
            "1.5h",
            "99999999999999999999h",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }

    proptest::proptest! {
        #[test]
        fn duration_parsing_never_panics(text in ".{0,24}") {
            let _ = parse_duration(&text);
        }
    }
}
