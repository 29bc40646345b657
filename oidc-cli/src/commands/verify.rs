//! `oidc verify`: check a token's signature and claims against the issuer's keys (found through
//! discovery, or given with `--jwks`) and the policy the flags describe.
//!
//! The audience is required: a token of the right issuer meant for another service must not
//! pass. `--insecure-skip-audience` turns that check off for inspection, with a warning on
//! stderr and `"audience_checked": false` in the JSON.

use std::time::Duration;

use oidc_core::danger::decode_unverified;
use oidc_core::jws::Algorithm;
use oidc_core::validation::{Policy, validate};
use oidc_core::{Issuer, UnixTime};
use serde_json::json;

use crate::args::VerifyArgs;
use crate::commands::{jwks, render_token, times_json};
use crate::error::CliError;
use crate::fetch::Fetcher;
use crate::input::read_token;
use crate::output::{self, Outcome, Style};

pub(crate) fn run(args: &VerifyArgs) -> Result<Outcome, CliError> {
    let token = read_token(args.token.as_deref())?;
    let issuer = Issuer::new(args.issuer.as_str())?;
    let policy = policy(args, &issuer)?;
    let now = args
        .now
        .map_or_else(oidc_tower::clock::now, UnixTime::from_secs);
    // A token that is not even a JWT is refused before any key is fetched.
    let decoded = decode_unverified(&token)?;

    let keys = match &args.jwks {
        Some(source) => jwks::load(source, now).map(|(_, keys)| keys),
        None => Fetcher::new().and_then(|fetcher| {
            let metadata = fetcher.discover(&issuer)?;
            fetcher.key_set(&metadata.jwks_uri, now)
        }),
    }
    .map_err(|e| CliError::KeysUnavailable(Box::new(e)))?;

    let validated = validate(&token, &keys, &policy, now).map_err(|error| CliError::Rejected {
        error,
        expected_issuer: issuer.as_str().to_owned(),
    })?;
    if args.insecure_skip_audience {
        output::warn("the audience was NOT checked (--insecure-skip-audience)");
    }
    let now = now.as_secs();
    if args.json {
        return Ok(Outcome::json(
            &json!({
                "valid": true,
                "audience_checked": !args.insecure_skip_audience,
                "header": decoded.header,
                "claims": decoded.claims,
                "times": times_json(&decoded.claims, now),
            }),
            0,
        ));
    }
    let style = Style::for_stdout();
    let kid = validated.header.kid.as_deref().unwrap_or("(none)");
    let mut text = format!(
        "{} signed with {} (kid {kid}) by {}, {}\n\n",
        style.green("VALID:"),
        validated.header.alg,
        issuer,
        if args.insecure_skip_audience {
            style.yellow("audience NOT checked")
        } else {
            format!("for audience {}", validated.claims.aud.join(", "))
        }
    );
    text.push_str(&render_token(style, &decoded.header, &decoded.claims, now));
    Ok(Outcome::ok(text))
}

fn policy(args: &VerifyArgs, issuer: &Issuer) -> Result<Policy, CliError> {
    let mut builder = Policy::builder().issuer(issuer.clone());
    for audience in &args.audiences {
        builder = builder.audience(audience.clone());
    }
    if args.insecure_skip_audience {
        builder = builder.insecure_skip_audience();
    } else if args.audiences.is_empty() {
        return Err(CliError::usage(
            "--audience is required",
            "pass the client id or API identifier the token is for; \
             --insecure-skip-audience checks everything else",
        ));
    }
    if !args.algorithms.is_empty() {
        let algorithms = args
            .algorithms
            .iter()
            .map(|name| {
                name.parse::<Algorithm>().map_err(|e| {
                    CliError::usage(
                        format!("--alg {name}: {e}"),
                        "algorithms: RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        builder = builder.algorithms(algorithms);
    }
    builder = builder.leeway(Duration::from_secs(args.leeway));
    Ok(builder.build()?)
}
