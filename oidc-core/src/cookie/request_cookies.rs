//! Reading a request's `Cookie` header(s) without failing, within bounds on how much is read.

use http::{HeaderMap, HeaderValue};

/// How much of the `Cookie` header(s) [`RequestCookies`] reads; the rest is ignored.
pub const MAX_COOKIE_HEADER_BYTES: usize = 64 * 1024;

/// How many cookies [`RequestCookies`] keeps from one request; the rest are ignored.
pub const MAX_REQUEST_COOKIES: usize = 256;

/// The cookies of a request, parsed from its `Cookie` header(s) without failing: pairs without
/// `=`, names that are not tokens and values that are not UTF-8 are skipped, and at most
/// [`MAX_COOKIE_HEADER_BYTES`] and [`MAX_REQUEST_COOKIES`] cookies are read. When a name repeats,
/// [`RequestCookies::get`] returns its first value (browsers send the most specific path first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestCookies<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> RequestCookies<'a> {
    /// No cookies at all.
    pub fn empty() -> Self {
        RequestCookies::default()
    }

    /// The cookies of every `Cookie` header in `headers`.
    pub fn from_headers(headers: &'a HeaderMap) -> Self {
        Self::from_header_values(headers.get_all(http::header::COOKIE))
    }

    /// The cookies of the given `Cookie` header values.
    pub fn from_header_values(values: impl IntoIterator<Item = &'a HeaderValue>) -> Self {
        let mut cookies = RequestCookies::default();
        let mut budget = MAX_COOKIE_HEADER_BYTES;
        for value in values {
            let bytes = value.as_bytes();
            let readable = bytes.get(..budget.min(bytes.len())).unwrap_or_default();
            budget -= readable.len();
            cookies.add_from(readable);
            if budget == 0 || cookies.pairs.len() >= MAX_REQUEST_COOKIES {
                break;
            }
        }
        cookies
    }

    /// The cookies of one `Cookie` header value given as text.
    pub fn parse(header: &'a str) -> Self {
        let bytes = header.as_bytes();
        let mut cookies = RequestCookies::default();
        cookies.add_from(
            bytes
                .get(..MAX_COOKIE_HEADER_BYTES.min(bytes.len()))
                .unwrap_or_default(),
        );
        cookies
    }

    /// The first value of the cookie named `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs
            .iter()
            .find(|(candidate, _)| *candidate == name)
            .map(|(_, value)| *value)
    }

    /// The names of all cookies, in request order, repeats included.
    pub fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.pairs.iter().map(|(name, _)| *name)
    }

    /// How many cookies were read.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether no cookie was read.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    fn add_from(&mut self, header: &'a [u8]) {
        // Nearly every header is UTF-8 as a whole, and `str::split` finds `;` much faster than a
        // byte-by-byte scan; a header with some non-UTF-8 cookie falls back to pair by pair.
        match std::str::from_utf8(header) {
            Ok(text) => {
                for pair in text.split(';') {
                    if !self.add_pair(pair) {
                        return;
                    }
                }
            }
            Err(_) => {
                for pair in header.split(|b| *b == b';') {
                    if let Ok(pair) = std::str::from_utf8(pair)
                        && !self.add_pair(pair)
                    {
                        return;
                    }
                }
            }
        }
    }

    /// Adds one `name=value` pair if it is well formed; `false` once the cookie limit is reached.
    fn add_pair(&mut self, pair: &'a str) -> bool {
        if self.pairs.len() >= MAX_REQUEST_COOKIES {
            return false;
        }
        if let Some((name, value)) = pair.split_once('=') {
            let name = name.trim_ascii();
            let value = value.trim_ascii();
            let value = value
                .strip_prefix('"')
                .and_then(|inner| inner.strip_suffix('"'))
                .unwrap_or(value);
            if !name.is_empty() && name.bytes().all(is_token_byte) {
                self.pairs.push((name, value));
            }
        }
        true
    }
}

pub(super) fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_cookies_are_parsed_robustly() {
        let cookies = RequestCookies::parse(
            " a=1;b=2 ; junk; =nameless; c=\"quoted\"; a=second; bad name=3; d=; e==x ;;",
        );
        assert_eq!(cookies.get("a"), Some("1"), "first duplicate wins");
        assert_eq!(cookies.get("b"), Some("2"));
        assert_eq!(cookies.get("c"), Some("quoted"));
        assert_eq!(cookies.get("d"), Some(""));
        assert_eq!(cookies.get("e"), Some("=x"));
        assert_eq!(cookies.get("junk"), None);
        assert_eq!(cookies.get("bad name"), None);
        assert_eq!(
            cookies.names().collect::<Vec<_>>(),
            ["a", "b", "c", "a", "d", "e"]
        );

        let mut headers = HeaderMap::new();
        headers.append(http::header::COOKIE, HeaderValue::from_static("x=1"));
        headers.append(
            http::header::COOKIE,
            HeaderValue::from_bytes(b"bin=\xff\xfe; y=2").unwrap(),
        );
        let from_map = RequestCookies::from_headers(&headers);
        assert_eq!(from_map.get("x"), Some("1"));
        assert_eq!(from_map.get("bin"), None, "non-UTF-8 values are skipped");
        assert_eq!(from_map.get("y"), Some("2"));
        assert_eq!(from_map.len(), 2);
    }

    #[test]
    fn huge_cookie_headers_are_bounded() {
        let many = (0..10_000)
            .map(|i| format!("c{i}=v"))
            .collect::<Vec<_>>()
            .join("; ");
        let cookies = RequestCookies::parse(&many);
        assert_eq!(cookies.len(), MAX_REQUEST_COOKIES);
        let long = format!("a={}; b=1", "v".repeat(200_000));
        let cookies = RequestCookies::parse(&long);
        assert_eq!(cookies.get("b"), None, "only the first 64 KiB are read");
        assert_eq!(
            cookies.get("a").map(str::len),
            Some(MAX_COOKIE_HEADER_BYTES - 2)
        );
    }
}
