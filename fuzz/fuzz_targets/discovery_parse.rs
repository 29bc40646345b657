//! Discovery documents through `parse_discovery`, with the plain issuer and with an Entra-style
//! `{tenantid}` template. An accepted document names the expected issuer and only absolute
//! http(s) endpoints.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oidc_core::discovery::{DiscoveryOptions, parse_discovery};
use oidc_core::issuer::IssuerTemplate;
use oidc_core::login::ProviderEndpoints;

fuzz_target!(|data: &[u8]| {
    let issuer = oidc_fuzz::issuer();
    let template = IssuerTemplate::new("https://login.example/{tenantid}/v2.0")
        .expect("a valid issuer template");
    let plain = DiscoveryOptions::new();
    let templated = DiscoveryOptions::new().issuer_template(template.clone());
    let response = oidc_fuzz::response(200, "application/json", data);
    for (options, expected) in [(&plain, issuer.as_str()), (&templated, template.as_str())] {
        let Ok(metadata) = parse_discovery(&issuer, options, &response) else {
            continue;
        };
        assert_eq!(metadata.issuer, expected);
        for (name, url) in metadata.endpoints() {
            assert!(matches!(url.scheme(), "https" | "http"), "{name} is {url}");
        }
        let _ = metadata.warnings();
        let _ = metadata.supports_s256_pkce();
        let _ = ProviderEndpoints::from_metadata(&metadata);
    }
});
