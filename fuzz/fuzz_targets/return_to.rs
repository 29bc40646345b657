//! The return-to target check (`RedirectPolicy::validate`).
//!
//! Beyond not panicking, an accepted target must be safe where it is used: resolved by a WHATWG
//! URL parser (what browsers do with a `Location`) against the application's own origin, and
//! after each of up to three percent-decodings, it must stay on that origin, or (absolute URLs
//! only) land on an allowed host and port, with no userinfo.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use oidc_core::redirect::RedirectPolicy;
use url::{Host, Url};

const OWN_ORIGIN: &str = "https://self.example/base/";

fn allowing_policy() -> &'static RedirectPolicy {
    static POLICY: OnceLock<RedirectPolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        RedirectPolicy::new([
            "app.example",
            ".example.org",
            "api.example:8443",
            "*.any.example:*",
        ])
        .expect("valid allowed domains")
    })
}

/// The oracle's own reading of the allowed list above.
fn allowed(host: &str, port: Option<u16>) -> bool {
    let host = host.to_ascii_lowercase();
    let sub_of =
        |parent: &str| host.len() > parent.len() + 1 && host.ends_with(&format!(".{parent}"));
    (host == "app.example" && port.is_none())
        || ((host == "example.org" || sub_of("example.org")) && port.is_none())
        || (host == "api.example" && port == Some(8443))
        || (host == "any.example" || sub_of("any.example"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    let own = Url::parse(OWN_ORIGIN).expect("own origin");
    if let Ok(accepted) = RedirectPolicy::same_origin_only().validate(target) {
        assert_eq!(accepted, target, "a path comes back as given");
        assert_stays_home(&own, &accepted, target);
    }
    let fallback = RedirectPolicy::same_origin_only().return_to_or_root(Some(target));
    assert!(fallback == "/" || fallback == target);

    let Ok(accepted) = allowing_policy().validate(target) else {
        return;
    };
    if accepted.starts_with('/') {
        assert_eq!(accepted, target);
        assert_stays_home(&own, &accepted, target);
        return;
    }
    let url = Url::parse(&accepted).expect("an accepted absolute target parses");
    assert!(matches!(url.scheme(), "https" | "http"), "{target:?}");
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "{target:?}"
    );
    let host = match url.host() {
        Some(Host::Domain(domain)) => domain.to_owned(),
        other => panic!("accepted host {other:?} for {target:?}"),
    };
    assert!(
        allowed(&host, url.port()),
        "{target:?} leads to {host}:{:?}",
        url.port()
    );
    let resolved = own.join(target).expect("an accepted target resolves");
    assert_eq!(resolved.host_str(), Some(host.as_str()), "{target:?}");
});

/// An accepted path, and each of its first percent-decodings, resolves to the own origin.
fn assert_stays_home(own: &Url, accepted: &str, target: &str) {
    let mut current = accepted.to_owned();
    for _ in 0..3 {
        let resolved = own.join(&current);
        let resolved = resolved.unwrap_or_else(|e| panic!("{target:?} does not resolve: {e}"));
        assert_eq!(
            resolved.origin(),
            own.origin(),
            "{target:?} leaves the origin as {current:?}"
        );
        let decoded = percent_decode(&current);
        if decoded == current {
            break;
        }
        current = decoded;
    }
}

fn percent_decode(text: &str) -> String {
    String::from_utf8_lossy(&percent_decode_bytes(text.as_bytes())).into_owned()
}

fn percent_decode_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(Some(h)), Some(Some(l))) = (
                bytes.get(i + 1).map(|b| hex(*b)),
                bytes.get(i + 2).map(|b| hex(*b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}
