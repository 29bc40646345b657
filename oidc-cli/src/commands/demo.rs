//! `oidc demo`: the whole picture on one machine, with nothing to install. Starts the dev
//! provider, a small upstream that shows the identity headers it receives, and the proxy in
//! front of it, all on loopback; prints the URL to open, the user to sign in as, and a curl
//! line with a bearer token. Ctrl-C stops all three.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::http::HeaderMap;
use axum::response::Html;
use oidc_dev_provider::RunningProvider;

use super::dev_provider;
use crate::args::{DemoArgs, DevProviderArgs};
use crate::error::EXIT_USAGE_OR_IO;
use crate::output::Style;
use crate::proxy::settings::ProxySettings;
use crate::proxy::sources::{Layer, Layers, Source, Sourced};

/// The user the demo signs in as.
pub(crate) const DEMO_USER: (&str, &str) = ("alice", "alice");
/// The cookie secret of the demo proxy (a demo on loopback: not a secret worth keeping).
const DEMO_COOKIE_SECRET: &str = "oidc-demo-cookie-secret-not-for-production-use";

/// The three ports of a demo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DemoPorts {
    pub(crate) proxy: u16,
    pub(crate) provider: u16,
    pub(crate) upstream: u16,
}

impl DemoPorts {
    pub(crate) fn from_args(args: &DemoArgs) -> Self {
        match args.port_base {
            Some(base) => DemoPorts {
                proxy: base,
                provider: base.saturating_add(1),
                upstream: base.saturating_add(2),
            },
            None => DemoPorts {
                proxy: args.proxy_port,
                provider: args.provider_port,
                upstream: args.upstream_port,
            },
        }
    }
}

/// Why the demo stopped: one line of what went wrong and, where one helps, a hint.
struct DemoError {
    message: String,
    hint: Option<String>,
}

impl DemoError {
    fn plain(message: impl Into<String>) -> Self {
        DemoError {
            message: message.into(),
            hint: None,
        }
    }

    /// A port of the demo that is taken.
    fn port_taken(role: &str, addr: SocketAddr, error: &std::io::Error, flag: &str) -> Self {
        DemoError {
            message: format!("cannot listen on {addr} for the {role}: {error}"),
            hint: Some(format!(
                "another program uses port {}; move all three ports with --port-base (e.g. `oidc demo --port-base 14180`) or this one with --{flag}",
                addr.port()
            )),
        }
    }
}

/// Runs the demo until Ctrl-C or SIGTERM.
pub(crate) fn run(args: &DemoArgs) -> ExitCode {
    crate::logging::init();
    let ports = DemoPorts::from_args(args);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return fail(&DemoError::plain(format!(
                "cannot start the I/O runtime: {e}"
            )));
        }
    };
    runtime.block_on(async move {
        match run_demo(ports).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => fail(&error),
        }
    })
}

async fn run_demo(ports: DemoPorts) -> Result<(), DemoError> {
    // The proxy's and the provider's ports are checked before anything starts, so that a taken
    // port (4180 is oauth2-proxy's default) is reported alone; each binds its port again when
    // it starts.
    for (role, port, flag) in [
        ("proxy", ports.proxy, "proxy-port"),
        ("provider", ports.provider, "provider-port"),
    ] {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        drop(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| DemoError::port_taken(role, addr, &e, flag))?,
        );
    }
    let upstream_addr = SocketAddr::from(([127, 0, 0, 1], ports.upstream));
    let upstream = tokio::net::TcpListener::bind(upstream_addr)
        .await
        .map_err(|e| DemoError::port_taken("upstream", upstream_addr, &e, "upstream-port"))?;
    let provider = start_provider(ports).await?;
    let (stop_upstream, upstream_stopped) = tokio::sync::oneshot::channel::<()>();
    let upstream_task = tokio::spawn(async move {
        let app = Router::new().fallback(show_identity);
        let _ = axum::serve(upstream, app)
            .with_graceful_shutdown(async {
                let _ = upstream_stopped.await;
            })
            .await;
    });
    let settings = proxy_settings(ports, provider.issuer().as_str()).map_err(DemoError::plain)?;
    let token = provider
        .mint_access_token(DEMO_USER.0, "demo")
        .map_err(|e| DemoError::plain(format!("cannot mint the demo bearer token: {e}")))?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    let proxy_url = format!("http://127.0.0.1:{}", ports.proxy);
    let announce = tokio::spawn({
        let proxy_url = proxy_url.clone();
        async move {
            if ready_rx.await.is_ok() {
                print_instructions(&proxy_url, &token);
            }
        }
    });
    let result = crate::proxy::server::run_with_ready(
        settings,
        oidc_tower::proxy::shutdown_signal(),
        Some(ready_tx),
    )
    .await;
    announce.abort();
    let _ = stop_upstream.send(());
    let _ = upstream_task.await;
    provider.shutdown().await;
    result.map_err(|e| match e {
        crate::proxy::server::ServeError::Bind { addr, source } => {
            DemoError::port_taken("proxy", addr, &source, "proxy-port")
        }
        other => DemoError {
            message: other.to_string(),
            hint: other.hint().map(str::to_owned),
        },
    })
}

