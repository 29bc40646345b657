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
    run_with_ready(settings, shutdown, None).await
}

/// Serves until `shutdown` completes; `ready` is told once the listener accepts requests.
pub(crate) async fn run_with_ready(
    settings: ProxySettings,
    shutdown: impl Future<Output = ()> + Send,
    ready: Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<(), ServeError> {
    let _ = (settings, shutdown, ready);
    Err(ServeError::NotAvailable)
}
