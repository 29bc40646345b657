//! Provider discovery: which request fetches an issuer's metadata, and whether the answer is
//! metadata this relying party may trust and use.
//!
//! The exchange has two halves, as everywhere in the core: [`discovery_request`] builds the
//! `GET {issuer}/.well-known/openid-configuration` request, and [`parse_discovery`] checks the
//! answer (status, media type, size, required fields, and the stated `issuer`, which must equal
//! the configured one exactly) and returns a typed [`ProviderMetadata`].
//!
//! Multi-tenant providers such as Entra ID state a template (`.../{tenantid}/v2.0`) as their
//! issuer. That is accepted only when the caller opts in with
//! [`DiscoveryOptions::issuer_template`]; the issuer check is never switched off.
//!
//! ```
//! use oidc_core::Issuer;
//! use oidc_core::discovery::{discovery_request, parse_discovery, DiscoveryOptions};
//!
//! let issuer = Issuer::new("https://op.example").unwrap();
//! let request = discovery_request(&issuer);
//! assert_eq!(request.uri(), "https://op.example/.well-known/openid-configuration");
//!
//! let body = serde_json::json!({
//!     "issuer": "https://op.example",
//!     "authorization_endpoint": "https://op.example/authorize",
//!     "token_endpoint": "https://op.example/token",
//!     "jwks_uri": "https://op.example/jwks",
//!     "response_types_supported": ["code"],
//!     "subject_types_supported": ["public"],
//!     "id_token_signing_alg_values_supported": ["RS256"],
//!     "code_challenge_methods_supported": ["S256"],
//!     "end_session_endpoint": "https://op.example/logout"
//! });
//! let response = http::Response::new(serde_json::to_vec(&body).unwrap());
//! let metadata = parse_discovery(&issuer, &DiscoveryOptions::new(), &response).unwrap();
//! assert_eq!(metadata.jwks_uri.as_str(), "https://op.example/jwks");
//! assert!(metadata.warnings().is_empty());
//! ```

use http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};
use url::Url;

use crate::ErrorKind;
use crate::issuer::{Issuer, IssuerTemplate, is_loopback_host};
use crate::provider_response::{
    MAX_PROVIDER_RESPONSE_BYTES, ResponseError, checked_json_body, json_get_request,
};

/// The request for `issuer`'s discovery document.
pub fn discovery_request(issuer: &Issuer) -> http::Request<Vec<u8>> {
    json_get_request(&issuer.discovery_url())
}

/// How a discovery answer is checked beyond the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct DiscoveryOptions {
    issuer_template: Option<IssuerTemplate>,
    max_response_bytes: usize,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        DiscoveryOptions {
            issuer_template: None,
            max_response_bytes: MAX_PROVIDER_RESPONSE_BYTES,
        }
    }
}

impl DiscoveryOptions {
    /// Exact issuer match, answers up to [`MAX_PROVIDER_RESPONSE_BYTES`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts metadata whose `issuer` is exactly this template (e.g.
    /// `https://login.microsoftonline.com/{tenantid}/v2.0`) instead of the configured issuer.
    ///
    /// Use it for multi-tenant providers that publish a template as their issuer. Tokens are then
    /// matched per tenant by the validation policy's issuer template; nothing is left unchecked.
    pub fn issuer_template(mut self, template: IssuerTemplate) -> Self {
        self.issuer_template = Some(template);
        self
    }

    /// The largest answer accepted, in bytes.
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// The template accepted in place of the configured issuer, if any.
    pub fn template(&self) -> Option<&IssuerTemplate> {
        self.issuer_template.as_ref()
    }
}

