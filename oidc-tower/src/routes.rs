//! Skip-auth and API route rules, matched against a safely normalized request path.
//!
//! This module decides two things: what the path of a request *is* once the tricks a client can
//! play with it are undone ([`normalize_path`]), and whether a method + normalized path is covered
//! by a list of route rules ([`RouteRules`]).
//!
//! # Normalization
//! The path is percent-decoded once, then empty segments are collapsed and `.` / `..` segments
//! resolved (RFC 3986 §5.2.4, clamped at the root). A path that cannot be normalized without
//! guessing how the upstream will read it is refused with a [`PathError`], and a refused path never
//! matches a rule. Refused are: encoded slashes and backslashes (`%2f`, `%5c`), raw backslashes,
//! anything still percent-encoded after one decoding (`%252e`), `;` path parameters, `?` or `#`
//! (a query or fragment is never part of the path), control characters including NUL, invalid
//! UTF-8, and empty segments mixed with dot segments (`/public//../admin`, which some servers read
//! as `/admin` and others as `/public/admin`).
//!
//! # Rules
//! Skip-auth rules use the syntax of oauth2-proxy's `--skip-auth-route`: `[METHOD=]REGEX`, e.g.
//! `GET=^/health$` or `^/static/`. API rules (`--api-route`) are plain regexes. All rules are
//! compiled once, into one [`regex::RegexSet`].
//!
//! **Anchoring:** every rule is anchored at the start of the path: the rule `REGEX` is compiled as
//! `^(?:REGEX)`. A rule such as `/health` therefore matches `/health` and `/healthz` but never
//! `/admin/health`; write `.*/health$` to match anywhere. Write a trailing `$` to match a whole
//! path. Matching is case-sensitive (`/PUBLIC/x` does not match `^/public/`) unless the regex says
//! `(?i)`, and the method of a rule is compared exactly with the request method, after the rule's
//! method has been upper-cased.
//!
//! ```
//! use http::{Method, Uri};
//! use oidc_tower::routes::RouteRules;
//!
//! let skip = RouteRules::skip_auth(["GET=^/health$", "^/public/"]).unwrap();
//! let get = Method::GET;
//! assert!(skip.matches_request(&get, &Uri::from_static("/health")));
//! assert!(skip.matches_request(&Method::POST, &Uri::from_static("/public/form")));
//! assert!(!skip.matches_request(&Method::POST, &Uri::from_static("/health")));
//! assert!(!skip.matches_request(&get, &Uri::from_static("/public/../admin")));
//! assert!(!skip.matches_request(&get, &Uri::from_static("/public/%2e%2e/admin")));
//! assert!(!skip.matches_request(&get, &Uri::from_static("/admin?x=/public/")));
//! ```

use std::fmt;

use http::{Method, Uri};
use oidc_core::ErrorKind;
use regex::{Regex, RegexSet};

/// Longest raw path, in bytes, that [`normalize_path`] accepts.
pub const MAX_PATH_BYTES: usize = 8 * 1024;

/// A request path after percent-decoding and dot-segment removal.
///
/// Invariants: starts with `/`; contains no empty segment except a trailing one, no `.` or `..`
/// segment, no `%`, `;`, `?`, `#`, `\` and no control character. Normalizing it again gives it back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NormalizedPath(String);

