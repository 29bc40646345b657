//! Which HTTP status a layer answers a refused request with, for each [`ErrorKind`]: one table,
//! which the reverse proxy answers from, the authentication layers' answers are tested against,
//! and the catalogue of every code (`docs/error-codes.md`) is generated from.
//!
//! A browser navigation that needs a sign-in is redirected to sign in rather than answered 401.
//! Kinds without a status are not a reason a layer refuses a request: they come from
//! configuration, sign-in, sign-out or background work.

use http::StatusCode;
use oidc_core::ErrorKind;

/// The status a layer answers with when `kind` is why it refuses a request, if it ever is.
pub fn answer_status(kind: ErrorKind) -> Option<StatusCode> {
    use ErrorKind as K;
    let status = match kind {
        // Malformed credentials: RFC 6750 and RFC 9449 `invalid_request`.
        K::MultipleAuthorizationHeaders
        | K::MalformedBearerCredentials
        | K::BearerTokenTooLong
        | K::BearerTokenInQuery
        | K::MultipleBearerTokens
        | K::MalformedDpopCredentials
        | K::MissingDpopProof
        | K::MultipleDpopProofs
        | K::MalformedDpopProof => StatusCode::BAD_REQUEST,

        // No identity: no credentials, or a token, proof or session that is refused.
        K::NoCredentials
        | K::Unauthorized
        | K::MissingToken
        | K::InvalidToken
        | K::OpaqueTokenUnsupported
        | K::DpopBoundTokenSentAsBearer
        | K::DpopTokenNotBound
        | K::DpopRequestUrlUnknown
        | K::UnknownIssuer
        | K::SessionExpired
        | K::SessionRevoked
        | K::RefreshRejected
        | K::StoredSessionUnreadable
        | K::SessionHandleLength
        | K::SessionHandleEncoding => StatusCode::UNAUTHORIZED,
        kind if is_token_rejection(kind)
            || is_introspection_rejection(kind)
            || is_dpop_proof_rejection(kind)
            || is_session_cookie_rejection(kind) =>
        {
            StatusCode::UNAUTHORIZED
        }

        // Known, but not allowed.
        K::InsufficientScope
        | K::EmailNotVerified
        | K::MissingEmail
        | K::MalformedEmail
        | K::EmailNotAllowed
        | K::NotInAllowedGroup
        | K::NotInAllowedRole
        | K::ClaimMismatch => StatusCode::FORBIDDEN,

        // The provider or the session store cannot answer; the session is kept.
        K::ProviderNotReady
        | K::IntrospectionUnavailable
        | K::HttpTimeout
        | K::HttpConnect
        | K::HttpTooLarge
        | K::HttpInvalidRequest
        | K::HttpTransport
        | K::HttpClientBuild
        | K::ProviderUnexpectedStatus
        | K::ProviderNotJson
        | K::ProviderResponseTooLarge
        | K::ProviderResponseMalformed
        | K::DiscoveryNotAnObject
        | K::DiscoveryMissingField
        | K::DiscoveryInvalidField
        | K::DiscoveryIssuerMismatch
        | K::JwksMalformed
        | K::JwksNotAKeySet
        | K::JwksNoUsableKeys
        | K::JwksMixedSymmetric
        | K::StoreUnavailable
        | K::StoreTimedOut => StatusCode::SERVICE_UNAVAILABLE,

        K::AuthenticationLayerMissing | K::AssertionSigningFailed => {
            StatusCode::INTERNAL_SERVER_ERROR
        }

        // The reverse proxy.
        K::UpstreamConnectFailed | K::UpstreamFailed | K::UpstreamTlsFailed => {
            StatusCode::BAD_GATEWAY
        }
        K::UpstreamConnectTimeout | K::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        K::BodyIdleTimeout => StatusCode::REQUEST_TIMEOUT,
        K::NoRoute | K::NotFound => StatusCode::NOT_FOUND,
        K::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        K::ContentEncodingUnsupported => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        K::BadRequest => StatusCode::BAD_REQUEST,

        _ => return None,
    };
    Some(status)
}

