//! `oidc dpop`: check a DPoP proof (RFC 9449) for a request the way a resource server does:
//! header, embedded key, signature, method, URL, age, `ath` and the token's `cnf.jkt`. The
//! `jti` is remembered only for this run, so replays across runs are not detected here.

use oidc_core::UnixTime;
use oidc_core::dpop::{DpopPolicy, DpopRequest, verify_proof};
use oidc_core::logout::SeenJtis;
use serde_json::json;
use url::Url;

use crate::args::DpopArgs;
use crate::error::CliError;
use crate::input::read_token;
use crate::output::{Outcome, Style};

pub(crate) fn run(args: &DpopArgs) -> Result<Outcome, CliError> {
    let proof = read_token(args.proof.as_deref())?;
    let url = Url::parse(&args.url).map_err(|e| {
        CliError::usage(
            format!("--url {}: {e}", args.url),
            "give the absolute URL the client called, e.g. https://api.example.com/v1/runs",
        )
    })?;
    let now = args
        .now
        .map_or_else(oidc_tower::clock::now, UnixTime::from_secs);
    let request = DpopRequest {
        method: &args.method,
        uri: &url,
        access_token: args.access_token.as_deref(),
        bound_jkt: args.jkt.as_deref(),
    };
    let verified = verify_proof(
        &proof,
        &request,
        &DpopPolicy::new(),
        &mut SeenJtis::new(1),
        now,
    )?;
    if args.json {
        return Ok(Outcome::json(
            &json!({
                "valid": true,
                "jkt": verified.jkt,
                "alg": verified.algorithm.as_str(),
                "jti": verified.jti,
                "iat": verified.issued_at.as_secs(),
                "access_token_checked": args.access_token.is_some(),
                "binding_checked": args.jkt.is_some(),
            }),
            0,
        ));
    }
    let style = Style::for_stdout();
    Ok(Outcome::ok(format!(
        "{} {} proof for {} {} by key {}{}\n",
        style.green("VALID:"),
        verified.algorithm,
        args.method,
        args.url,
        verified.jkt,
        if args.jkt.is_some() {
            ", the key the token is bound to"
        } else {
            " (binding NOT checked: pass --jkt)"
        }
    )))
}
