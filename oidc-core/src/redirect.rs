//! Where a browser may be sent back to after login and logout.
//!
//! A return-to target comes from the request (a query parameter, the original URL, the
//! `state` of a login) and so from whoever crafted the link. [`RedirectPolicy`] accepts only
//!
//! - a path on the same origin: starts with one `/`, followed by anything but `/` or `\`; or
//! - an absolute `http`/`https` URL written with `//`, without userinfo, whose host (and port) is
//!   on an explicitly allowed list: `example.com` exactly, `.example.com` (or `*.example.com`)
//!   also its subdomains, with `:8080` for one port or `:*` for any; without a port only the
//!   scheme's default port matches.
//!
//! Everything else — scheme-relative `//host`, `/\host`, `\\host`, `javascript:`, `data:`,
//! `https:host`, tabs and newlines that browsers strip, percent-encoded slashes and backslashes
//! (`/%2f%2fhost`, decoded up to [`MAX_DECODE_ROUNDS`] times), userinfo (`@`), non-ASCII
//! (full-width and ideographic dots), dot segments, targets over [`MAX_TARGET_BYTES`] — is refused
//! with a typed [`RedirectError`], and [`RedirectPolicy::return_to_or_root`] falls back to `/`.
//! The rules are deliberately stricter than URL parsing needs: a refused harmless target costs
//! one extra click, an accepted harmful one is an open redirect.

use url::{Host, Url};

use crate::ErrorKind;

/// The longest target accepted, in bytes.
pub const MAX_TARGET_BYTES: usize = 2048;

/// How many times a target is percent-decoded while looking for hidden slashes and controls.
pub const MAX_DECODE_ROUNDS: usize = 4;

/// Why a return-to target was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectError {
    /// The target is empty.
    #[error("empty redirect target")]
    Empty,
    /// The target is longer than [`MAX_TARGET_BYTES`].
    #[error("redirect target of {len} bytes exceeds {max}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The target holds a control character, a space, a backslash or a non-ASCII byte, or a
    /// percent-decoding of it holds a control character or a backslash.
    #[error("redirect target contains the forbidden byte 0x{byte:02x}")]
    ForbiddenByte {
        /// The first forbidden byte.
        byte: u8,
    },
    /// The path (or a percent-decoding of it) has an empty segment (`//`), a dot segment, or a
    /// colon, which some agents read as an authority or a scheme; or the query or fragment holds
    /// `//`, the mark of a URL to redirect to next.
    #[error("redirect target has a suspicious path")]
    SuspiciousPath,
    /// The target is neither a path starting with `/` nor an `http(s)://` URL.
    #[error("redirect target is neither a local path nor an http(s) URL")]
    NotPathOrHttpUrl,
    /// The absolute URL does not parse.
    #[error("redirect target is not a valid URL")]
    Unparsable,
    /// The absolute URL carries a username or password (`user@host`).
    #[error("redirect target carries userinfo")]
    Userinfo,
    /// The absolute URL's host is not allowed.
    #[error("redirect host {host:?} is not allowed")]
    HostNotAllowed {
        /// The parsed host.
        host: String,
    },
    /// The host is allowed but not on this port.
    #[error("redirect host {host:?} is not allowed on port {port}")]
    PortNotAllowed {
        /// The parsed host.
        host: String,
        /// The port.
        port: u16,
    },
}

impl RedirectError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RedirectError::Empty => ErrorKind::RedirectEmpty,
            RedirectError::TooLong { .. } => ErrorKind::RedirectTooLong,
            RedirectError::ForbiddenByte { .. } => ErrorKind::RedirectForbiddenByte,
            RedirectError::SuspiciousPath => ErrorKind::RedirectSuspiciousPath,
            RedirectError::NotPathOrHttpUrl => ErrorKind::RedirectNotPathOrHttpUrl,
            RedirectError::Unparsable => ErrorKind::RedirectUnparsable,
            RedirectError::Userinfo => ErrorKind::RedirectUserinfo,
            RedirectError::HostNotAllowed { .. } => ErrorKind::RedirectHostNotAllowed,
            RedirectError::PortNotAllowed { .. } => ErrorKind::RedirectPortNotAllowed,
        }
    }

    /// A stable snake_case code for this reason.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// An allowed-domain entry that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectConfigError {
    /// The entry is not `host`, `.host`, `*.host`, optionally followed by `:port` or `:*` (host
    /// names and IPv4 addresses; IPv6 literals are not accepted).
    #[error("allowed redirect domain {entry:?} is invalid")]
    InvalidDomain {
        /// The entry as configured.
        entry: String,
    },
}

