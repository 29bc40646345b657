//! A loopback redirect receiver for native apps (RFC 8252 §7.3): a desktop or command-line tool
//! listens on `127.0.0.1`, sends the browser to the provider with
//! `redirect_uri=http://127.0.0.1:{port}/callback`, and reads the code from the one request the
//! browser then makes.
//!
//! ```no_run
//! # async fn demo() -> Result<(), oidc_tower::loopback::LoopbackError> {
//! use std::time::Duration;
//!
//! let receiver = oidc_tower::loopback::LoopbackRedirect::bind(0).await?;
//! // Start the login (`oidc_core::login::start_login`) with this redirect URI ...
//! let redirect_uri = receiver.redirect_uri().clone();
//! // ... open the authorization URL in a browser, then:
//! let params = receiver.wait(Duration::from_secs(300)).await?;
//! // and hand `params` to `oidc_core::login::handle_callback`.
//! # let _ = (redirect_uri, params);
//! # Ok(())
//! # }
//! ```
//!
//! The callback is answered with a page telling the user to return to the terminal, or, when it
//! carries the provider's `error` (such as `access_denied`), with an error page (status 400)
//! naming the error. Whatever arrives on the socket is answered and never ends the wait except a
//! well-formed `GET /callback?...`: a request for another path gets 404, a malformed request line 400, a
//! head over [`MAX_CALLBACK_REQUEST_BYTES`] 431, and a connection that sends nothing is dropped
//! after [`READ_TIMEOUT`]. Connections are served concurrently (at most
//! [`MAX_CONNECTIONS`] at once), so a browser's idle pre-connection does not hold up the
//! callback.

use std::borrow::Cow;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use oidc_core::ErrorKind;
use oidc_core::login::CallbackParams;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

use crate::bearer_response::escape_html;

/// The path of the redirect URI.
pub const CALLBACK_PATH: &str = "/callback";

/// Bytes of a request head read at most (request line and headers).
pub const MAX_CALLBACK_REQUEST_BYTES: usize = 16 * 1024;

/// How long one connection may take to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections served at once; more are closed at once until one finishes.
pub const MAX_CONNECTIONS: usize = 16;

const SIGNED_IN_PAGE: &str = "<!doctype html><title>oidc login</title><p>Signed in. You can close this tab and return to the terminal.</p>";

/// Characters of the provider's `error_description` shown on the error page at most.
const MAX_SHOWN_DESCRIPTION_CHARS: usize = 500;

/// Why the receiver could not give the callback's parameters.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoopbackError {
    /// Listening on `127.0.0.1:{port}` failed (the port is taken, or not allowed).
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind {
        /// The port asked for (0 for any).
        port: u16,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// No well-formed callback arrived in time.
    #[error("no sign-in within {}s", .after.as_secs())]
    TimedOut {
        /// How long the receiver waited.
        after: Duration,
    },
}

impl LoopbackError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LoopbackError::Bind { .. } => ErrorKind::LoopbackBindFailed,
            LoopbackError::TimedOut { .. } => ErrorKind::LoginTimedOut,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// A listener on `127.0.0.1` waiting for the browser to come back from the provider.
#[derive(Debug)]
pub struct LoopbackRedirect {
    listener: TcpListener,
    redirect_uri: Url,
}

impl LoopbackRedirect {
    /// Listens on `127.0.0.1:{port}`; `0` picks any free port.
    pub async fn bind(port: u16) -> Result<Self, LoopbackError> {
        let bind_error = |source| LoopbackError::Bind { port, source };
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(bind_error)?;
        let bound = listener.local_addr().map_err(bind_error)?.port();
        let redirect_uri = Url::parse(&format!("http://127.0.0.1:{bound}{CALLBACK_PATH}"))
            .map_err(|e| bind_error(std::io::Error::other(e)))?;
        Ok(LoopbackRedirect {
            listener,
            redirect_uri,
        })
    }

    /// The redirect URI to register and to send in the authorization request:
    /// `http://127.0.0.1:{port}/callback`.
    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.redirect_uri.port().unwrap_or_default()
    }

    /// Serves connections until one brings a well-formed `GET /callback?...`, answers it with a
    /// page telling the user to return to the application, and gives its parameters; or gives
    /// up after `timeout`. The parameters may carry the provider's `error`: the page then says
    /// that the sign-in failed, naming the error code and description (status 400), and the
    /// core's `handle_callback` turns them into its typed error.
    pub async fn wait(&self, timeout: Duration) -> Result<CallbackParams, LoopbackError> {
        tokio::time::timeout(timeout, self.serve_until_callback())
            .await
            .map_err(|_| LoopbackError::TimedOut { after: timeout })
    }

    async fn serve_until_callback(&self) -> CallbackParams {
        let mut connections = FuturesUnordered::new();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    if let Ok((stream, _)) = accepted
                        && connections.len() < MAX_CONNECTIONS
                    {
                        connections.push(serve_connection(stream));
                    }
                }
                Some(params) = connections.next(), if !connections.is_empty() => {
                    if let Some(params) = params {
                        return params;
                    }
                }
            }
        }
    }
}

/// Reads one request head, answers it, and gives the callback's parameters if it was one.
async fn serve_connection(mut stream: TcpStream) -> Option<CallbackParams> {
    let head = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream))
        .await
        .ok()?;
    let (status, body, params) = match head {
        Head::Complete(bytes) => answer(&bytes),
        Head::TooLarge => (
            "431 Request Header Fields Too Large",
            "<p>Request too large.</p>".into(),
            None,
        ),
        Head::Closed => return None,
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncache-control: no-store\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
    params
}

