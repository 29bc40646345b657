//! The cookie side of a sealed value: the `Set-Cookie` headers that carry it (attributes,
//! `Max-Age`, chunks when it is longer than one cookie), joining the chunks back, and which
//! cookies a response clears.

use std::fmt::Write as _;

use http::HeaderValue;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::settings::{effective_name, is_plain_domain};
use super::{
    CookieConfigError, CookieError, CookieKeys, CookieSettings, MAX_CHUNKS_LIMIT, MAX_COOKIE_BYTES,
    RequestCookies,
};
use crate::random::RandomSource;
use crate::time::UnixTime;

/// Seals values into `Set-Cookie` headers and opens them from a request's cookies, for one cookie
/// name. Two codecs (session, pending login) may share one [`CookieKeys`].
#[derive(Clone, Debug)]
pub struct CookieCodec {
    keys: CookieKeys,
    settings: CookieSettings,
    name: String,
    attributes: String,
    chunk_capacity: usize,
}

impl CookieCodec {
    /// Checks `settings` and builds the codec.
    pub fn new(keys: CookieKeys, settings: CookieSettings) -> Result<Self, CookieConfigError> {
        let name = effective_name(&settings)?;
        if !settings.path.starts_with('/')
            || !settings
                .path
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
        {
            return Err(CookieConfigError::InvalidPath {
                path: settings.path.clone(),
            });
        }
        if let Some(domain) = &settings.domain
            && !is_plain_domain(domain)
        {
            return Err(CookieConfigError::InvalidDomain {
                domain: domain.clone(),
            });
        }
        if settings.max_chunks == 0 || settings.max_chunks > MAX_CHUNKS_LIMIT {
            return Err(CookieConfigError::InvalidMaxChunks {
                max_chunks: settings.max_chunks,
                limit: MAX_CHUNKS_LIMIT,
            });
        }
        let mut attributes = format!("; Path={}", settings.path);
        if let Some(domain) = &settings.domain {
            let _ = write!(attributes, "; Domain={domain}");
        }
        // Room for the chunk suffix `_NN`, `=`, the count prefix `NN.` and the longest Max-Age.
        let overhead = name.len()
            + "_NN=NN.".len()
            + attributes.len()
            + "; Max-Age=18446744073709551615; HttpOnly; Secure; SameSite=Lax".len();
        let chunk_capacity = MAX_COOKIE_BYTES.saturating_sub(overhead);
        if chunk_capacity < 64 {
            return Err(CookieConfigError::AttributesTooLong { len: overhead });
        }
        Ok(CookieCodec {
            keys,
            settings,
            name,
            attributes,
            chunk_capacity,
        })
    }

    /// The cookie name as the browser sees it (with any `__Host-`/`__Secure-` prefix).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The settings this codec was built with.
    pub fn settings(&self) -> &CookieSettings {
        &self.settings
    }

    /// The keys this codec seals and opens with.
    pub fn keys(&self) -> &CookieKeys {
        &self.keys
    }

