//! `oidc discover ISSUER`: fetch the discovery document, check it, summarise it and warn.

use oidc_core::Issuer;
use oidc_core::discovery::ProviderMetadata;
use serde_json::json;

use crate::args::DiscoverArgs;
use crate::error::CliError;
use crate::fetch::Fetcher;
use crate::output::{Outcome, Style};

pub(crate) fn run(args: &DiscoverArgs) -> Result<Outcome, CliError> {
    let issuer = Issuer::new(args.issuer.as_str())?;
    let metadata = Fetcher::new()?.discover(&issuer)?;
    let warnings = metadata.warnings();
    if args.json {
        let warnings: Vec<_> = warnings
            .iter()
            .map(|w| json!({ "code": w.code(), "message": w.to_string() }))
            .collect();
        return Ok(Outcome::json(
            &json!({
                "valid": true,
                "discovery_url": issuer.discovery_url().as_str(),
                "metadata": metadata,
                "warnings": warnings,
            }),
            0,
        ));
    }
    let style = Style::for_stdout();
    let mut text = summary(style, &metadata);
    if warnings.is_empty() {
        text.push_str(&format!("\n{}\n", style.green("No warnings.")));
    } else {
        text.push_str(&format!("\n{}\n", style.yellow("Warnings")));
        for warning in &warnings {
            text.push_str(&format!("  - {warning} [{}]\n", warning.code()));
        }
    }
    Ok(Outcome::ok(text))
}

fn summary(style: Style, metadata: &ProviderMetadata) -> String {
    let mut rows: Vec<(&str, String)> = vec![("issuer", metadata.issuer.clone())];
    rows.extend(
        metadata
            .endpoints()
            .into_iter()
            .map(|(name, url)| (name, url.to_string())),
    );
    let list = |values: &[String]| {
        if values.is_empty() {
            "(not stated)".to_owned()
        } else {
            values.join(", ")
        }
    };
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
    rows.extend([
        ("response types", list(&metadata.response_types_supported)),
        ("subject types", list(&metadata.subject_types_supported)),
        (
            "ID token algorithms",
            list(&metadata.id_token_signing_alg_values_supported),
        ),
        (
            "PKCE methods",
            list(&metadata.code_challenge_methods_supported),
        ),
        (
            "token endpoint auth",
            list(&metadata.token_endpoint_auth_methods_supported),
        ),
        ("grant types", list(&metadata.grant_types_supported)),
        ("scopes", list(&metadata.scopes_supported)),
        ("claims", list(&metadata.claims_supported)),
        (
            "back-channel logout",
            yes_no(metadata.backchannel_logout_supported),
        ),
    ]);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{}  {v}\n", style.bold(&format!("{k:<width$}"))))
        .collect()
}
