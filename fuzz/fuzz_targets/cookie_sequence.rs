//! The session cookie codec as a browser and an attacker see it over time: a stateful target.
//!
//! Input: a sequence of operations, one selector byte and its argument bytes each. The server
//! seals values of any size (one cookie or several chunks) and clears them; the clock moves; keys
//! rotate in and old keys retire; an attacker writes, deletes, swaps and copies cookies (also
//! under the pending-login codec's name, which shares the keys), restores an earlier jar, or
//! keeps cookies past their `Max-Age`. A model jar applies every `Set-Cookie` the way a browser
//! does.
//!
//! Checked after every operation that reads:
//! - untouched by the attacker, the jar opens to exactly the last sealed value until it expires,
//!   and to nothing once cleared or expired;
//! - whatever the attacker did, a value that opens is one the server sealed under this cookie
//!   name, is not expired, and was sealed with a key still configured; the pending-login codec
//!   never opens a session value;
//! - after a server write the jar holds only the cookies that write set (stale chunks cleared),
//!   and every `Set-Cookie` fits a browser's 4096-byte limit.
#![no_main]

use std::collections::{BTreeMap, HashMap};

use libfuzzer_sys::fuzz_target;
use oidc_core::Secret;
use oidc_core::UnixTime;
use oidc_core::cookie::{
    CookieCodec, CookieError, CookieKeys, CookieSettings, MAX_COOKIE_BYTES, RequestCookies,
};
use oidc_core::danger::InsecureSeededRandom;
use oidc_fuzz::NOW;

const SESSION: &str = "session";
const PENDING: &str = "pending";
const SESSION_COOKIE: &str = "__Host-session";
const PENDING_COOKIE: &str = "__Host-pending";
const MAX_CHUNKS: usize = 3;
const SECRETS: [&str; 4] = [
    "sequence-cookie-key-zero-0123456789abcdef",
    "sequence-cookie-key-one-0123456789abcdefg",
    "sequence-cookie-key-two-0123456789abcdefg",
    "sequence-cookie-key-three-0123456789abcde",
];

/// Reads operation arguments; runs dry as zeros.
struct Input<'a> {
    bytes: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&first, rest)) = self.bytes.split_first() else {
            return 0;
        };
        self.bytes = rest;
        first
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn text(&mut self, max: usize) -> String {
        let len = usize::from(self.byte()) % (max + 1);
        let take = len.min(self.bytes.len());
        let (text, rest) = self.bytes.split_at(take);
        self.bytes = rest;
        String::from_utf8_lossy(text).into_owned()
    }
}

/// A browser's cookie jar: name → (value, the instant it expires).
#[derive(Clone, Default)]
struct Jar {
    cookies: BTreeMap<String, (String, u64)>,
}

impl Jar {
    /// Applies one `Set-Cookie` header value at `now`.
    fn apply(&mut self, header: &http::HeaderValue, now: u64) {
        let text = header.to_str().expect("Set-Cookie headers are ASCII");
        assert!(
            text.len() <= MAX_COOKIE_BYTES,
            "a Set-Cookie over the browser limit: {} bytes",
            text.len()
        );
        let mut parts = text.split("; ");
        let (name, value) = parts
            .next()
            .and_then(|pair| pair.split_once('='))
            .expect("a Set-Cookie starts with name=value");
        let max_age: u64 = parts
            .find_map(|attribute| attribute.strip_prefix("Max-Age="))
            .expect("every Set-Cookie has a Max-Age")
            .parse()
            .expect("Max-Age is a number");
        if max_age == 0 {
            self.cookies.remove(name);
        } else {
            self.cookies.insert(
                name.to_owned(),
                (value.to_owned(), now.saturating_add(max_age)),
            );
        }
    }

