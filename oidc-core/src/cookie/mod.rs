//! Sealed cookies: values (sessions, pending logins) encrypted into `Set-Cookie` headers and
//! opened from the request's `Cookie` header.
//!
//! This module decides how a value is sealed, how it is split across cookies, which attributes
//! the cookies carry, and which cookies a response must clear. It does no I/O: headers come in as
//! [`http::HeaderMap`]/[`http::HeaderValue`] and go out as [`http::HeaderValue`]s.
//!
//! # Sealing
//! [`CookieKeys`] seal any `T: Serialize` with **AES-256-GCM-SIV** (RFC 8452, from aws-lc-rs)
//! under a fresh 96-bit nonce drawn from the caller's [`RandomSource`]. Why this AEAD:
//! - GCM-SIV resists nonce misuse: each nonce derives its own keys and the IV is synthetic, so
//!   even a repeated random nonce would only reveal that two sealed values were identical. Random
//!   nonces are therefore safe for any realistic number of cookies per key, the property that
//!   makes XChaCha20-Poly1305 attractive, without its 24-byte nonce.
//! - It runs on the AES and carry-less-multiply instructions of current CPUs: opening a
//!   2.7 KB session costs about 1 µs, against about 5 µs for the portable XChaCha20-Poly1305 of the
//!   `chacha20poly1305` crate measured on the same machine. The cookie is opened on every
//!   request, and must cost well under one RS256 verification (`benches/benches/session.rs`).
//! - aws-lc-rs is already the crate's cryptography provider (HKDF, signatures).
//!
//! A sealed value is `base64url(version ‖ key id ‖ nonce ‖ ciphertext ‖ tag)`. The plaintext is
//! the value's expiry (8 bytes, big-endian unix seconds) followed by its JSON. The associated data
//! binds the version, the key id and the cookie's name, so a value sealed for one cookie never
//! opens as another (a pending login presented as a session is rejected). The expiry inside the
//! plaintext is checked against `now` on every open, whatever `Max-Age` the browser honoured.
//!
//! Operators give secrets (passphrases of at least [`MIN_SECRET_BYTES`] bytes); HKDF-SHA256
//! (aws-lc-rs) turns each into a 256-bit key and a 4-byte key id, which lets the opener pick the
//! key without trial decryption. The first secret seals, every listed secret opens: to rotate,
//! put the new secret first and drop the old one after the session lifetime.
//!
//! # Cookies
//! [`CookieCodec`] adds the cookie side: `HttpOnly`, `Secure` (off only with
//! [`CookieSettings::insecure_allow_plain_http`], loopback hosts only), `SameSite=Lax`, `Path`, optional `Domain`,
//! `Max-Age`, and the `__Host-` name prefix whenever the attributes allow it. A sealed value
//! longer than one cookie may carry ([`MAX_COOKIE_BYTES`] for the whole `name=value; attributes`)
//! is split into numbered cookies `NAME_0`, `NAME_1`, …; the first starts with the chunk count
//! (`3.`). Each response clears the cookies of this codec that the request carried but the new
//! value no longer uses, so stale chunks of an earlier, larger value never linger.
//!
//! Each concern has its own file: the errors, the sealing, the settings, the codec and its
//! chunks, and the parsing of a request's `Cookie` header.
//!
//! [`RandomSource`]: crate::RandomSource

mod codec;
mod error;
mod request_cookies;
mod seal;
mod settings;
#[cfg(test)]
mod test_fixtures;

pub use codec::CookieCodec;
pub use error::{CookieConfigError, CookieError};
pub use request_cookies::{MAX_COOKIE_HEADER_BYTES, MAX_REQUEST_COOKIES, RequestCookies};
pub use seal::{CookieKeys, MIN_SECRET_BYTES};
pub use settings::{CookieSettings, DEFAULT_MAX_CHUNKS};

/// Browsers keep a cookie only while `name=value` stays within 4096 bytes; this codec keeps the
/// whole `Set-Cookie` value (attributes included) within it, to be safe with every browser.
pub const MAX_COOKIE_BYTES: usize = 4096;

/// The most chunks a value may be split into.
pub const MAX_CHUNKS_LIMIT: usize = 20;
