//! A closed-loop HTTP/1.1 load generator for loopback benchmarks (hyper client, keep-alive).
//!
//! N connections each send one request, read the whole answer, and send the next, for T
//! seconds after a warm-up (or until a total request count). It prints one line:
//! `rps=... p50_us=... p99_us=... requests=... errors=... first_error=...`, where an error is a
//! failed connection or an answer outside 2xx/3xx.
//!
//! Usage:
//! ```text
//! loadgen --url http://127.0.0.1:8080/path [--connections 16] [--seconds 5] [--warmup 1]
//!         [--threads 1] [--header 'Name: value']... [--rotate-header NAME PREFIX FILE]
//!         [--requests N] [--expect-status 200]
//! ```
//! `--rotate-header` gives each request the next line of FILE (prefixed) as header NAME, for
//! runs with many distinct tokens or cookies. Only loopback addresses are accepted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::header::{HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

struct Options {
    addr: SocketAddr,
    authority: String,
    path: String,
    connections: usize,
    duration: Duration,
    warmup: Duration,
    threads: usize,
    headers: Vec<(HeaderName, HeaderValue)>,
    rotate: Option<(HeaderName, Vec<HeaderValue>)>,
    max_requests: Option<u64>,
    expect_status: Option<u16>,
}

/// What every connection shares.
struct Shared {
    options: Options,
    recording: AtomicBool,
    stop: AtomicBool,
    issued: AtomicU64,
    next_value: AtomicUsize,
    first_error: std::sync::Mutex<Option<String>>,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
}

fn main() -> std::process::ExitCode {
    let options = match parse(std::env::args().skip(1).collect()) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("loadgen: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let shared = Arc::new(Shared {
        options,
        recording: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        issued: AtomicU64::new(0),
        next_value: AtomicUsize::new(0),
        first_error: std::sync::Mutex::new(None),
    });
    let (tally, elapsed) = runtime.block_on(run(shared.clone()));
    report(&shared, tally, elapsed);
    std::process::ExitCode::SUCCESS
}

async fn run(shared: Arc<Shared>) -> (Tally, Duration) {
    let tasks: Vec<_> = (0..shared.options.connections)
        .map(|_| tokio::spawn(connection(shared.clone())))
        .collect();
    tokio::time::sleep(shared.options.warmup).await;
    shared.recording.store(true, Ordering::SeqCst);
    let started = Instant::now();
    if shared.options.max_requests.is_some() {
        // The connections stop themselves at the count; the duration is an upper bound.
        let deadline = started + shared.options.duration;
        while Instant::now() < deadline && !shared.stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    } else {
        tokio::time::sleep(shared.options.duration).await;
    }
    shared.stop.store(true, Ordering::SeqCst);
    let elapsed = started.elapsed();
    let mut total = Tally::default();
    for task in tasks {
        if let Ok(tally) = task.await {
            total.latencies_us.extend(tally.latencies_us);
            total.errors += tally.errors;
        }
    }
    (total, elapsed)
}