enum Head {
    Complete(Vec<u8>),
    TooLarge,
    Closed,
}

async fn read_head(stream: &mut TcpStream) -> Head {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        if buffer.windows(4).any(|w| w == b"\r\n\r\n") {
            return Head::Complete(buffer);
        }
        if buffer.len() >= MAX_CALLBACK_REQUEST_BYTES {
            return Head::TooLarge;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Head::Closed,
            Ok(n) => buffer.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    }
}

/// The status, page and parameters for a complete request head.
fn answer(head: &[u8]) -> (&'static str, Cow<'static, str>, Option<CallbackParams>) {
    let Some(target) = request_target(head) else {
        return ("400 Bad Request", "<p>Bad request.</p>".into(), None);
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != CALLBACK_PATH {
        return ("404 Not Found", "<p>Not found.</p>".into(), None);
    }
    match CallbackParams::from_query(query) {
        Ok(params) => match &params.error {
            Some(error) => (
                "400 Bad Request",
                error_page(error, params.error_description.as_deref()).into(),
                Some(params),
            ),
            None => ("200 OK", SIGNED_IN_PAGE.into(), Some(params)),
        },
        Err(_) => ("400 Bad Request", "<p>Malformed callback.</p>".into(), None),
    }
}

/// The page for a callback that carries the provider's `error`: the sign-in failed, with the
/// code and (cut) description, both escaped.
fn error_page(error: &str, description: Option<&str>) -> String {
    let description = description
        .map(|d| {
            let shown: String = d.chars().take(MAX_SHOWN_DESCRIPTION_CHARS).collect();
            format!("<p>{}</p>", escape_html(&shown))
        })
        .unwrap_or_default();
    format!(
        "<!doctype html><title>oidc login failed</title><p>Sign-in failed: the provider answered <code>{}</code>.</p>{description}<p>You can close this tab; the terminal says what to do next.</p>",
        escape_html(error)
    )
}

/// The request target of a `GET` request line, if the bytes start with one.
fn request_target(head: &[u8]) -> Option<&str> {
    let line_end = head.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(head.get(..line_end)?).ok()?;
    let mut parts = line.split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("GET"), Some(target), Some(version), None) if version.starts_with("HTTP/") => {
            Some(target)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_come_from_get_request_lines_only() {
        assert_eq!(
            request_target(b"GET /callback?code=a&state=b HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some("/callback?code=a&state=b")
        );
        assert_eq!(request_target(b"POST /callback HTTP/1.1\r\n\r\n"), None);
        assert_eq!(request_target(b"GET /callback\r\n"), None);
        assert_eq!(request_target(b"GET /callback HTTP/1.1"), None);
        assert_eq!(request_target(b"GET /a b HTTP/1.1\r\n"), None);
        assert_eq!(request_target(&[0xff, 0xfe, b'\r', b'\n']), None);
    }

    #[test]
    fn answers_depend_on_path_and_query() {
        let ok = answer(b"GET /callback?code=c&state=s HTTP/1.1\r\n\r\n");
        assert_eq!(ok.0, "200 OK");
        assert_eq!(ok.2.and_then(|p| p.state).as_deref(), Some("s"));
        assert_eq!(
            answer(b"GET /favicon.ico HTTP/1.1\r\n\r\n").0,
            "404 Not Found"
        );
        assert_eq!(
            answer(b"BREW /callback HTCPCP/1.0\r\n\r\n").0,
            "400 Bad Request"
        );
        assert_eq!(
            answer(b"GET /callback?state=a&state=b HTTP/1.1\r\n\r\n").0,
            "400 Bad Request"
        );
    }

    #[test]
    fn a_callback_with_the_providers_error_gets_an_error_page_and_keeps_its_parameters() {
        let (status, page, params) = answer(
            b"GET /callback?error=access_denied&error_description=The+user+said+%3Cb%3Eno%3C%2Fb%3E+%26+left&state=s HTTP/1.1\r\n\r\n",
        );
        assert_eq!(status, "400 Bad Request");
        assert!(!page.contains("Signed in"), "{page}");
        assert!(
            page.contains("Sign-in failed: the provider answered <code>access_denied</code>."),
            "{page}"
        );
        assert!(
            page.contains("<p>The user said &lt;b&gt;no&lt;/b&gt; &amp; left</p>"),
            "{page}"
        );
        let params = params.expect("the parameters reach the caller, which reports the error");
        assert_eq!(params.error.as_deref(), Some("access_denied"));
        assert_eq!(params.state.as_deref(), Some("s"));
    }

    #[test]
    fn error_codes_and_descriptions_are_escaped_and_cut() {
        let (_, page, _) =
            answer(b"GET /callback?error=%3Cscript%3Ealert(1)%3C%2Fscript%3E HTTP/1.1\r\n\r\n");
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>"));

        let long = "x".repeat(2 * MAX_SHOWN_DESCRIPTION_CHARS);
        let page = error_page("server_error", Some(&long));
        assert!(page.contains(&format!(
            "<p>{}</p>",
            "x".repeat(MAX_SHOWN_DESCRIPTION_CHARS)
        )));
        assert!(!page.contains(&"x".repeat(MAX_SHOWN_DESCRIPTION_CHARS + 1)));
    }

    proptest::proptest! {
        #[test]
        fn request_heads_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = request_target(&bytes);
            let _ = answer(&bytes);
        }
    }
}