async fn start_provider(ports: DemoPorts) -> Result<RunningProvider, DemoError> {
    let args = DevProviderArgs {
        listen: SocketAddr::from(([127, 0, 0, 1], ports.provider)),
        issuer: None,
        config: None,
        signing_alg: "RS256".to_owned(),
        access_token_lifetime: 3600,
        rotate_every: None,
        proxy_port: ports.proxy,
        insecure_allow_non_loopback: false,
    };
    dev_provider::start(&args)
        .await
        .map_err(|(message, _)| DemoError {
            message,
            hint: Some(format!(
                "another program (another demo?) uses port {}; move all three ports with --port-base (e.g. `oidc demo --port-base 14180`) or this one with --provider-port",
                ports.provider
            )),
        })
}

/// The proxy's settings, through the same resolution (and checks) as `oidc proxy` flags.
pub(crate) fn proxy_settings(ports: DemoPorts, issuer: &str) -> Result<ProxySettings, String> {
    let proxy = format!("127.0.0.1:{}", ports.proxy);
    let pairs: [(&'static str, String); 10] = [
        ("http-address", proxy.clone()),
        ("upstream", format!("http://127.0.0.1:{}/", ports.upstream)),
        ("oidc-issuer-url", issuer.to_owned()),
        ("client-id", "demo".to_owned()),
        ("client-secret", "demo-secret".to_owned()),
        ("redirect-url", format!("http://{proxy}/oauth2/callback")),
        ("cookie-secret", DEMO_COOKIE_SECRET.to_owned()),
        ("cookie-secure", "false".to_owned()),
        ("email-domain", "*".to_owned()),
        ("skip-jwt-bearer-tokens", "true".to_owned()),
    ];
    let mut flags = Layer::default();
    for (name, value) in pairs {
        flags.set(
            name,
            vec![Sourced {
                value,
                source: Source::Flag { name },
            }],
        );
    }
    let layers = Layers {
        flags,
        ..Layers::default()
    };
    ProxySettings::resolve(&layers).map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

fn print_instructions(proxy_url: &str, token: &str) {
    let style = Style::for_stdout();
    println!(
        "{}",
        style.bold("oidc demo: provider, upstream and proxy are running on loopback")
    );
    println!("open {proxy_url}/");
    println!("sign in as {} / password {}", DEMO_USER.0, DEMO_USER.1);
    println!("curl -H 'Authorization: Bearer {token}' {proxy_url}/");
    println!("Ctrl-C stops all three.");
}

/// The upstream: an HTML page listing the identity headers the proxy set.
async fn show_identity(headers: HeaderMap) -> Html<String> {
    let mut rows = String::new();
    let mut names: Vec<&str> = headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| name.starts_with("x-forwarded-") || name.starts_with("x-auth-request-"))
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        for value in headers.get_all(name) {
            let value = String::from_utf8_lossy(value.as_bytes());
            rows.push_str(&format!(
                "<tr><th>{}</th><td>{}</td></tr>\n",
                escape_html(name),
                escape_html(&value)
            ));
        }
    }
    if rows.is_empty() {
        rows.push_str(
            "<tr><td>no identity headers: this request did not come through the proxy</td></tr>\n",
        );
    }
    Html(format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>oidc demo upstream</title></head>\n<body><h1>Hello from the upstream</h1>\n<p>The proxy signed you in and passed these headers:</p>\n<table>\n{rows}</table>\n<p><a href=\"/oauth2/sign_out\">Sign out</a></p></body></html>\n"
    ))
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn fail(error: &DemoError) -> ExitCode {
    let style = Style::for_stderr();
    eprintln!("{} {}", style.red("oidc:"), error.message);
    if let Some(hint) = &error.hint {
        eprintln!("{} {hint}", style.bold("hint:"));
    }
    ExitCode::from(EXIT_USAGE_OR_IO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_move_together_with_a_base() {
        let args = DemoArgs {
            port_base: Some(5000),
            proxy_port: 4180,
            provider_port: 9090,
            upstream_port: 8081,
        };
        assert_eq!(
            DemoPorts::from_args(&args),
            DemoPorts {
                proxy: 5000,
                provider: 5001,
                upstream: 5002
            }
        );
    }

    #[test]
    fn the_demo_settings_pass_the_proxy_checks() {
        let ports = DemoPorts {
            proxy: 4180,
            provider: 9090,
            upstream: 8081,
        };
        let settings = proxy_settings(ports, "http://127.0.0.1:9090").unwrap();
        assert!(settings.accept_bearer);
        assert!(!settings.cookie_secure);
        assert_eq!(settings.upstreams[0].url.as_str(), "http://127.0.0.1:8081/");
    }

    #[test]
    fn header_values_are_escaped() {
        assert_eq!(
            escape_html("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }
}
