//! Runs the proxy: the listener, the upstream routes behind the login layer, forward-auth,
//! health and metrics, until the shutdown signal; in-flight requests finish first.

use std::future::Future;

use super::settings::ProxySettings;

/// Why the proxy stopped with an error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    #[error("serving needs the login layer, which this build does not have yet")]
    NotAvailable,
}

impl ServeError {
    pub(crate) fn hint(&self) -> Option<&'static str> {
        None
    }
}

/// Serves until `shutdown` completes.
pub(crate) async fn run(
    settings: ProxySettings,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let _ = (settings, shutdown);
    Err(ServeError::NotAvailable)
}