impl NormalizedPath {
    /// The normalized path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NormalizedPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a path cannot be normalized safely.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("the path does not start with '/'")]
    NotAbsolute,
    /// The path is longer than [`MAX_PATH_BYTES`].
    #[error("the path is {len} bytes long, more than the {max} allowed")]
    TooLong {
        /// Length of the raw path.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A `%` is not followed by two hexadecimal digits.
    #[error("invalid percent-encoding at byte {offset}")]
    InvalidPercentEncoding {
        /// Byte offset of the `%` in the raw path.
        offset: usize,
    },
    /// A slash or backslash is percent-encoded (`%2f`, `%5c`).
    #[error("the path contains an encoded slash or backslash at byte {offset}")]
    EncodedSeparator {
        /// Byte offset of the `%` in the raw path.
        offset: usize,
    },
    /// The path still contains a `%` after one decoding (`%25`).
    #[error("the path is percent-encoded more than once (byte {offset})")]
    DoubleEncoding {
        /// Byte offset of the `%` in the raw path.
        offset: usize,
    },
    /// The path contains a backslash.
    #[error("the path contains a backslash")]
    Backslash,
    /// The path contains a `;` parameter.
    #[error("the path contains a ';' parameter")]
    Parameter,
    /// The path contains `?` or `#`: a query or fragment was passed as part of the path.
    #[error("the path contains a query or fragment delimiter")]
    QueryOrFragment,
    /// The decoded path contains a control character (including NUL).
    #[error("the path contains the control character {byte:#04x}")]
    ControlCharacter {
        /// The offending byte.
        byte: u8,
    },
    /// The decoded path is not UTF-8.
    #[error("the decoded path is not valid UTF-8")]
    InvalidUtf8,
    /// Empty segments and dot segments together make the path ambiguous.
    #[error("the path mixes empty segments ('//') with dot segments")]
    AmbiguousDotSegments,
}

impl PathError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotAbsolute => ErrorKind::PathNotAbsolute,
            Self::TooLong { .. } => ErrorKind::PathTooLong,
            Self::InvalidPercentEncoding { .. } => ErrorKind::PathInvalidPercentEncoding,
            Self::EncodedSeparator { .. } => ErrorKind::PathEncodedSeparator,
            Self::DoubleEncoding { .. } => ErrorKind::PathDoubleEncoding,
            Self::Backslash => ErrorKind::PathBackslash,
            Self::Parameter => ErrorKind::PathParameter,
            Self::QueryOrFragment => ErrorKind::PathQueryOrFragment,
            Self::ControlCharacter { .. } => ErrorKind::PathControlCharacter,
            Self::InvalidUtf8 => ErrorKind::PathInvalidUtf8,
            Self::AmbiguousDotSegments => ErrorKind::PathAmbiguousDotSegments,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// Normalizes a raw request path (the `path()` of a URI, without query) for rule matching.
///
/// ```
/// use oidc_tower::routes::{normalize_path, PathError};
///
/// assert_eq!(normalize_path("/a/./b/../c%20d").unwrap().as_str(), "/a/c d");
/// assert_eq!(normalize_path("/public/%2e%2e/admin").unwrap().as_str(), "/admin");
/// assert_eq!(normalize_path("/public%2f..%2fadmin"), Err(PathError::EncodedSeparator { offset: 7 }));
/// ```
pub fn normalize_path(raw: &str) -> Result<NormalizedPath, PathError> {
    if raw.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong {
            len: raw.len(),
            max: MAX_PATH_BYTES,
        });
    }
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let decoded = percent_decode_once(raw.as_bytes())?;
    if let Some(&byte) = decoded.iter().find(|b| b.is_ascii_control()) {
        return Err(PathError::ControlCharacter { byte });
    }
    if decoded.contains(&b'\\') {
        return Err(PathError::Backslash);
    }
    if decoded.contains(&b';') {
        return Err(PathError::Parameter);
    }
    if decoded.iter().any(|&b| b == b'?' || b == b'#') {
        return Err(PathError::QueryOrFragment);
    }
    let decoded = String::from_utf8(decoded).map_err(|_| PathError::InvalidUtf8)?;
    remove_dot_segments(&decoded).map(NormalizedPath)
}

/// Whether [`normalize_path`] would return `raw` unchanged, decided without allocating: rooted,
/// short enough, printable ASCII without `%`, backslash, `;`, `?` or `#`, and no empty or
/// dot segment (`//`, `/.`).
fn is_already_normal(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    bytes.len() <= MAX_PATH_BYTES
        && bytes.first() == Some(&b'/')
        && bytes
            .iter()
            .all(|&b| b.is_ascii_graphic() && !matches!(b, b'%' | b'\\' | b';' | b'?' | b'#'))
        && bytes
            .windows(2)
            .all(|pair| !matches!(pair, [b'/', b'/' | b'.']))
}

/// Why a list of route rules cannot be compiled.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RouteRuleError {
    /// A rule has an empty regex.
    #[error("route rule #{index} has an empty regex")]
    EmptyPattern {
        /// Position of the rule in the list, from 0.
        index: usize,
    },
    /// A rule's regex does not compile on its own.
    #[error("route rule #{index} is not a valid regex: {source}")]
    InvalidRegex {
        /// Position of the rule in the list, from 0.
        index: usize,
        /// The regex error.
        #[source]
        source: regex::Error,
    },
    /// The anchored set of rules does not compile (for example, it is too large).
    #[error("the route rules cannot be compiled together: {source}")]
    InvalidSet {
        /// The regex error.
        #[source]
        source: regex::Error,
    },
}

