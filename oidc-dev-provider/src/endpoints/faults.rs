//! Request counting and the faults a test injects per endpoint: a status, a garbage body, or
//! a delay before the real answer.

use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};

use super::App;
use crate::provider::{Endpoint, Fault, lock};

/// Counts the request and applies an injected fault: `Some` is the answer to send instead.
pub(super) async fn injected_fault(app: &App, endpoint: Endpoint) -> Option<Response> {
    *lock(&app.shared.counts).entry(endpoint).or_insert(0) += 1;
    let fault = {
        let mut faults = lock(&app.shared.faults);
        let plan = faults.get_mut(&endpoint)?;
        let fault = plan.fault.clone();
        match &mut plan.remaining {
            Some(0) => {
                faults.remove(&endpoint);
                return None;
            }
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    faults.remove(&endpoint);
                }
            }
            None => {}
        }
        fault
    };
    match fault {
        Fault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Some((status, "injected failure").into_response())
        }
        Fault::Garbage => Some(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "<html>{\"not json",
            )
                .into_response(),
        ),
        Fault::Delay(delay) => {
            tokio::time::sleep(delay).await;
            None
        }
    }
}
