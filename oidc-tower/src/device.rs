//! Driving the device authorization grant (RFC 8628) of [`oidc_core::login::device`]: ask for
//! the codes, let the caller show them, then poll the token endpoint as the core's
//! [`DevicePolling`] schedule says, sleeping with tokio in between.
//!
//! ```no_run
//! # async fn demo(
//! #     client: &oidc_tower::ReqwestHttpClient,
//! #     metadata: &oidc_core::discovery::ProviderMetadata,
//! #     endpoints: &oidc_core::ProviderEndpoints,
//! # ) -> Result<(), oidc_tower::device::DeviceGrantError> {
//! use oidc_core::login::device::{DeviceGrant, device_authorization_endpoint};
//! use oidc_core::login::{ClientAuthMethod, ClientCredentials};
//!
//! let grant = DeviceGrant::new(ClientCredentials::new("my-cli", ClientAuthMethod::None))
//!     .scopes(["openid", "offline_access"]);
//! let tokens = oidc_tower::device::run_device_grant(
//!     client,
//!     device_authorization_endpoint(metadata)?,
//!     &endpoints.token_endpoint,
//!     &grant,
//!     |codes| eprintln!("open {} and enter {}", codes.verification_uri, codes.user_code),
//! )
//! .await?;
//! # let _ = tokens;
//! # Ok(())
//! # }
//! ```
//!
//! The tokens are those of the token endpoint's answer; an ID token among them is for the
//! caller to validate (no `nonce` binds it, so the core's `validate` under `id_token_policy`).

use oidc_core::ErrorKind;
use oidc_core::login::device::{
    DeviceAuthorization, DeviceError, DeviceGrant, DevicePolling, NextPoll,
    device_authorization_request, device_token_request, parse_device_authorization,
};
use oidc_core::login::token::TokenResponse;
use url::Url;

use crate::clock::{MonotonicClock, now};
use crate::http_client::{HttpClient, HttpError};
use crate::random::SystemRandom;

/// Why a device sign-in did not give tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceGrantError {
    /// A request to the provider failed in transport.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The provider refused, answered unusably, or the code expired or was denied.
    #[error(transparent)]
    Device(#[from] DeviceError),
}

impl DeviceGrantError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DeviceGrantError::Http(e) => e.kind(),
            DeviceGrantError::Device(e) => e.kind(),
        }
    }

    /// A stable snake_case code: the inner error's code.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// Runs a device sign-in to the end: sends the device authorization request to
/// `device_endpoint`, hands the checked answer to `on_prompt` (to show the user where to go and
/// which code to enter), then polls `token_endpoint` as the core's schedule says (the
/// provider's interval, five seconds more after each `slow_down`) until the user approves,
/// denies, or the code expires.
pub async fn run_device_grant(
    client: &dyn HttpClient,
    device_endpoint: &Url,
    token_endpoint: &Url,
    grant: &DeviceGrant,
    on_prompt: impl FnOnce(&DeviceAuthorization),
) -> Result<TokenResponse, DeviceGrantError> {
    let mut random = SystemRandom;
    let request = device_authorization_request(device_endpoint, grant, now(), &mut random)?;
    let clock = MonotonicClock::start();
    let response = client.execute(request).await?;
    let authorization = parse_device_authorization(&response)?;
    on_prompt(&authorization);
    let mut polling = DevicePolling::new(&authorization, clock.now());
    loop {
        match polling.next_poll(clock.now()) {
            NextPoll::Wait(wait) => tokio::time::sleep(wait).await,
            NextPoll::GiveUp => return Err(DeviceError::Expired.into()),
            NextPoll::PollNow => {
                let request = device_token_request(
                    token_endpoint,
                    grant,
                    &authorization,
                    now(),
                    &mut random,
                )?;
                let response = client.execute(request).await?;
                if let Some(tokens) = polling.on_response(&response, clock.now()).into_result()? {
                    return Ok(tokens);
                }
            }
            // `NextPoll` may grow; anything unknown is a reason to stop rather than spin.
            _ => return Err(DeviceError::Expired.into()),
        }
    }
}