impl RouteRuleError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::EmptyPattern { .. } => ErrorKind::RouteRuleEmpty,
            Self::InvalidRegex { .. } => ErrorKind::RouteRuleInvalidRegex,
            Self::InvalidSet { .. } => ErrorKind::RouteRulesTooLarge,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// A compiled list of route rules, each an optional method and a start-anchored path regex.
#[derive(Debug, Clone)]
pub struct RouteRules {
    set: RegexSet,
    methods: Vec<Option<Method>>,
}

impl RouteRules {
    /// A list without rules: matches nothing.
    pub fn empty() -> Self {
        Self {
            set: RegexSet::empty(),
            methods: Vec::new(),
        }
    }

    /// Compiles skip-auth rules in oauth2-proxy's `[METHOD=]REGEX` syntax.
    ///
    /// The text before the first `=` is a method when it is a non-empty run of ASCII letters,
    /// digits, `-` or `_` (it is upper-cased); otherwise the whole rule is the regex.
    pub fn skip_auth<I, S>(rules: I) -> Result<Self, RouteRuleError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let parsed: Vec<(Option<Method>, String)> = rules
            .into_iter()
            .map(|rule| split_method(rule.as_ref()))
            .collect();
        Self::compile(parsed)
    }

    /// Compiles API route rules: plain path regexes, any method (oauth2-proxy's `--api-route`).
    pub fn api<I, S>(patterns: I) -> Result<Self, RouteRuleError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let parsed: Vec<(Option<Method>, String)> = patterns
            .into_iter()
            .map(|p| (None, p.as_ref().to_owned()))
            .collect();
        Self::compile(parsed)
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.methods.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.methods.is_empty()
    }

    /// Whether some rule covers this method and normalized path.
    pub fn matches(&self, method: &Method, path: &NormalizedPath) -> bool {
        self.matches_normalized(method, path.as_str())
    }

    fn matches_normalized(&self, method: &Method, path: &str) -> bool {
        if self.methods.is_empty() {
            return false;
        }
        if self.methods.iter().all(Option::is_none) {
            return self.set.is_match(path);
        }
        self.set.matches(path).iter().any(|index| {
            self.methods
                .get(index)
                .is_some_and(|rule_method| rule_method.as_ref().is_none_or(|m| m == method))
        })
    }

    /// Normalizes the URI's path and matches it; a path that cannot be normalized never matches.
    ///
    /// Only the path is looked at: the query and fragment never take part in matching.
    pub fn matches_request(&self, method: &Method, uri: &Uri) -> bool {
        if self.methods.is_empty() {
            return false;
        }
        let raw = uri.path();
        if is_already_normal(raw) {
            return self.matches_normalized(method, raw);
        }
        match normalize_path(raw) {
            Ok(path) => self.matches(method, &path),
            Err(_) => false,
        }
    }

    fn compile(rules: Vec<(Option<Method>, String)>) -> Result<Self, RouteRuleError> {
        let mut anchored = Vec::with_capacity(rules.len());
        let mut methods = Vec::with_capacity(rules.len());
        for (index, (method, pattern)) in rules.into_iter().enumerate() {
            if pattern.is_empty() {
                return Err(RouteRuleError::EmptyPattern { index });
            }
            // Compiling the pattern alone first guarantees its groups are balanced, so wrapping it
            // cannot close the anchoring group early (`a)|(.*` would otherwise match anything).
            Regex::new(&pattern)
                .map_err(|source| RouteRuleError::InvalidRegex { index, source })?;
            anchored.push(format!("^(?:{pattern})"));
            methods.push(method);
        }
        let set =
            RegexSet::new(&anchored).map_err(|source| RouteRuleError::InvalidSet { source })?;
        Ok(Self { set, methods })
    }
}

impl Default for RouteRules {
    fn default() -> Self {
        Self::empty()
    }
}

