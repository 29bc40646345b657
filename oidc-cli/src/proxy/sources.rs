//! Where each proxy setting came from, and which source wins: a flag over an environment
//! variable over the TOML file over the default.
//!
//! Every value keeps its [`Source`], so that a problem found later ("the cookie secret is too
//! short") can say exactly where to fix it: the flag, the variable, or the file's line and key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::options::{Kind, OPTIONS, OptionSpec, REFUSED};

/// The environment variable prefix of every proxy setting.
pub(crate) const ENV_PREFIX: &str = "OIDC_PROXY_";

/// Where one value was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// A command-line flag (`--client-id`).
    Flag { name: &'static str },
    /// An environment variable (`OIDC_PROXY_CLIENT_ID`).
    Env { var: String },
    /// A key of the TOML file, on a given line (1-based).
    File {
        path: PathBuf,
        line: usize,
        key: String,
    },
    /// Not configured: the built-in default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag { name } => write!(f, "flag --{name}"),
            Source::Env { var } => write!(f, "environment variable {var}"),
            Source::File { path, line, key } => {
                write!(f, "{}:{line} (key `{key}`)", path.display())
            }
            Source::Default => f.write_str("the built-in default"),
        }
    }
}

/// One configured value and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sourced {
    pub(crate) value: String,
    pub(crate) source: Source,
}

/// Why the raw configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SourceError {
    #[error("cannot read the configuration file {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: not valid TOML: {message}", path.display())]
    Toml {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}:{line}: unknown key `{key}`{}", path.display(), suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownKey {
        path: PathBuf,
        line: usize,
        key: String,
        suggestion: Option<String>,
    },
    #[error("{}:{line}: key `{key}` must be {expected}", path.display())]
    WrongType {
        path: PathBuf,
        line: usize,
        key: String,
        expected: &'static str,
    },
    #[error("{}:{line}: keys `{first}` and `{second}` set the same option", path.display())]
    DuplicateKey {
        path: PathBuf,
        line: usize,
        first: String,
        second: String,
    },
    #[error("{place}: `{option}` (an oauth2-proxy option) is not supported: {reason}")]
    Refused {
        place: String,
        option: &'static str,
        reason: &'static str,
    },
    #[error("environment variable {var} is not valid UTF-8")]
    EnvNotUnicode { var: String },
    #[error("unknown environment variable {var}{}", suggestion.as_ref().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
    UnknownEnv {
        var: String,
        suggestion: Option<String>,
    },
}

impl SourceError {
    /// Whether the whole file is unusable (unreadable, or not TOML), not just one key.
    pub(crate) fn is_whole_file(&self) -> bool {
        matches!(
            self,
            SourceError::ReadFile { .. } | SourceError::Toml { .. }
        )
    }

    pub(crate) fn code(&self) -> &'static str {
        match self {
            SourceError::ReadFile { .. } => "config_unreadable",
            SourceError::Toml { .. } => "config_invalid_toml",
            SourceError::UnknownKey { .. } => "config_unknown_key",
            SourceError::WrongType { .. } => "config_wrong_type",
            SourceError::DuplicateKey { .. } => "config_duplicate_key",
            SourceError::Refused { .. } => "refused_option",
            SourceError::EnvNotUnicode { .. } => "env_not_unicode",
            SourceError::UnknownEnv { .. } => "env_unknown_variable",
        }
    }
}

/// The values of every option, one layer (flags, environment, file) each, before merging.
#[derive(Clone, Debug, Default)]
pub(crate) struct Layer {
    values: BTreeMap<&'static str, Vec<Sourced>>,
}

impl Layer {
    pub(crate) fn set(&mut self, option: &'static str, values: Vec<Sourced>) {
        self.values.insert(option, values);
    }

    pub(crate) fn get(&self, option: &str) -> Option<&Vec<Sourced>> {
        self.values.get(option)
    }

    /// Reads the `OIDC_PROXY_*` variables from `vars`, stopping at the first problem.
    #[cfg(test)]
    pub(crate) fn from_env(
        vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    ) -> Result<Self, SourceError> {
        first_problem(Self::read_env(vars))
    }