    /// Seals `value` until `expires_at` and returns the `Set-Cookie` header values to send: the
    /// cookie (or its chunks) with `Max-Age` counting down to `expires_at`, followed by clearing
    /// headers for every cookie of this codec in `request` that the new value does not use.
    pub fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        expires_at: UnixTime,
        now: UnixTime,
        random: &mut dyn RandomSource,
        request: &RequestCookies<'_>,
    ) -> Result<Vec<HeaderValue>, CookieError> {
        if expires_at <= now {
            return Err(CookieError::AlreadyExpired { expires_at, now });
        }
        let sealed = self.keys.seal(&self.name, value, expires_at, random)?;
        let max_age = expires_at.duration_since(now).as_secs();
        let mut headers = Vec::new();
        let mut used = Vec::new();
        if sealed.len() <= self.chunk_capacity {
            headers.push(self.set_cookie(&self.name, &sealed, max_age)?);
            used.push(self.name.clone());
        } else {
            let max = self.chunk_capacity.saturating_mul(self.settings.max_chunks);
            if sealed.len() > max {
                return Err(CookieError::TooLarge {
                    len: sealed.len(),
                    max,
                });
            }
            let pieces: Vec<&str> = split_ascii(&sealed, self.chunk_capacity);
            for (index, piece) in pieces.iter().enumerate() {
                let chunk_name = format!("{}_{index}", self.name);
                let value = if index == 0 {
                    format!("{}.{piece}", pieces.len())
                } else {
                    (*piece).to_owned()
                };
                headers.push(self.set_cookie(&chunk_name, &value, max_age)?);
                used.push(chunk_name);
            }
        }
        for stale in self.own_cookie_names(request) {
            if !used.iter().any(|name| name == stale) {
                headers.push(self.clearing_cookie(stale)?);
            }
        }
        Ok(headers)
    }

    /// Opens the value carried by `request`: `Ok(None)` when the request has none of this
    /// codec's cookies, an error when they are present but do not open.
    pub fn decode<T: DeserializeOwned>(
        &self,
        request: &RequestCookies<'_>,
        now: UnixTime,
    ) -> Result<Option<T>, CookieError> {
        if let Some(sealed) = request.get(&self.name) {
            return self.keys.open(&self.name, sealed, now).map(Some);
        }
        let Some(first) = request.get(&format!("{}_0", self.name)) else {
            return Ok(None);
        };
        let (count, first_piece) = first
            .split_once('.')
            .ok_or(CookieError::MalformedChunkCount)?;
        if count.is_empty() || count.len() > 2 || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CookieError::MalformedChunkCount);
        }
        let count: usize = count
            .parse()
            .map_err(|_| CookieError::MalformedChunkCount)?;
        if count == 0 {
            return Err(CookieError::MalformedChunkCount);
        }
        if count > self.settings.max_chunks {
            return Err(CookieError::TooManyChunks {
                count,
                max: self.settings.max_chunks,
            });
        }
        let mut sealed = String::with_capacity(count * self.chunk_capacity);
        sealed.push_str(first_piece);
        for index in 1..count {
            let piece = request
                .get(&format!("{}_{index}", self.name))
                .ok_or(CookieError::MissingChunk { index })?;
            sealed.push_str(piece);
        }
        self.keys.open(&self.name, &sealed, now).map(Some)
    }

    /// `Set-Cookie` header values that delete every cookie of this codec present in `request`
    /// (the single cookie and all chunks, stale ones included). When the request carries none,
    /// the base name is cleared anyway so that logout always says so.
    pub fn clear(&self, request: &RequestCookies<'_>) -> Result<Vec<HeaderValue>, CookieError> {
        let mut names = self.own_cookie_names(request);
        if names.is_empty() {
            names.push(&self.name);
        }
        names
            .into_iter()
            .map(|name| self.clearing_cookie(name))
            .collect()
    }

    /// The distinct names in `request` that belong to this codec: its name, or its name followed
    /// by `_` and a chunk index.
    fn own_cookie_names<'r>(&self, request: &RequestCookies<'r>) -> Vec<&'r str> {
        let mut names: Vec<&'r str> = Vec::new();
        for name in request.names() {
            let ours = name == self.name
                || name
                    .strip_prefix(self.name.as_str())
                    .and_then(|rest| rest.strip_prefix('_'))
                    .is_some_and(|index| {
                        !index.is_empty()
                            && index.len() <= 2
                            && index.bytes().all(|b| b.is_ascii_digit())
                    });
            if ours && !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    fn set_cookie(
        &self,
        name: &str,
        value: &str,
        max_age: u64,
    ) -> Result<HeaderValue, CookieError> {
        let mut header = format!("{name}={value}{}; Max-Age={max_age}", self.attributes);
        self.push_flags(&mut header);
        to_header_value(header)
    }

    fn clearing_cookie(&self, name: &str) -> Result<HeaderValue, CookieError> {
        let mut header = format!("{name}={}; Max-Age=0", self.attributes);
        self.push_flags(&mut header);
        to_header_value(header)
    }

    fn push_flags(&self, header: &mut String) {
        header.push_str("; HttpOnly");
        if self.settings.secure {
            header.push_str("; Secure");
        }
        header.push_str("; SameSite=Lax");
    }
}

