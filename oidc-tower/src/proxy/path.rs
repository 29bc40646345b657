//! Which upstream path a request path maps to.
//!
//! Routing and forwarding both use the normalized path, so `/mlflow/../admin` is routed and
//! forwarded as `/admin`, never as something the prefix match did not see.

use std::borrow::Cow;

/// Normalizes a request path: resolves `.` and `..` segments (also percent-encoded as `%2e`),
/// collapses repeated slashes and keeps a trailing slash. The result always starts with `/`
/// and never climbs above the root.
pub fn normalize_path(path: &str) -> String {
    normalize_path_cow(path).into_owned()
}

/// [`normalize_path`] without a copy when the path is already normal: rooted, no empty segment
/// and no segment starting with `.` or `%` (only those can be dot segments), which is what
/// nearly every real request path looks like.
pub(crate) fn normalize_path_cow(path: &str) -> Cow<'_, str> {
    if is_already_normal(path) {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(normalize_slow(path))
    }
}

fn is_already_normal(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.first() == Some(&b'/')
        && bytes
            .windows(2)
            .all(|pair| !matches!(pair, [b'/', b'/' | b'.' | b'%']))
}

fn normalize_slow(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = path.ends_with('/');
    for segment in path.split('/') {
        if segment.is_empty() {
            continue;
        }
        match dot_segment(segment) {
            Some(DotSegment::Current) => trailing_slash = true,
            Some(DotSegment::Parent) => {
                segments.pop();
                trailing_slash = true;
            }
            None => {
                segments.push(segment);
                trailing_slash = false;
            }
        }
    }
    // The loop reset the flag on every real segment; restore it when the path itself ended
    // with a slash after its last segment.
    if path.ends_with('/') {
        trailing_slash = true;
    }
    let mut out = String::with_capacity(path.len().max(1));
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    out
}

/// Normalizes a route prefix: like [`normalize_path`], without a trailing slash, and the root
/// as the empty string.
pub(crate) fn normalize_prefix(prefix: &str) -> String {
    let normalized = normalize_path(prefix);
    normalized.trim_end_matches('/').to_owned()
}

/// The part of `path` after `prefix` when `prefix` matches whole segments: `Some("")` for the
/// prefix itself, `Some("/rest")` below it, `None` otherwise (`/mlflowx` is not under `/mlflow`).
/// Both arguments must already be normalized (`prefix` by [`normalize_prefix`]).
pub(crate) fn strip_segment_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    if rest.is_empty() || rest.starts_with('/') {
        Some(rest)
    } else {
        None
    }
}

/// Joins an upstream base path (normalized, no trailing slash) and a remainder that is empty or
/// starts with `/`.
pub(crate) fn join_upstream_path(base: &str, rest: &str) -> String {
    if base.is_empty() && rest.is_empty() {
        return "/".to_owned();
    }
    let mut joined = String::with_capacity(base.len() + rest.len());
    joined.push_str(base);
    joined.push_str(rest);
    joined
}

enum DotSegment {
    Current,
    Parent,
}

fn dot_segment(segment: &str) -> Option<DotSegment> {
    let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
    match decoded.as_str() {
        "." => Some(DotSegment::Current),
        ".." => Some(DotSegment::Parent),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalizes_dot_segments_and_slashes() {
        let cases = [
            ("", "/"),
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b/"),
            ("//a///b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/mlflow/%2e%2e/admin", "/admin"),
            ("/mlflow/.%2E/admin", "/admin"),
            ("/a/b/..", "/a/"),
            ("/a/.", "/a/"),
            ("/a%2Fb", "/a%2Fb"),
            ("/a/...", "/a/..."),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_path(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert_eq!(strip_segment_prefix("/mlflow", "/mlflow"), Some(""));
        assert_eq!(strip_segment_prefix("/mlflow/", "/mlflow"), Some("/"));
        assert_eq!(
            strip_segment_prefix("/mlflow/api/x", "/mlflow"),
            Some("/api/x")
        );
        assert_eq!(strip_segment_prefix("/mlflowx", "/mlflow"), None);
        assert_eq!(strip_segment_prefix("/anything", ""), Some("/anything"));
        assert_eq!(normalize_prefix("/mlflow/"), "/mlflow");
        assert_eq!(normalize_prefix("/"), "");
        assert_eq!(normalize_prefix("mlflow"), "/mlflow");
    }

    #[test]
    fn joins_upstream_paths() {
        assert_eq!(join_upstream_path("", ""), "/");
        assert_eq!(join_upstream_path("", "/api"), "/api");
        assert_eq!(join_upstream_path("/base", ""), "/base");
        assert_eq!(join_upstream_path("/base", "/api"), "/base/api");
    }

    proptest! {
        #[test]
        fn normalization_is_idempotent_and_rooted(path in "[/a-z.%2eE]{0,40}") {
            let once = normalize_path(&path);
            prop_assert!(once.starts_with('/'));
            prop_assert!(!once.contains("//"));
            prop_assert!(once.split('/').all(|s| dot_segment(s).is_none()));
            prop_assert_eq!(normalize_path(&once), once.clone());
        }

        #[test]
        fn fast_path_agrees_with_full_normalization(path in "[/a-z.%2eE]{0,40}") {
            let fast = normalize_path_cow(&path).into_owned();
            prop_assert_eq!(fast, normalize_slow(&path));
        }

        #[test]
        fn normalization_never_panics(path in any::<String>()) {
            prop_assert!(normalize_path(&path).starts_with('/'));
        }
    }
}