    /// Reads the `OIDC_PROXY_*` variables from `vars`: the layer of every usable variable, and
    /// every problem. A variable with that prefix that names no option is a problem (a typo
    /// would otherwise be ignored silently).
    pub(crate) fn read_env(
        vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    ) -> (Self, Vec<SourceError>) {
        let mut layer = Layer::default();
        let mut problems = Vec::new();
        for (name, value) in vars {
            let Some(name) = name.to_str() else { continue };
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let key = rest.to_ascii_lowercase();
            let value_text = value.to_str().unwrap_or_default();
            if let Some((option, reason)) = refused(&key, value_text) {
                problems.push(SourceError::Refused {
                    place: format!("environment variable {name}"),
                    option,
                    reason,
                });
                continue;
            }
            if is_accepted_no_op(&key, value_text) {
                continue;
            }
            let Some(spec) = find_option(&key.replace('_', "-")) else {
                problems.push(SourceError::UnknownEnv {
                    var: name.to_owned(),
                    suggestion: suggest(&key.replace('_', "-")).map(|s| env_var_name(s.name)),
                });
                continue;
            };
            let Ok(value) = value.into_string() else {
                problems.push(SourceError::EnvNotUnicode {
                    var: name.to_owned(),
                });
                continue;
            };
            let source = Source::Env {
                var: name.to_owned(),
            };
            let values = if spec.kind.is_list() {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| Sourced {
                        value: v.to_owned(),
                        source: source.clone(),
                    })
                    .collect()
            } else {
                vec![Sourced { value, source }]
            };
            layer.set(spec.name, values);
        }
        (layer, problems)
    }

    /// Reads a TOML file: top-level keys named like the flags with `_` for `-` (oauth2-proxy's
    /// plural keys such as `upstreams` and `email_domains` are accepted too); strings, booleans,
    /// integers, or arrays of them for repeatable options. Gives the layer of every usable key
    /// and every problem, so that a bad key does not hide the others.
    pub(crate) fn read_toml_file(path: &Path) -> (Self, Vec<SourceError>) {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::read_toml_text(path, &text),
            Err(source) => (
                Layer::default(),
                vec![SourceError::ReadFile {
                    path: path.to_owned(),
                    source,
                }],
            ),
        }
    }

    /// [`Layer::read_toml_file`] stopping at the first problem.
    #[cfg(test)]
    pub(crate) fn from_toml_text(path: &Path, text: &str) -> Result<Self, SourceError> {
        first_problem(Self::read_toml_text(path, text))
    }

    pub(crate) fn read_toml_text(path: &Path, text: &str) -> (Self, Vec<SourceError>) {
        let table: BTreeMap<String, toml::Spanned<toml::Value>> = match toml::from_str(text) {
            Ok(table) => table,
            Err(e) => return (Layer::default(), vec![toml_syntax_error(path, text, &e)]),
        };
        let mut layer = Layer::default();
        let mut problems = Vec::new();
        let mut seen: BTreeMap<&'static str, String> = BTreeMap::new();
        for (key, spanned) in table {
            let line = line_of(text, spanned.span().start);
            match file_entry(path, line, &key, spanned.into_inner(), &mut seen) {
                Ok(Some((option, values))) => layer.set(option, values),
                Ok(None) => {}
                Err(problem) => problems.push(problem),
            }
        }
        (layer, problems)
    }
}

