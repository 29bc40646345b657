//! Client authentication on the back-channel endpoints: HTTP Basic, a secret in the form, or
//! a public client's `client_id` alone where that is allowed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, header};

use super::App;
use super::respond::OAuthError;
use crate::config::DevClient;
use crate::params::Params;

/// Authenticates the client of a back-channel request: HTTP Basic, `client_secret` in the body,
/// or `client_id` alone for public clients when `allow_public` is set.
pub(super) fn authenticate_client<'a>(
    app: &'a App,
    headers: &HeaderMap,
    params: &Params,
    allow_public: bool,
) -> Result<&'a DevClient, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
    let (client_id, secret, used_basic) = match basic {
        Some(encoded) => {
            if params.get("client_secret").is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not two",
                ));
            }
            let decoded = STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials", true))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials", true))?;
            // RFC 6749 §2.3.1: both halves are form-urlencoded.
            let unescape = |s: &str| {
                serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
                    .ok()
                    .and_then(|mut v| v.pop())
                    .map(|(_, v)| v)
            };
            let id = unescape(id)
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials", true))?;
            let secret = unescape(secret)
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials", true))?;
            if params.get("client_id").is_some_and(|p| p != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the Basic credentials",
                ));
            }
            (id, Some(secret), true)
        }
        None => {
            let id = params
                .get("client_id")
                .ok_or_else(|| OAuthError::invalid_client("no client authentication", false))?;
            (
                id.to_owned(),
                params.get("client_secret").map(str::to_owned),
                false,
            )
        }
    };
    let client = app
        .shared
        .clients
        .get(&client_id)
        .ok_or_else(|| OAuthError::invalid_client("unknown client", used_basic))?;
    match (&client.secret, secret) {
        (Some(expected), Some(given)) if expected.ct_eq(&given) => Ok(client),
        (None, None) if allow_public => Ok(client),
        (None, None) => Err(OAuthError::invalid_client(
            "public clients cannot use this endpoint",
            used_basic,
        )),
        (None, Some(_)) => Err(OAuthError::invalid_client(
            "this client is public and has no secret",
            used_basic,
        )),
        (Some(_), _) => Err(OAuthError::invalid_client(
            "client authentication failed",
            used_basic,
        )),
    }
}
