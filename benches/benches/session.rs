//! Cost of opening a session cookie (base64 decode, XChaCha20-Poly1305 decrypt, JSON parse) for a
//! session with a 1 KB ID token, measured beside one RS256 signature verification with aws-lc-rs
//! (key parsed once), the work a bearer request pays instead. Prints the ratio at the end.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{
    KeyPair as _, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::Criterion;
use oidc_core::cookie::{CookieCodec, CookieKeys, CookieSettings, RequestCookies};
use oidc_core::danger::InsecureSeededRandom;
use oidc_core::session::Session;
use oidc_core::{Secret, UnixTime};

const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);
const COOKIE_NAME: &str = "__Host-oidc_session";

/// A token-shaped string of `len` base64url characters.
fn token(len: usize, seed: u8) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut text: Vec<u8> = (0..len)
        .map(|i| ALPHABET[(i * 31 + usize::from(seed)) % ALPHABET.len()])
        .collect();
    if len > 400 {
        text[36] = b'.';
        text[len - 344] = b'.';
    }
    String::from_utf8(text).unwrap()
}

/// A session with a 1 KB ID token, an access token of `access_len` and a refresh token of
/// `refresh_len` characters.
fn session(access_len: usize, refresh_len: usize) -> Session {
    let mut session = Session::new(
        "248289761001",
        "https://op.example.com/realms/main",
        NOW,
        NOW.saturating_add(Duration::from_secs(8 * 3600)),
    );
    session.email = Some("jane.doe@example.com".into());
    session.email_verified = Some(true);
    session.name = Some("Jane Doe".into());
    session.preferred_username = Some("jane".into());
    session.groups = vec!["ml-engineers".into(), "staff".into()];
    session.access_token = Some(Secret::new(token(access_len, 1)));
    session.refresh_token = Some(Secret::new(token(refresh_len, 2)));
    session.id_token = Some(Secret::new(token(1_024, 3)));
    session.access_token_expires_at = Some(NOW.saturating_add(Duration::from_secs(300)));
    session.sid = Some("08a5019c-17e1-4977-8f42-65a12843ea02".into());
    session
}

struct Fixture {
    label: &'static str,
    json_len: usize,
    keys: CookieKeys,
    codec: CookieCodec,
    sealed: String,
    cookie_header: String,
    rs256_message: Vec<u8>,
    rs256_signature: Vec<u8>,
    rs256_key: ParsedPublicKey,
}

fn fixture(label: &'static str, session: Session) -> Fixture {
    let keys = CookieKeys::from_secrets(&[Secret::new("k".repeat(32))]).unwrap();
    let codec = CookieCodec::new(keys.clone(), CookieSettings::new("oidc_session")).unwrap();
    assert_eq!(codec.name(), COOKIE_NAME);
    let json_len = serde_json::to_vec(&session).unwrap().len();
    let mut random = InsecureSeededRandom::new(7);
    let sealed = keys
        .seal(COOKIE_NAME, &session, session.expires_at, &mut random)
        .unwrap();
    let headers = codec
        .encode(
            &session,
            session.expires_at,
            NOW,
            &mut random,
            &RequestCookies::empty(),
        )
        .unwrap();
    let cookie_header = headers
        .iter()
        .map(|h| h.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ");

    // An RS256 ID token's signing input is its header and payload: about 1 KB here.
    let key_pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let id_token = session.id_token.as_ref().unwrap().expose();
    let rs256_message = id_token.as_bytes()[..id_token.rfind('.').unwrap()].to_vec();
    let mut rs256_signature = vec![0; key_pair.public_modulus_len()];
    key_pair
        .sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            &rs256_message,
            &mut rs256_signature,
        )
        .unwrap();
    let rs256_key =
        ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key_pair.public_key().as_ref()).unwrap();
    rs256_key
        .verify_sig(&rs256_message, &rs256_signature)
        .unwrap();

    Fixture {
        label,
        json_len,
        keys,
        codec,
        sealed,
        cookie_header,
        rs256_message,
        rs256_signature,
        rs256_key,
    }
}

fn open_session(f: &Fixture) -> Session {
    f.keys.open(COOKIE_NAME, black_box(&f.sealed), NOW).unwrap()
}

fn decode_request(f: &Fixture) -> Session {
    let cookies = RequestCookies::parse(black_box(&f.cookie_header));
    f.codec.decode(&cookies, NOW).unwrap().unwrap()
}

fn verify_rs256(f: &Fixture) {
    f.rs256_key
        .verify_sig(black_box(&f.rs256_message), black_box(&f.rs256_signature))
        .unwrap();
}

fn benches(c: &mut Criterion, fixtures: &[Fixture]) {
    let mut group = c.benchmark_group("session");
    for f in fixtures {
        group.bench_function(format!("open_sealed/{}", f.label), |b| {
            b.iter(|| open_session(f))
        });
        group.bench_function(format!("decode_cookie_header/{}", f.label), |b| {
            b.iter(|| decode_request(f))
        });
    }
    let f = &fixtures[0];
    group.bench_function("baseline_rs256_verify_aws_lc", |b| {
        b.iter(|| verify_rs256(f))
    });
    group.finish();
}

/// Mean time of `run` over a fixed wall-clock budget, for the printed ratio.
fn mean_time(mut run: impl FnMut()) -> Duration {
    for _ in 0..200 {
        run();
    }
    let budget = Duration::from_millis(700);
    let start = Instant::now();
    let mut iterations = 0u32;
    while start.elapsed() < budget {
        for _ in 0..50 {
            run();
        }
        iterations += 50;
    }
    start.elapsed() / iterations
}

fn main() {
    let fixtures = [
        // The session the target is stated for: a 1 KB ID token, opaque access and refresh tokens.
        fixture("1kb_id_token", session(200, 100)),
        // A heavier one: a 1 KB JWT access token and a 400-character refresh token as well.
        fixture("1kb_id_and_access_tokens", session(1_024, 400)),
    ];
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion, &fixtures);
    criterion.final_summary();

    let rs256 = mean_time(|| verify_rs256(&fixtures[0]));
    println!("RS256 verify (aws-lc-rs, parsed key): {rs256:.2?}");
    for f in &fixtures {
        let open = mean_time(|| {
            black_box(open_session(f));
        });
        let decode = mean_time(|| {
            black_box(decode_request(f));
        });
        let base64_only = mean_time(|| {
            black_box(URL_SAFE_NO_PAD.decode(black_box(&f.sealed)).unwrap());
        });
        let json = serde_json::to_vec(&open_session(f)).unwrap();
        let json_only = mean_time(|| {
            black_box(serde_json::from_slice::<Session>(black_box(&json)).unwrap());
        });
        println!(
            "[{}] JSON {} B, cookie value {} B: open (decrypt + parse) {open:.2?} \
             (base64 {base64_only:.2?}, JSON {json_only:.2?}), from Cookie header {decode:.2?}; \
             open / RS256 = {:.3} (target <= 0.25), header decode / RS256 = {:.3}",
            f.label,
            f.json_len,
            f.sealed.len(),
            open.as_secs_f64() / rs256.as_secs_f64(),
            decode.as_secs_f64() / rs256.as_secs_f64(),
        );
    }
}