    /// The `Cookie` header a browser sends at `now` (expired cookies dropped unless `keep_all`).
    fn header(&self, now: u64, keep_all: bool) -> String {
        self.cookies
            .iter()
            .filter(|(_, (_, expires))| keep_all || *expires > now)
            .map(|(name, (value, _))| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The cookies a browser still has at `now`.
    fn live_names(&self, now: u64) -> Vec<String> {
        self.cookies
            .iter()
            .filter(|(_, (_, expires))| *expires > now)
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn names(&self) -> Vec<String> {
        self.cookies.keys().cloned().collect()
    }
}

/// The cookie names a codec named `base` reads or clears.
fn is_own_name(base: &str, name: &str) -> bool {
    name == base
        || name
            .strip_prefix(base)
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|index| {
                !index.is_empty() && index.len() <= 2 && index.bytes().all(|b| b.is_ascii_digit())
            })
}

/// A value the server sealed.
struct Sealed {
    payload: String,
    expires_at: u64,
    key: usize,
}

struct World {
    /// Indices into `SECRETS`; the first seals.
    keys: Vec<usize>,
    session: CookieCodec,
    pending: CookieCodec,
    jar: Jar,
    snapshot: Jar,
    now: u64,
    sealed: HashMap<String, Sealed>,
    /// The payload the last server write left in the jar, if any.
    current: Option<String>,
    /// Whether the attacker touched the jar since the last server write.
    tampered: bool,
    /// Whether the browser sends cookies past their `Max-Age` (an attacker replaying them).
    keep_expired: bool,
    serial: u64,
    random: InsecureSeededRandom,
}

/// The session and pending-login codecs over `keys`. Their cookie names as browsers see them
/// carry the `__Host-` prefix.
fn codecs(keys: &[usize]) -> (CookieCodec, CookieCodec) {
    let secrets: Vec<Secret> = keys.iter().map(|&k| Secret::new(SECRETS[k])).collect();
    let keys = CookieKeys::from_secrets(&secrets).expect("long secrets");
    let settings = CookieSettings::new(SESSION).with_max_chunks(MAX_CHUNKS);
    let session = CookieCodec::new(keys.clone(), settings.clone()).expect("valid settings");
    let pending = CookieCodec::new(keys, settings.with_name(PENDING)).expect("valid settings");
    (session, pending)
}

impl World {
    fn new() -> World {
        let keys = vec![0];
        let (session, pending) = codecs(&keys);
        assert_eq!(
            (session.name(), pending.name()),
            (SESSION_COOKIE, PENDING_COOKIE)
        );
        World {
            keys,
            session,
            pending,
            jar: Jar::default(),
            snapshot: Jar::default(),
            now: NOW,
            sealed: HashMap::new(),
            current: None,
            tampered: false,
            keep_expired: false,
            serial: 0,
            random: InsecureSeededRandom::new(7),
        }
    }

    fn request_header(&self) -> String {
        self.jar.header(self.now, self.keep_expired)
    }

    fn server_write(&mut self, len: u16, fill: u8, lifetime: u16) {
        self.serial += 1;
        let fill = char::from(b'a' + fill % 26);
        let payload = format!(
            "{}:{}",
            self.serial,
            fill.to_string().repeat(usize::from(len) % 12_000)
        );
        let expires_at = self.now + u64::from(lifetime) + 1;
        let header = self.request_header();
        let cookies = RequestCookies::parse(&header);
        let encoded = self.session.encode(
            &payload,
            UnixTime::from_secs(expires_at),
            UnixTime::from_secs(self.now),
            &mut self.random,
            &cookies,
        );
        match encoded {
            Ok(headers) => {
                for header in &headers {
                    self.jar.apply(header, self.now);
                }
                self.sealed.insert(
                    payload.clone(),
                    Sealed {
                        payload: payload.clone(),
                        expires_at,
                        key: self.keys[0],
                    },
                );
                self.current = Some(payload);
                self.tampered = false;
                self.keep_expired = false;
                // Only the cookies this write set remain among the codec's names.
                let own: Vec<String> = self
                    .jar
                    .live_names(self.now)
                    .into_iter()
                    .filter(|n| is_own_name(SESSION_COOKIE, n))
                    .collect();
                let single = own.len() == 1 && own[0] == SESSION_COOKIE;
                let chunked = !own.is_empty()
                    && own.iter().all(|n| n != SESSION_COOKIE)
                    && (0..own.len()).all(|i| own.contains(&format!("{SESSION_COOKIE}_{i}")));
                assert!(
                    single || chunked,
                    "stale cookies left after a write: {own:?}"
                );
            }
            Err(CookieError::TooLarge { .. }) => {
                assert!(
                    payload.len() > 7_000,
                    "a {}-byte value refused as too large",
                    payload.len()
                );
            }
            Err(error) => panic!("sealing a string failed: {error:?}"),
        }
    }

    fn server_clear(&mut self) {
        let header = self.request_header();
        let cookies = RequestCookies::parse(&header);
        let headers = self.session.clear(&cookies).expect("clearing never fails");
        for header in &headers {
            self.jar.apply(header, self.now);
        }
        // Every cookie of the codec the browser sent is gone.
        let sent: Vec<&str> = cookies.names().collect();
        for name in self.jar.names() {
            assert!(
                !(is_own_name(SESSION_COOKIE, &name) && sent.contains(&name.as_str())),
                "{name} survived a clear"
            );
        }
        // Nothing of the codec that the browser sends is left, tampered or not.
        self.current = None;
        self.tampered = false;
    }

    fn check(&self) {
        let header = self.request_header();
        let cookies = RequestCookies::parse(&header);
        let opened = self
            .session
            .decode::<String>(&cookies, UnixTime::from_secs(self.now));
        if let Ok(Some(value)) = &opened {
            let sealed = self
                .sealed
                .get(value)
                .unwrap_or_else(|| panic!("opened a value the server never sealed: {value:?}"));
            assert_eq!(&sealed.payload, value);
            assert!(sealed.expires_at > self.now, "opened an expired value");
            assert!(
                self.keys.contains(&sealed.key),
                "opened a value of a retired key"
            );
        }
        if !self.tampered {
            match &self.current {
                Some(payload) => {
                    let sealed = &self.sealed[payload];
                    let live = sealed.expires_at > self.now && self.keys.contains(&sealed.key);
                    if live {
                        assert_eq!(
                            opened.as_ref().ok(),
                            Some(&Some(payload.clone())),
                            "{opened:?}"
                        );
                    } else if sealed.expires_at <= self.now && !self.keep_expired {
                        assert!(
                            matches!(opened, Ok(None)),
                            "expired cookies were sent: {opened:?}"
                        );
                    } else {
                        assert!(opened.is_err(), "{opened:?}");
                    }
                }
                None => assert!(matches!(opened, Ok(None)), "{opened:?}"),
            }
        }
        let pending = self
            .pending
            .decode::<String>(&cookies, UnixTime::from_secs(self.now));
        assert!(
            !matches!(pending, Ok(Some(_))),
            "the pending-login codec opened a session value: {pending:?}"
        );
    }

    /// One attacker edit of the jar.
    fn tamper(&mut self, input: &mut Input<'_>) {
        let names = self.jar.names();
        let pick = |i: u8| -> String {
            let candidates = [
                SESSION_COOKIE.to_owned(),
                format!("{SESSION_COOKIE}_0"),
                format!("{SESSION_COOKIE}_1"),
                format!("{SESSION_COOKIE}_2"),
                format!("{SESSION_COOKIE}_3"),
                format!("{SESSION_COOKIE}_00"),
                SESSION.to_owned(),
                PENDING_COOKIE.to_owned(),
                format!("{PENDING_COOKIE}_0"),
            ];
            candidates[usize::from(i) % candidates.len()].clone()
        };
        match input.byte() % 6 {
            0 => {
                let name = pick(input.byte());
                let value = input.text(64);
                self.jar.cookies.insert(name, (value, u64::MAX));
            }
            1 => {
                if !names.is_empty() {
                    let name = &names[usize::from(input.byte()) % names.len()];
                    self.jar.cookies.remove(name);
                }
            }
            2 => {
                // Copy a cookie's value under another name (swapped chunks, session → pending).
                if !names.is_empty() {
                    let from = &names[usize::from(input.byte()) % names.len()];
                    let value = self.jar.cookies[from].clone();
                    self.jar.cookies.insert(pick(input.byte()), value);
                }
            }
            3 => {
                // Flip one character of a value.
                if !names.is_empty() {
                    let name = names[usize::from(input.byte()) % names.len()].clone();
                    let at = usize::from(input.u16());
                    if let Some((value, _)) = self.jar.cookies.get_mut(&name)
                        && !value.is_empty()
                    {
                        let at = at % value.len();
                        if value.is_char_boundary(at) && value.is_char_boundary(at + 1) {
                            let flipped = if value.as_bytes()[at] == b'A' {
                                "B"
                            } else {
                                "A"
                            };
                            value.replace_range(at..=at, flipped);
                        }
                    }
                }
            }
            4 => self.jar = self.snapshot.clone(),
            _ => self.keep_expired = true,
        }
        self.tampered = true;
    }
}

fuzz_target!(|data: &[u8]| {
    let mut world = World::new();
    let mut input = Input { bytes: data };
    let mut steps = 0;
    while !input.bytes.is_empty() && steps < 64 {
        steps += 1;
        match input.byte() % 8 {
            0 | 1 => {
                let (len, fill, lifetime) = (input.u16(), input.byte(), input.u16());
                world.server_write(len, fill, lifetime);
            }
            2 => world.server_clear(),
            3 => world.now += u64::from(input.u16()),
            4 => {
                // Rotate: a new first key; the old ones still open.
                let next = (world.keys[0] + 1) % SECRETS.len();
                if !world.keys.contains(&next) {
                    world.keys.insert(0, next);
                    (world.session, world.pending) = codecs(&world.keys);
                }
            }
            5 => {
                // Retire the oldest key (one always remains).
                if world.keys.len() > 1 {
                    world.keys.pop();
                    (world.session, world.pending) = codecs(&world.keys);
                }
            }
            6 => world.snapshot = world.jar.clone(),
            _ => world.tamper(&mut input),
        }
        world.check();
    }
});