/// Checked OpenID Provider metadata (OpenID Connect Discovery §3).
///
/// The fields a relying party acts on are typed; everything else the provider stated is kept in
/// [`ProviderMetadata::other`]. Absent list fields are empty; absent flags are `false`, which are
/// the defaults the specification gives them.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ProviderMetadata {
    /// The issuer as the provider stated it (equal to the configured issuer, or to the accepted
    /// template).
    pub issuer: String,
    /// Where browsers are sent to sign in.
    pub authorization_endpoint: Url,
    /// Where codes and refresh tokens are exchanged; absent only for implicit-only providers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<Url>,
    /// The userinfo endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<Url>,
    /// The provider's signing keys.
    pub jwks_uri: Url,
    /// RP-initiated logout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<Url>,
    /// Token introspection (RFC 7662).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<Url>,
    /// Token revocation (RFC 7009).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<Url>,
    /// Device authorization (RFC 8628).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<Url>,
    /// Dynamic client registration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<Url>,
    /// `response_type` values supported (never empty).
    pub response_types_supported: Vec<String>,
    /// Subject identifier types (`public`, `pairwise`; never empty).
    pub subject_types_supported: Vec<String>,
    /// ID token signing algorithms (never empty).
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// PKCE methods (`S256`, `plain`).
    pub code_challenge_methods_supported: Vec<String>,
    /// Client authentication methods at the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Scopes.
    pub scopes_supported: Vec<String>,
    /// Claims the provider may return.
    pub claims_supported: Vec<String>,
    /// Grant types.
    pub grant_types_supported: Vec<String>,
    /// Response modes.
    pub response_modes_supported: Vec<String>,
    /// Back-channel logout (OpenID Connect Back-Channel Logout §2.1).
    pub backchannel_logout_supported: bool,
    /// Whether back-channel logout tokens carry `sid`.
    pub backchannel_logout_session_supported: bool,
    /// Front-channel logout.
    pub frontchannel_logout_supported: bool,
    /// Every other member, as the provider sent it.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Why a discovery answer was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The answer failed the status, media type, size or JSON checks.
    #[error("discovery: {0}")]
    Response(#[from] ResponseError),
    /// The document is JSON but not an object.
    #[error("discovery: the document is not a JSON object")]
    NotAnObject,
    /// A required member is absent.
    #[error("discovery: the required member {field:?} is missing")]
    MissingField {
        /// The member's name.
        field: &'static str,
    },
    /// A member has the wrong type or an unusable value.
    #[error("discovery: the member {field:?} is invalid: {reason}")]
    InvalidField {
        /// The member's name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The stated issuer is not the configured one (OpenID Connect Discovery §4.3).
    #[error("discovery: the provider states issuer {found:?}, but {expected:?} is configured")]
    IssuerMismatch {
        /// The configured issuer (or template).
        expected: String,
        /// The issuer the metadata states.
        found: String,
    },
}

impl DiscoveryError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DiscoveryError::Response(e) => e.kind(),
            DiscoveryError::NotAnObject => ErrorKind::DiscoveryNotAnObject,
            DiscoveryError::MissingField { .. } => ErrorKind::DiscoveryMissingField,
            DiscoveryError::InvalidField { .. } => ErrorKind::DiscoveryInvalidField,
            DiscoveryError::IssuerMismatch { .. } => ErrorKind::DiscoveryIssuerMismatch,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// Something about otherwise valid metadata that an operator should hear about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataWarning {
    /// An endpoint uses plain `http` on a host that is not loopback.
    #[error("{field} uses plain http outside loopback: {url}")]
    InsecureEndpoint {
        /// The member's name (`issuer`, `jwks_uri`, ...).
        field: &'static str,
        /// The URL stated.
        url: String,
    },
    /// `S256` is not among `code_challenge_methods_supported`.
    #[error("no S256 PKCE advertised (code_challenge_methods_supported: {advertised:?})")]
    NoS256Pkce {
        /// The methods advertised.
        advertised: Vec<String>,
    },
    /// There is no `end_session_endpoint`: signing out only clears the local session.
    #[error("no end_session_endpoint: signing out cannot end the provider's session")]
    NoEndSession,
    /// `none` is listed as an ID token signing algorithm (never accepted here).
    #[error("the provider lists \"none\" among its ID token signing algorithms")]
    UnsignedTokensAdvertised,
    /// `RS256`, which OpenID Connect requires providers to support, is not listed.
    #[error("RS256 is not listed among the ID token signing algorithms")]
    NoRs256,
    /// An endpoint lives on a different host than the issuer.
    #[error("{field} is on host {host:?}, not the issuer's host {issuer_host:?}")]
    ForeignEndpointHost {
        /// The member's name.
        field: &'static str,
        /// The endpoint's host.
        host: String,
        /// The issuer's host.
        issuer_host: String,
    },
}

