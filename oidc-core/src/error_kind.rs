//! Every stable error code as one flat enum a program can branch on, with what each means.
//!
//! Each error type of this crate reports its [`ErrorKind`] through `kind()`, and its `code()` is
//! the kind's code; the tower layers report theirs through the same enum, so that one `match`
//! covers any failure of the stack. Codes never change once published: logs, metrics and
//! scripts rely on them. The catalogue of every code, with the HTTP status a layer answers with,
//! is `docs/error-codes.md`, generated from [`ErrorKind::ALL`] by [`catalogue_markdown`].

use std::fmt;

macro_rules! error_kinds {
    ($($variant:ident = $code:literal, $meaning:literal;)*) => {
        /// Why something failed, as a stable code that a program can branch on.
        ///
        /// Every error type of `oidc-core` and `oidc-tower` maps each of its variants to one kind
        /// (`kind()`); where two types report the same code, they report the same kind.
        /// [`ErrorKind::ProviderNotReady`] and the variants after it are reported by the tower
        /// layers. Each
        /// variant's documentation is its code and its [`meaning`](ErrorKind::meaning). The
        /// catalogue of every code, with HTTP statuses, is `docs/error-codes.md` in the repository.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorKind {
            $(
                #[doc = concat!("`", $code, "`: ", $meaning)]
                $variant,
            )*
        }

        impl ErrorKind {
            /// Every kind, in catalogue order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$variant,)*];

            /// The stable snake_case code.
            pub fn code(self) -> &'static str {
                match self {
                    $(ErrorKind::$variant => $code,)*
                }
            }

            /// One line in plain words: what happened, and what usually fixes it.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(ErrorKind::$variant => $meaning,)*
                }
            }

            /// The kind whose [`code`](ErrorKind::code) is `code`, if any.
            pub fn from_code(code: &str) -> Option<ErrorKind> {
                match code {
                    $($code => Some(ErrorKind::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

error_kinds! {
    // Token format (jws)
    TokenTooLarge = "token_too_large",
        "The token is longer than the configured limit; send a smaller token or raise the limit.";
    EncryptedToken = "encrypted_token",
        "The token is encrypted (JWE), which is not supported; ask the provider for signed tokens.";
    MalformedSegments = "malformed_segments",
        "The token does not have the three dot-separated parts of a JWS; send the token unchanged.";
    InvalidBase64 = "invalid_base64",
        "A part of the token is not base64url; the token was damaged or cut on its way.";
    InvalidJson = "invalid_json",
        "The token's header or payload is not valid JSON; the token was damaged or is not a JWT.";
    DuplicateMember = "duplicate_member",
        "The token's JSON repeats a member name, which is refused as ambiguous; the issuer must fix its tokens.";
    HeaderTooLarge = "header_too_large",
        "The token's header is larger than allowed; the token is not one a provider issues.";
    MissingAlg = "missing_alg",
        "The token's header names no `alg`; the token is not a valid JWS.";
    AlgNone = "alg_none",
        "The token is unsigned (`alg: none`) and is refused; send a signed token.";
    UnsupportedAlg = "unsupported_alg",
        "The token's `alg` is not one this library implements; configure the provider to sign with a supported algorithm.";
    InvalidHeader = "invalid_header",
        "A member of the token's header has the wrong type or value; the token is malformed.";
    UnencodedPayload = "unencoded_payload",
        "The token uses an unencoded payload (`b64: false`), which is refused.";
    UnsupportedCrit = "unsupported_crit",
        "The token marks a header extension as critical that is not understood; ask the provider not to use it.";
    UntrustedKeyReference = "untrusted_key_reference",
        "The token points to a key by URL (`jku`, `x5u`, embedded `jwk`), which is never followed; keys come from the provider's JWKS only.";
    EmptyPayload = "empty_payload",
        "The token's payload is empty.";
    EmptySignature = "empty_signature",
        "The token's signature is empty; send a signed token.";
    // Validation policy
    PolicyNoIssuer = "policy_no_issuer",
        "The validation policy names no issuer; configure the issuer.";
    PolicyNoAudience = "policy_no_audience",
        "The validation policy names no audience; configure the expected audience (usually the client id).";
    PolicyNoAlgorithms = "policy_no_algorithms",
        "The validation policy allows no algorithm; allow at least the one the provider signs with.";
    PolicyMixedHmac = "policy_mixed_hmac",
        "The policy allows HMAC and public-key algorithms together, which invites key confusion; choose one family.";
    PolicyZeroTokenLimit = "policy_zero_token_limit",
        "The policy's token size limit is zero; set a positive limit.";
    // Token validation
    AlgNotAllowed = "alg_not_allowed",
        "The token's algorithm is not in the allowed list; allow it or have the provider sign differently.";
    WrongTyp = "wrong_typ",
        "The token's `typ` header is not the expected one (for example an ID token sent as an access token); send the right token.";
    UnknownKid = "unknown_kid",
        "No key in the provider's key set has the token's `kid`; keys are fetched again, so this persists only for foreign or stale tokens.";
    NoMatchingKey = "no_matching_key",
        "No key in the key set fits the token's algorithm; check the provider's JWKS.";
    AmbiguousKey = "ambiguous_key",
        "Several keys fit a token that names no `kid`; the provider should set `kid`.";
    BadSignature = "bad_signature",
        "The token's signature does not verify; the token was altered or signed by another issuer.";
    MissingClaim = "missing_claim",
        "A required claim is missing from the token; check the provider's token configuration.";
    InvalidClaim = "invalid_claim",
        "A claim has the wrong type or value; check the provider's token configuration.";
    WrongIssuer = "wrong_issuer",
        "The token's `iss` is not the configured issuer; check the issuer URL, character for character.";
    WrongAudience = "wrong_audience",
        "The token's `aud` does not name this service; request a token for this audience.";
    AzpMismatch = "azp_mismatch",
        "The token's `azp` is not the expected client; request the token with the right client.";
    NonceMismatch = "nonce_mismatch",
        "The ID token's `nonce` is not the one sent at sign-in; start the sign-in again.";
    Expired = "expired",
        "The token has expired; get a fresh token (or check the clocks).";
    NotYetValid = "not_yet_valid",
        "The token's `nbf` is in the future; check the clocks of provider and server.";
    IssuedInFuture = "issued_in_future",
        "The token's `iat` is in the future beyond the allowed skew; check the clocks.";
    TooOld = "too_old",
        "The token was issued longer ago than the maximum age allows; get a fresh token.";
    // Provider responses
    ProviderUnexpectedStatus = "provider_unexpected_status",
        "The provider answered with an unexpected HTTP status; check the provider and the endpoint URL.";
    ProviderNotJson = "provider_not_json",
        "The provider's answer is not JSON; check the endpoint URL and any proxy in between.";
    ProviderResponseTooLarge = "provider_response_too_large",
        "The provider's answer is larger than allowed; check the endpoint URL.";
    ProviderResponseMalformed = "provider_response_malformed",
        "The provider's JSON answer lacks fields or has wrong types; check the provider.";
    // Discovery
    DiscoveryNotAnObject = "discovery_not_an_object",
        "The discovery document is not a JSON object; check the issuer URL.";
    DiscoveryMissingField = "discovery_missing_field",
        "The discovery document lacks a required field; check the provider's configuration.";
    DiscoveryInvalidField = "discovery_invalid_field",
        "A field of the discovery document has the wrong type or value; check the provider's configuration.";
    DiscoveryIssuerMismatch = "discovery_issuer_mismatch",
        "The discovery document's `issuer` differs from the configured issuer; use exactly the issuer the provider announces.";
    InsecureEndpoint = "insecure_endpoint",
        "Warning: an endpoint in the metadata is not HTTPS; fine for local development only.";
    NoS256Pkce = "no_s256_pkce",
        "Warning: the provider does not advertise PKCE with S256; it is sent anyway.";
    NoEndSessionEndpoint = "no_end_session_endpoint",
        "Warning: the provider has no end-session endpoint, so sign-out is local only.";
    UnsignedTokensAdvertised = "unsigned_tokens_advertised",
        "Warning: the provider advertises unsigned ID tokens; they are refused regardless.";
    NoRs256 = "no_rs256",
        "Warning: the provider does not advertise RS256, which OpenID Connect requires.";
    ForeignEndpointHost = "foreign_endpoint_host",
        "Warning: an endpoint is on another host than the issuer; check it is intended.";
    // Keys
    JwksMalformed = "jwks_malformed",
        "The key set is not valid JSON; check the provider's `jwks_uri`.";
    JwksNotAKeySet = "jwks_not_a_key_set",
        "The key set is JSON but not a JWK Set; check the provider's `jwks_uri`.";
    JwksNoUsableKeys = "jwks_no_usable_keys",
        "The key set holds no key usable for signatures; check the provider's keys.";
    JwksMixedSymmetric = "jwks_mixed_symmetric",
        "The key set mixes symmetric and public keys, which is refused; publish one kind.";
    // Issuer
    IssuerNotAUrl = "issuer_not_a_url",
        "The configured issuer is not an absolute URL; configure it as the provider announces it.";
    IssuerBadScheme = "issuer_bad_scheme",
        "The issuer is neither https nor http; use https (http only for local development).";
    IssuerQueryOrFragment = "issuer_query_or_fragment",
        "The issuer has a query or fragment, which issuers may not have; remove it.";
    IssuerBadTemplate = "issuer_bad_template",
        "The multi-tenant issuer template is malformed; use one `{tenantid}` placeholder.";
    // Introspection
    TokenInactive = "token_inactive",
        "Introspection says the token is not active (revoked, expired or unknown); get a fresh token.";
    IntrospectionIssuerMismatch = "introspection_issuer_mismatch",
        "The introspected token's `iss` is not the configured issuer.";
    IntrospectionAudienceMismatch = "introspection_audience_mismatch",
        "The introspected token is not meant for this service's audience.";
    WrongClient = "wrong_client",
        "The token was issued to a client that is not accepted here.";
    IntrospectionTokenExpired = "introspection_token_expired",
        "Introspection reports an expiry in the past; get a fresh token.";
    IntrospectionTokenNotYetValid = "introspection_token_not_yet_valid",
        "Introspection reports a token not valid yet; check the clocks.";
    // Authorization rules
    EmailNotVerified = "email_not_verified",
        "The account's e-mail address is not verified, and the rules require it; verify it at the provider.";
    MissingEmail = "missing_email",
        "The rules need an e-mail address and the identity has none; have the provider release the `email` claim.";
    MalformedEmail = "malformed_email",
        "The identity's e-mail address is not well-formed.";
    EmailNotAllowed = "email_not_allowed",
        "The e-mail address or its domain is not allowed by the rules.";
    NotInAllowedGroup = "not_in_allowed_group",
        "The identity is in none of the allowed groups; ask for membership or check the groups claim.";
    NotInAllowedRole = "not_in_allowed_role",
        "The identity has none of the allowed roles; ask for the role or check the roles claim.";
    ClaimMismatch = "claim_mismatch",
        "A claim the rules require has another value.";
    // Cookie configuration
    CookieNoSecrets = "cookie_no_secrets",
        "No cookie secret is configured; configure at least one.";
    CookieSecretTooShort = "cookie_secret_too_short",
        "A cookie secret is too short; use at least 32 random bytes.";
    CookieKeyDerivation = "cookie_key_derivation",
        "The cryptographic provider refused to make a cookie key from a secret (a broken provider).";
    CookiePlainHttpNotLoopback = "cookie_plain_http_not_loopback",
        "Insecure cookies are allowed only on loopback addresses; serve over HTTPS.";
    CookieInvalidName = "cookie_invalid_name",
        "The cookie name has characters a cookie name cannot have.";
    CookieInvalidPath = "cookie_invalid_path",
        "The cookie path is not valid; use an absolute path without `;`.";
    CookieInvalidDomain = "cookie_invalid_domain",
        "The cookie domain is not a valid domain.";
    CookiePrefixNeedsSecure = "cookie_prefix_needs_secure",
        "A `__Secure-` or `__Host-` cookie name requires secure cookies (and, for `__Host-`, path `/` and no domain).";
    CookieInvalidMaxChunks = "cookie_invalid_max_chunks",
        "The maximum number of cookie chunks is out of range.";
    CookieAttributesTooLong = "cookie_attributes_too_long",
        "The cookie attributes leave no room for a value; shorten name, path or domain.";
    // Cookies
    CookieSerialize = "cookie_serialize",
        "The value could not be serialized into a cookie.";
    CookieAlreadyExpired = "cookie_already_expired",
        "The cookie's expiry is already past when sealing it.";
    CookieTooLarge = "cookie_too_large",
        "The sealed value needs more cookie chunks than allowed; keep less in the session or use a server-side store.";
    CookieNotBase64 = "cookie_not_base64",
        "The cookie is not base64url; it was altered or belongs to something else.";
    CookieTruncated = "cookie_truncated",
        "The cookie is shorter than a sealed value; it was cut or altered.";
    CookieUnsupportedVersion = "cookie_unsupported_version",
        "The cookie was sealed by an unsupported format version; sign in again.";
    CookieUnknownKey = "cookie_unknown_key",
        "The cookie was sealed with a key no longer configured; sign in again (keep retired secrets configured for a while when rotating).";
    CookieUndecryptable = "cookie_undecryptable",
        "The cookie does not decrypt: it was altered or sealed with another secret; sign in again.";
    CookieExpired = "cookie_expired",
        "The cookie's sealed lifetime is over; sign in again.";
    CookiePayload = "cookie_payload",
        "The cookie opened but its content is not a readable session; sign in again.";
    CookieInvalidHeaderValue = "cookie_invalid_header_value",
        "The cookie could not be written as a header value.";
    CookieMalformedChunkCount = "cookie_malformed_chunk_count",
        "The chunked cookie's count is malformed; sign in again.";
    CookieTooManyChunks = "cookie_too_many_chunks",
        "The cookie claims more chunks than allowed; sign in again.";
    CookieMissingChunk = "cookie_missing_chunk",
        "A chunk of the cookie is missing (the browser dropped one); sign in again.";
    // Redirects
    RedirectEmpty = "redirect_empty",
        "The return address is empty.";
    RedirectTooLong = "redirect_too_long",
        "The return address is longer than allowed.";
    RedirectForbiddenByte = "redirect_forbidden_byte",
        "The return address contains a control character, backslash or other forbidden byte.";
    RedirectSuspiciousPath = "redirect_suspicious_path",
        "The return address looks like a relative path that browsers may read as another host (`//`, `/\\`); refused as an open redirect.";
    RedirectNotPathOrHttpUrl = "redirect_not_path_or_http_url",
        "The return address is neither a path nor an http(s) URL.";
    RedirectUnparsable = "redirect_unparsable",
        "The return address cannot be parsed as a URL.";
    RedirectUserinfo = "redirect_userinfo",
        "The return address carries user information (`user@host`), which is refused.";
    RedirectHostNotAllowed = "redirect_host_not_allowed",
        "The return address's host is not in the allowed redirect domains; add it to the allowed domains if intended.";
    RedirectPortNotAllowed = "redirect_port_not_allowed",
        "The return address's port is not allowed for its host.";
    RedirectInvalidDomain = "redirect_invalid_domain",
        "A configured allowed redirect domain is not a valid domain.";
    // Dpop proofs
    DpopProofTooLarge = "dpop_proof_too_large",
        "The DPoP proof is larger than allowed.";
    DpopMalformed = "dpop_malformed",
        "The DPoP proof is not a well-formed JWS.";
    DpopWrongTyp = "dpop_wrong_typ",
        "The DPoP proof's `typ` is not `dpop+jwt`.";
    DpopAlgNotAllowed = "dpop_alg_not_allowed",
        "The DPoP proof's algorithm is not accepted; use one the challenge names.";
    DpopUnsupportedCrit = "dpop_unsupported_crit",
        "The DPoP proof marks a header extension as critical that is not understood.";
    DpopMissingJwk = "dpop_missing_jwk",
        "The DPoP proof carries no public key (`jwk`).";
    DpopPrivateJwk = "dpop_private_jwk",
        "The DPoP proof's `jwk` contains private key material; the client leaks its key.";
    DpopUnusableJwk = "dpop_unusable_jwk",
        "The DPoP proof's `jwk` cannot be used for its algorithm.";
    DpopBadSignature = "dpop_bad_signature",
        "The DPoP proof's signature does not verify with its own key.";
    DpopMissingClaim = "dpop_missing_claim",
        "The DPoP proof lacks a required claim (`jti`, `htm`, `htu`, `iat`, `ath`).";
    DpopInvalidClaim = "dpop_invalid_claim",
        "A claim of the DPoP proof has the wrong type or value.";
    DpopHtmMismatch = "dpop_htm_mismatch",
        "The DPoP proof names another HTTP method than the request's.";
    DpopHtuMismatch = "dpop_htu_mismatch",
        "The DPoP proof names another URL than the request's; behind a proxy, check the forwarded headers.";
    DpopIatTooOld = "dpop_iat_too_old",
        "The DPoP proof was made too long ago; make a fresh proof per request.";
    DpopIatInFuture = "dpop_iat_in_future",
        "The DPoP proof's `iat` is in the future; check the client's clock.";
    DpopAthMismatch = "dpop_ath_mismatch",
        "The DPoP proof's `ath` is not the hash of the access token sent with it.";
    DpopJktMismatch = "dpop_jkt_mismatch",
        "The DPoP proof is signed by another key than the one the token is bound to.";
    DpopReplayed = "dpop_replayed",
        "The DPoP proof was already used; make a fresh proof per request.";
    // Back-channel logout
    LogoutTokenMissing = "logout_token_missing",
        "The back-channel logout request has no `logout_token`.";
    LogoutTokenWrongTyp = "logout_token_wrong_typ",
        "The logout token's `typ` is not `logout+jwt`.";
    LogoutEventMissing = "logout_event_missing",
        "The logout token lacks the back-channel logout event.";
    LogoutEventNotObject = "logout_event_not_object",
        "The logout token's back-channel logout event is not a JSON object.";
    LogoutTokenNoncePresent = "logout_token_nonce_present",
        "The logout token carries a `nonce`, which logout tokens must not.";
    LogoutTargetMissing = "logout_target_missing",
        "The logout token names neither `sub` nor `sid`.";
    LogoutJtiMissing = "logout_jti_missing",
        "The logout token has no `jti`.";
    LogoutTokenReplayed = "logout_token_replayed",
        "The logout token was already received.";
    // Client authentication
    ClientKeyRejected = "client_key_rejected",
        "The client's private key for `private_key_jwt` was refused; check its format and algorithm.";
    ClientAssertionSigningFailed = "client_assertion_signing_failed",
        "The client assertion could not be signed.";
    // Identity assertions
    AssertionKeyRejected = "assertion_key_rejected",
        "The identity assertion key was refused; it must be an unencrypted PKCS#8 P-256 (ES256) private key.";
    AssertionSigningFailed = "assertion_signing_failed",
        "The identity assertion could not be signed.";
    // Pushed authorization requests
    ParEndpointMissing = "par_endpoint_missing",
        "Pushed authorization requests are configured but the provider has no PAR endpoint.";
    ParRequiredByProvider = "par_required_by_provider",
        "The provider requires pushed authorization requests; enable PAR.";
    ParRefused = "par_refused",
        "The provider refused the pushed authorization request; its `error` says why.";
    ParInvalidRequestUri = "par_invalid_request_uri",
        "The provider's PAR answer carries an unusable `request_uri`.";
    ParAlreadyExpired = "par_already_expired",
        "The provider's PAR answer expires at once.";
    // Device authorization grant
    DeviceGrantUnsupported = "device_grant_unsupported",
        "The provider advertises no device authorization endpoint; sign in through the browser instead.";
    DeviceAuthorizationRefused = "device_authorization_refused",
        "The device authorization endpoint refused the request (for example `invalid_client`); its `error` says why.";
    DeviceAuthorizationInvalid = "device_authorization_invalid",
        "The device authorization answer carries an unusable value (verification URI, codes or `expires_in`).";
    DeviceCodeExpired = "device_code_expired",
        "The device code expired before the sign-in was approved; start the sign-in again.";
    DeviceAccessDenied = "device_access_denied",
        "The sign-in on the device was denied by the user or the provider.";
    // Userinfo
    UserinfoJwtUnsupported = "userinfo_jwt_unsupported",
        "The userinfo endpoint answered with a JWT, which is not supported; ask for JSON.";
    UserinfoSubMissing = "userinfo_sub_missing",
        "The userinfo answer has no `sub`.";
    UserinfoSubMismatch = "userinfo_sub_mismatch",
        "The userinfo answer's `sub` differs from the ID token's; the answer is refused.";
    // Id tokens and sign-in
    IdTokenMissing = "id_token_missing",
        "The token endpoint answered without an ID token; request the `openid` scope.";
    IdTokenClaimMissing = "id_token_claim_missing",
        "The ID token lacks a claim OpenID Connect requires.";
    NonceMissing = "nonce_missing",
        "The ID token has no `nonce` although one was sent; check the provider.";
    AtHashMismatch = "at_hash_mismatch",
        "The ID token's `at_hash` does not match the access token.";
    AuthTimeMissing = "auth_time_missing",
        "The ID token lacks `auth_time` although a maximum authentication age was requested.";
    AuthenticationTooOld = "authentication_too_old",
        "The user authenticated longer ago than the maximum age allows; sign in again.";
    RefreshIssuerChanged = "refresh_issuer_changed",
        "A refreshed ID token has another issuer than the session's.";
    RefreshSubjectChanged = "refresh_subject_changed",
        "A refreshed ID token has another subject than the session's.";
    NoTokenEndpoint = "no_token_endpoint",
        "The provider's metadata has no token endpoint.";
    LoginReservedParameter = "login_reserved_parameter",
        "An extra authorization parameter overrides one the library sets itself; remove it.";
    CallbackDuplicateParameter = "callback_duplicate_parameter",
        "The callback repeats a parameter; the request was altered.";
    LoginExpired = "login_expired",
        "The pending sign-in expired before the callback arrived; sign in again.";
    StateMissing = "state_missing",
        "The callback has no `state`; start the sign-in again.";
    StateMismatch = "state_mismatch",
        "The callback's `state` does not match the pending sign-in (a stale tab or a forged request); sign in again.";
    AuthorizationError = "authorization_error",
        "The provider sent an error back to the callback (for example `access_denied`); its `error` says why.";
    CallbackIssuerMismatch = "callback_issuer_mismatch",
        "The callback's `iss` is not the configured issuer (a mix-up attempt or wrong provider).";
    CallbackIssuerMissing = "callback_issuer_missing",
        "The provider promises an `iss` in the callback, and it is missing.";
    CodeMissing = "code_missing",
        "The callback carries no authorization code.";
    TokenEndpointError = "token_endpoint_error",
        "The token endpoint refused the request (for example `invalid_grant`); its `error` says why.";
    UnsupportedTokenType = "unsupported_token_type",
        "The token endpoint issued a token type other than Bearer or DPoP.";
    // Reported by the tower layers (oidc-tower), which do the I/O.
    // Provider
    ProviderNotReady = "provider_not_ready",
        "The provider's metadata or keys have not been fetched yet; check that the issuer is reachable.";
    UnknownIssuer = "unknown_issuer",
        "The token's issuer is none of the accepted issuers.";
    IntrospectionUnavailable = "introspection_unavailable",
        "The introspection endpoint's answer could not be used; check the provider.";
    // Loopback redirect receiver
    LoopbackBindFailed = "loopback_bind_failed",
        "The loopback redirect receiver cannot listen on the port; choose another port, or 0 for any free one.";
    LoginTimedOut = "login_timed_out",
        "No sign-in arrived at the loopback redirect receiver in time; finish signing in in the browser, or allow longer.";
    // Http client
    HttpTimeout = "timeout",
        "A request to the provider timed out; check network and provider.";
    HttpConnect = "connect",
        "The provider could not be connected to; check DNS, network and TLS.";
    HttpTooLarge = "too_large",
        "The provider's answer exceeded the size limit.";
    HttpInvalidRequest = "invalid_request",
        "A request to the provider could not be sent as built (bad URL or header).";
    HttpTransport = "transport",
        "The connection to the provider failed during the exchange.";
    HttpClientBuild = "client_build",
        "The HTTP client could not be built (TLS roots or settings).";
    // Authentication
    NoCredentials = "no_credentials",
        "The request carries neither a bearer token nor a session cookie; sign in or send a token.";
    OpaqueTokenUnsupported = "opaque_token_unsupported",
        "The token is not a JWT and cannot be introspected here; configure introspection or send a JWT.";
    DpopBoundTokenSentAsBearer = "dpop_bound_token_sent_as_bearer",
        "A DPoP-bound token was sent with the Bearer scheme; send it with the DPoP scheme and a proof.";
    DpopTokenNotBound = "dpop_token_not_bound",
        "A token sent with the DPoP scheme is bound to no key; send it as Bearer.";
    DpopRequestUrlUnknown = "dpop_request_url_unknown",
        "The request's URL could not be told (malformed forwarded headers), so its DPoP proof cannot be checked.";
    Unauthorized = "unauthorized",
        "An API request to the login layer carried no credentials; sign in, or send a bearer token.";
    // The layers' own endpoints
    NotFound = "not_found",
        "The path is no endpoint here (e.g. the forward-auth check asked of the login layer).";
    BodyTooLarge = "body_too_large",
        "A request body sent to a sign-in or logout endpoint is too large or could not be read.";
    ContentEncodingUnsupported = "content_encoding_unsupported",
        "A compressed request body was sent to a sign-in or logout endpoint; send it uncompressed.";
    InsufficientScope = "insufficient_scope",
        "The token lacks a required scope; request a token with the scopes named in the challenge.";
    SessionExpired = "session_expired",
        "The session's lifetime is over; sign in again.";
    SessionRevoked = "session_revoked",
        "The session was ended by sign-out or back-channel logout; sign in again.";
    RefreshRejected = "refresh_rejected",
        "The provider refused to refresh the session (refresh token revoked or expired); sign in again.";
    StoredSessionUnreadable = "stored_session_unreadable",
        "The server-side store holds a session this version cannot read; sign in again.";
    NoRefreshToken = "no_refresh_token",
        "The session has no refresh token to renew it with; request `offline_access` or sign in again.";
    RefreshLockTimeout = "refresh_lock_timeout",
        "Another replica held the session's refresh lock too long; the current tokens are kept.";
    SessionEncode = "session_encode",
        "A new session could not be encoded.";
    AuthenticationLayerMissing = "authentication_layer_missing",
        "A handler asked for the caller's identity without an authentication layer in front of it; add the layer.";
    LoginNotConfigured = "login_not_configured",
        "The login layer or forward-auth was built without sign-in settings (`AuthConfig::login`); configure them.";
    InvalidPrefix = "invalid_prefix",
        "The layer's path prefix is not a valid absolute path.";
    CallbackOutsidePrefix = "callback_outside_prefix",
        "The callback path is outside the layer's prefix.";
    // Forwarded headers
    TrustedProxyInvalidAddress = "trusted_proxy_invalid_address",
        "A trusted proxy address is not an IP address or network.";
    TrustedProxyInvalidPrefix = "trusted_proxy_invalid_prefix",
        "A trusted proxy network's prefix length is out of range.";
    TrustedProxyHostBitsSet = "trusted_proxy_host_bits_set",
        "A trusted proxy network has host bits set; write the network address.";
    ForwardedHeaderAmbiguous = "forwarded_header_ambiguous",
        "A forwarded header from a trusted proxy appears more than once or lists several values.";
    ForwardedHeaderInvalid = "forwarded_header_invalid",
        "A forwarded header's value is malformed.";
    ForwardedMissingHost = "forwarded_missing_host",
        "Neither the request nor a trusted proxy names the host.";
    ForwardedInvalidHost = "forwarded_invalid_host",
        "The request carries several `Host` headers or an invalid one.";
    // Paths and routes
    PathNotAbsolute = "path_not_absolute",
        "The path does not start with `/`.";
    PathTooLong = "path_too_long",
        "The path is longer than allowed.";
    PathInvalidPercentEncoding = "path_invalid_percent_encoding",
        "The path has a malformed percent escape.";
    PathEncodedSeparator = "path_encoded_separator",
        "The path percent-encodes a slash or backslash (`%2f`, `%5c`), which is refused.";
    PathDoubleEncoding = "path_double_encoding",
        "The path still contains `%` after one decoding (`%25`), which is refused.";
    PathBackslash = "path_backslash",
        "The path contains a backslash.";
    PathParameter = "path_parameter",
        "The path contains a `;` parameter, which is refused.";
    PathQueryOrFragment = "path_query_or_fragment",
        "The path contains `?` or `#`: a query or fragment was passed as part of the path.";
    PathControlCharacter = "path_control_character",
        "The path contains a control character.";
    PathInvalidUtf8 = "path_invalid_utf8",
        "The decoded path is not UTF-8.";
    PathAmbiguousDotSegments = "path_ambiguous_dot_segments",
        "Empty and dot segments together make the path ambiguous, so it is refused.";
    RouteRuleEmpty = "route_rule_empty",
        "A route rule's pattern is empty.";
    RouteRuleInvalidRegex = "route_rule_invalid_regex",
        "A route rule's regular expression does not compile.";
    RouteRulesTooLarge = "route_rules_too_large",
        "The route rules together are too large to compile.";
    IdentityHeaderInvalidValue = "identity_header_invalid_value",
        "A claim cannot be passed upstream as a header value.";
    // Bearer and dpop credentials
    MultipleAuthorizationHeaders = "multiple_authorization_headers",
        "The request has more than one `Authorization` header.";
    MalformedBearerCredentials = "malformed_bearer_credentials",
        "The `Authorization: Bearer` value is not a single token68 token.";
    BearerTokenTooLong = "bearer_token_too_long",
        "The bearer token is longer than allowed.";
    BearerTokenInQuery = "bearer_token_in_query",
        "The token is in the `access_token` query parameter, which is not allowed here; send it in the header.";
    MultipleBearerTokens = "multiple_bearer_tokens",
        "The token is sent in more than one way; send it once.";
    MissingToken = "missing_token",
        "The request carries no bearer token.";
    InvalidToken = "invalid_token",
        "The bearer token was refused.";
    MalformedDpopCredentials = "malformed_dpop_credentials",
        "The `Authorization: DPoP` value is not a single token.";
    MissingDpopProof = "missing_dpop_proof",
        "A DPoP-scheme token came without a `DPoP` proof header.";
    MultipleDpopProofs = "multiple_dpop_proofs",
        "The request has more than one `DPoP` header.";
    MalformedDpopProof = "malformed_dpop_proof",
        "The `DPoP` header is not a compact JWS.";
    // Session store
    SessionHandleLength = "session_handle_length",
        "The session cookie's handle has the wrong length; sign in again.";
    SessionHandleEncoding = "session_handle_encoding",
        "The session cookie's handle is not base64url; sign in again.";
    StoreUnavailable = "store_unavailable",
        "The session store cannot be reached; check Redis (sessions are kept).";
    StoreTimedOut = "store_timed_out",
        "The session store did not answer in time; check Redis.";
    StoreBackendError = "store_backend_error",
        "The session store answered with an error; check Redis.";
    StoreConfigInvalid = "store_config_invalid",
        "The session store's configuration is invalid (URL, TLS, sentinel or cluster settings).";
    SessionTampered = "session_tampered",
        "A stored session fails its integrity check; it was altered in the store.";
    SessionFormatUnsupported = "session_format_unsupported",
        "A stored session was written by an unsupported format version.";
    SessionCryptoFailure = "session_crypto_failure",
        "A session could not be sealed for the store (a broken cryptographic provider).";
    SessionTtlInvalid = "session_ttl_invalid",
        "A session's time to live is zero or too long for the store.";
    // Reverse proxy
    UpstreamConnectFailed = "upstream_connect_failed",
        "The upstream service could not be connected to; check that it runs and its address.";
    UpstreamConnectTimeout = "upstream_connect_timeout",
        "Connecting to the upstream service timed out.";
    UpstreamTimeout = "upstream_timeout",
        "The upstream service did not answer in time.";
    UpstreamFailed = "upstream_failed",
        "The upstream service's connection failed during the exchange.";
    UpstreamTlsFailed = "upstream_tls_failed",
        "The TLS handshake with the upstream service failed; check its certificate and the trusted roots.";
    BodyIdleTimeout = "body_idle_timeout",
        "A request or response body stalled longer than the idle timeout.";
    NoRoute = "no_route",
        "No upstream route matches the request's path.";
    BadRequest = "bad_request",
        "The request cannot be forwarded as it is (malformed target or headers).";
    InvalidUpstream = "invalid_upstream",
        "An upstream is not an absolute `http://host[:port][/path]` URL.";
    InvalidUpstreamTls = "invalid_upstream_tls",
        "The upstream TLS settings cannot be used (unreadable CA or key file, no trust anchor).";
    DuplicateRoute = "duplicate_route",
        "Two upstream routes have the same (normalized) path prefix.";
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The catalogue of every code as Markdown, in the order of [`ErrorKind::ALL`]: a table of code,
/// HTTP status and meaning. `status` tells the status a layer answers with for a kind, if any;
/// the statuses belong to the layers that answer (`oidc-tower`), not to this crate.
pub fn catalogue_markdown(status: impl Fn(ErrorKind) -> Option<u16>) -> String {
    let mut out = String::from(
        "# Error codes\n\
         \n\
         <!-- Generated from `ErrorKind::ALL`: do not edit by hand. Regenerate with\n\
         \x20    UPDATE_ERROR_CODES=1 cargo test -p oidc-tower --lib error_codes -->\n\
         \n\
         Every stable code an error of `oidc-core` or `oidc-tower` reports, as `code()` returns it\n\
         and as logs, metrics and JSON answers carry it. A program branches on\n\
         `oidc_core::ErrorKind` (each error's `kind()`); the codes never change.\n\
         \n\
         The status is the one a layer answers a refused request with for this reason: the bearer,\n\
         login and forward-auth layers, and the reverse proxy. A browser navigation that needs a\n\
         sign-in is redirected to sign in instead of getting 401. Codes without a status come from\n\
         configuration, sign-in, sign-out and background work, and are reported by `code()` and in\n\
         logs.\n\
         \n\
         | code | HTTP status | meaning |\n\
         |---|---|---|\n",
    );
    for &kind in ErrorKind::ALL {
        let status = status(kind).map(|s| s.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            kind.code(),
            status,
            kind.meaning()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_distinct_snake_case_and_round_trip() {
        let mut seen = HashSet::new();
        for &kind in ErrorKind::ALL {
            let code = kind.code();
            assert!(seen.insert(code), "{code} appears twice");
            assert!(
                code.starts_with(|c: char| c.is_ascii_lowercase())
                    && !code.ends_with('_')
                    && !code.contains("__")
                    && code
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{code} is not snake_case"
            );
            assert_eq!(ErrorKind::from_code(code), Some(kind));
            assert_eq!(kind.to_string(), code);
        }
        assert_eq!(ErrorKind::from_code("no_such_code"), None);
        assert_eq!(ErrorKind::from_code("Expired"), None);
    }

    #[test]
    fn meanings_are_single_table_safe_sentences() {
        for &kind in ErrorKind::ALL {
            let meaning = kind.meaning();
            assert!(
                meaning.ends_with('.') && !meaning.contains(['|', '\n']),
                "{}: {meaning}",
                kind.code()
            );
        }
    }

    #[test]
    fn the_catalogue_has_one_row_per_kind() {
        let catalogue = catalogue_markdown(|kind| (kind == ErrorKind::Expired).then_some(401));
        assert_eq!(
            catalogue.lines().filter(|l| l.starts_with("| `")).count(),
            ErrorKind::ALL.len()
        );
        assert!(catalogue.contains("| `expired` | 401 | The token has expired;"));
        assert!(catalogue.contains("| `wrong_issuer` |  | "));
    }
}
