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
    Source(sources::SourceError),
    Settings(Vec<SettingError>),
    Refused {
        option: &'static str,
        reason: &'static str,
    },
}

impl LoadError {
    /// One line per problem, ready for stderr.
    pub(crate) fn lines(&self) -> Vec<String> {
        match self {
            LoadError::Source(e) => vec![format!("{e} [{}]", e.code())],
            LoadError::Settings(errors) => {
                errors.iter().map(|e| format!("{e} [{}]", e.code)).collect()
            }
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
    let file = match config_path(args.config.clone()) {
        Some(path) => Layer::from_toml_file(&path).map_err(LoadError::Source)?,
        None => Layer::default(),
    };
    let layers = Layers {
        flags: args.flags.clone(),
        env: Layer::from_env(env).map_err(LoadError::Source)?,
        file,
    };
    ProxySettings::resolve(&layers).map_err(LoadError::Settings)
}

/// Runs `oidc proxy`: checks the settings, then either reports (`--check-config`) or serves
/// until SIGTERM or Ctrl-C.
pub(crate) fn run(args: &ProxyArgs) -> ExitCode {
    let style = Style::for_stderr();
    let settings = match load(args, std::env::vars_os()) {
        Ok(settings) => settings,
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
        print!("{}", report.render(Style::for_stdout()));
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
