//! The `sign_out` and `signed_out` endpoints: ending the session here (and, when configured,
//! at the provider) and returning the browser to a target the redirect policy accepts.

use bytes::Bytes;
use http::{Response, StatusCode, request};
use oidc_core::cookie::RequestCookies;
use oidc_core::logout::EndSessionRequest;

use super::{not_configured, query_param};
use crate::auth::answer::{append_cookies, error_answer, redirect};
use crate::auth::authenticator::{AuthFailure, Authenticator};

impl Authenticator {
    pub(super) async fn sign_out(&self, parts: &request::Parts) -> Response<Bytes> {
        let headers = &parts.headers;
        let Some(login) = self.login_flow() else {
            return not_configured(headers);
        };
        let now = self.now();
        let cookies = RequestCookies::from_headers(headers);
        let target = query_param(parts.uri.query(), "rd");
        let return_to = self
            .front_end()
            .redirect_policy
            .return_to_or_root(target.as_deref());
        let loaded = match self.load_session(&cookies, now).await {
            Ok(loaded) => loaded,
            Err(AuthFailure::StoreUnavailable(error)) => {
                tracing::error!(
                    code = error.code(),
                    "sign-out impossible: session store unavailable"
                );
                return error_answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    error.code(),
                    "Signing out is not possible right now: the session store is unavailable. Please try again shortly.",
                    headers,
                );
            }
            Err(_) => None,
        };
        if let Some(loaded) = &loaded
            && let Err(error) = self.end_session(loaded).await
        {
            tracing::error!(code = error.code(), "sign-out could not revoke the session");
            return error_answer(
                StatusCode::SERVICE_UNAVAILABLE,
                error.code(),
                "Signing out is not possible right now: the session store is unavailable. Please try again shortly.",
                headers,
            );
        }
        let mut clear = self
            .sessions()
            .map(|sessions| sessions.clear_cookies(&cookies))
            .unwrap_or_default();
        clear.extend(login.clear_pending(&cookies));
        let provider_url = loaded
            .as_ref()
            .filter(|_| login.provider_logout)
            .and_then(|loaded| {
                let endpoint = self.provider().metadata()?.end_session_endpoint.clone()?;
                let mut request = EndSessionRequest::new(login.settings.credentials.client_id());
                if let Some(id_token) = &loaded.session.id_token {
                    request = request.id_token_hint(id_token.clone());
                }
                if let Some(uri) = &login.post_logout_redirect_uri {
                    // The provider hands `state` back to `{prefix}/signed_out`, which goes on to it.
                    request = request
                        .post_logout_redirect_uri(uri.clone())
                        .state(return_to.clone());
                }
                request.url(Some(&endpoint))
            });
        tracing::info!(
            had_session = loaded.is_some(),
            provider_logout = provider_url.is_some(),
            "signed out"
        );
        let mut response = match provider_url {
            Some(url) => redirect(url.as_str()),
            None => redirect(&return_to),
        };
        append_cookies(&mut response, clear);
        response
    }

    /// Where the provider sends the browser after its logout: the `state` it hands back.
    pub(super) fn signed_out(&self, parts: &request::Parts) -> Response<Bytes> {
        // Whatever arrives here was also acceptable as `sign_out?rd=`: checked again.
        let target = query_param(parts.uri.query(), "state");
        redirect(
            &self
                .front_end()
                .redirect_policy
                .return_to_or_root(target.as_deref()),
        )
    }
}