impl RedirectConfigError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RedirectConfigError::InvalidDomain { .. } => ErrorKind::RedirectInvalidDomain,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// Which return-to targets are safe: same-origin paths, and absolute URLs on allowed domains.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedirectPolicy {
    allowed: Vec<AllowedDomain>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct AllowedDomain {
    /// Lowercase host, without the leading dot.
    host: String,
    include_subdomains: bool,
    port: PortRule,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PortRule {
    DefaultOnly,
    Exactly(u16),
    Any,
}

impl RedirectPolicy {
    /// Accepts same-origin paths only.
    pub fn same_origin_only() -> Self {
        RedirectPolicy::default()
    }

    /// Accepts same-origin paths and absolute URLs on the `allowed` domains (see the module
    /// docs for the entry syntax).
    pub fn new<I, S>(allowed: I) -> Result<Self, RedirectConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let allowed = allowed
            .into_iter()
            .map(|entry| parse_entry(entry.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(RedirectPolicy { allowed })
    }

    /// The target to redirect to, or why it is refused. A path comes back as given; an absolute
    /// URL in its normalized serialization.
    pub fn validate(&self, target: &str) -> Result<String, RedirectError> {
        if target.is_empty() {
            return Err(RedirectError::Empty);
        }
        if target.len() > MAX_TARGET_BYTES {
            return Err(RedirectError::TooLong {
                len: target.len(),
                max: MAX_TARGET_BYTES,
            });
        }
        check_decoded_forms(target)?;
        let bytes = target.as_bytes();
        if bytes.first() == Some(&b'/') {
            // `//host` and `/\host` are scheme-relative URLs to another host; `\` is already
            // refused above, `//` by the path check, but say it here plainly too.
            if bytes.get(1) == Some(&b'/') {
                return Err(RedirectError::SuspiciousPath);
            }
            return Ok(target.to_owned());
        }
        self.validate_absolute(target)
    }

    /// The validated target, or `/` when there is none or it is refused.
    pub fn return_to_or_root(&self, target: Option<&str>) -> String {
        target
            .and_then(|target| self.validate(target).ok())
            .unwrap_or_else(|| "/".to_owned())
    }

    fn validate_absolute(&self, target: &str) -> Result<String, RedirectError> {
        let lower_prefix = target.get(..8).unwrap_or(target).to_ascii_lowercase();
        let authority_start = if lower_prefix.starts_with("https://") {
            8
        } else if lower_prefix.starts_with("http://") {
            7
        } else {
            return Err(RedirectError::NotPathOrHttpUrl);
        };
        let rest = target.get(authority_start..).unwrap_or_default();
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = rest.get(..authority_end).unwrap_or_default();
        if authority.contains('@') {
            return Err(RedirectError::Userinfo);
        }
        if authority.contains('%') || authority.is_empty() {
            return Err(RedirectError::Unparsable);
        }
        let url = Url::parse(target).map_err(|_| RedirectError::Unparsable)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RedirectError::Userinfo);
        }
        let host = match url.host() {
            Some(Host::Domain(domain)) => domain.to_owned(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => format!("[{ip}]"),
            None => return Err(RedirectError::Unparsable),
        };
        let port = url.port();
        let mut host_matched = false;
        for allowed in &self.allowed {
            if !allowed.matches_host(&host) {
                continue;
            }
            host_matched = true;
            let port_ok = match allowed.port {
                PortRule::DefaultOnly => port.is_none(),
                PortRule::Exactly(expected) => port == Some(expected),
                PortRule::Any => true,
            };
            if port_ok {
                return Ok(url.to_string());
            }
        }
        match (host_matched, url.port_or_known_default()) {
            (true, Some(port)) => Err(RedirectError::PortNotAllowed { host, port }),
            _ => Err(RedirectError::HostNotAllowed { host }),
        }
    }
}

impl AllowedDomain {
    fn matches_host(&self, host: &str) -> bool {
        if host.eq_ignore_ascii_case(&self.host) {
            return true;
        }
        if !self.include_subdomains {
            return false;
        }
        let Some(split) = host.len().checked_sub(self.host.len()) else {
            return false;
        };
        match (host.get(..split), host.get(split..)) {
            (Some(head), Some(tail)) => {
                head.len() > 1 && head.ends_with('.') && tail.eq_ignore_ascii_case(&self.host)
            }
            _ => false,
        }
    }
}

fn parse_entry(entry: &str) -> Result<AllowedDomain, RedirectConfigError> {
    let invalid = || RedirectConfigError::InvalidDomain {
        entry: entry.to_owned(),
    };
    let (host_part, port) = match entry.rsplit_once(':') {
        Some((host, "*")) => (host, PortRule::Any),
        Some((host, port)) => {
            let port = port.parse::<u16>().map_err(|_| invalid())?;
            (host, PortRule::Exactly(port))
        }
        _ => (entry, PortRule::DefaultOnly),
    };
    let (host, include_subdomains) = if let Some(parent) = host_part.strip_prefix("*.") {
        (parent, true)
    } else if let Some(parent) = host_part.strip_prefix('.') {
        (parent, true)
    } else {
        (host_part, false)
    };
    let plausible = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !plausible {
        return Err(invalid());
    }
    Ok(AllowedDomain {
        host: host.to_ascii_lowercase(),
        include_subdomains,
        port,
    })
}

/// Refuses targets that hide forbidden bytes or path tricks, in the raw form and in each of up to
/// [`MAX_DECODE_ROUNDS`] percent-decodings.
fn check_decoded_forms(target: &str) -> Result<(), RedirectError> {
    if let Some(byte) = target.bytes().find(|b| is_forbidden_raw_byte(*b)) {
        return Err(RedirectError::ForbiddenByte { byte });
    }
    let mut current = target.as_bytes().to_vec();
    for _ in 0..=MAX_DECODE_ROUNDS {
        if let Some(byte) = current
            .iter()
            .copied()
            .find(|b| is_forbidden_decoded_byte(*b))
        {
            return Err(RedirectError::ForbiddenByte { byte });
        }
        check_path_of(&current)?;
        let decoded = percent_decode(&current);
        if decoded == current {
            return Ok(());
        }
        current = decoded;
    }
    // Still changing after every round: nobody encodes a harmless target that deep.
    Err(RedirectError::SuspiciousPath)
}

/// Bytes a target may not hold as written: controls (browsers strip tabs and newlines, turning
/// `/\t/host` into `//host`), spaces, backslashes (read as `/`) and non-ASCII (look-alike dots).
fn is_forbidden_raw_byte(byte: u8) -> bool {
    byte.is_ascii_control() || byte == b' ' || byte == b'\\' || !byte.is_ascii()
}

/// Bytes a target may not hold once percent-decoded: encoded spaces and UTF-8 are ordinary in
/// paths and queries, encoded controls and backslashes are not.
fn is_forbidden_decoded_byte(byte: u8) -> bool {
    byte.is_ascii_control() || byte == b'\\'
}

/// Checks the path of a relative target (`/...`) or of an absolute one (after its authority):
/// no empty segments beyond the leading `/`, no dot segments, no colon, and no `//` in the
/// query or fragment.
fn check_path_of(target: &[u8]) -> Result<(), RedirectError> {
    let path = if target.first() == Some(&b'/') {
        target
    } else {
        // Skip `scheme://authority`; a target without `://` has no path to check here (it is
        // refused later unless it is an http(s) URL).
        let Some(scheme_end) = find(target, b"://") else {
            return Ok(());
        };
        let after = target.get(scheme_end + 3..).unwrap_or_default();
        match after.iter().position(|b| matches!(b, b'/' | b'?' | b'#')) {
            Some(start) => after.get(start..).unwrap_or_default(),
            None => return Ok(()),
        }
    };
    let path_end = path
        .iter()
        .position(|b| matches!(b, b'?' | b'#'))
        .unwrap_or(path.len());
    let (path, query_and_fragment) = path.split_at(path_end);
    // A URL inside the query (`?next=//host`, `?url=http://host`) is an invitation for the next
    // hop to redirect again; nothing this policy sends a browser back to needs one.
    if find(query_and_fragment, b"//").is_some() {
        return Err(RedirectError::SuspiciousPath);
    }
    if path.contains(&b':') {
        return Err(RedirectError::SuspiciousPath);
    }
    let mut segments = path.split(|b| *b == b'/');
    // The path starts with `/` (or is empty): the first segment is the empty one before it.
    segments.next();
    let mut segments = segments.peekable();
    while let Some(segment) = segments.next() {
        let is_last = segments.peek().is_none();
        if (segment.is_empty() && !is_last) || segment == b"." || segment == b".." {
            return Err(RedirectError::SuspiciousPath);
        }
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// One round of percent-decoding; malformed escapes are kept as they are.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut index = 0;
    while let Some(&byte) = input.get(index) {
        if byte == b'%'
            && let (Some(high), Some(low)) = (
                input.get(index + 1).and_then(|b| hex_value(*b)),
                input.get(index + 2).and_then(|b| hex_value(*b)),
            )
        {
            out.push(high << 4 | low);
            index += 3;
            continue;
        }
        out.push(byte);
        index += 1;
    }
    out
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RedirectPolicy {
        RedirectPolicy::new([
            "app.example.com",
            ".corp.example",
            "*.wild.example",
            "ports.example:8443",
            "any.example:*",
        ])
        .unwrap()
    }

    #[test]
    fn same_origin_paths_are_accepted_as_given() {
        let policy = RedirectPolicy::same_origin_only();
        for target in [
            "/",
            "/mlflow/",
            "/#/experiments/1",
            "/dags/x/grid?run_id=manual__2024-01-01T00:00:00+00:00",
            "/search?q=a%20b&page=2",
            "/a/b/c.html#section-2",
            "/caf%C3%A9",
        ] {
            assert_eq!(policy.validate(target).as_deref(), Ok(target), "{target}");
        }
    }

    #[test]
    fn absolute_urls_on_allowed_domains_are_accepted() {
        let policy = policy();
        let cases = [
            (
                "https://app.example.com/x?y=1",
                "https://app.example.com/x?y=1",
            ),
            ("HTTPS://APP.example.com", "https://app.example.com/"),
            ("http://app.example.com/", "http://app.example.com/"),
            ("https://app.example.com:443/", "https://app.example.com/"),
            ("https://corp.example/", "https://corp.example/"),
            ("https://eu.corp.example/", "https://eu.corp.example/"),
            ("https://a.b.wild.example/", "https://a.b.wild.example/"),
            ("https://ports.example:8443/", "https://ports.example:8443/"),
            ("https://any.example:1234/", "https://any.example:1234/"),
            ("https://any.example/", "https://any.example/"),
        ];
        for (target, expected) in cases {
            assert_eq!(policy.validate(target).as_deref(), Ok(expected), "{target}");
        }
    }

    #[test]
    fn tricks_are_refused_with_reasons() {
        let policy = policy();
        let long = format!("/{}", "a".repeat(MAX_TARGET_BYTES));
        let cases: &[(&str, &str)] = &[
            ("", "redirect_empty"),
            (&long, "redirect_too_long"),
            ("//evil.com", "redirect_suspicious_path"),
            ("///evil.com", "redirect_suspicious_path"),
            ("/\\evil.com", "redirect_forbidden_byte"),
            ("\\\\evil.com", "redirect_forbidden_byte"),
            ("/\t/evil.com", "redirect_forbidden_byte"),
            ("/%09/evil.com", "redirect_forbidden_byte"),
            ("/\n/evil.com", "redirect_forbidden_byte"),
            ("/%2f%2fevil.com", "redirect_suspicious_path"),
            ("/%252f%252fevil.com", "redirect_suspicious_path"),
            ("/%5cevil.com", "redirect_forbidden_byte"),
            ("/%25%32%66%25%32%66evil.com", "redirect_suspicious_path"),
            ("/a/../../evil", "redirect_suspicious_path"),
            ("/a/%2e%2e/b", "redirect_suspicious_path"),
            ("/http://evil.com", "redirect_suspicious_path"),
            ("/x?next=//evil.com", "redirect_suspicious_path"),
            ("/x#//evil.com", "redirect_suspicious_path"),
            ("evil.com", "redirect_not_path_or_http_url"),
            ("javascript:alert(1)", "redirect_not_path_or_http_url"),
            ("JaVaScRiPt:alert(1)", "redirect_not_path_or_http_url"),
            ("data:text/html,x", "redirect_not_path_or_http_url"),
            ("https:evil.com", "redirect_not_path_or_http_url"),
            ("https:/evil.com", "redirect_not_path_or_http_url"),
            ("ftp://app.example.com/", "redirect_not_path_or_http_url"),
            ("https://app.example.com@evil.com/", "redirect_userinfo"),
            ("https://user:pw@app.example.com/", "redirect_userinfo"),
            ("https://evil.com/", "redirect_host_not_allowed"),
            ("https://evilapp.example.com/", "redirect_host_not_allowed"),
            (
                "https://app.example.com.evil.com/",
                "redirect_host_not_allowed",
            ),
            ("https://xcorp.example/", "redirect_host_not_allowed"),
            ("https://sub.app.example.com/", "redirect_host_not_allowed"),
            (
                "https://evil.com\u{3002}app.example.com/",
                "redirect_forbidden_byte",
            ),
            ("https://app\u{ff0e}example.com/", "redirect_forbidden_byte"),
            ("https://app.example.com%2fevil.com/", "redirect_unparsable"),
            ("https://app.example.com:8443/", "redirect_port_not_allowed"),
            ("https://ports.example/", "redirect_port_not_allowed"),
            ("https://ports.example:8444/", "redirect_port_not_allowed"),
            ("https://", "redirect_unparsable"),
            ("https:///app.example.com", "redirect_unparsable"),
            (
                "https://app.example.com/https://evil.com",
                "redirect_suspicious_path",
            ),
            (
                "https://app.example.com/%2f%2fevil.com",
                "redirect_suspicious_path",
            ),
            ("http://0x7f.1/", "redirect_host_not_allowed"),
        ];
        for (target, code) in cases {
            let refused = policy.validate(target);
            assert_eq!(
                refused.as_ref().map_err(RedirectError::code),
                Err(*code),
                "{target:?} gave {refused:?}"
            );
            assert_eq!(policy.return_to_or_root(Some(target)), "/");
        }
        assert_eq!(policy.return_to_or_root(None), "/");
    }

    #[test]
    fn errors_carry_the_offending_data() {
        let policy = policy();
        assert_eq!(
            policy.validate("https://evil.com/"),
            Err(RedirectError::HostNotAllowed {
                host: "evil.com".into()
            })
        );
        assert_eq!(
            policy.validate("https://ports.example:1/"),
            Err(RedirectError::PortNotAllowed {
                host: "ports.example".into(),
                port: 1
            })
        );
        assert_eq!(
            policy.validate("/a\u{7f}"),
            Err(RedirectError::ForbiddenByte { byte: 0x7f })
        );
    }

    #[test]
    fn deeply_encoded_targets_are_refused() {
        let mut target = "/a%2fb".to_owned();
        for _ in 0..MAX_DECODE_ROUNDS + 1 {
            target = target.replace('%', "%25");
        }
        assert_eq!(
            RedirectPolicy::same_origin_only().validate(&target),
            Err(RedirectError::SuspiciousPath)
        );
    }

    #[test]
    fn allowed_entries_are_checked() {
        for entry in [
            "",
            ".",
            "*.",
            "a..b",
            "a b",
            "host:port",
            "host:99999",
            "a/b",
            "@x",
        ] {
            assert_eq!(
                RedirectPolicy::new([entry]).unwrap_err().code(),
                "redirect_invalid_domain",
                "{entry:?}"
            );
        }
        assert!(RedirectPolicy::new(["Example.COM:80", ".a-b.c:*"]).is_ok());
    }
}
