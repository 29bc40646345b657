//! Property tests of the sealed-cookie codec: values round-trip through `Set-Cookie` and
//! `Cookie` headers, and any alteration (bit flip, truncation, chunk swap, foreign chunk) is
//! rejected with an error, never a panic.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderValue;
use oidc_core::cookie::{CookieCodec, CookieKeys, CookieSettings, RequestCookies};
use oidc_core::danger::InsecureSeededRandom;
use oidc_core::{Secret, UnixTime};
use proptest::prelude::*;

const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);
const LATER: UnixTime = UnixTime::from_secs(1_800_028_800);

fn keys() -> CookieKeys {
    CookieKeys::from_secrets(&[Secret::new("a cookie secret that is long enough to use")]).unwrap()
}

fn codec() -> CookieCodec {
    CookieCodec::new(keys(), CookieSettings::new("s").with_max_chunks(8)).unwrap()
}

/// The `name=value` pairs of the cookies `headers` set (clearing headers left out).
fn set_pairs(headers: &[HeaderValue]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| h.to_str().unwrap())
        .filter(|h| !h.contains("Max-Age=0"))
        .map(|h| {
            let pair = h.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

fn cookie_header(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("; ")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn values_round_trip_through_headers(
        value in ".{0,200}",
        padding in 0usize..20_000,
        seed in any::<u64>(),
    ) {
        let value = format!("{value}{}", "p".repeat(padding));
        let codec = codec();
        let headers = codec
            .encode(&value, LATER, NOW, &mut InsecureSeededRandom::new(seed), &RequestCookies::empty())
            .unwrap();
        for header in &headers {
            prop_assert!(header.len() <= oidc_core::cookie::MAX_COOKIE_BYTES);
        }
        let header = cookie_header(&set_pairs(&headers));
        let opened: Option<String> = codec.decode(&RequestCookies::parse(&header), NOW).unwrap();
        prop_assert_eq!(opened, Some(value));
    }

    #[test]
    fn any_bit_flip_in_the_sealed_bytes_is_rejected(position in any::<prop::sample::Index>(), bit in 0u8..8) {
        let keys = keys();
        let sealed = keys.seal("s", "payload", LATER, &mut InsecureSeededRandom::new(1)).unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let index = position.index(bytes.len());
        bytes[index] ^= 1 << bit;
        let tampered = URL_SAFE_NO_PAD.encode(&bytes);
        let err = keys.open::<String>("s", &tampered, NOW).unwrap_err();
        prop_assert!(
            ["cookie_undecryptable", "cookie_unsupported_version", "cookie_unknown_key"].contains(&err.code()),
            "{}", err.code()
        );
    }

    #[test]
    fn any_bit_flip_in_the_cookie_text_is_rejected(position in any::<prop::sample::Index>(), bit in 0u8..7) {
        let keys = keys();
        let sealed = keys.seal("s", "payload", LATER, &mut InsecureSeededRandom::new(2)).unwrap();
        let mut text = sealed.into_bytes();
        let index = position.index(text.len());
        text[index] ^= 1 << bit;
        let tampered = String::from_utf8(text).unwrap();
        prop_assert!(keys.open::<String>("s", &tampered, NOW).is_err());
    }

    #[test]
    fn any_truncation_is_rejected(keep in any::<prop::sample::Index>()) {
        let keys = keys();
        let sealed = keys.seal("s", "payload", LATER, &mut InsecureSeededRandom::new(3)).unwrap();
        let keep = keep.index(sealed.len());
        prop_assert!(keys.open::<String>("s", &sealed[..keep], NOW).is_err());
    }

    #[test]
    fn swapped_or_foreign_chunks_are_rejected(
        first in any::<prop::sample::Index>(),
        second in any::<prop::sample::Index>(),
        seed in any::<u64>(),
    ) {
        let codec = codec();
        let mut random = InsecureSeededRandom::new(seed);
        let value = "v".repeat(12_000);
        let encode = |random: &mut InsecureSeededRandom| {
            set_pairs(&codec.encode(&value, LATER, NOW, random, &RequestCookies::empty()).unwrap())
        };
        let original = encode(&mut random);
        prop_assert!(original.len() >= 4);
        let (a, b) = (first.index(original.len()), second.index(original.len()));

        // Swap the contents of two chunks (keeping the count prefix where it belongs).
        if a != b {
            let mut swapped = original.clone();
            let strip = |v: &str, i: usize| if i == 0 { v.split_once('.').unwrap().1.to_owned() } else { v.to_owned() };
            let (va, vb) = (strip(&original[a].1, a), strip(&original[b].1, b));
            let count = original.len();
            swapped[a].1 = if a == 0 { format!("{count}.{vb}") } else { vb };
            swapped[b].1 = if b == 0 { format!("{count}.{va}") } else { va };
            let header = cookie_header(&swapped);
            prop_assert!(codec.decode::<String>(&RequestCookies::parse(&header), NOW).is_err());
        }

        // Replace one chunk with the same chunk of another sealing of the same value.
        let other = encode(&mut random);
        let mut mixed = original.clone();
        mixed[a] = other[a].clone();
        let header = cookie_header(&mixed);
        prop_assert!(codec.decode::<String>(&RequestCookies::parse(&header), NOW).is_err());

        // Leave one chunk out: without chunk 0 there is no value at all, otherwise an error.
        let mut missing = original.clone();
        missing.remove(a);
        let header = cookie_header(&missing);
        let decoded = codec.decode::<String>(&RequestCookies::parse(&header), NOW);
        if a == 0 {
            prop_assert!(matches!(decoded, Ok(None)));
        } else {
            prop_assert_eq!(decoded.unwrap_err().code(), "cookie_missing_chunk");
        }
    }

    #[test]
    fn arbitrary_cookie_headers_never_panic(raw in prop::collection::vec(any::<u8>(), 0..2_000)) {
        let codec = codec();
        if let Ok(value) = HeaderValue::from_bytes(&raw) {
            let cookies = RequestCookies::from_header_values([&value]);
            let _ = codec.decode::<String>(&cookies, NOW);
            let _ = codec.clear(&cookies).unwrap();
        }
        let text = String::from_utf8_lossy(&raw);
        let cookies = RequestCookies::parse(&text);
        prop_assert!(cookies.len() <= oidc_core::cookie::MAX_REQUEST_COOKIES);
        let _ = codec.decode::<String>(&cookies, NOW);
    }

    #[test]
    fn arbitrary_sealed_text_is_an_error(text in ".{0,300}") {
        prop_assert!(keys().open::<String>("s", &text, NOW).is_err());
    }

    #[test]
    fn chunk_headers_with_our_name_never_panic(
        count in "[0-9]{0,4}",
        pieces in prop::collection::vec("[A-Za-z0-9_.-]{0,50}", 0..10),
    ) {
        let codec = codec();
        let mut pairs = vec![(format!("{}_0", codec.name()), format!("{count}.{}", pieces.first().cloned().unwrap_or_default()))];
        for (i, piece) in pieces.iter().enumerate().skip(1) {
            pairs.push((format!("{}_{i}", codec.name()), piece.clone()));
        }
        let header = cookie_header(&pairs);
        prop_assert!(codec.decode::<String>(&RequestCookies::parse(&header), NOW).is_err());
    }
}
