//! Property tests of the return-to check: it never panics, and whatever it accepts resolves, as
//! a browser would resolve it, to the same origin or to an allowed host.

use oidc_core::redirect::RedirectPolicy;
use proptest::prelude::*;
use url::Url;

const ORIGIN: &str = "https://origin.test/some/page";

fn policy() -> RedirectPolicy {
    RedirectPolicy::new(["app.example.com", ".corp.example", "ports.example:8443"]).unwrap()
}

/// An independent statement of the allow-list, on a host as the URL parser reports it.
fn host_is_allowed(url: &Url) -> bool {
    match (url.host_str(), url.port()) {
        (Some("app.example.com" | "corp.example"), None) => true,
        (Some(host), None) => host.ends_with(".corp.example"),
        (Some("ports.example"), Some(8443)) => true,
        _ => false,
    }
}

/// Pieces that open-redirect payloads are made of.
fn tricky_piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "/",
        "//",
        "\\",
        "%2f",
        "%2F",
        "%5c",
        "%252f",
        "%09",
        "\t",
        "\n",
        "\r",
        " ",
        "%20",
        "@",
        ":",
        "http:",
        "https://",
        "HTTPS://",
        "javascript:",
        "data:",
        "evil.com",
        "app.example.com",
        "corp.example",
        "ports.example",
        ":8443",
        ".",
        "..",
        "%2e",
        "?",
        "#",
        "&",
        "=",
        "\u{3002}",
        "\u{ff0e}",
        "%E3%80%82",
        "%00",
        "%",
        "a",
        "0x7f",
        "[::1]",
        "127.0.0.1",
        ";",
        "+",
    ])
}

fn tricky_target() -> impl Strategy<Value = String> {
    prop::collection::vec(tricky_piece(), 0..12).prop_map(|pieces| pieces.concat())
}

fn check_acceptance(policy: &RedirectPolicy, target: &str) -> Result<(), TestCaseError> {
    let base = Url::parse(ORIGIN).unwrap();
    let Ok(accepted) = policy.validate(target) else {
        prop_assert_eq!(policy.return_to_or_root(Some(target)), "/");
        return Ok(());
    };
    prop_assert_eq!(policy.return_to_or_root(Some(target)), accepted.clone());
    // Resolve exactly as a browser resolves a `Location` header against the current page.
    let resolved = base.join(&accepted);
    prop_assert!(resolved.is_ok(), "accepted {:?} does not resolve", target);
    let resolved = resolved.unwrap();
    let same_origin = resolved.origin() == base.origin();
    prop_assert!(
        same_origin || host_is_allowed(&resolved),
        "accepted {:?} resolves to {}",
        target,
        resolved
    );
    if accepted.starts_with('/') {
        prop_assert!(
            same_origin,
            "path {:?} left the origin: {}",
            target,
            resolved
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn arbitrary_strings_never_escape(target in any::<String>()) {
        check_acceptance(&policy(), &target)?;
    }

    #[test]
    fn composed_payloads_never_escape(target in tricky_target()) {
        check_acceptance(&policy(), &target)?;
    }

    #[test]
    fn payloads_after_a_slash_never_escape(target in tricky_target()) {
        check_acceptance(&policy(), &format!("/{target}"))?;
    }

    #[test]
    fn payloads_after_an_allowed_origin_never_escape(target in tricky_target()) {
        check_acceptance(&policy(), &format!("https://app.example.com{target}"))?;
    }
}
