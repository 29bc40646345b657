//! Authorization response parsing (query and `form_post` body) and `handle_callback` against a
//! fixed pending login, with and without the RFC 9207 `iss` requirement.
//!
//! A `state` of exactly `STATE` is replaced with the pending login's real state so that the
//! checks after the state comparison are reached. An accepted callback must have matched the
//! state, carried no error and a non-empty code, and named the issuer when it was required to.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use oidc_core::login::{
    CallbackParams, ClientAuthMethod, ClientCredentials, LoginConfig, LoginRequest, PendingLogin,
    ProviderEndpoints, handle_callback, start_login,
};
use oidc_core::danger::InsecureSeededRandom;
use oidc_core::{Secret, UnixTime};
use oidc_fuzz::{CLIENT_ID, ISSUER, NOW, now};
use url::Url;

/// The placeholder replaced by the pending login's state.
const STATE_PLACEHOLDER: &str = "STATE";

struct Fixture {
    endpoints: ProviderEndpoints,
    endpoints_with_iss: ProviderEndpoints,
    config: LoginConfig,
    pending: PendingLogin,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let endpoints = ProviderEndpoints::new(
            oidc_fuzz::issuer(),
            Url::parse("https://op.example/realms/main/auth").expect("url"),
            Url::parse("https://op.example/realms/main/token").expect("url"),
        );
        let mut endpoints_with_iss = endpoints.clone();
        endpoints_with_iss.authorization_response_iss_parameter_supported = true;
        let config = LoginConfig::new(
            ClientCredentials::new(
                CLIENT_ID,
                ClientAuthMethod::ClientSecretBasic(Secret::new("client-secret")),
            ),
            Url::parse("https://app.example/oauth2/callback").expect("url"),
        );
        let started = start_login(
            &endpoints,
            &config,
            &LoginRequest::new("/after"),
            UnixTime::from_secs(NOW - 30),
            &mut InsecureSeededRandom::new(3),
        )
        .expect("login starts");
        Fixture {
            endpoints,
            endpoints_with_iss,
            config,
            pending: started.pending,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let from_form = CallbackParams::from_form_post(data);
    if let Ok(query) = std::str::from_utf8(data) {
        assert_eq!(CallbackParams::from_query(query), from_form);
    }
    let Ok(mut params) = from_form else {
        return;
    };
    if params.state.as_deref() == Some(STATE_PLACEHOLDER) {
        params.state = Some(fixture.pending.state().to_owned());
    }
    for endpoints in [&fixture.endpoints, &fixture.endpoints_with_iss] {
        let outcome = handle_callback(
            endpoints,
            &fixture.config,
            fixture.pending.clone(),
            &params,
            now(),
            &mut InsecureSeededRandom::new(4),
        );
        if let Ok(exchange) = outcome {
            assert_eq!(params.state.as_deref(), Some(fixture.pending.state()));
            assert!(params.error.is_none());
            assert!(params.code.as_ref().is_some_and(|c| !c.expose().is_empty()));
            match &params.iss {
                Some(iss) => assert_eq!(iss, ISSUER),
                None => assert!(!endpoints.authorization_response_iss_parameter_supported),
            }
            assert_eq!(exchange.expectation.return_to(), "/after");
            assert_eq!(exchange.request.method(), http::Method::POST);
        }
    }
});
