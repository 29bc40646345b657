//! `oidc decode`: a token's header and claims, read WITHOUT verifying anything.

use oidc_core::danger::decode_unverified;
use serde_json::json;

use crate::args::DecodeArgs;
use crate::commands::{render_token, times_json};
use crate::error::CliError;
use crate::input::read_token;
use crate::output::{self, Outcome, Style};

const NOT_VERIFIED: &str = "NOTHING WAS VERIFIED: signature, issuer, audience and times are \
                            unchecked; use `oidc verify` before trusting any of this.";

pub(crate) fn run(args: &DecodeArgs) -> Result<Outcome, CliError> {
    let token = read_token(args.token.as_deref())?;
    let decoded = decode_unverified(&token)?;
    let now = oidc_tower::clock::now().as_secs();
    if args.json {
        output::warn(NOT_VERIFIED);
        return Ok(Outcome::json(
            &json!({
                "verified": false,
                "header": decoded.header,
                "claims": decoded.claims,
                "times": times_json(&decoded.claims, now),
            }),
            0,
        ));
    }
    let style = Style::for_stdout();
    let mut text = format!("{}\n\n", style.yellow(&format!("WARNING: {NOT_VERIFIED}")));
    text.push_str(&render_token(style, &decoded.header, &decoded.claims, now));
    Ok(Outcome::ok(text))
}
