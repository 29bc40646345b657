//! The checks every answer from the provider gets before its body is parsed: status, media
//! type and size. Discovery, keys, token, userinfo and introspection share them.

use http::{HeaderMap, Method, Request, StatusCode, header};

use crate::ErrorKind;

/// The largest provider answer the core will parse (1 MiB). Discovery documents and key sets
/// are a few KiB; anything far larger is a misconfiguration or an attack.
pub const MAX_PROVIDER_RESPONSE_BYTES: usize = 1024 * 1024;

/// Why a provider's answer was not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The status was not the one expected.
    #[error("the provider answered {status}{}", describe_body(.body_excerpt))]
    UnexpectedStatus {
        /// The status received.
        status: StatusCode,
        /// The start of the body, for the error message (at most 200 characters).
        body_excerpt: String,
    },
    /// The body was not JSON.
    #[error("the provider answered with {} instead of JSON", describe_content_type(.content_type.as_deref()))]
    NotJson {
        /// The `Content-Type` received, if any.
        content_type: Option<String>,
    },
    /// The body exceeded the limit.
    #[error("the provider's answer is {len} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// The body's length.
        len: usize,
        /// The limit applied.
        limit: usize,
    },
    /// The body was JSON of the wrong shape.
    #[error("the provider's answer is not valid JSON of the expected shape: {reason}")]
    Malformed {
        /// What the JSON parser said.
        reason: String,
    },
}

impl ResponseError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ResponseError::UnexpectedStatus { .. } => ErrorKind::ProviderUnexpectedStatus,
            ResponseError::NotJson { .. } => ErrorKind::ProviderNotJson,
            ResponseError::TooLarge { .. } => ErrorKind::ProviderResponseTooLarge,
            ResponseError::Malformed { .. } => ErrorKind::ProviderResponseMalformed,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

fn describe_content_type(content_type: Option<&str>) -> String {
    match content_type {
        Some(media) => format!("`{media}`"),
        None => "no Content-Type".to_owned(),
    }
}

fn describe_body(excerpt: &str) -> String {
    if excerpt.is_empty() {
        String::new()
    } else {
        format!(": {excerpt}")
    }
}

/// A `GET` request for a JSON document at `url`.
pub fn json_get_request(url: &url::Url) -> Request<Vec<u8>> {
    let mut request = Request::new(Vec::new());
    *request.method_mut() = Method::GET;
    *request.uri_mut() = url
        .as_str()
        .parse()
        .unwrap_or_else(|_| http::Uri::from_static("/"));
    request.headers_mut().insert(
        header::ACCEPT,
        header::HeaderValue::from_static("application/json"),
    );
    request
}

/// Checks an answer's status, size and media type, and returns its body for parsing.
///
/// `accepted_media_types` lists the JSON media types the endpoint may answer with besides
/// `application/json` (e.g. `application/jwk-set+json`). A missing `Content-Type` is accepted,
/// since several providers omit it; a non-JSON one is not.
pub fn checked_json_body<'a, B: AsRef<[u8]>>(
    response: &'a http::Response<B>,
    expected_status: StatusCode,
    accepted_media_types: &[&str],
    limit: usize,
) -> Result<&'a [u8], ResponseError> {
    let body = response.body().as_ref();
    if body.len() > limit {
        return Err(ResponseError::TooLarge {
            len: body.len(),
            limit,
        });
    }
    if response.status() != expected_status {
        return Err(ResponseError::UnexpectedStatus {
            status: response.status(),
            body_excerpt: excerpt(body),
        });
    }
    check_json_media_type(response.headers(), accepted_media_types)?;
    Ok(body)
}

/// Parses a checked body as `T`, mapping JSON errors to [`ResponseError::Malformed`].
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ResponseError> {
    serde_json::from_slice(body).map_err(|e| ResponseError::Malformed {
        reason: e.to_string(),
    })
}

fn check_json_media_type(headers: &HeaderMap, accepted: &[&str]) -> Result<(), ResponseError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or("");
    let media_type = text.split(';').next().unwrap_or("").trim();
    let is_json = media_type.eq_ignore_ascii_case("application/json")
        || accepted.iter().any(|a| media_type.eq_ignore_ascii_case(a));
    if is_json {
        Ok(())
    } else {
        Err(ResponseError::NotJson {
            content_type: Some(text.to_owned()),
        })
    }
}

/// The first 200 characters of a body, lossily decoded, with control characters replaced so
/// that an error message cannot forge log lines.
pub fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(200)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, content_type: Option<&str>, body: &str) -> http::Response<Vec<u8>> {
        let mut builder = http::Response::builder().status(status);
        if let Some(ct) = content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        builder.body(body.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn accepts_json_with_parameters_and_missing_content_type() {
        let ok = response(200, Some("application/json; charset=utf-8"), "{}");
        assert_eq!(
            checked_json_body(&ok, StatusCode::OK, &[], 100).unwrap(),
            b"{}"
        );
        let none = response(200, None, "{}");
        assert!(checked_json_body(&none, StatusCode::OK, &[], 100).is_ok());
        let jwks = response(200, Some("application/jwk-set+json"), "{}");
        assert!(
            checked_json_body(&jwks, StatusCode::OK, &["application/jwk-set+json"], 100).is_ok()
        );
    }

    #[test]
    fn typed_errors_for_status_media_type_and_size() {
        let err = checked_json_body(
            &response(500, None, "boom\r\nX: y"),
            StatusCode::OK,
            &[],
            100,
        )
        .unwrap_err();
        assert_eq!(err.code(), "provider_unexpected_status");
        assert!(!err.to_string().contains('\n'));
        let err = checked_json_body(
            &response(200, Some("text/html"), "<html>"),
            StatusCode::OK,
            &[],
            100,
        )
        .unwrap_err();
        assert_eq!(err.code(), "provider_not_json");
        assert_eq!(
            err.to_string(),
            "the provider answered with `text/html` instead of JSON"
        );
        let err =
            checked_json_body(&response(200, None, "{}"), StatusCode::OK, &[], 1).unwrap_err();
        assert_eq!(err, ResponseError::TooLarge { len: 2, limit: 1 });
    }

    #[test]
    fn malformed_json_is_typed() {
        let err = parse_json::<serde_json::Value>(b"{").unwrap_err();
        assert_eq!(err.code(), "provider_response_malformed");
    }

    #[test]
    fn get_request_asks_for_json() {
        let url = url::Url::parse("https://op.example/jwks").unwrap();
        let request = json_get_request(&url);
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.uri(), "https://op.example/jwks");
        assert_eq!(request.headers()[header::ACCEPT], "application/json");
    }
}