async fn connection(shared: Arc<Shared>) -> Tally {
    let mut tally = Tally::default();
    'reconnect: while !shared.stop.load(Ordering::Relaxed) {
        let stream = match TcpStream::connect(shared.options.addr).await {
            Ok(stream) => stream,
            Err(e) => {
                note_error(&shared, &mut tally, format!("connect: {e}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) =
            match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
                Ok(pair) => pair,
                Err(e) => {
                    note_error(&shared, &mut tally, format!("handshake: {e}"));
                    continue;
                }
            };
        tokio::spawn(conn);
        while !shared.stop.load(Ordering::Relaxed) {
            if let Some(max) = shared.options.max_requests
                && shared.recording.load(Ordering::Relaxed)
                && shared.issued.fetch_add(1, Ordering::Relaxed) >= max
            {
                shared.stop.store(true, Ordering::SeqCst);
                break 'reconnect;
            }
            let request = build_request(&shared);
            let recording = shared.recording.load(Ordering::Relaxed);
            let start = Instant::now();
            let outcome = async {
                let response = sender.send_request(request).await?;
                let status = response.status();
                response.into_body().collect().await?;
                Ok::<_, hyper::Error>(status)
            }
            .await;
            let micros = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
            match outcome {
                Ok(status) => {
                    let accepted = match shared.options.expect_status {
                        Some(code) => status.as_u16() == code,
                        None => status.is_success() || status.is_redirection(),
                    };
                    if !recording {
                        continue;
                    }
                    if accepted {
                        tally.latencies_us.push(micros);
                    } else {
                        note_error(&shared, &mut tally, format!("status {status}"));
                    }
                }
                Err(e) => {
                    if recording {
                        note_error(&shared, &mut tally, format!("request: {e}"));
                    }
                    continue 'reconnect;
                }
            }
        }
    }
    tally
}

fn build_request(shared: &Shared) -> Request<Empty<Bytes>> {
    let options = &shared.options;
    let mut request = Request::new(Empty::new());
    *request.uri_mut() = options.path.parse().unwrap_or_default();
    let headers = request.headers_mut();
    if let Ok(host) = HeaderValue::from_str(&options.authority) {
        headers.insert(hyper::header::HOST, host);
    }
    for (name, value) in &options.headers {
        headers.append(name.clone(), value.clone());
    }
    if let Some((name, values)) = &options.rotate
        && !values.is_empty()
    {
        let i = shared.next_value.fetch_add(1, Ordering::Relaxed) % values.len();
        if let Some(value) = values.get(i) {
            headers.insert(name.clone(), value.clone());
        }
    }
    request
}

fn note_error(shared: &Shared, tally: &mut Tally, what: String) {
    tally.errors += 1;
    if let Ok(mut first) = shared.first_error.lock()
        && first.is_none()
    {
        *first = Some(what);
    }
}

fn report(shared: &Shared, mut tally: Tally, elapsed: Duration) {
    tally.latencies_us.sort_unstable();
    let count = tally.latencies_us.len();
    let percentile = |p: f64| -> u32 {
        if count == 0 {
            return 0;
        }
        let index = ((count as f64 * p).ceil() as usize).clamp(1, count) - 1;
        tally.latencies_us.get(index).copied().unwrap_or(0)
    };
    let rps = count as f64 / elapsed.as_secs_f64().max(1e-9);
    let first_error = shared
        .first_error
        .lock()
        .ok()
        .and_then(|e| e.clone())
        .unwrap_or_else(|| "none".into())
        .replace(' ', "_");
    println!(
        "rps={rps:.0} p50_us={} p99_us={} requests={count} errors={} seconds={:.2} first_error={first_error}",
        percentile(0.50),
        percentile(0.99),
        tally.errors,
        elapsed.as_secs_f64()
    );
}

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut url = None;
    let mut connections = 16;
    let mut seconds = 5.0f64;
    let mut warmup = 1.0f64;
    let mut threads = 1;
    let mut headers = Vec::new();
    let mut rotate = None;
    let mut max_requests = None;
    let mut expect_status = None;
    let mut args = args.into_iter();
    let number = |v: Option<String>, what: &str| -> Result<f64, String> {
        v.and_then(|v| v.parse::<f64>().ok())
            .filter(|n| n.is_finite() && *n >= 0.0)
            .ok_or_else(|| format!("{what} needs a non-negative number"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--url" => url = args.next(),
            "--connections" => connections = number(args.next(), "--connections")? as usize,
            "--seconds" => seconds = number(args.next(), "--seconds")?,
            "--warmup" => warmup = number(args.next(), "--warmup")?,
            "--threads" => threads = number(args.next(), "--threads")? as usize,
            "--requests" => max_requests = Some(number(args.next(), "--requests")? as u64),
            "--expect-status" => {
                expect_status = Some(number(args.next(), "--expect-status")? as u16)
            }
            "--header" => {
                let line = args.next().ok_or("--header needs 'Name: value'")?;
                let (name, value) = line.split_once(':').ok_or("--header needs 'Name: value'")?;
                headers.push(header(name.trim(), value.trim())?);
            }
            "--rotate-header" => {
                let (Some(name), Some(prefix), Some(file)) =
                    (args.next(), args.next(), args.next())
                else {
                    return Err("--rotate-header needs NAME PREFIX FILE".into());
                };
                let text = std::fs::read_to_string(&file).map_err(|e| format!("{file}: {e}"))?;
                let mut values = Vec::new();
                for line in text.lines().filter(|l| !l.is_empty()) {
                    values.push(header(&name, &format!("{prefix}{line}"))?.1);
                }
                let name = header(&name, "x")?.0;
                rotate = Some((name, values));
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr: SocketAddr = authority
        .parse()
        .map_err(|_| format!("{authority:?} is not an IP:port"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("{addr} is not a loopback address"));
    }
    if connections == 0 || threads == 0 {
        return Err("--connections and --threads must be at least 1".into());
    }
    Ok(Options {
        addr,
        authority: authority.to_owned(),
        path: path.to_owned(),
        connections,
        duration: Duration::from_secs_f64(seconds.min(600.0)),
        warmup: Duration::from_secs_f64(warmup.min(60.0)),
        threads,
        headers,
        rotate,
        max_requests,
        expect_status,
    })
}

fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("{name:?}: {e}"))?;
    let value = HeaderValue::from_str(value).map_err(|e| format!("header value: {e}"))?;
    Ok((name, value))
}
