//! The OpenID Provider of the load tests: binds 127.0.0.1, makes an RSA key for the issuer
//! `http://127.0.0.1:PORT`, writes what the harness needs into a folder, then serves discovery
//! and the key set over plain HTTP until its time is up.
//!
//! Usage: `benchop --dir DIR [--audience A] [--tokens N] [--max-seconds S]`.
//!
//! Files written in DIR: `issuer.txt`, `port.txt`, `jwks.json`, `discovery.json`, `token.txt`
//! (one token) and, with `--tokens N`, `tokens.txt` (N distinct tokens, one a line). `port.txt`
//! is written last, so a harness waits for it.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use oidc_benches::live::LiveSigner;
use tokio::net::TcpListener;

struct Options {
    dir: PathBuf,
    audience: String,
    tokens: usize,
    max_seconds: u64,
}

fn main() -> std::process::ExitCode {
    let options = match parse() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("benchop: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("benchop: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("benchop: {message}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(options: Options) -> Result<(), String> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let issuer = format!("http://127.0.0.1:{port}");
    let signer = LiveSigner::generate(&issuer, &options.audience).map_err(|e| e.to_string())?;
    let discovery = signer.discovery().to_string();
    let jwks = signer.jwks().to_string();
    let dir = &options.dir;
    write(dir, "issuer.txt", &issuer)?;
    write(dir, "jwks.json", &jwks)?;
    write(dir, "discovery.json", &discovery)?;
    write(
        dir,
        "token.txt",
        &signer.mint("load-user").map_err(|e| e.to_string())?,
    )?;
    if options.tokens > 0 {
        let mut all = String::with_capacity(options.tokens * 1300);
        for i in 0..options.tokens {
            all.push_str(
                &signer
                    .mint(&format!("user-{i}"))
                    .map_err(|e| e.to_string())?,
            );
            all.push('\n');
        }
        write(dir, "tokens.txt", &all)?;
    }
    write(dir, "port.txt", &port.to_string())?;
    let discovery = Bytes::from(discovery);
    let jwks = Bytes::from(jwks);
    let deadline = tokio::time::sleep(Duration::from_secs(options.max_seconds));
    tokio::pin!(deadline);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted.map_err(|e| format!("accept: {e}"))?,
            _ = &mut deadline => return Ok(()),
        };
        let (discovery, jwks) = (discovery.clone(), jwks.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let body = match request.uri().path() {
                    "/.well-known/openid-configuration" => Some(discovery.clone()),
                    "/jwks" => Some(jwks.clone()),
                    _ => None,
                };
                async move { Ok::<_, Infallible>(answer(body)) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(body: Option<Bytes>) -> Response<Full<Bytes>> {
    let found = body.is_some();
    let mut response = Response::new(Full::new(body.unwrap_or_default()));
    if found {
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
    } else {
        *response.status_mut() = hyper::StatusCode::NOT_FOUND;
    }
    response
}

fn write(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse() -> Result<Options, String> {
    let mut dir = None;
    let mut audience = "api://load".to_owned();
    let mut tokens = 0usize;
    let mut max_seconds = 600u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--dir" => dir = Some(PathBuf::from(value)),
            "--audience" => audience = value,
            "--tokens" => tokens = value.parse().map_err(|_| "--tokens needs a count")?,
            "--max-seconds" => {
                max_seconds = value.parse().map_err(|_| "--max-seconds needs a count")?
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Options {
        dir: dir.ok_or("--dir is required")?,
        audience,
        tokens,
        max_seconds,
    })
}
