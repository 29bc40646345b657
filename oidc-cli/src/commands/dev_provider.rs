//! `oidc dev-provider`: the development OpenID Provider on loopback, with test users, until
//! Ctrl-C or SIGTERM. SIGHUP rotates the signing key. Not for production, and it says so.

use std::process::ExitCode;
use std::time::Duration;

use oidc_dev_provider::{
    DevClient, DevProvider, ProviderConfig, RunningProvider, SigningAlgorithm, demo_users,
};

use crate::args::DevProviderArgs;
use crate::error::EXIT_USAGE_OR_IO;
use crate::output::Style;

/// The public client `oidc login` uses against the dev provider (RFC 8252 loopback redirect,
/// any port).
pub(crate) const CLI_CLIENT_ID: &str = "oidc-cli";

/// The clients of a provider whose proxy listens on `proxy_port`: the confidential `demo`
/// (secret `demo-secret`), the public `demo-public`, and the public [`CLI_CLIENT_ID`].
pub(crate) fn default_clients(proxy_port: u16) -> Vec<DevClient> {
    let with_uris = |client: DevClient| {
        let mut client = client;
        for host in ["127.0.0.1", "localhost"] {
            client = client
                .redirect_uri(format!("http://{host}:{proxy_port}/oauth2/callback"))
                .post_logout_redirect_uri(format!("http://{host}:{proxy_port}/"))
                .post_logout_redirect_uri(format!("http://{host}:{proxy_port}/oauth2/signed_out"));
        }
        client
    };
    vec![
        with_uris(
            DevClient::confidential("demo", "demo-secret").backchannel_logout_uri(format!(
                "http://127.0.0.1:{proxy_port}/oauth2/backchannel_logout"
            )),
        ),
        with_uris(DevClient::public("demo-public")),
        DevClient::public(CLI_CLIENT_ID)
            .redirect_uri("http://127.0.0.1/callback")
            .redirect_uri("http://[::1]/callback"),
    ]
}

/// What the sign-in page says when the demo users are in use.
pub(crate) const DEMO_USERS_NOTE: &str =
    "Demo users: alice, password alice (groups admins, users); bob, password bob (group users).";

/// Runs the provider until a shutdown signal.
pub(crate) fn run(args: &DevProviderArgs) -> ExitCode {
    crate::logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the I/O runtime: {e}"), None),
    };
    runtime.block_on(async {
        let running = match start(args).await {
            Ok(running) => running,
            Err((message, hint)) => return fail(&message, hint),
        };
        print_banner(&running, args);
        serve_until_shutdown(&running, args.rotate_every).await;
        running.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Builds and starts the provider from the arguments.
pub(crate) async fn start(
    args: &DevProviderArgs,
) -> Result<RunningProvider, (String, Option<&'static str>)> {
    let mut builder = DevProvider::builder()
        .insecure_allow_non_loopback(args.insecure_allow_non_loopback)
        .access_token_lifetime(Duration::from_secs(args.access_token_lifetime))
        .signing_algorithm(match args.signing_alg.as_str() {
            "ES256" => SigningAlgorithm::Es256,
            _ => SigningAlgorithm::Rs256,
        });
    if let Some(issuer) = &args.issuer {
        builder = builder.issuer(issuer.clone());
    }
    match &args.config {
        Some(path) => {
            let config = ProviderConfig::from_file(path).map_err(|e| {
                (
                    format!("{e} [{}]", e.code()),
                    Some("see `oidc dev-provider --help` for the file's form"),
                )
            })?;
            builder = builder.config(&config);
        }
        None => {
            for user in demo_users() {
                builder = builder.user(user);
            }
            builder = builder.sign_in_note(DEMO_USERS_NOTE);
            for client in default_clients(args.proxy_port) {
                builder = builder.client(client);
            }
        }
    }
    let provider = builder
        .build()
        .map_err(|e| (format!("{e} [{}]", e.code()), None))?;
    provider.serve(args.listen).await.map_err(|e| {
        let hint = match e.code() {
            "non_loopback_address" => {
                Some("the dev provider binds to loopback; --insecure-allow-non-loopback overrides")
            }
            _ => Some("is the port taken? choose another with --listen"),
        };
        (format!("{e} [{}]", e.code()), hint)
    })
}

fn print_banner(running: &RunningProvider, args: &DevProviderArgs) {
    let style = Style::for_stderr();
    eprintln!(
        "{}",
        style.red("DEVELOPMENT OpenID Provider: NOT FOR PRODUCTION (test users, test keys, no real security)")
    );
    if args.config.is_none() {
        eprintln!("users:   alice/alice (groups admins, users), bob/bob (group users)");
        eprintln!(
            "clients: demo/demo-secret and demo-public (callback http://127.0.0.1:{}/oauth2/callback), {CLI_CLIENT_ID} (public, loopback any port)",
            args.proxy_port
        );
    }
    eprintln!("SIGHUP rotates the signing key; Ctrl-C stops.");
    println!("issuer {}", running.issuer().as_str());
}

/// Waits for Ctrl-C or SIGTERM; meanwhile SIGHUP (and `rotate_every`, when set) rotate keys.
pub(crate) async fn serve_until_shutdown(running: &RunningProvider, rotate_every: Option<u64>) {
    let shutdown = oidc_tower::proxy::shutdown_signal();
    tokio::pin!(shutdown);
    let mut every = rotate_every.filter(|s| *s > 0).map(|s| {
        tokio::time::interval_at(
            tokio::time::Instant::now() + Duration::from_secs(s),
            Duration::from_secs(s),
        )
    });
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<()>();
        let tick = async {
            match every.as_mut() {
                Some(interval) => {
                    interval.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = &mut shutdown => break,
            () = hup => rotate(running),
            () = tick => rotate(running),
        }
    }
}

fn rotate(running: &RunningProvider) {
    match running.rotate_keys() {
        Ok(kid) => tracing::info!(kid, "signing key rotated; the old key stays published"),
        Err(e) => tracing::error!(error = %e, "key rotation failed"),
    }
}

fn fail(message: &str, hint: Option<&str>) -> ExitCode {
    let style = Style::for_stderr();
    eprintln!("{} {message}", style.red("oidc:"));
    if let Some(hint) = hint {
        eprintln!("{} {hint}", style.bold("hint:"));
    }
    ExitCode::from(EXIT_USAGE_OR_IO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_clients_register_the_proxy_callback_on_its_port() {
        let clients = default_clients(5180);
        let ids: Vec<&str> = clients.iter().map(DevClient::client_id).collect();
        assert_eq!(ids, ["demo", "demo-public", CLI_CLIENT_ID]);
    }
}