/// Kinds of a JWT that was judged and refused (the token's format, signature or claims).
fn is_token_rejection(kind: ErrorKind) -> bool {
    use ErrorKind as K;
    matches!(
        kind,
        K::TokenTooLarge
            | K::EncryptedToken
            | K::MalformedSegments
            | K::InvalidBase64
            | K::InvalidJson
            | K::DuplicateMember
            | K::HeaderTooLarge
            | K::MissingAlg
            | K::AlgNone
            | K::UnsupportedAlg
            | K::InvalidHeader
            | K::UnencodedPayload
            | K::UnsupportedCrit
            | K::UntrustedKeyReference
            | K::EmptyPayload
            | K::EmptySignature
            | K::AlgNotAllowed
            | K::WrongTyp
            | K::UnknownKid
            | K::NoMatchingKey
            | K::AmbiguousKey
            | K::BadSignature
            | K::MissingClaim
            | K::InvalidClaim
            | K::WrongIssuer
            | K::WrongAudience
            | K::AzpMismatch
            | K::NonceMismatch
            | K::Expired
            | K::NotYetValid
            | K::IssuedInFuture
            | K::TooOld
    )
}

/// Kinds of an opaque token that introspection refused (or could not be asked about, because
/// the client could not authenticate).
fn is_introspection_rejection(kind: ErrorKind) -> bool {
    use ErrorKind as K;
    matches!(
        kind,
        K::TokenInactive
            | K::IntrospectionIssuerMismatch
            | K::IntrospectionAudienceMismatch
            | K::WrongClient
            | K::IntrospectionTokenExpired
            | K::IntrospectionTokenNotYetValid
            | K::ClientKeyRejected
            | K::ClientAssertionSigningFailed
    )
}

/// Kinds of a DPoP proof that failed a check of RFC 9449.
fn is_dpop_proof_rejection(kind: ErrorKind) -> bool {
    use ErrorKind as K;
    matches!(
        kind,
        K::DpopProofTooLarge
            | K::DpopMalformed
            | K::DpopWrongTyp
            | K::DpopAlgNotAllowed
            | K::DpopUnsupportedCrit
            | K::DpopMissingJwk
            | K::DpopPrivateJwk
            | K::DpopUnusableJwk
            | K::DpopBadSignature
            | K::DpopMissingClaim
            | K::DpopInvalidClaim
            | K::DpopHtmMismatch
            | K::DpopHtuMismatch
            | K::DpopIatTooOld
            | K::DpopIatInFuture
            | K::DpopAthMismatch
            | K::DpopJktMismatch
            | K::DpopReplayed
    )
}

/// Kinds of a session cookie that does not open (the others are about sealing one).
fn is_session_cookie_rejection(kind: ErrorKind) -> bool {
    use ErrorKind as K;
    matches!(
        kind,
        K::CookieTooLarge
            | K::CookieNotBase64
            | K::CookieTruncated
            | K::CookieUnsupportedVersion
            | K::CookieUnknownKey
            | K::CookieUndecryptable
            | K::CookieExpired
            | K::CookiePayload
            | K::CookieMalformedChunkCount
            | K::CookieTooManyChunks
            | K::CookieMissingChunk
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOGUE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/error-codes.md");

    fn generated_catalogue() -> String {
        oidc_core::error_kind::catalogue_markdown(|kind| {
            answer_status(kind).map(|status| status.as_u16())
        })
    }

    #[test]
    fn error_codes_catalogue_is_up_to_date() {
        let generated = generated_catalogue();
        if std::env::var_os("UPDATE_ERROR_CODES").is_some() {
            std::fs::write(CATALOGUE, &generated).expect("docs/error-codes.md is writable");
            return;
        }
        let current = std::fs::read_to_string(CATALOGUE).unwrap_or_default();
        assert!(
            current == generated,
            "docs/error-codes.md differs from ErrorKind::ALL; regenerate it with\n    \
             UPDATE_ERROR_CODES=1 cargo test -p oidc-tower --lib error_codes"
        );
    }
}