fn split_method(rule: &str) -> (Option<Method>, String) {
    if let Some((prefix, regex)) = rule.split_once('=') {
        let is_method = !prefix.is_empty()
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if is_method && let Ok(method) = Method::from_bytes(prefix.to_ascii_uppercase().as_bytes())
        {
            return (Some(method), regex.to_owned());
        }
    }
    (None, rule.to_owned())
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

fn percent_decode_once(raw: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut offset = 0;
    while let Some(&byte) = raw.get(offset) {
        if byte != b'%' {
            out.push(byte);
            offset += 1;
            continue;
        }
        let high = raw.get(offset + 1).copied().and_then(hex_value);
        let low = raw.get(offset + 2).copied().and_then(hex_value);
        let (Some(high), Some(low)) = (high, low) else {
            return Err(PathError::InvalidPercentEncoding { offset });
        };
        let decoded = high * 16 + low;
        match decoded {
            b'/' | b'\\' => return Err(PathError::EncodedSeparator { offset }),
            b'%' => return Err(PathError::DoubleEncoding { offset }),
            _ => out.push(decoded),
        }
        offset += 3;
    }
    Ok(out)
}

fn remove_dot_segments(decoded: &str) -> Result<String, PathError> {
    let rest = decoded.strip_prefix('/').unwrap_or(decoded);
    let segments: Vec<&str> = rest.split('/').collect();
    let last_index = segments.len().saturating_sub(1);
    let has_interior_empty = segments
        .iter()
        .enumerate()
        .any(|(i, s)| s.is_empty() && i != last_index);
    let has_dot = segments.iter().any(|s| *s == "." || *s == "..");
    if has_interior_empty && has_dot {
        return Err(PathError::AmbiguousDotSegments);
    }
    let mut kept: Vec<&str> = Vec::with_capacity(segments.len());
    for segment in &segments {
        match *segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            other => kept.push(other),
        }
    }
    let trailing_slash = segments
        .last()
        .is_some_and(|s| s.is_empty() || *s == "." || *s == "..");
    let mut out = String::with_capacity(decoded.len());
    for segment in &kept {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> Result<String, PathError> {
        normalize_path(raw).map(|p| p.0)
    }

    #[test]
    fn plain_paths_are_unchanged() {
        assert_eq!(norm("/").unwrap(), "/");
        assert_eq!(norm("/a/b").unwrap(), "/a/b");
        assert_eq!(norm("/a/b/").unwrap(), "/a/b/");
    }

    #[test]
    fn dot_segments_are_resolved_and_clamped_at_root() {
        assert_eq!(norm("/public/../admin").unwrap(), "/admin");
        assert_eq!(norm("/a/./b/.").unwrap(), "/a/b/");
        assert_eq!(norm("/a/b/..").unwrap(), "/a/");
        assert_eq!(norm("/../../etc").unwrap(), "/etc");
        assert_eq!(norm("/..").unwrap(), "/");
    }

    #[test]
    fn encoded_dot_segments_are_resolved() {
        assert_eq!(norm("/public/%2e%2e/admin").unwrap(), "/admin");
        assert_eq!(norm("/public/%2E./admin").unwrap(), "/admin");
        assert_eq!(norm("/public/.%2e/admin").unwrap(), "/admin");
        assert_eq!(norm("/public/%2e/x").unwrap(), "/public/x");
    }

    #[test]
    fn repeated_slashes_collapse() {
        assert_eq!(norm("//public///x").unwrap(), "/public/x");
        assert_eq!(norm("/public//").unwrap(), "/public/");
    }

    #[test]
    fn empty_segments_with_dot_segments_are_ambiguous() {
        assert_eq!(
            norm("/public//../admin"),
            Err(PathError::AmbiguousDotSegments)
        );
        assert_eq!(norm("//./x"), Err(PathError::AmbiguousDotSegments));
    }

    #[test]
    fn encoded_separators_are_refused() {
        assert_eq!(
            norm("/public%2f..%2fadmin"),
            Err(PathError::EncodedSeparator { offset: 7 })
        );
        assert_eq!(
            norm("/public/..%2Fadmin"),
            Err(PathError::EncodedSeparator { offset: 10 })
        );
        assert_eq!(
            norm("/public/..%5cadmin"),
            Err(PathError::EncodedSeparator { offset: 10 })
        );
    }

    #[test]
    fn double_encoding_is_refused() {
        assert_eq!(
            norm("/public/%252e%252e/admin"),
            Err(PathError::DoubleEncoding { offset: 8 })
        );
        assert_eq!(norm("/a%25"), Err(PathError::DoubleEncoding { offset: 2 }));
    }

    #[test]
    fn broken_percent_encoding_is_refused() {
        assert_eq!(
            norm("/a%zz"),
            Err(PathError::InvalidPercentEncoding { offset: 2 })
        );
        assert_eq!(
            norm("/a%2"),
            Err(PathError::InvalidPercentEncoding { offset: 2 })
        );
        assert_eq!(
            norm("/a%"),
            Err(PathError::InvalidPercentEncoding { offset: 2 })
        );
    }

    #[test]
    fn parameters_backslashes_query_and_controls_are_refused() {
        assert_eq!(norm("/public/..;/admin"), Err(PathError::Parameter));
        assert_eq!(norm("/public;x=1/a"), Err(PathError::Parameter));
        assert_eq!(norm("/public/%3b/a"), Err(PathError::Parameter));
        assert_eq!(norm("/public\\..\\admin"), Err(PathError::Backslash));
        assert_eq!(norm("/a?b"), Err(PathError::QueryOrFragment));
        assert_eq!(norm("/a%3fb"), Err(PathError::QueryOrFragment));
        assert_eq!(norm("/a%23b"), Err(PathError::QueryOrFragment));
        assert_eq!(
            norm("/public/%00/../admin"),
            Err(PathError::ControlCharacter { byte: 0 })
        );
        assert_eq!(
            norm("/a%0d%0a"),
            Err(PathError::ControlCharacter { byte: b'\r' })
        );
    }

    #[test]
    fn invalid_utf8_and_relative_and_long_paths_are_refused() {
        assert_eq!(norm("/a%ff%fe"), Err(PathError::InvalidUtf8));
        assert_eq!(norm("a/b"), Err(PathError::NotAbsolute));
        assert_eq!(norm(""), Err(PathError::NotAbsolute));
        assert_eq!(norm("*"), Err(PathError::NotAbsolute));
        let long = format!("/{}", "a".repeat(MAX_PATH_BYTES));
        assert_eq!(
            norm(&long),
            Err(PathError::TooLong {
                len: MAX_PATH_BYTES + 1,
                max: MAX_PATH_BYTES
            })
        );
    }

    #[test]
    fn decoded_utf8_is_kept() {
        assert_eq!(norm("/caf%C3%A9").unwrap(), "/café");
    }

    #[test]
    fn error_codes_are_stable() {
        assert_eq!(PathError::Parameter.code(), "path_parameter");
        assert_eq!(
            PathError::EncodedSeparator { offset: 1 }.code(),
            "path_encoded_separator"
        );
        assert_eq!(
            RouteRuleError::EmptyPattern { index: 0 }.code(),
            "route_rule_empty"
        );
    }

    fn skip(rules: &[&str]) -> RouteRules {
        RouteRules::skip_auth(rules).unwrap()
    }

    fn hits(rules: &RouteRules, method: Method, uri: &'static str) -> bool {
        rules.matches_request(&method, &Uri::from_static(uri))
    }

    #[test]
    fn method_prefix_limits_a_rule_to_that_method() {
        let rules = skip(&["GET=^/health$"]);
        assert!(hits(&rules, Method::GET, "/health"));
        assert!(!hits(&rules, Method::POST, "/health"));
        assert!(!hits(&rules, Method::GET, "/healthz"));
    }

    #[test]
    fn rule_method_is_upper_cased_and_request_method_compared_exactly() {
        let rules = skip(&["get=^/health$"]);
        assert!(hits(&rules, Method::GET, "/health"));
        let lower_get = Method::from_bytes(b"get").unwrap();
        assert!(!rules.matches(&lower_get, &normalize_path("/health").unwrap()));
    }

    #[test]
    fn rule_without_method_matches_every_method() {
        let rules = skip(&["^/static/"]);
        assert!(hits(&rules, Method::GET, "/static/app.js"));
        assert!(hits(&rules, Method::DELETE, "/static/app.js"));
        assert!(!hits(&rules, Method::GET, "/static"));
    }

    #[test]
    fn equals_sign_after_regex_characters_is_part_of_the_regex() {
        let rules = skip(&["^/a=b$"]);
        assert!(hits(&rules, Method::GET, "/a=b"));
        assert!(!hits(&rules, Method::GET, "/a"));
    }

    #[test]
    fn rules_are_anchored_at_the_start() {
        let rules = skip(&["/health"]);
        assert!(hits(&rules, Method::GET, "/health"));
        assert!(hits(&rules, Method::GET, "/healthz"));
        assert!(!hits(&rules, Method::GET, "/admin/health"));
        let anywhere = skip(&[r".*\.css$"]);
        assert!(hits(&anywhere, Method::GET, "/x/y.css"));
    }

    #[test]
    fn dot_segment_tricks_do_not_slip_through() {
        let rules = skip(&["^/public/"]);
        assert!(hits(&rules, Method::GET, "/public/a"));
        assert!(!hits(&rules, Method::GET, "/public/../admin"));
        assert!(!hits(&rules, Method::GET, "/public/%2e%2e/admin"));
        assert!(!hits(&rules, Method::GET, "/public/%2E%2E/admin"));
        assert!(!hits(&rules, Method::GET, "/public/./../admin"));
    }

    #[test]
    fn encoded_slash_and_double_encoding_never_match() {
        let rules = skip(&["^/public/"]);
        assert!(!hits(&rules, Method::GET, "/public/..%2fadmin"));
        assert!(!hits(&rules, Method::GET, "/public%2fx"));
        assert!(!hits(&rules, Method::GET, "/public/%252e%252e/admin"));
        assert!(!hits(&rules, Method::GET, "/public/%00"));
        assert!(!hits(&rules, Method::GET, "/public/%ff"));
    }

    #[test]
    fn semicolon_parameters_never_match() {
        let rules = skip(&["^/public/"]);
        assert!(!hits(&rules, Method::GET, "/public/..;/admin"));
        assert!(!hits(&rules, Method::GET, "/public;/x"));
    }

    #[test]
    fn case_tricks_do_not_match_a_lower_case_rule() {
        let rules = skip(&["^/public/"]);
        assert!(!hits(&rules, Method::GET, "/PUBLIC/x"));
        assert!(!hits(&rules, Method::GET, "/Public/x"));
        let insensitive = skip(&["(?i)^/public/"]);
        assert!(hits(&insensitive, Method::GET, "/PUBLIC/x"));
    }

    #[test]
    fn query_and_fragment_are_never_matched() {
        let rules = skip(&["^/public/", "GET=.*health$"]);
        assert!(!hits(&rules, Method::GET, "/admin?next=/public/"));
        assert!(!hits(&rules, Method::GET, "/admin?check=health"));
        assert!(!hits(&rules, Method::GET, "/admin%3f/public/"));
        let uri: Uri = "http://h/admin?/public/".parse().unwrap();
        assert!(!rules.matches_request(&Method::GET, &uri));
    }

    #[test]
    fn unbalanced_regex_cannot_escape_the_anchor() {
        let err = RouteRules::skip_auth(["a)|(.*"]).unwrap_err();
        assert!(matches!(err, RouteRuleError::InvalidRegex { index: 0, .. }));
        assert_eq!(err.code(), "route_rule_invalid_regex");
    }

    #[test]
    fn empty_patterns_are_refused() {
        assert_eq!(
            RouteRules::skip_auth(["^/a", "GET="]).unwrap_err(),
            RouteRuleError::EmptyPattern { index: 1 }
        );
        assert_eq!(
            RouteRules::api([""]).unwrap_err(),
            RouteRuleError::EmptyPattern { index: 0 }
        );
    }

    #[test]
    fn api_rules_match_any_method_and_keep_equals_in_regex() {
        let rules = RouteRules::api(["^/api/", "GET=^/x", "/k=v$"]).unwrap();
        assert_eq!(rules.len(), 3);
        assert!(hits(&rules, Method::POST, "/api/runs"));
        assert!(hits(&rules, Method::GET, "/k=v"));
        assert!(!hits(&rules, Method::GET, "/x"));
    }

    #[test]
    fn empty_rules_match_nothing() {
        let rules = RouteRules::default();
        assert!(rules.is_empty());
        assert!(!hits(&rules, Method::GET, "/"));
    }

    proptest::proptest! {
        #[test]
        fn already_normal_paths_normalize_to_themselves(raw in "[/a-z.%;?#2eE]{0,30}") {
            if is_already_normal(&raw) {
                proptest::prop_assert_eq!(norm(&raw), Ok(raw.clone()));
            }
        }

        #[test]
        fn fast_and_full_matching_agree(raw in "/[/a-z.%2e]{0,30}") {
            let rules = RouteRules::skip_auth(["^/public", "GET=^/a/[b-z]+$"]).unwrap();
            let uri: Uri = raw.parse().unwrap();
            let full = normalize_path(&raw).is_ok_and(|path| rules.matches(&Method::GET, &path));
            proptest::prop_assert_eq!(rules.matches_request(&Method::GET, &uri), full);
        }
    }
}
