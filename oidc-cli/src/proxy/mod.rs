//! `oidc proxy`: the sidecar that puts OpenID Connect sign-in in front of a service.
//!
//! Settings come from [`options`] (flags), the environment and a TOML file ([`sources`]), are
//! typed and checked in [`settings`], checked against the outside world by `--check-config`
//! ([`check`]), and run by [`server`].

pub(crate) mod check;
pub(crate) mod options;
pub(crate) mod server;
pub(crate) mod settings;
pub(crate) mod sources;

use std::process::ExitCode;

use crate::error::{EXIT_REJECTED, EXIT_USAGE_OR_IO};
use crate::output::Style;

pub(crate) use options::ProxyArgs;
use settings::{ProxySettings, SettingError, config_path};
use sources::{Layer, Layers};

/// Why the settings could not be read or are unusable.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// Every problem found, in the sources (file, environment) and in the values.
    Problems {
        sources: Vec<sources::SourceError>,
        settings: Vec<SettingError>,
    },
    Refused {
        option: &'static str,
        reason: &'static str,
    },
}

impl LoadError {
    /// `{"ok": false, "problems": [{"code", "message", ...}]}`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let problems: Vec<serde_json::Value> = match self {
            LoadError::Problems { sources, settings } => sources
                .iter()
                .map(|e| serde_json::json!({ "code": e.code(), "message": e.to_string() }))
                .chain(settings.iter().map(|e| {
                    serde_json::json!({
                        "code": e.code,
                        "option": e.option,
                        "source": e.origin.to_string(),
                        "problem": e.problem,
                        "message": e.to_string(),
                    })
                }))
                .collect(),
            LoadError::Refused { option, reason } => vec![serde_json::json!({
                "code": "refused_option",
                "option": option,
                "message": format!("--{option} is not supported: {reason}"),
            })],
        };
        serde_json::json!({ "ok": false, "problems": problems })
    }

    /// One line per problem, ready for stderr.
    pub(crate) fn lines(&self) -> Vec<String> {
        match self {
            LoadError::Problems { sources, settings } => sources
                .iter()
                .map(|e| format!("{e} [{}]", e.code()))
                .chain(settings.iter().map(|e| format!("{e} [{}]", e.code)))
                .collect(),
            LoadError::Refused { option, reason } => vec![format!(
                "--{option} (an oauth2-proxy option) is not supported: {reason} [refused_option]"
            )],
        }
    }
}

/// Reads the flags, the `OIDC_PROXY_*` environment and the TOML file, and resolves them.
pub(crate) fn load(
    args: &ProxyArgs,
    env: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Result<ProxySettings, LoadError> {
    if let Some((option, reason)) = args.refused {
        return Err(LoadError::Refused { option, reason });
    }
    let env: Vec<_> = env
        .into_iter()
        .filter(|(name, _)| name != "OIDC_PROXY_CONFIG")
        .collect();
    let (file, mut source_problems) = match config_path(args.config.clone()) {
        Some(path) => Layer::read_toml_file(&path),
        None => (Layer::default(), Vec::new()),
    };
    // A file that cannot be read or parsed would make every option it sets look missing.
    let file_unusable = source_problems
        .iter()
        .any(sources::SourceError::is_whole_file);
    let (env, env_problems) = Layer::read_env(env);
    source_problems.extend(env_problems);
    if file_unusable {
        return Err(LoadError::Problems {
            sources: source_problems,
            settings: Vec::new(),
        });
    }
    let layers = Layers {
        flags: args.flags.clone(),
        env,
        file,
    };
    match ProxySettings::resolve(&layers) {
        Ok(settings) if source_problems.is_empty() => Ok(settings),
        Ok(_) => Err(LoadError::Problems {
            sources: source_problems,
            settings: Vec::new(),
        }),
        Err(settings) => Err(LoadError::Problems {
            sources: source_problems,
            settings,
        }),
    }
}

/// Runs `oidc proxy`: checks the settings, then either reports (`--check-config`) or serves
/// until SIGTERM or Ctrl-C.
pub(crate) fn run(args: &ProxyArgs) -> ExitCode {
    let style = Style::for_stderr();
    let settings = match load(args, std::env::vars_os()) {
        Ok(settings) => settings,
        Err(error) if args.json && args.check_config => {
            println!("{}", error.to_json());
            return ExitCode::from(EXIT_USAGE_OR_IO);
        }
        Err(error) => {
            let lines = error.lines();
            eprintln!(
                "oidc: {} {} in the proxy settings:",
                lines.len(),
                if lines.len() == 1 {
                    "problem"
                } else {
                    "problems"
                }
            );
            for line in lines {
                eprintln!("  {} {line}", style.red("✗"));
            }
            eprintln!("hint: see `oidc proxy --help` and docs/migrating-from-oauth2-proxy.md");
            return ExitCode::from(EXIT_USAGE_OR_IO);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("oidc: cannot start the I/O runtime: {e}");
            return ExitCode::from(EXIT_USAGE_OR_IO);
        }
    };
    if args.check_config {
        let report = runtime.block_on(check::check(&settings));
        if args.json {
            println!("{}", report.to_json());
        } else {
            print!("{}", report.render(Style::for_stdout()));
        }
        return ExitCode::from(if report.passed() { 0 } else { EXIT_REJECTED });
    }
    crate::logging::init();
    match runtime.block_on(server::run(settings, oidc_tower::proxy::shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oidc: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(EXIT_USAGE_OR_IO)
        }
    }
}
