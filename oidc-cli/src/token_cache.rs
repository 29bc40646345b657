//! Tokens kept between `oidc login` and `oidc token`, one file per issuer, client and target
//! (the resources and audience the access token is for) in the user's cache directory (`$OIDC_CACHE_DIR`, else `<cache dir>/oidc/`).
//!
//! Files are created with mode 0600 (and the directory 0700) from the start, never loosened then
//! tightened: a new file is written next to the old one and renamed over it.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What is cached for one issuer and client. Tokens are secrets: this type has no `Debug`.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct CachedTokens {
    pub(crate) issuer: String,
    pub(crate) client_id: String,
    /// What the access token is for (`--resource`, `--audience`); empty for the provider's
    /// default.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) target: String,
    pub(crate) subject: Option<String>,
    pub(crate) access_token: String,
    /// Seconds since the epoch; 0 when unknown (the token is then treated as expired).
    pub(crate) expires_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scope: Option<String>,
}

impl CachedTokens {
    /// Whether the access token stays valid for at least `margin` seconds after `now`.
    pub(crate) fn fresh_at(&self, now: u64, margin: u64) -> bool {
        self.expires_at > now.saturating_add(margin)
    }
}

/// Why the cache could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CacheError {
    #[error("no cache directory: set OIDC_CACHE_DIR or HOME")]
    NoDirectory,
    #[error("cannot write the token cache {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl CacheError {
    pub(crate) fn code(&self) -> &'static str {
        match self {
            CacheError::NoDirectory => "no_cache_directory",
            CacheError::Write { .. } => "token_cache_unwritable",
        }
    }
}

/// The cache directory: `$OIDC_CACHE_DIR`, else the platform cache directory plus `oidc`.
pub(crate) fn cache_dir() -> Result<PathBuf, CacheError> {
    if let Some(dir) = std::env::var_os("OIDC_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    dirs::cache_dir()
        .map(|d| d.join("oidc"))
        .ok_or(CacheError::NoDirectory)
}

/// The file of `issuer`, `client_id` and `target` in `dir`: a hash of them, so that any issuer
/// URL makes a safe file name.
pub(crate) fn cache_file(dir: &Path, issuer: &str, client_id: &str, target: &str) -> PathBuf {
    let mut input = Vec::with_capacity(issuer.len() + client_id.len() + target.len() + 2);
    input.extend_from_slice(issuer.as_bytes());
    input.push(0);
    input.extend_from_slice(client_id.as_bytes());
    if !target.is_empty() {
        input.push(0);
        input.extend_from_slice(target.as_bytes());
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input);
    let hex: String = digest
        .as_ref()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    dir.join(format!("tokens-{hex}.json"))
}

/// The cached tokens of `issuer`, `client_id` and `target`, when a readable, matching entry
/// exists. A damaged file counts as no entry (it will be replaced by the next login).
pub(crate) fn load(
    dir: &Path,
    issuer: &str,
    client_id: &str,
    target: &str,
) -> Option<CachedTokens> {
    let text = std::fs::read(cache_file(dir, issuer, client_id, target)).ok()?;
    let cached: CachedTokens = serde_json::from_slice(&text).ok()?;
    (cached.issuer == issuer && cached.client_id == client_id && cached.target == target)
        .then_some(cached)
}

/// Stores `tokens`, replacing any previous entry; returns the file written.
pub(crate) fn store(dir: &Path, tokens: &CachedTokens) -> Result<PathBuf, CacheError> {
    let path = cache_file(dir, &tokens.issuer, &tokens.client_id, &tokens.target);
    let fail = |source| CacheError::Write {
        path: path.clone(),
        source,
    };
    create_private_dir(dir).map_err(fail)?;
    let json = serde_json::to_vec_pretty(tokens).map_err(|e| fail(e.into()))?;
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let mut file = create_private_file(&temporary).map_err(fail)?;
    let written = file.write_all(&json).and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written.and_then(|()| std::fs::rename(&temporary, &path)) {
        let _ = std::fs::remove_file(&temporary);
        return Err(fail(e));
    }
    Ok(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(issuer: &str, access: &str) -> CachedTokens {
        CachedTokens {
            issuer: issuer.into(),
            client_id: "cli".into(),
            target: String::new(),
            subject: Some("alice".into()),
            access_token: access.into(),
            expires_at: 1_000,
            refresh_token: Some("r".into()),
            id_token: None,
            scope: Some("openid".into()),
        }
    }

    #[test]
    fn entries_round_trip_per_issuer_and_client() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().join("nested").join("oidc");
        let a = tokens("https://a.example", "token-a");
        let b = tokens("https://b.example", "token-b");
        store(&dir, &a).unwrap();
        store(&dir, &b).unwrap();
        assert!(load(&dir, "https://a.example", "cli", "") == Some(a.clone()));
        assert!(load(&dir, "https://b.example", "cli", "") == Some(b));
        assert!(load(&dir, "https://a.example", "other", "").is_none());
        let replaced = tokens("https://a.example", "token-a2");
        store(&dir, &replaced).unwrap();
        assert!(load(&dir, "https://a.example", "cli", "") == Some(replaced.clone()));
        let mut for_api = tokens("https://a.example", "token-for-api");
        for_api.target = "resource=https://api.example/".into();
        store(&dir, &for_api).unwrap();
        assert!(load(&dir, "https://a.example", "cli", &for_api.target) == Some(for_api));
        assert!(load(&dir, "https://a.example", "cli", "") == Some(replaced));
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            3,
            "three entries and no temporary file"
        );
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private_from_creation() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().join("oidc");
        let path = store(&dir, &tokens("https://a.example", "t")).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn damaged_or_foreign_entries_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_file(dir.path(), "https://a.example", "cli", "");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(load(dir.path(), "https://a.example", "cli", "").is_none());
        let foreign = serde_json::to_vec(&tokens("https://b.example", "t")).unwrap();
        std::fs::write(&path, foreign).unwrap();
        assert!(load(dir.path(), "https://a.example", "cli", "").is_none());
    }

    #[test]
    fn freshness_keeps_a_margin() {
        let t = tokens("https://a.example", "t");
        assert!(t.fresh_at(900, 60));
        assert!(!t.fresh_at(940, 60));
        assert!(!t.fresh_at(u64::MAX, 60));
    }
}