/// Splits ASCII text into pieces of at most `size` bytes (`size` > 0).
fn split_ascii(text: &str, size: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        // `text` is base64url, so every byte offset is a character boundary.
        let Some((piece, tail)) = rest.split_at_checked(size.max(1).min(rest.len())) else {
            break;
        };
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// A `Set-Cookie` value, marked sensitive so that HTTP/2 never indexes it and well-behaved loggers
/// leave it out.
fn to_header_value(header: String) -> Result<HeaderValue, CookieError> {
    let len = header.len();
    let mut value =
        HeaderValue::try_from(header).map_err(|_| CookieError::InvalidHeaderValue { len })?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::super::test_fixtures::*;
    use super::*;
    use crate::danger::InsecureSeededRandom;

    #[test]
    fn host_prefix_and_attributes() {
        let codec = codec();
        assert_eq!(codec.name(), "__Host-oidc_session");
        let headers = codec
            .encode(
                &payload(10),
                LATER,
                NOW,
                &mut InsecureSeededRandom::new(1),
                &RequestCookies::empty(),
            )
            .unwrap();
        assert!(headers.iter().all(HeaderValue::is_sensitive));
        let headers = strings(&headers);
        assert_eq!(headers.len(), 1);
        let header = &headers[0];
        assert!(header.starts_with("__Host-oidc_session="), "{header}");
        assert!(
            header.ends_with("; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"),
            "{header}"
        );
    }

    #[test]
    fn prefix_follows_the_attributes() {
        let k = keys(&[SECRET_A]);
        let with_domain = CookieCodec::new(
            k.clone(),
            CookieSettings::new("s").with_domain("example.com"),
        )
        .unwrap();
        assert_eq!(with_domain.name(), "__Secure-s");
        let with_path =
            CookieCodec::new(k.clone(), CookieSettings::new("s").with_path("/app")).unwrap();
        assert_eq!(with_path.name(), "__Secure-s");
        let plain = CookieCodec::new(
            k.clone(),
            CookieSettings::new("s")
                .insecure_allow_plain_http(&loopback())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(plain.name(), "s");
        let header = strings(
            &plain
                .encode(
                    &1u8,
                    LATER,
                    NOW,
                    &mut InsecureSeededRandom::new(1),
                    &RequestCookies::empty(),
                )
                .unwrap(),
        )
        .remove(0);
        assert!(!header.contains("Secure"), "{header}");
        assert!(header.contains("HttpOnly; SameSite=Lax"), "{header}");
        let domain_header = strings(
            &with_domain
                .encode(
                    &1u8,
                    LATER,
                    NOW,
                    &mut InsecureSeededRandom::new(1),
                    &RequestCookies::empty(),
                )
                .unwrap(),
        )
        .remove(0);
        assert!(
            domain_header.contains(
                "; Path=/; Domain=example.com; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"
            ),
            "{domain_header}"
        );
    }

    #[test]
    fn invalid_settings_are_refused() {
        let k = keys(&[SECRET_A]);
        let cases = [
            (CookieSettings::new(""), "cookie_invalid_name"),
            (CookieSettings::new("a b"), "cookie_invalid_name"),
            (CookieSettings::new("a;b"), "cookie_invalid_name"),
            (
                CookieSettings::new("__Host-s")
                    .insecure_allow_plain_http(&loopback())
                    .unwrap(),
                "cookie_prefix_needs_secure",
            ),
            (
                CookieSettings::new("s").with_path("app"),
                "cookie_invalid_path",
            ),
            (
                CookieSettings::new("s").with_path("/a;b"),
                "cookie_invalid_path",
            ),
            (
                CookieSettings::new("s").with_domain("a..b"),
                "cookie_invalid_domain",
            ),
            (
                CookieSettings::new("s").with_domain("a.b;x"),
                "cookie_invalid_domain",
            ),
            (
                CookieSettings::new("s").with_max_chunks(0),
                "cookie_invalid_max_chunks",
            ),
            (
                CookieSettings::new("s").with_max_chunks(21),
                "cookie_invalid_max_chunks",
            ),
            (
                CookieSettings::new("s").with_path(format!("/{}", "p".repeat(4100))),
                "cookie_attributes_too_long",
            ),
        ];
        for (settings, code) in cases {
            let debug = format!("{settings:?}");
            assert_eq!(
                CookieCodec::new(k.clone(), settings).unwrap_err().code(),
                code,
                "{debug}"
            );
        }
    }

    #[test]
    fn large_values_are_chunked_under_the_cookie_limit_and_joined_back() {
        let codec = codec();
        let value = payload(9_000);
        let headers = codec
            .encode(
                &value,
                LATER,
                NOW,
                &mut InsecureSeededRandom::new(1),
                &RequestCookies::empty(),
            )
            .unwrap();
        let texts = strings(&headers);
        assert_eq!(
            texts.len(),
            4,
            "9 KB of JSON seals into 12 KB of base64: 4 chunks"
        );
        for (index, text) in texts.iter().enumerate() {
            assert!(
                text.len() <= MAX_COOKIE_BYTES,
                "chunk {index} has {} bytes",
                text.len()
            );
            assert!(
                text.starts_with(&format!("__Host-oidc_session_{index}=")),
                "{text}"
            );
        }
        assert!(texts[0].starts_with("__Host-oidc_session_0=4."));
        let cookie_header = browser_cookie_header(&headers);
        let request = RequestCookies::parse(&cookie_header);
        assert_eq!(codec.decode::<Payload>(&request, NOW).unwrap(), Some(value));
    }

    #[test]
    fn too_large_values_are_refused() {
        let codec = CookieCodec::new(
            keys(&[SECRET_A]),
            CookieSettings::new("s").with_max_chunks(2),
        )
        .unwrap();
        let err = codec
            .encode(
                &payload(9_000),
                LATER,
                NOW,
                &mut InsecureSeededRandom::new(1),
                &RequestCookies::empty(),
            )
            .unwrap_err();
        assert_eq!(err.code(), "cookie_too_large");
        let expired = codec
            .encode(
                &1u8,
                NOW,
                NOW,
                &mut InsecureSeededRandom::new(1),
                &RequestCookies::empty(),
            )
            .unwrap_err();
        assert_eq!(expired.code(), "cookie_already_expired");
    }

    #[test]
    fn encoding_clears_stale_chunks_of_a_larger_previous_value() {
        let codec = codec();
        let big = codec
            .encode(
                &payload(9_000),
                LATER,
                NOW,
                &mut InsecureSeededRandom::new(1),
                &RequestCookies::empty(),
            )
            .unwrap();
        let big_header = browser_cookie_header(&big);
        let request = RequestCookies::parse(&big_header);
        let medium = strings(
            &codec
                .encode(
                    &payload(4_000),
                    LATER,
                    NOW,
                    &mut InsecureSeededRandom::new(2),
                    &request,
                )
                .unwrap(),
        );
        assert_eq!(medium.len(), 4, "two chunks, two clearings: {medium:?}");
        assert!(medium[0].starts_with("__Host-oidc_session_0=2."));
        assert!(medium[1].starts_with("__Host-oidc_session_1="));
        assert_eq!(
            medium[2],
            "__Host-oidc_session_2=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
        );
        assert!(medium[3].starts_with("__Host-oidc_session_3=; "));

        let small = strings(
            &codec
                .encode(
                    &payload(1),
                    LATER,
                    NOW,
                    &mut InsecureSeededRandom::new(3),
                    &request,
                )
                .unwrap(),
        );
        assert_eq!(
            small.len(),
            5,
            "one cookie, four chunk clearings: {small:?}"
        );
        assert!(small[0].starts_with("__Host-oidc_session="));
        assert!(
            small[1..]
                .iter()
                .all(|h| h.contains("=; Path=/; Max-Age=0"))
        );
    }

    #[test]
    fn chunked_value_replaces_an_earlier_single_cookie() {
        let codec = codec();
        let request = RequestCookies::parse("__Host-oidc_session=old; other=1");
        let headers = strings(
            &codec
                .encode(
                    &payload(5_000),
                    LATER,
                    NOW,
                    &mut InsecureSeededRandom::new(1),
                    &request,
                )
                .unwrap(),
        );
        assert_eq!(
            headers.last().unwrap(),
            "__Host-oidc_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
        );
    }

    #[test]
    fn clear_removes_every_own_cookie() {
        let codec = codec();
        let request = RequestCookies::parse(
            "__Host-oidc_session_0=2.a; __Host-oidc_session_1=b; __Host-oidc_session_7=z; __Host-oidc_session_x=1; __Host-oidc_sessionX=1; other=2",
        );
        let cleared = strings(&codec.clear(&request).unwrap());
        assert_eq!(
            cleared
                .iter()
                .map(|h| h.split('=').next().unwrap())
                .collect::<Vec<_>>(),
            [
                "__Host-oidc_session_0",
                "__Host-oidc_session_1",
                "__Host-oidc_session_7"
            ]
        );
        let nothing_present = strings(&codec.clear(&RequestCookies::empty()).unwrap());
        assert_eq!(
            nothing_present,
            ["__Host-oidc_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"]
        );
    }

    #[test]
    fn decoding_reports_absent_and_broken_chunks() {
        let codec = codec();
        assert_eq!(
            codec
                .decode::<u8>(&RequestCookies::parse("other=1"), NOW)
                .unwrap(),
            None
        );
        let cases = [
            ("__Host-oidc_session_0=abc", "cookie_malformed_chunk_count"),
            (
                "__Host-oidc_session_0=0.abc",
                "cookie_malformed_chunk_count",
            ),
            (
                "__Host-oidc_session_0=x.abc",
                "cookie_malformed_chunk_count",
            ),
            (
                "__Host-oidc_session_0=999.abc",
                "cookie_malformed_chunk_count",
            ),
            ("__Host-oidc_session_0=9.abc", "cookie_too_many_chunks"),
            (
                "__Host-oidc_session_0=3.abc; __Host-oidc_session_1=def",
                "cookie_missing_chunk",
            ),
            (
                "__Host-oidc_session_0=2.abcd; __Host-oidc_session_1=efgh",
                "cookie_truncated",
            ),
            ("__Host-oidc_session=%%%", "cookie_not_base64"),
        ];
        for (header, code) in cases {
            let err = codec
                .decode::<u8>(&RequestCookies::parse(header), NOW)
                .unwrap_err();
            assert_eq!(err.code(), code, "{header}");
        }
    }

    #[test]
    fn codecs_with_other_names_do_not_open_each_other() {
        let k = keys(&[SECRET_A]);
        let session = CookieCodec::new(k.clone(), CookieSettings::new("session")).unwrap();
        let pending = CookieCodec::new(k, CookieSettings::new("pending")).unwrap();
        let headers = pending
            .encode(
                &5u8,
                LATER,
                NOW,
                &mut InsecureSeededRandom::new(1),
                &RequestCookies::empty(),
            )
            .unwrap();
        // Present the pending-login value under the session cookie's name.
        let value = browser_cookie_header(&headers)
            .split_once('=')
            .unwrap()
            .1
            .to_owned();
        let forged = format!("{}={value}", session.name());
        let err = session
            .decode::<u8>(&RequestCookies::parse(&forged), NOW)
            .unwrap_err();
        assert_eq!(err.code(), "cookie_undecryptable");
    }
}