impl MetadataWarning {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            MetadataWarning::InsecureEndpoint { .. } => ErrorKind::InsecureEndpoint,
            MetadataWarning::NoS256Pkce { .. } => ErrorKind::NoS256Pkce,
            MetadataWarning::NoEndSession => ErrorKind::NoEndSessionEndpoint,
            MetadataWarning::UnsignedTokensAdvertised => ErrorKind::UnsignedTokensAdvertised,
            MetadataWarning::NoRs256 => ErrorKind::NoRs256,
            MetadataWarning::ForeignEndpointHost { .. } => ErrorKind::ForeignEndpointHost,
        }
    }

    /// A stable snake_case code for this warning.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// Checks a discovery answer for `issuer` and returns its metadata.
///
/// The answer must be `200` with a JSON body no larger than the options' limit, an object with
/// every required member (`issuer`, `authorization_endpoint`, `jwks_uri`,
/// `response_types_supported`, `subject_types_supported`,
/// `id_token_signing_alg_values_supported`, and `token_endpoint` unless every response type is
/// implicit), endpoints that are absolute `https` or `http` URLs, and an `issuer` equal to the
/// configured one (or to the template accepted through [`DiscoveryOptions::issuer_template`]).
pub fn parse_discovery<B: AsRef<[u8]>>(
    issuer: &Issuer,
    options: &DiscoveryOptions,
    response: &http::Response<B>,
) -> Result<ProviderMetadata, DiscoveryError> {
    let body = checked_json_body(response, StatusCode::OK, &[], options.max_response_bytes)?;
    let value: Value = crate::provider_response::parse_json(body)?;
    let Value::Object(document) = value else {
        return Err(DiscoveryError::NotAnObject);
    };
    let metadata = ProviderMetadata::from_document(document)?;
    let expected = match &options.issuer_template {
        Some(template) => template.as_str(),
        None => issuer.as_str(),
    };
    if metadata.issuer != expected {
        return Err(DiscoveryError::IssuerMismatch {
            expected: expected.to_owned(),
            found: metadata.issuer,
        });
    }
    Ok(metadata)
}

impl ProviderMetadata {
    /// Reads metadata from a JSON object, checking types and required members but not the issuer
    /// (use [`parse_discovery`] for the full check).
    pub fn from_document(mut document: Map<String, Value>) -> Result<Self, DiscoveryError> {
        let doc = &mut document;
        let issuer =
            take_string(doc, "issuer")?.ok_or(DiscoveryError::MissingField { field: "issuer" })?;
        let response_types_supported = take_required_strings(doc, "response_types_supported")?;
        let token_endpoint = take_url(doc, "token_endpoint")?;
        let implicit_only = response_types_supported
            .iter()
            .all(|t| !t.split(' ').any(|part| part == "code"));
        if token_endpoint.is_none() && !implicit_only {
            return Err(DiscoveryError::MissingField {
                field: "token_endpoint",
            });
        }
        Ok(ProviderMetadata {
            issuer,
            authorization_endpoint: take_required_url(doc, "authorization_endpoint")?,
            token_endpoint,
            userinfo_endpoint: take_url(doc, "userinfo_endpoint")?,
            jwks_uri: take_required_url(doc, "jwks_uri")?,
            end_session_endpoint: take_url(doc, "end_session_endpoint")?,
            introspection_endpoint: take_url(doc, "introspection_endpoint")?,
            revocation_endpoint: take_url(doc, "revocation_endpoint")?,
            device_authorization_endpoint: take_url(doc, "device_authorization_endpoint")?,
            registration_endpoint: take_url(doc, "registration_endpoint")?,
            response_types_supported,
            subject_types_supported: take_required_strings(doc, "subject_types_supported")?,
            id_token_signing_alg_values_supported: take_required_strings(
                doc,
                "id_token_signing_alg_values_supported",
            )?,
            code_challenge_methods_supported: take_strings(
                doc,
                "code_challenge_methods_supported",
            )?,
            token_endpoint_auth_methods_supported: take_strings(
                doc,
                "token_endpoint_auth_methods_supported",
            )?,
            scopes_supported: take_strings(doc, "scopes_supported")?,
            claims_supported: take_strings(doc, "claims_supported")?,
            grant_types_supported: take_strings(doc, "grant_types_supported")?,
            response_modes_supported: take_strings(doc, "response_modes_supported")?,
            backchannel_logout_supported: take_bool(doc, "backchannel_logout_supported")?,
            backchannel_logout_session_supported: take_bool(
                doc,
                "backchannel_logout_session_supported",
            )?,
            frontchannel_logout_supported: take_bool(doc, "frontchannel_logout_supported")?,
            other: document,
        })
    }

