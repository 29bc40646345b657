//! Property tests for the request-facing parts: the path normalizer, the identity-header and
//! cookie strippers, the bearer extractor and the forwarded-header reader, on arbitrary input.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, header};
use oidc_tower::bearer_response::{QueryTokens, extract_bearer};
use oidc_tower::forwarded::{OriginalRequest, Scheme, TrustedProxies};
use oidc_tower::identity_headers::{
    CookiePrefixes, IDENTITY_HEADER_NAMES, Identity, IdentityHeaders, is_identity_header,
    strip_identity_headers, strip_own_cookies,
};
use oidc_tower::request_kind::{accepts_html, classify, prefers_html};
use oidc_tower::routes::{RouteRules, normalize_path};
use proptest::prelude::*;

/// Path pieces that exercise every branch of the normalizer.
fn path_piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "/", "/", "/", "a", "public", "admin", ".", "..", "%2e", "%2E", "%2e%2e", ".%2e", "%2f",
        "%2F", "%5c", "\\", "%25", "%252e", ";", "%3b", "?", "%3f", "#", "%00", "%ff", "%c3%a9",
        "%", "%4", "%zz", "é", " ", "%20", "PUBLIC",
    ])
}

fn tricky_path() -> impl Strategy<Value = String> {
    prop::collection::vec(path_piece(), 0..16).prop_map(|pieces| pieces.concat())
}

