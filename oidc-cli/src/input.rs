//! Where a token or a key set comes from: an argument, a file, stdin, or a URL.

use std::io::Read;
use std::path::Path;

use crate::args::looks_like_path;
use crate::error::CliError;

/// The largest token or file read (1 MiB), so that `oidc decode < /dev/zero` stops.
const MAX_INPUT_BYTES: u64 = 1024 * 1024;

/// The token from `arg`: the token itself, a file holding it, or `-`/nothing for stdin.
/// Surrounding whitespace and a `Bearer ` prefix are removed.
pub(crate) fn read_token(arg: Option<&str>) -> Result<String, CliError> {
    let raw = match arg {
        None | Some("-") => read_stdin()?,
        Some(value) if looks_like_path(value) => read_file(Path::new(value))?,
        Some(value) => value.to_owned(),
    };
    let token = raw.trim();
    let token = token
        .strip_prefix("Bearer ")
        .or_else(|| token.strip_prefix("bearer "))
        .unwrap_or(token)
        .trim();
    if token.is_empty() {
        return Err(CliError::NoToken);
    }
    Ok(token.to_owned())
}

/// A whole file as text, at most [`MAX_INPUT_BYTES`].
pub(crate) fn read_file(path: &Path) -> Result<String, CliError> {
    let error = |source| CliError::ReadFile {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(error)?;
    read_limited(file).map_err(error)
}

fn read_stdin() -> Result<String, CliError> {
    read_limited(std::io::stdin().lock()).map_err(CliError::ReadStdin)
}

fn read_limited(reader: impl Read) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    reader.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_INPUT_BYTES} bytes"),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Whether a `--jwks` or `jwks` argument names a URL rather than a file.
pub(crate) fn is_url(value: &str) -> bool {
    value.starts_with("https://") || value.starts_with("http://")
}