    /// Every endpoint stated, with its member name, in document order of importance.
    pub fn endpoints(&self) -> Vec<(&'static str, &Url)> {
        let optional = [
            ("token_endpoint", &self.token_endpoint),
            ("userinfo_endpoint", &self.userinfo_endpoint),
            ("end_session_endpoint", &self.end_session_endpoint),
            ("introspection_endpoint", &self.introspection_endpoint),
            ("revocation_endpoint", &self.revocation_endpoint),
            (
                "device_authorization_endpoint",
                &self.device_authorization_endpoint,
            ),
            ("registration_endpoint", &self.registration_endpoint),
        ];
        let mut all = vec![
            ("authorization_endpoint", &self.authorization_endpoint),
            ("jwks_uri", &self.jwks_uri),
        ];
        all.extend(
            optional
                .into_iter()
                .filter_map(|(name, url)| url.as_ref().map(|u| (name, u))),
        );
        all
    }

    /// Whether PKCE with `S256` is advertised.
    pub fn supports_s256_pkce(&self) -> bool {
        self.code_challenge_methods_supported
            .iter()
            .any(|m| m == "S256")
    }

    /// Problems worth telling an operator about; none of them makes the metadata unusable.
    pub fn warnings(&self) -> Vec<MetadataWarning> {
        let mut warnings = Vec::new();
        let issuer_url = Url::parse(&self.issuer).ok();
        if let Some(url) = &issuer_url
            && is_insecure(url)
        {
            warnings.push(MetadataWarning::InsecureEndpoint {
                field: "issuer",
                url: self.issuer.clone(),
            });
        }
        for (field, url) in self.endpoints() {
            if is_insecure(url) {
                warnings.push(MetadataWarning::InsecureEndpoint {
                    field,
                    url: url.to_string(),
                });
            }
        }
        if !self.supports_s256_pkce() {
            warnings.push(MetadataWarning::NoS256Pkce {
                advertised: self.code_challenge_methods_supported.clone(),
            });
        }
        if self.end_session_endpoint.is_none() {
            warnings.push(MetadataWarning::NoEndSession);
        }
        let algs = &self.id_token_signing_alg_values_supported;
        if algs.iter().any(|a| a == "none") {
            warnings.push(MetadataWarning::UnsignedTokensAdvertised);
        }
        if !algs.iter().any(|a| a == "RS256") {
            warnings.push(MetadataWarning::NoRs256);
        }
        // A template issuer (`{tenantid}`) has a fixed host, so the comparison still holds.
        if let Some(issuer_host) = issuer_url.as_ref().and_then(|u| u.host_str()) {
            for (field, url) in [
                ("authorization_endpoint", Some(&self.authorization_endpoint)),
                ("token_endpoint", self.token_endpoint.as_ref()),
                ("jwks_uri", Some(&self.jwks_uri)),
            ] {
                if let Some(host) = url.and_then(|u| u.host_str())
                    && !host.eq_ignore_ascii_case(issuer_host)
                {
                    warnings.push(MetadataWarning::ForeignEndpointHost {
                        field,
                        host: host.to_owned(),
                        issuer_host: issuer_host.to_owned(),
                    });
                }
            }
        }
        warnings
    }
}

fn is_insecure(url: &Url) -> bool {
    url.scheme() == "http" && !is_loopback_host(url)
}

fn take_string(
    doc: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, DiscoveryError> {
    match doc.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(DiscoveryError::InvalidField {
            field,
            reason: format!("expected a string, found {}", json_kind(&other)),
        }),
    }
}