/// Reference dot-segment removal (RFC 3986 §5.2.4) over a path whose only decoding is of
/// `%2e`, with or without collapsing empty segments first: the two ways an upstream may read it.
fn reference_resolution(raw: &str, collapse: bool) -> String {
    let decoded = raw.replace("%2e", ".").replace("%2E", ".");
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = decoded.trim_start_matches('/').split('/').collect();
    for segment in &segments {
        match *segment {
            "" if collapse => {}
            "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    format!("/{}", out.join("/"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn normalizer_never_panics_on_any_string(raw in any::<String>()) {
        let _ = normalize_path(&raw);
    }

    #[test]
    fn normalizer_never_panics_on_lossy_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let raw = format!("/{}", String::from_utf8_lossy(&bytes));
        let _ = normalize_path(&raw);
    }

    #[test]
    fn normalizing_twice_equals_once(raw in tricky_path()) {
        if let Ok(once) = normalize_path(&raw) {
            let twice = normalize_path(once.as_str()).expect("a normalized path normalizes");
            prop_assert_eq!(once, twice);
        }
    }

    #[test]
    fn normalized_paths_have_no_dot_or_empty_segments(raw in tricky_path()) {
        if let Ok(path) = normalize_path(&raw) {
            let text = path.as_str();
            prop_assert!(text.starts_with('/'));
            prop_assert!(!text.contains("/../"), "{}", text);
            prop_assert!(!text.contains("/./"), "{}", text);
            prop_assert!(!text.ends_with("/..") && !text.ends_with("/."), "{}", text);
            prop_assert!(!text.contains("//"), "{}", text);
            prop_assert!(!text.contains(['%', ';', '?', '#', '\\', '\0']), "{}", text);
        }
    }

    #[test]
    fn public_rule_never_matches_outside_public(suffix in tricky_path()) {
        let rules = RouteRules::skip_auth(["^/public/"]).unwrap();
        for raw in [format!("/public/{suffix}"), suffix.clone()] {
            let Ok(path) = normalize_path(&raw) else { continue };
            if rules.matches(&Method::GET, &path) {
                prop_assert!(path.as_str().starts_with("/public/"), "{} -> {}", raw, path);
                // Whichever way an upstream resolves it, the path stays under /public.
                for collapse in [true, false] {
                    let resolved = reference_resolution(&raw, collapse);
                    prop_assert!(resolved.starts_with("/public"), "{} -> {}", raw, resolved);
                }
            }
        }
    }

    #[test]
    fn rules_never_panic_on_uris(raw in tricky_path()) {
        let rules = RouteRules::skip_auth(["GET=^/health$", "^/public/"]).unwrap();
        if let Ok(uri) = raw.parse::<Uri>() {
            let _ = rules.matches_request(&Method::GET, &uri);
        }
    }

    #[test]
    fn no_spelling_of_an_identity_header_survives(
        picks in prop::collection::vec((0..IDENTITY_HEADER_NAMES.len(), any::<u64>()), 1..12),
        others in prop::collection::vec("x-[a-z]{1,12}", 0..6),
    ) {
        let mut headers = HeaderMap::new();
        for (index, bits) in &picks {
            let spelled: String = IDENTITY_HEADER_NAMES[*index]
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    let bit = (bits >> (i % 64)) & 1 == 1;
                    match c {
                        '-' if bit => '_',
                        c if bit => c.to_ascii_uppercase(),
                        c => c,
                    }
                })
                .collect();
            let name = HeaderName::from_bytes(spelled.as_bytes()).unwrap();
            headers.append(name, HeaderValue::from_static("root"));
        }
        let mut kept = 0;
        for other in &others {
            if !is_identity_header(other) && !headers.contains_key(other.as_str()) {
                headers.insert(
                    HeaderName::from_bytes(other.as_bytes()).unwrap(),
                    HeaderValue::from_static("v"),
                );
                kept += 1;
            }
        }
        let mut stripped = headers.clone();
        strip_identity_headers(&mut stripped);
        prop_assert!(stripped.keys().all(|name| !is_identity_header(name.as_str())));
        prop_assert_eq!(stripped.len(), kept);
        for name in stripped.keys() {
            let canonical = name.as_str().replace('_', "-");
            prop_assert!(!IDENTITY_HEADER_NAMES.contains(&canonical.as_str()));
        }

        IdentityHeaders::upstream().apply(&mut headers, &Identity::new("me")).unwrap();
        prop_assert_eq!(headers.get_all("x-forwarded-user").iter().count(), 1);
        prop_assert_eq!(&headers["x-forwarded-user"], "me");
        let identity_names = headers.keys().filter(|n| is_identity_header(n.as_str())).count();
        prop_assert_eq!(identity_names, 1);
    }

    #[test]
    fn own_cookies_never_survive_and_others_are_kept(
        cookies in prop::collection::vec(
            ("(_oidc|_OIDC|app|theme)[a-z0-9._-]{0,6}", "[a-zA-Z0-9=/+]{0,10}"),
            0..8,
        ),
        separator in prop::sample::select(vec![";", "; ", " ;  "]),
    ) {
        let line = cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join(separator);
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(&line).unwrap());
        let own = CookiePrefixes::new(["_oidc"]);
        let removed = strip_own_cookies(&mut headers, |name| own.matches(name));
        let expected_removed = cookies.iter().filter(|(name, _)| own.matches(name)).count();
        prop_assert_eq!(removed, expected_removed);
        let remaining: Vec<String> = headers
            .get_all(header::COOKIE)
            .iter()
            .flat_map(|v| {
                v.to_str()
                    .unwrap()
                    .split(';')
                    .map(|p| p.trim().to_owned())
                    .collect::<Vec<_>>()
            })
            .filter(|p| !p.is_empty())
            .collect();
        let expected: Vec<String> = cookies
            .iter()
            .filter(|(name, _)| !own.matches(name))
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        prop_assert_eq!(remaining, expected);
        if removed == 0 && !cookies.is_empty() {
            prop_assert_eq!(headers[header::COOKIE].to_str().unwrap(), line.as_str());
        }
    }

    #[test]
    fn bearer_extractor_never_panics(
        value in prop::collection::vec(any::<u8>(), 0..80),
        query in any::<String>(),
        allow in any::<bool>(),
    ) {
        let mut headers = HeaderMap::new();
        let mut prefixed = b"Bearer ".to_vec();
        prefixed.extend_from_slice(&value);
        for raw in [value.clone(), prefixed] {
            if let Ok(header_value) = HeaderValue::from_bytes(&raw) {
                let mut single = HeaderMap::new();
                single.insert(header::AUTHORIZATION, header_value.clone());
                let _ = extract_bearer(&single, None, QueryTokens::Refuse);
                headers.append(header::AUTHORIZATION, header_value);
            }
        }
        let mode = if allow { QueryTokens::Accept } else { QueryTokens::Refuse };
        let _ = extract_bearer(&headers, Some(&query), mode);
        let _ = extract_bearer(&headers, None, mode);
    }

    #[test]
    fn valid_bearer_tokens_round_trip(
        body in "[A-Za-z0-9._~+/-]{1,200}",
        padding in "={0,2}",
        scheme in prop::sample::select(vec!["Bearer", "bearer", "BEARER", "bEaReR"]),
    ) {
        let token = format!("{body}{padding}");
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_str(&format!("{scheme} {token}")).unwrap();
        headers.insert(header::AUTHORIZATION, value);
        let extracted = extract_bearer(&headers, Some("a=b"), QueryTokens::Refuse)
            .unwrap()
            .unwrap();
        prop_assert_eq!(extracted.expose(), token.as_str());
    }

    #[test]
    fn forwarded_reader_never_panics(
        values in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 6),
        peer in any::<[u8; 4]>(),
    ) {
        let names = [
            "x-forwarded-method",
            "x-forwarded-proto",
            "x-forwarded-host",
            "x-forwarded-uri",
            "x-forwarded-for",
            "host",
        ];
        let mut headers = HeaderMap::new();
        for (name, value) in names.iter().zip(&values) {
            if let Ok(value) = HeaderValue::from_bytes(value) {
                headers.insert(*name, value);
            }
        }
        let trusted = TrustedProxies::parse(["0.0.0.0/0"]).unwrap();
        let uri = Uri::from_static("/x");
        let peer = IpAddr::from(peer);
        let believed =
            OriginalRequest::from_parts(&Method::GET, &uri, &headers, peer, &trusted, Scheme::Http);
        if let Ok(original) = believed {
            prop_assert!(original.path_and_query().starts_with('/'));
            prop_assert!(!original.path_and_query().starts_with("//"));
            prop_assert!(!original.host().contains(['/', '@']));
        }
        let untrusted = TrustedProxies::none();
        let _ = OriginalRequest::from_parts(&Method::GET, &uri, &headers, peer, &untrusted, Scheme::Https);
        let _ = classify(&Method::GET, &headers, false);
    }

    #[test]
    fn trusted_proxy_parser_and_accept_parser_never_panic(
        entry in any::<String>(),
        accept in any::<String>(),
    ) {
        let _ = TrustedProxies::parse([entry.as_str()]);
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&accept) {
            headers.insert(header::ACCEPT, value);
        }
        let _ = accepts_html(&headers);
        let _ = prefers_html(&headers);
    }
}