/// One top-level key of the file: its option and values, nothing (an accepted no-op), or the
/// problem with it.
fn file_entry(
    path: &Path,
    line: usize,
    key: &str,
    value: toml::Value,
    seen: &mut BTreeMap<&'static str, String>,
) -> Result<Option<(&'static str, Vec<Sourced>)>, SourceError> {
    let scalar = value.as_str().unwrap_or_default().to_owned();
    if let Some((option, reason)) = refused(key, &scalar) {
        return Err(SourceError::Refused {
            place: format!("{}:{line}", path.display()),
            option,
            reason,
        });
    }
    if is_accepted_no_op(key, &scalar) {
        return Ok(None);
    }
    let Some(spec) = find_option(&key.replace('_', "-")) else {
        return Err(SourceError::UnknownKey {
            path: path.to_owned(),
            line,
            suggestion: suggest(&key.replace('_', "-")).map(|s| s.name.replace('-', "_")),
            key: key.to_owned(),
        });
    };
    if let Some(first) = seen.get(spec.name) {
        return Err(SourceError::DuplicateKey {
            path: path.to_owned(),
            line,
            first: first.clone(),
            second: key.to_owned(),
        });
    }
    seen.insert(spec.name, key.to_owned());
    let source = Source::File {
        path: path.to_owned(),
        line,
        key: key.to_owned(),
    };
    let wrong_type = || SourceError::WrongType {
        path: path.to_owned(),
        line,
        key: key.to_owned(),
        expected: spec.kind.toml_expectation(),
    };
    let items: Vec<toml::Value> = match value {
        toml::Value::Array(items) if spec.kind.is_list() => items,
        toml::Value::Array(_) => return Err(wrong_type()),
        scalar => vec![scalar],
    };
    let mut values = Vec::with_capacity(items.len());
    for item in items {
        let value = match item {
            toml::Value::String(s) => s,
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Integer(i) => i.to_string(),
            _ => return Err(wrong_type()),
        };
        values.push(Sourced {
            value,
            source: source.clone(),
        });
    }
    Ok(Some((spec.name, values)))
}

/// A TOML syntax error as one `path:line:column: message` line, without the parser's
/// source-excerpt drawing.
fn toml_syntax_error(path: &Path, text: &str, error: &toml::de::Error) -> SourceError {
    let at_end = error.span().is_some_and(|span| span.start >= text.len());
    let (line, column) = match error.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let line_start = text
                .get(..start)
                .and_then(|before| before.rfind('\n'))
                .map_or(0, |i| i + 1);
            let column = text.get(line_start..start).map_or(0, |s| s.chars().count()) + 1;
            (line_of(text, start), column)
        }
        None => (1, 1),
    };
    let message = error
        .message()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let message = match message.as_str() {
        "" if at_end => "the file ends where more is expected".to_owned(),
        "" => "syntax error".to_owned(),
        _ => message,
    };
    SourceError::Toml {
        path: path.to_owned(),
        line,
        column,
        message,
    }
}

#[cfg(test)]
fn first_problem((layer, problems): (Layer, Vec<SourceError>)) -> Result<Layer, SourceError> {
    match problems.into_iter().next() {
        Some(problem) => Err(problem),
        None => Ok(layer),
    }
}

/// The layers in order of precedence, highest first; the first layer that sets an option wins
/// (lists are not merged across layers: a flag replaces the file's list).
#[derive(Clone, Debug, Default)]
pub(crate) struct Layers {
    pub(crate) flags: Layer,
    pub(crate) env: Layer,
    pub(crate) file: Layer,
}

impl Layers {
    /// The winning values of `option`, or an empty list when no layer sets it.
    pub(crate) fn values(&self, option: &str) -> &[Sourced] {
        [&self.flags, &self.env, &self.file]
            .into_iter()
            .find_map(|layer| layer.get(option))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The winning value of a single-valued option (the last one given, as flags do).
    pub(crate) fn value(&self, option: &str) -> Option<&Sourced> {
        self.values(option).last()
    }
}

/// `OIDC_PROXY_` and the option name in upper snake case.
pub(crate) fn env_var_name(option: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        option.replace('-', "_").to_ascii_uppercase()
    )
}

/// The option named `name` (flag spelling with `-`, or TOML spelling with `_`, or its
/// oauth2-proxy alias).
fn find_option(name: &str) -> Option<&'static OptionSpec> {
    let name = name.replace('_', "-");
    OPTIONS
        .iter()
        .find(|spec| {
            spec.name == name
                || spec
                    .alias
                    .is_some_and(|alias| alias.replace('_', "-") == name)
        })
        .filter(|spec| spec.kind != Kind::CommandOnly)
}

/// The refused oauth2-proxy option `key` names (`_` or `-` spelling), with the reason.
pub(crate) fn refused(key: &str, value: &str) -> Option<(&'static str, &'static str)> {
    let name = key.replace('_', "-");
    if is_accepted_no_op(key, value) {
        return None;
    }
    REFUSED.iter().find(|(option, _)| *option == name).copied()
}

