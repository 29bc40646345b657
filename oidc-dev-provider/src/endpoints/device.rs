//! The device authorization grant (RFC 8628): the device endpoint, the user code and the page
//! that approves it, and the token grant the device polls.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use oidc_core::UnixTime;
use serde_json::{Value, json};

use super::App;
use super::client_auth::authenticate_client;
use super::issue::issue_token_response;
use super::respond::{OAuthError, html_response, json_response};
use crate::config::DevClient;
use crate::html;
use crate::params::Params;
use crate::provider::lock;
use crate::store::{DeviceRecord, Grant, Subject, random_token};

pub(super) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const DEVICE_CODE_LIFETIME: Duration = Duration::from_secs(600);

pub(super) async fn device_authorization(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match Params::parse(&body) {
        Ok(params) => params,
        Err(e) => return OAuthError::invalid_request(e.description()).into_response(),
    };
    let client = match authenticate_client(&app, &headers, &params, true) {
        Ok(client) => client,
        Err(error) => return error.into_response(),
    };
    let now = app.shared.now();
    let device_code = random_token();
    let user_code = new_user_code();
    let mut store = lock(&app.shared.store);
    store.prune(now);
    let approved_by = store.auto_approve.clone();
    store.devices.insert(
        device_code.clone(),
        DeviceRecord {
            client_id: client.client_id.clone(),
            scope: params.get("scope").unwrap_or("openid").to_owned(),
            user_code: user_code.clone(),
            expires: now.saturating_add(DEVICE_CODE_LIFETIME),
            approved_by,
        },
    );
    drop(store);
    let verification_uri = app.url("/device");
    let mut complete = url::Url::parse(&verification_uri).ok();
    if let Some(url) = complete.as_mut() {
        url.query_pairs_mut().append_pair("user_code", &user_code);
    }
    json_response(
        StatusCode::OK,
        &json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": verification_uri,
            "verification_uri_complete": complete.map(|u| u.to_string()),
            "expires_in": DEVICE_CODE_LIFETIME.as_secs(),
            "interval": 1,
        }),
    )
}

/// Eight letters from an alphabet without vowels or look-alikes, as `XXXX-XXXX`.
fn new_user_code() -> String {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let mut bytes = [0u8; 8];
    oidc_core::RandomSource::fill_bytes(&mut crate::store::OsRandom, &mut bytes);
    let letters: String = bytes
        .iter()
        .map(|b| {
            let index = usize::from(*b) % ALPHABET.len();
            ALPHABET.get(index).map_or('B', |c| char::from(*c))
        })
        .collect();
    match letters.split_at_checked(4) {
        Some((first, second)) => format!("{first}-{second}"),
        None => letters,
    }
}

fn normalize_user_code(code: &str) -> String {
    let letters: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    match (letters.get(..4), letters.get(4..)) {
        (Some(a), Some(b)) if !b.is_empty() => format!("{a}-{b}"),
        _ => letters,
    }
}

pub(super) async fn device_page(State(app): State<App>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    html_response(
        StatusCode::OK,
        html::device_page(
            &app.url("/device"),
            params.get("user_code").unwrap_or_default(),
            None,
        ),
    )
}

pub(super) async fn device_approve(State(app): State<App>, body: Bytes) -> Response {
    let params = Params::parse(&body).unwrap_or_default();
    let user_code = normalize_user_code(params.get("user_code").unwrap_or_default());
    let username = params.get("username").unwrap_or_default();
    let password = params.get("password").unwrap_or_default();
    let action = app.url("/device");
    let authenticated = app
        .shared
        .users
        .get(username)
        .is_some_and(|u| u.password.ct_eq(password));
    if !authenticated {
        return html_response(
            StatusCode::UNAUTHORIZED,
            html::device_page(&action, &user_code, Some("Unknown user or wrong password.")),
        );
    }
    let now = app.shared.now();
    let mut store = lock(&app.shared.store);
    let device = store
        .devices
        .values_mut()
        .find(|d| d.user_code == user_code && d.expires > now && d.approved_by.is_none());
    match device {
        Some(device) => {
            device.approved_by = Some(username.to_owned());
            html_response(
                StatusCode::OK,
                html::message_page("Device connected", "You can return to your device."),
            )
        }
        None => html_response(
            StatusCode::BAD_REQUEST,
            html::device_page(&action, &user_code, Some("Unknown or expired code.")),
        ),
    }
}

pub(super) fn device_code_grant(
    app: &App,
    client: &DevClient,
    params: &Params,
    now: UnixTime,
) -> Result<Value, OAuthError> {
    let device_code = params
        .get("device_code")
        .ok_or_else(|| OAuthError::invalid_request("device_code is missing"))?;
    let mut store = lock(&app.shared.store);
    let device = store.devices.get(device_code).cloned().ok_or_else(|| {
        OAuthError::new(
            StatusCode::BAD_REQUEST,
            "expired_token",
            "unknown or expired device_code",
        )
    })?;
    if device.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "device_code was issued to another client",
        ));
    }
    if device.expires <= now {
        store.devices.remove(device_code);
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "expired_token",
            "device_code expired",
        ));
    }
    let Some(username) = device.approved_by else {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "authorization_pending",
            "the user has not approved yet",
        ));
    };
    store.devices.remove(device_code);
    let grant_id = store.add_grant(Grant {
        client_id: client.client_id.clone(),
        subject: Subject::User {
            username,
            sid: None,
            auth_time: now,
        },
        scope: device.scope,
        revoked: false,
    });
    Ok(issue_token_response(
        &app.shared,
        &app.issuer,
        &mut store,
        grant_id,
        None,
        true,
        now,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn user_codes_have_the_documented_shape() {
        let code = new_user_code();
        assert_eq!(code.len(), 9);
        assert_eq!(code.chars().nth(4), Some('-'));
        assert_eq!(
            normalize_user_code(&code.to_lowercase().replace('-', " ")),
            code
        );
    }

    proptest! {
        #[test]
        fn user_code_normalization_never_panics(code in ".{0,20}") {
            let _ = normalize_user_code(&code);
        }
    }
}
