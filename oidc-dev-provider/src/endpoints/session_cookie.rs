//! The provider's own session cookie: how it is read from a request, set after a sign-in and
//! cleared at logout.

use http::{HeaderMap, header};

use super::App;

/// The provider's session cookie. Cookies on 127.0.0.1 are shared by every port, so the name
/// must not collide with the relying parties' own cookies.
pub const SESSION_COOKIE: &str = "devop_session";

pub(super) fn session_cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

pub(super) fn set_session_cookie(app: &App, value: &str) -> String {
    let secure = if app.issuer.url().scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{SESSION_COOKIE}={value}; Path={}; HttpOnly; SameSite=Lax{secure}",
        app.cookie_path()
    )
}

pub(super) fn clear_session_cookie(app: &App) -> String {
    format!(
        "{SESSION_COOKIE}=; Path={}; HttpOnly; SameSite=Lax; Max-Age=0",
        app.cookie_path()
    )
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("other=1; devop_session=abc; x=y"),
        );
        assert_eq!(session_cookie_value(&headers).as_deref(), Some("abc"));
        headers.insert(header::COOKIE, HeaderValue::from_static("devop_sessionx=1"));
        assert_eq!(session_cookie_value(&headers), None);
    }
}