/// `provider = "oidc"`: what this proxy is, so accepted and ignored.
fn is_accepted_no_op(key: &str, value: &str) -> bool {
    key.replace('_', "-") == "provider" && value.trim() == "oidc"
}

/// The option whose name is closest to `name`, when it is close enough to be a likely typo.
fn suggest(name: &str) -> Option<&'static OptionSpec> {
    OPTIONS
        .iter()
        .filter(|spec| spec.kind != Kind::CommandOnly)
        .map(|spec| (edit_distance(name, spec.name), spec))
        .filter(|(distance, _)| *distance <= 3)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, spec)| spec)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let insertion = current.get(j).copied().unwrap_or(0) + 1;
            let deletion = previous.get(j + 1).copied().unwrap_or(0) + 1;
            current.push(substitution.min(insertion).min(deletion));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Result<Layer, SourceError> {
        Layer::from_toml_text(Path::new("proxy.toml"), text)
    }

    #[test]
    fn file_values_carry_their_line_and_key() {
        let layer = file(
            "# comment\nclient_id = \"mlflow\"\n\nupstreams = [\"http://127.0.0.1:5000/\", \"http://127.0.0.1:8080/airflow/\"]\ncookie_secure = false\n",
        )
        .unwrap();
        let client = layer.get("client-id").unwrap();
        assert_eq!(client[0].value, "mlflow");
        assert_eq!(
            client[0].source.to_string(),
            "proxy.toml:2 (key `client_id`)"
        );
        let upstreams = layer.get("upstream").unwrap();
        assert_eq!(upstreams.len(), 2);
        assert_eq!(upstreams[1].value, "http://127.0.0.1:8080/airflow/");
        assert_eq!(
            upstreams[0].source,
            Source::File {
                path: "proxy.toml".into(),
                line: 4,
                key: "upstreams".into()
            }
        );
        assert_eq!(layer.get("cookie-secure").unwrap()[0].value, "false");
    }

    #[test]
    fn unknown_file_keys_are_refused_with_a_suggestion() {
        let err = file("\nclient_idd = \"x\"").unwrap_err();
        assert_eq!(err.code(), "config_unknown_key");
        assert_eq!(
            err.to_string(),
            "proxy.toml:2: unknown key `client_idd` (did you mean `client_id`?)"
        );
    }

    #[test]
    fn refused_oauth2_proxy_keys_say_why_and_provider_oidc_is_accepted() {
        let layer = file("provider = \"oidc\"\nclient_id = \"x\"").unwrap();
        assert!(layer.get("client-id").is_some());
        let err = file("\nprovider = \"github\"").unwrap_err();
        assert_eq!(err.code(), "refused_option");
        assert!(
            err.to_string().starts_with(
                "proxy.toml:2: `provider` (an oauth2-proxy option) is not supported: "
            )
        );
        let err = Layer::from_env([("OIDC_PROXY_SSL_INSECURE_SKIP_VERIFY".into(), "true".into())])
            .unwrap_err();
        assert_eq!(err.code(), "refused_option");
        assert!(Layer::from_env([("OIDC_PROXY_PROVIDER".into(), "oidc".into())]).is_ok());
    }

    #[test]
    fn arrays_for_single_values_and_tables_are_refused() {
        let err = file("client_id = [\"a\", \"b\"]").unwrap_err();
        assert_eq!(err.code(), "config_wrong_type");
        let err = file("[client_id]\nx = 1").unwrap_err();
        assert_eq!(err.code(), "config_wrong_type");
        let err = file("upstream = \"http://a/\"\nupstreams = [\"http://b/\"]").unwrap_err();
        assert_eq!(err.code(), "config_duplicate_key");
        let err = file("client_id = ").unwrap_err();
        assert_eq!(err.code(), "config_invalid_toml");
    }

    #[test]
    fn every_bad_key_is_reported_and_the_good_ones_are_kept() {
        let (layer, problems) = Layer::read_toml_text(
            Path::new("proxy.toml"),
            "clinet_id = \"x\"\nclient_id = \"app\"\nprovider = \"github\"\ncookie_name = [\"a\"]\n",
        );
        let codes: Vec<_> = problems.iter().map(SourceError::code).collect();
        assert_eq!(
            codes,
            ["config_unknown_key", "config_wrong_type", "refused_option"]
        );
        assert_eq!(layer.get("client-id").unwrap()[0].value, "app");
        assert!(layer.get("cookie-name").is_none());
    }

    #[test]
    fn toml_syntax_errors_are_one_line_with_line_and_column() {
        let err = file("client_id = \"proxy\"\nupstreams = [\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "proxy.toml:3:1: not valid TOML: invalid array; expected `]`"
        );
        let err = file("client_id = \n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "proxy.toml:1:13: not valid TOML: invalid string; expected `\"`, `'`"
        );
        let err = file("client_id = ").unwrap_err();
        assert_eq!(
            err.to_string(),
            "proxy.toml:1:13: not valid TOML: the file ends where more is expected"
        );
        assert!(err.is_whole_file());
    }

    #[test]
    fn environment_lists_split_on_commas_and_typos_are_refused() {
        let layer = Layer::from_env([
            ("OIDC_PROXY_EMAIL_DOMAINS".into(), "a.com, b.com,".into()),
            ("OIDC_PROXY_CLIENT_ID".into(), "app".into()),
            ("PATH".into(), "/bin".into()),
        ])
        .unwrap();
        let domains: Vec<_> = layer
            .get("email-domain")
            .unwrap()
            .iter()
            .map(|s| s.value.as_str())
            .collect();
        assert_eq!(domains, ["a.com", "b.com"]);
        assert_eq!(
            layer.get("client-id").unwrap()[0].source.to_string(),
            "environment variable OIDC_PROXY_CLIENT_ID"
        );
        let err = Layer::from_env([("OIDC_PROXY_CLIENT_IDD".into(), "x".into())]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown environment variable OIDC_PROXY_CLIENT_IDD (did you mean OIDC_PROXY_CLIENT_ID?)"
        );
    }

    #[test]
    fn flags_win_over_environment_which_wins_over_the_file() {
        let mut layers = Layers {
            file: file(
                "client_id = \"from-file\"\nscope = \"openid\"\nredirect_url = \"http://f/\"",
            )
            .unwrap(),
            ..Layers::default()
        };
        layers.env = Layer::from_env([
            ("OIDC_PROXY_CLIENT_ID".into(), "from-env".into()),
            ("OIDC_PROXY_SCOPE".into(), "openid email".into()),
        ])
        .unwrap();
        layers.flags.set(
            "client-id",
            vec![Sourced {
                value: "from-flag".into(),
                source: Source::Flag { name: "client-id" },
            }],
        );
        assert_eq!(layers.value("client-id").unwrap().value, "from-flag");
        assert_eq!(layers.value("scope").unwrap().value, "openid email");
        assert_eq!(layers.value("redirect-url").unwrap().value, "http://f/");
        assert!(layers.value("cookie-name").is_none());
        assert!(layers.values("upstream").is_empty());
    }

    #[test]
    fn edit_distance_counts_single_changes() {
        assert_eq!(edit_distance("client-id", "client-id"), 0);
        assert_eq!(edit_distance("clientid", "client-id"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    proptest::proptest! {
        #[test]
        fn any_file_text_is_read_or_refused_without_panicking(text in "(?s).{0,200}") {
            let _ = file(&text);
        }

        #[test]
        fn any_environment_value_is_read_or_refused_without_panicking(
            name in "[A-Z_]{0,24}",
            value in ".{0,64}",
        ) {
            let _ = Layer::from_env([(format!("{ENV_PREFIX}{name}").into(), value.into())]);
        }

        #[test]
        fn list_variables_round_trip_through_commas(items in proptest::collection::vec("[a-z0-9.]{1,12}", 1..6)) {
            let layer = Layer::from_env([("OIDC_PROXY_EMAIL_DOMAIN".into(), items.join(",").into())]).unwrap();
            let read: Vec<String> = layer.get("email-domain").unwrap().iter().map(|s| s.value.clone()).collect();
            proptest::prop_assert_eq!(read, items);
        }
    }
}
