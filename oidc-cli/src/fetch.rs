//! The provider calls the CLI makes: discovery and key sets, through oidc-tower's HTTP client.

use bytes::Bytes;
use oidc_core::discovery::{DiscoveryOptions, ProviderMetadata};
use oidc_core::jwks::{FreshnessPolicy, KeySet};
use oidc_core::{Issuer, UnixTime};
use oidc_tower::clock::ManualClock;
use oidc_tower::provider::{fetch_key_set_on, fetch_metadata};
use oidc_tower::{HttpClient, ReqwestHttpClient};
use url::Url;

use crate::error::CliError;

/// A blocking front to the async HTTP client, for one command's few calls.
pub(crate) struct Fetcher {
    client: ReqwestHttpClient,
    runtime: tokio::runtime::Runtime,
}

impl Fetcher {
    pub(crate) fn new() -> Result<Self, CliError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Usage {
                message: format!("cannot start the I/O runtime: {e}"),
                hint: None,
            })?;
        Ok(Fetcher {
            client: ReqwestHttpClient::new()?,
            runtime,
        })
    }

    /// Runs `future` on this fetcher's runtime.
    pub(crate) fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The HTTP client, for calls made inside [`Fetcher::block_on`].
    pub(crate) fn client(&self) -> &ReqwestHttpClient {
        &self.client
    }

    pub(crate) fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Bytes>, CliError> {
        Ok(self.runtime.block_on(self.client.execute(request))?)
    }

    /// Fetches and checks `issuer`'s metadata.
    pub(crate) fn discover(&self, issuer: &Issuer) -> Result<ProviderMetadata, CliError> {
        let options = DiscoveryOptions::new();
        Ok(self.block_on(fetch_metadata(&self.client, issuer, &options))?)
    }

    /// Fetches the key set at `jwks_uri`, judged fresh as of `now` (which `oidc verify --now`
    /// may set).
    pub(crate) fn key_set(&self, jwks_uri: &Url, now: UnixTime) -> Result<KeySet, CliError> {
        let as_of = ManualClock::new(now);
        let freshness = FreshnessPolicy::default();
        Ok(self.block_on(fetch_key_set_on(&self.client, jwks_uri, &freshness, &as_of))?)
    }
}

pub(crate) fn parse_url(value: &str) -> Result<Url, CliError> {
    Url::parse(value).map_err(|e| {
        CliError::usage(
            format!("{value:?} is not a URL: {e}"),
            "give an absolute http(s) URL",
        )
    })
}