fn take_url(
    doc: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<Url>, DiscoveryError> {
    let Some(text) = take_string(doc, field)? else {
        return Ok(None);
    };
    let url = Url::parse(&text).map_err(|e| DiscoveryError::InvalidField {
        field,
        reason: format!("{text:?} is not an absolute URL: {e}"),
    })?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(DiscoveryError::InvalidField {
            field,
            reason: format!("{text:?} is neither https nor http"),
        });
    }
    if url.host().is_none() {
        return Err(DiscoveryError::InvalidField {
            field,
            reason: format!("{text:?} has no host"),
        });
    }
    Ok(Some(url))
}

fn take_required_url(
    doc: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Url, DiscoveryError> {
    take_url(doc, field)?.ok_or(DiscoveryError::MissingField { field })
}

fn take_strings(
    doc: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Vec<String>, DiscoveryError> {
    match doc.remove(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(DiscoveryError::InvalidField {
                    field,
                    reason: format!("expected an array of strings, found {}", json_kind(&other)),
                }),
            })
            .collect(),
        Some(other) => Err(DiscoveryError::InvalidField {
            field,
            reason: format!("expected an array of strings, found {}", json_kind(&other)),
        }),
    }
}

fn take_required_strings(
    doc: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Vec<String>, DiscoveryError> {
    if !doc.contains_key(field) {
        return Err(DiscoveryError::MissingField { field });
    }
    let values = take_strings(doc, field)?;
    if values.is_empty() {
        return Err(DiscoveryError::InvalidField {
            field,
            reason: "the list is empty".into(),
        });
    }
    Ok(values)
}

fn take_bool(doc: &mut Map<String, Value>, field: &'static str) -> Result<bool, DiscoveryError> {
    match doc.remove(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(b),
        Some(other) => Err(DiscoveryError::InvalidField {
            field,
            reason: format!("expected true or false, found {}", json_kind(&other)),
        }),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({
            "issuer": "https://op.example",
            "authorization_endpoint": "https://op.example/authorize",
            "token_endpoint": "https://op.example/token",
            "jwks_uri": "https://op.example/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"]
        })
    }

    fn parse(doc: &Value) -> Result<ProviderMetadata, DiscoveryError> {
        let issuer = Issuer::new("https://op.example").unwrap();
        let response = http::Response::builder()
            .header("content-type", "application/json")
            .body(serde_json::to_vec(doc).unwrap())
            .unwrap();
        parse_discovery(&issuer, &DiscoveryOptions::new(), &response)
    }

    fn without(field: &str) -> Value {
        let mut doc = minimal();
        doc.as_object_mut().unwrap().remove(field);
        doc
    }

    #[test]
    fn request_targets_the_well_known_path() {
        let issuer = Issuer::new("https://op.example/realms/main/").unwrap();
        let request = discovery_request(&issuer);
        assert_eq!(request.method(), http::Method::GET);
        assert_eq!(
            request.uri(),
            "https://op.example/realms/main/.well-known/openid-configuration"
        );
    }

    #[test]
    fn each_required_member_is_required() {
        for field in [
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "response_types_supported",
            "subject_types_supported",
            "id_token_signing_alg_values_supported",
        ] {
            assert_eq!(
                parse(&without(field)).unwrap_err(),
                DiscoveryError::MissingField { field },
                "{field}"
            );
        }
    }

    #[test]
    fn token_endpoint_is_optional_for_implicit_only_providers() {
        let mut doc = without("token_endpoint");
        doc["response_types_supported"] = json!(["id_token", "id_token token"]);
        assert_eq!(parse(&doc).unwrap().token_endpoint, None);
        doc["response_types_supported"] = json!(["id_token", "code id_token"]);
        assert_eq!(parse(&doc).unwrap_err().code(), "discovery_missing_field");
    }

    #[test]
    fn wrong_types_are_invalid_fields() {
        let cases = [
            ("issuer", json!(42)),
            ("jwks_uri", json!("/relative/jwks")),
            ("jwks_uri", json!("ftp://op.example/jwks")),
            ("response_types_supported", json!("code")),
            ("response_types_supported", json!([])),
            ("scopes_supported", json!(["openid", 1])),
            ("backchannel_logout_supported", json!("yes")),
        ];
        for (field, value) in cases {
            let mut doc = minimal();
            doc[field] = value.clone();
            let err = parse(&doc).unwrap_err();
            assert!(
                matches!(err, DiscoveryError::InvalidField { field: f, .. } if f == field),
                "{field} = {value}: {err:?}"
            );
        }
    }

    #[test]
    fn unknown_members_are_kept() {
        let mut doc = minimal();
        doc["mtls_endpoint_aliases"] = json!({"token_endpoint": "https://mtls.op.example/token"});
        let metadata = parse(&doc).unwrap();
        assert_eq!(
            metadata.other["mtls_endpoint_aliases"]["token_endpoint"],
            "https://mtls.op.example/token"
        );
        assert!(!metadata.other.contains_key("issuer"));
    }

    #[test]
    fn a_json_array_is_not_metadata() {
        assert_eq!(
            parse(&json!([1, 2])).unwrap_err(),
            DiscoveryError::NotAnObject
        );
    }

    #[test]
    fn size_limit_applies() {
        let issuer = Issuer::new("https://op.example").unwrap();
        let response = http::Response::new(serde_json::to_vec(&minimal()).unwrap());
        let err = parse_discovery(
            &issuer,
            &DiscoveryOptions::new().max_response_bytes(10),
            &response,
        )
        .unwrap_err();
        assert_eq!(err.code(), "provider_response_too_large");
    }

    #[test]
    fn warnings_name_what_an_operator_should_fix() {
        let metadata = parse(&minimal()).unwrap();
        let codes: Vec<_> = metadata.warnings().iter().map(|w| w.code()).collect();
        assert_eq!(codes, ["no_s256_pkce", "no_end_session_endpoint"]);

        let mut doc = minimal();
        doc["code_challenge_methods_supported"] = json!(["plain", "S256"]);
        doc["end_session_endpoint"] = json!("https://op.example/logout");
        doc["userinfo_endpoint"] = json!("http://op.example/userinfo");
        doc["id_token_signing_alg_values_supported"] = json!(["ES256", "none"]);
        doc["jwks_uri"] = json!("https://keys.other.example/jwks");
        let warnings = parse(&doc).unwrap().warnings();
        assert_eq!(
            warnings,
            vec![
                MetadataWarning::InsecureEndpoint {
                    field: "userinfo_endpoint",
                    url: "http://op.example/userinfo".into()
                },
                MetadataWarning::UnsignedTokensAdvertised,
                MetadataWarning::NoRs256,
                MetadataWarning::ForeignEndpointHost {
                    field: "jwks_uri",
                    host: "keys.other.example".into(),
                    issuer_host: "op.example".into()
                },
            ]
        );
    }

    #[test]
    fn loopback_http_is_not_a_warning() {
        let issuer = Issuer::new("http://127.0.0.1:9000").unwrap();
        let doc = json!({
            "issuer": "http://127.0.0.1:9000",
            "authorization_endpoint": "http://127.0.0.1:9000/authorize",
            "token_endpoint": "http://127.0.0.1:9000/token",
            "jwks_uri": "http://127.0.0.1:9000/jwks",
            "end_session_endpoint": "http://127.0.0.1:9000/logout",
            "code_challenge_methods_supported": ["S256"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"]
        });
        let response = http::Response::new(serde_json::to_vec(&doc).unwrap());
        let metadata = parse_discovery(&issuer, &DiscoveryOptions::new(), &response).unwrap();
        assert_eq!(metadata.warnings(), vec![]);
    }

    #[test]
    fn serializes_back_to_the_same_metadata() {
        let mut doc = minimal();
        doc["backchannel_logout_supported"] = json!(true);
        doc["scopes_supported"] = json!(["openid", "email"]);
        doc["x_custom"] = json!({"a": [1, 2]});
        let metadata = parse(&doc).unwrap();
        let again = serde_json::to_value(&metadata).unwrap();
        let Value::Object(map) = again else {
            panic!("metadata serializes to an object")
        };
        assert_eq!(ProviderMetadata::from_document(map).unwrap(), metadata);
    }
}
