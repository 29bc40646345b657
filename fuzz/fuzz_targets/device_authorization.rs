//! Device authorization grant answers (RFC 8628): `parse_device_authorization` and the
//! token endpoint's answers to a poll through `DevicePolling::on_response`.
//!
//! Input: one status selector byte, then the body. An accepted device authorization carries a
//! non-empty device code, a printable user code, an `http(s)` verification URI, a positive
//! lifetime and an interval of at least a second; a poll answer never panics the schedule.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use oidc_core::login::device::{
    DevicePoll, DevicePolling, MIN_POLL_INTERVAL, classify_device_poll, parse_device_authorization,
};
use oidc_core::time::MonotonicTime;

const STATUSES: [u16; 6] = [200, 400, 401, 500, 302, 200];
const CONTENT_TYPES: [&str; 3] = [
    "application/json",
    "application/json; charset=utf-8",
    "text/html",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let status = STATUSES[usize::from(selector) % STATUSES.len()];
    let content_type = CONTENT_TYPES[usize::from(selector >> 4) % CONTENT_TYPES.len()];
    let response = oidc_fuzz::response(status, content_type, body);
    if let Ok(authorization) = parse_device_authorization(&response) {
        assert_eq!(status, 200);
        assert!(!authorization.device_code.expose().is_empty());
        assert!(!authorization.user_code.chars().any(char::is_control));
        assert!(matches!(
            authorization.verification_uri.scheme(),
            "http" | "https"
        ));
        assert!(authorization.expires_in > Duration::ZERO);
        assert!(authorization.interval >= MIN_POLL_INTERVAL);
        let start = MonotonicTime::after(Duration::from_secs(1));
        let mut polling = DevicePolling::new(&authorization, start);
        let poll = polling.on_response(&response, start);
        assert!(polling.interval() >= MIN_POLL_INTERVAL);
        let _ = polling.next_poll(start);
        let _ = poll.into_result();
    }
    let poll = classify_device_poll(&response, Duration::from_secs(5));
    if let DevicePoll::SlowDown { new_interval } = poll {
        assert_eq!(new_interval, Duration::from_secs(10));
    }
    if matches!(poll, DevicePoll::Tokens(_)) {
        assert_eq!(status, 200);
    }
});
