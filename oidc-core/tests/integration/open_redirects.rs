//! Replays the open-redirect payload lists of oauth2-proxy and mod_auth_openidc (copied with their
//! licenses under `tests/data/`) against [`RedirectPolicy`], configured as each upstream test
//! configures its own validator. Every payload must be refused.

use oidc_core::redirect::RedirectPolicy;

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte; a malformed escape is kept as text.
fn query_unescape(line: &str) -> String {
    let bytes = line.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn assert_all_refused(suite: &str, policy: &RedirectPolicy, payloads: &[String]) {
    let mut accepted = Vec::new();
    for payload in payloads {
        if let Ok(target) = policy.validate(payload) {
            accepted.push(format!("{payload:?} -> {target:?}"));
        }
        assert_eq!(policy.return_to_or_root(Some(payload)), "/");
    }
    println!(
        "{suite}: {} payloads, {} refused, {} accepted",
        payloads.len(),
        payloads.len() - accepted.len(),
        accepted.len()
    );
    assert!(
        accepted.is_empty(),
        "{suite} accepted:\n{}",
        accepted.join("\n")
    );
}

#[test]
fn oauth2_proxy_open_redirect_list_is_refused() {
    // The allow-list of oauth2-proxy's own test (pkg/app/redirect/validator_test.go), in this
    // crate's syntax (`*.host` is accepted as `.host`).
    let policy = RedirectPolicy::new([
        "foo.bar",
        ".bar.foo",
        "port.bar:8080",
        ".sub.port.bar:8080",
        "anyport.bar:*",
        ".sub.anyport.bar:*",
        "www.whitelisteddomain.tld",
        "*.wildcard.sub.port.bar:8080",
        "*.wildcard.sub.anyport.bar:*",
        "*.wildcard.bar",
        "*.wildcard.proxy.foo.bar",
    ])
    .unwrap();
    let payloads: Vec<String> =
        include_str!("../data/oauth2-proxy-openredirects/openredirects.txt")
            .lines()
            .map(query_unescape)
            .collect();
    assert_eq!(payloads.len(), 559);
    // The same policy does accept what upstream's own test accepts, so refusals are not vacuous.
    for allowed in [
        "/",
        "/foo/bar?baz=1",
        "https://foo.bar/path",
        "http://baz.bar.foo/",
        "https://port.bar:8080/",
        "https://sub.port.bar:8080/x",
        "https://anyport.bar:9999/",
        "https://a.wildcard.bar/",
        "https://www.whitelisteddomain.tld/",
    ] {
        assert!(
            policy.validate(allowed).is_ok(),
            "{allowed} should be accepted"
        );
    }
    assert_all_refused("oauth2-proxy", &policy, &payloads);
}

#[test]
fn mod_auth_openidc_open_redirect_list_is_refused() {
    // Upstream checks "same host" for a request to www.example.com: absolute URLs to that host
    // are the only ones allowed.
    let policy = RedirectPolicy::new(["www.example.com"]).unwrap();
    let payloads: Vec<String> =
        include_str!("../data/mod_auth_openidc-openredirects/open-redirect-payload-list.txt")
            .lines()
            .map(str::to_owned)
            .collect();
    // 834 newline-terminated lines and a last one without a newline.
    assert_eq!(payloads.len(), 835);
    assert_all_refused("mod_auth_openidc", &policy, &payloads);
}
