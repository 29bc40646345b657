//! The server-side session store handle read from a cookie
//! (`store::SessionHandle::from_cookie_value`): an accepted value is the canonical encoding of
//! the handle it yields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oidc_tower::store::SessionHandle;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(handle) = SessionHandle::from_cookie_value(value) {
        assert_eq!(handle.to_cookie_value(), value);
        let _ = handle.store_key();
    }
});
