//! `oidc jwks ISSUER_OR_URL`: list the keys of a key set: kid, type, algorithm, use, size or
//! curve and RFC 7638 thumbprint.

use std::path::Path;

use oidc_core::jwks::{KeyInfo, KeySet};
use oidc_core::{Issuer, UnixTime};
use serde_json::{Value, json};
use url::Url;

use crate::args::{JwksArgs, looks_like_path};
use crate::error::CliError;
use crate::fetch::{Fetcher, parse_url};
use crate::input::{is_url, read_file};
use crate::output::{Outcome, Style};

/// Where the keys were found.
pub(crate) enum KeySource {
    File(String),
    Url(Url),
}

impl KeySource {
    fn describe(&self) -> String {
        match self {
            KeySource::File(path) => path.clone(),
            KeySource::Url(url) => url.to_string(),
        }
    }
}

pub(crate) fn run(args: &JwksArgs) -> Result<Outcome, CliError> {
    let now = oidc_tower::clock::now();
    let (source, keys) = load(&args.source, now)?;
    if args.json {
        return Ok(Outcome::json(
            &json!({
                "valid": true,
                "source": source.describe(),
                "keys": keys.keys().iter().map(key_json).collect::<Vec<_>>(),
                "skipped": keys.skipped().iter()
                    .map(|s| json!({ "kid": s.kid, "reason": s.reason }))
                    .collect::<Vec<_>>(),
            }),
            0,
        ));
    }
    Ok(Outcome::ok(render(Style::for_stdout(), &source, &keys)))
}

/// Loads a key set from a file, a JWKS URL or an issuer. A URL is first read as a key set;
/// when the answer is not one, it is taken as an issuer and its discovery document is followed.
pub(crate) fn load(value: &str, now: UnixTime) -> Result<(KeySource, KeySet), CliError> {
    if !is_url(value) && looks_like_path(value) {
        let text = read_file(Path::new(value)).map_err(|e| match e {
            CliError::ReadFile { path, source } => CliError::ReadKeyFile { path, source },
            other => other,
        })?;
        let keys = KeySet::parse(text.as_bytes())?;
        return Ok((KeySource::File(value.to_owned()), keys));
    }
    let url = parse_url(value)?;
    let fetcher = Fetcher::new()?;
    if let Ok(keys) = fetcher.key_set(&url, now) {
        return Ok((KeySource::Url(url), keys));
    }
    let issuer = Issuer::new(value)?;
    let metadata = fetcher.discover(&issuer)?;
    let keys = fetcher.key_set(&metadata.jwks_uri, now)?;
    Ok((KeySource::Url(metadata.jwks_uri), keys))
}

fn key_json(key: &KeyInfo) -> Value {
    json!({
        "kid": key.kid,
        "kty": key.kty,
        "alg": key.alg,
        "use": key.key_use,
        "size_bits": key.size_bits,
        "curve": key.curve,
        "thumbprint": key.thumbprint,
    })
}

fn render(style: Style, source: &KeySource, keys: &KeySet) -> String {
    let mut rows = vec![[
        "KID".to_owned(),
        "KTY".to_owned(),
        "ALG".to_owned(),
        "USE".to_owned(),
        "SIZE/CURVE".to_owned(),
        "THUMBPRINT (RFC 7638)".to_owned(),
    ]];
    let dash = || "-".to_owned();
    for key in keys.keys() {
        let size = match (&key.curve, key.size_bits) {
            (Some(curve), _) => curve.clone(),
            (None, Some(bits)) => format!("{bits} bits"),
            (None, None) => dash(),
        };
        rows.push([
            key.kid.clone().unwrap_or_else(dash),
            key.kty.clone(),
            key.alg.clone().unwrap_or_else(dash),
            key.key_use.clone().unwrap_or_else(dash),
            size,
            if key.thumbprint.is_empty() {
                dash()
            } else {
                key.thumbprint.clone()
            },
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = format!(
        "{} key(s) from {}\n\n",
        keys.keys().len(),
        source.describe()
    );
    for (i, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let line = line.join("  ");
        let line = line.trim_end();
        if i == 0 {
            text.push_str(&style.bold(line));
        } else {
            text.push_str(line);
        }
        text.push('\n');
    }
    if !keys.skipped().is_empty() {
        text.push_str(&format!("\n{}\n", style.yellow("Skipped")));
        for skipped in keys.skipped() {
            let kid = skipped.kid.as_deref().unwrap_or("(no kid)");
            text.push_str(&format!("  {kid}: {}\n", skipped.reason));
        }
    }
    text
}
