//! The upstream of the load tests: a small hyper HTTP/1.1 server on 127.0.0.1.
//!
//! - `GET /download?bytes=N` streams N bytes (64 KiB chunks), for the memory test;
//! - `POST` or `PUT` anything: reads the body to the end and answers with its length;
//! - anything else: `200` with a fixed 63-byte body.
//!
//! Usage: `upstream [--port P] [--port-file FILE] [--max-seconds S]`. It prints
//! `listening 127.0.0.1:P` (and writes P to FILE) once bound, and exits after S seconds
//! (default 600) so that a harness that dies cannot leave it behind.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

const BODY: &[u8] = b"upstream ok: the request reached the service behind the proxy.\n";
const CHUNK: usize = 64 * 1024;

type Body = BoxBody<Bytes, hyper::Error>;

fn main() -> std::process::ExitCode {
    let mut port = 0u16;
    let mut port_file = None;
    let mut max_seconds = 600u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        let parsed = match (arg.as_str(), value) {
            ("--port", Some(v)) => v.parse().map(|p| port = p).is_ok(),
            ("--port-file", Some(v)) => {
                port_file = Some(v);
                true
            }
            ("--max-seconds", Some(v)) => v.parse().map(|s| max_seconds = s).is_ok(),
            _ => false,
        };
        if !parsed {
            eprintln!("upstream: usage: upstream [--port P] [--port-file FILE] [--max-seconds S]");
            return std::process::ExitCode::from(2);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("upstream: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(serve(port, port_file, Duration::from_secs(max_seconds))) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("upstream: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn serve(port: u16, port_file: Option<String>, max: Duration) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    if let Some(file) = port_file {
        std::fs::write(file, addr.port().to_string())?;
    }
    println!("listening {addr}");
    let deadline = tokio::time::sleep(max);
    tokio::pin!(deadline);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = &mut deadline => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    if request.method() == Method::POST || request.method() == Method::PUT {
        let mut body = request.into_body();
        let mut length = 0u64;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    if let Some(data) = frame.data_ref() {
                        length += data.len() as u64;
                    }
                }
                Err(_) => return Ok(status(400)),
            }
        }
        return Ok(Response::new(full(format!("{length}\n"))));
    }
    if request.uri().path() == "/download" {
        let bytes = request
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("bytes="))
            .and_then(|n| n.parse::<u64>().ok());
        return Ok(match bytes {
            Some(n) => Response::new(download(n)),
            None => status(400),
        });
    }
    Ok(Response::new(full(Bytes::from_static(BODY))))
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

fn status(code: u16) -> Response<Body> {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or_default();
    response
}

/// A body of `total` bytes sent in chunks, produced as the client reads.
fn download(total: u64) -> Body {
    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    let stream = futures_stream(total, chunk);
    StreamBody::new(stream).boxed()
}

fn futures_stream(
    total: u64,
    chunk: Bytes,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, hyper::Error>> {
    futures_util::stream::unfold(total, move |left| {
        let chunk = chunk.clone();
        async move {
            if left == 0 {
                return None;
            }
            let n = left.min(chunk.len() as u64);
            let part = chunk.slice(..n as usize);
            Some((Ok(Frame::data(part)), left - n))
        }
    })
}
