//! Two `oidc proxy` processes behind Caddy's load balancer, sharing sessions in a real
//! `redis-server`, all on 127.0.0.1: a sign-in through the balancer is honoured by both
//! replicas, a back-channel logout delivered to replica A ends the session on B at once, bearer
//! tokens keep passing on both while the provider rotates its signing key, and the throughput of
//! two replicas against one is measured and printed.
//!
//! Without `caddy` or `redis-server` the test prints a loud notice and passes, unless `CI` is set.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use oidc_dev_provider::{DevClient, DevProvider, RunningProvider, demo_users};

use crate::support::ports::{answers_ping, free_port, spawn_on_free_port};

const CLIENT_SECRET: &str = "proxy-client-secret-value";
const COOKIE_SECRET: &str = "cookie-secret-with-at-least-32-characters";

fn installed(program: &str) -> bool {
    let found = Command::new(program)
        .arg(if program == "caddy" {
            "version"
        } else {
            "--version"
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} is not installed and CI is set"
        );
        eprintln!(
            "\n\n*** SKIPPED: {program} is not installed; replicas behind Caddy untested ***\n\n"
        );
    }
    found
}

/// Child processes killed when dropped.
#[derive(Default)]
struct Children(Vec<Child>);

impl Children {
    fn push(&mut self, child: Child) {
        self.0.push(child);
    }

