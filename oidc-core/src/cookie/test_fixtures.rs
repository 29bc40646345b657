//! Keys, times, payloads and header helpers shared by the cookie tests.

use http::HeaderValue;
use serde::{Deserialize, Serialize};

use super::{CookieCodec, CookieKeys, CookieSettings};
use crate::secret::Secret;
use crate::time::UnixTime;

pub(super) const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);
pub(super) const LATER: UnixTime = UnixTime::from_secs(1_700_003_600);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Payload {
    pub(super) user: String,
    pub(super) blob: String,
}

pub(super) fn payload(blob_len: usize) -> Payload {
    Payload {
        user: "alice".into(),
        blob: "x".repeat(blob_len),
    }
}

pub(super) fn keys(secrets: &[&str]) -> CookieKeys {
    let secrets: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s)).collect();
    CookieKeys::from_secrets(&secrets).unwrap()
}

pub(super) const SECRET_A: &str = "correct horse battery staple, forty bytes";
pub(super) const SECRET_B: &str = "another secret passphrase of 32+ bytes!!";

pub(super) fn loopback() -> url::Url {
    url::Url::parse("http://127.0.0.1:8080/").unwrap()
}

pub(super) fn codec() -> CookieCodec {
    CookieCodec::new(keys(&[SECRET_A]), CookieSettings::new("oidc_session")).unwrap()
}

pub(super) fn strings(headers: &[HeaderValue]) -> Vec<String> {
    headers
        .iter()
        .map(|h| h.to_str().unwrap().to_owned())
        .collect()
}

/// The `Cookie` header a browser would send back after receiving `set_cookies`.
pub(super) fn browser_cookie_header(set_cookies: &[HeaderValue]) -> String {
    set_cookies
        .iter()
        .map(|h| h.to_str().unwrap())
        .filter(|h| !h.contains("Max-Age=0"))
        .map(|h| h.split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ")
}