    /// Panics when a child has exited (one that lost its port exits at start).
    fn assert_running(&mut self) {
        for child in &mut self.0 {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("a child process exited ({status}): is its port taken?");
            }
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until `url` answers a status `ready` accepts; fails at once when a child exits.
async fn wait_until(children: &mut Children, url: &str, ready: impl Fn(u16) -> bool) {
    let http = reqwest::Client::new();
    for _ in 0..150 {
        if let Ok(answer) = http.get(url).send().await
            && ready(answer.status().as_u16())
        {
            return;
        }
        children.assert_running();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not come up");
}

/// An upstream answering `<label> <x-forwarded-user>`, so the answer names the replica that
/// forwarded it (each replica has its own upstream).
async fn labelled_upstream(label: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let app = Router::new().fallback(move |headers: HeaderMap| async move {
            let user = headers
                .get("x-forwarded-user")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned();
            format!("{label} {user}")
        });
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

fn start_replica(
    children: &mut Children,
    port: u16,
    issuer: &str,
    public_base: &str,
    upstream: SocketAddr,
    redis_port: u16,
) {
    let child = Command::new(env!("CARGO_BIN_EXE_oidc"))
        .args([
            "proxy".to_owned(),
            format!("--http-address=127.0.0.1:{port}"),
            format!("--oidc-issuer-url={issuer}"),
            "--client-id=proxy".to_owned(),
            format!("--redirect-url={public_base}/oauth2/callback"),
            "--cookie-secure=false".to_owned(),
            "--email-domain=*".to_owned(),
            "--reverse-proxy".to_owned(),
            "--skip-jwt-bearer-tokens".to_owned(),
            "--session-store-type=redis".to_owned(),
            format!("--redis-connection-url=redis://127.0.0.1:{redis_port}/"),
            format!("--upstream=http://{upstream}/"),
        ])
        .env("OIDC_PROXY_CLIENT_SECRET", CLIENT_SECRET)
        .env("OIDC_PROXY_COOKIE_SECRET", COOKIE_SECRET)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    children.push(child);
}

/// Caddy on 127.0.0.1:`port`, balancing round-robin over `backends`.
fn start_caddy(children: &mut Children, dir: &std::path::Path, port: u16, backends: &[u16]) {
    let upstreams: Vec<String> = backends.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let caddyfile = dir.join(format!("Caddyfile-{port}"));
    std::fs::write(
        &caddyfile,
        format!(
            "{{\n  admin off\n  auto_https off\n}}\n\
             http://127.0.0.1:{port} {{\n  bind 127.0.0.1\n  reverse_proxy {} {{\n    lb_policy round_robin\n  }}\n}}\n",
            upstreams.join(" ")
        ),
    )
    .unwrap();
    let child = Command::new("caddy")
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&caddyfile)
        .env("HOME", dir)
        .env("XDG_DATA_HOME", dir)
        .env("XDG_CONFIG_HOME", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    children.push(child);
}

#[derive(Default, Debug)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn absorb(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap_or_default();
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || text.contains("Max-Age=0") {
                    self.0.remove(name);
                } else {
                    self.0.insert(name.to_owned(), value.to_owned());
                }
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// A browser sign-in of `user` through `base` (the balancer): every step may land on either
/// replica.
async fn sign_in(http: &reqwest::Client, op: &RunningProvider, base: &str, user: &str) -> Jar {
    let mut jar = Jar::default();
    let start = http
        .get(format!("{base}/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 302);
    jar.absorb(&start);
    op.auto_approve(Some(user));
    let authorized = http.get(location(&start)).send().await.unwrap();
    let callback = location(&authorized);
    let done = http
        .get(&callback)
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 302, "callback");
    jar.absorb(&done);
    jar
}

async fn whoami(http: &reqwest::Client, base: &str, jar: &Jar) -> (u16, String) {
    let answer = http
        .get(format!("{base}/whoami"))
        .header("accept", "application/json")
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap_or_default())
}

/// Requests per second through `base` with `workers` concurrent clients for `length`.
async fn throughput(base: &str, jar: &Jar, workers: usize, length: Duration) -> (f64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let cookie = jar.header();
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (stop, served, failed) = (stop.clone(), served.clone(), failed.clone());
            let (base, cookie) = (base.to_owned(), cookie.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    let ok = http
                        .get(format!("{base}/load"))
                        .header("accept", "application/json")
                        .header("cookie", &cookie)
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200);
                    let counter = if ok { &served } else { &failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    (
        served.load(Ordering::Relaxed) as f64 / seconds,
        failed.load(Ordering::Relaxed),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_caddy_share_sessions_logout_and_keys() {
    if !installed("caddy") || !installed("redis-server") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("oidc-replicas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = RemoveOnDrop(dir.clone());
    let mut children = Children::default();

    let (redis, redis_port) = spawn_on_free_port("redis-server", answers_ping, |port| {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"]);
        command
    });
    children.push(redis);

    let (a_port, b_port, balancer_port, single_port) =
        (free_port(), free_port(), free_port(), free_port());
    let balancer = format!("http://127.0.0.1:{balancer_port}");
    let mut builder = DevProvider::builder().client(
        DevClient::confidential("proxy", CLIENT_SECRET)
            .redirect_uri(format!("{balancer}/oauth2/callback"))
            .backchannel_logout_uri(format!(
                "http://127.0.0.1:{a_port}/oauth2/backchannel_logout"
            )),
    );
    for user in demo_users() {
        builder = builder.user(user);
    }
    let op = builder
        .build()
        .unwrap()
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let issuer = op.issuer().as_str().to_owned();

    let (upstream_a, upstream_b) = (labelled_upstream("A").await, labelled_upstream("B").await);
    start_replica(
        &mut children,
        a_port,
        &issuer,
        &balancer,
        upstream_a,
        redis_port,
    );
    start_replica(
        &mut children,
        b_port,
        &issuer,
        &balancer,
        upstream_b,
        redis_port,
    );
    start_caddy(&mut children, &dir, balancer_port, &[a_port, b_port]);
    for port in [a_port, b_port] {
        wait_until(
            &mut children,
            &format!("http://127.0.0.1:{port}/readyz"),
            |s| s == 200,
        )
        .await;
    }
    wait_until(&mut children, &format!("{balancer}/readyz"), |s| s == 200).await;

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let jar = sign_in(&http, &op, &balancer, "alice").await;

    // Through the balancer, requests land on both replicas and all are served.
    let mut seen = BTreeMap::new();
    for _ in 0..20 {
        let (status, body) = whoami(&http, &balancer, &jar).await;
        assert_eq!(status, 200, "{body}");
        let (replica, user) = body.split_once(' ').unwrap();
        assert_eq!(user, "alice");
        *seen.entry(replica.to_owned()).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 2, "both replicas served: {seen:?}");
    // And directly on each.
    for port in [a_port, b_port] {
        let (status, _) = whoami(&http, &format!("http://127.0.0.1:{port}"), &jar).await;
        assert_eq!(status, 200);
    }

    // Keys rotated at the provider under bearer traffic on both replicas: tokens signed with the
    // old key and, once it exists, with the new one are accepted by both throughout (each
    // replica fetches the key set again for the unknown key id).
    let tokens = Arc::new(std::sync::Mutex::new(vec![
        op.mint_access_token("bob", "proxy").unwrap(),
    ]));
    let stop = Arc::new(AtomicBool::new(false));
    let traffic: Vec<_> = [a_port, b_port]
        .into_iter()
        .map(|port| {
            let (http, tokens, stop) = (http.clone(), tokens.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut served, mut refused) = (0u32, Vec::new());
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let token = {
                        let tokens = tokens.lock().unwrap();
                        tokens[i % tokens.len()].clone()
                    };
                    i += 1;
                    let status = http
                        .get(format!("http://127.0.0.1:{port}/bearer"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .map_or(0, |r| r.status().as_u16());
                    if status == 200 {
                        served += 1;
                    } else {
                        refused.push(status);
                    }
                }
                (port, served, refused)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    op.rotate_keys().unwrap();
    let signed_with_new_key = op.mint_access_token("bob", "proxy").unwrap();
    tokens.lock().unwrap().push(signed_with_new_key);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for task in traffic {
        let (port, served, refused) = task.await.unwrap();
        assert!(served > 10, "replica on {port} served {served}");
        assert!(refused.is_empty(), "replica on {port} refused {refused:?}");
    }

    // Throughput, two replicas against one, both behind Caddy.
    start_caddy(&mut children, &dir, single_port, &[a_port]);
    let single = format!("http://127.0.0.1:{single_port}");
    wait_until(&mut children, &format!("{single}/readyz"), |s| s == 200).await;
    let (one, one_failed) = throughput(&single, &jar, 8, Duration::from_secs(3)).await;
    let (two, two_failed) = throughput(&balancer, &jar, 8, Duration::from_secs(3)).await;
    eprintln!(
        "session requests through Caddy, 8 clients, 3 s each: one replica {one:.0}/s, \
         two replicas {two:.0}/s ({:.2}x); failed: {one_failed} and {two_failed}; \
         this machine has {} cores shared by everything in the test",
        two / one,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    assert_eq!(one_failed + two_failed, 0);

    // Back-channel logout delivered to replica A ends the session on B at once.
    let deliveries = op.logout_user("alice").await;
    assert!(
        !deliveries.is_empty() && deliveries.iter().all(|d| d.outcome == Ok(200)),
        "{deliveries:?}"
    );
    let (status, _) = whoami(&http, &format!("http://127.0.0.1:{b_port}"), &jar).await;
    assert_eq!(status, 401, "replica B after the logout delivered to A");
    let (status, _) = whoami(&http, &balancer, &jar).await;
    assert_eq!(status, 401);
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
