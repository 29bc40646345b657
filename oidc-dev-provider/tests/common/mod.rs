//! Helpers for driving the provider over HTTP the way a relying party and a browser would.
#![allow(dead_code, unreachable_pub)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oidc_dev_provider::{DevClient, DevProvider, DevProviderBuilder, DevUser, RunningProvider};
use serde_json::Value;

/// Form bodies without reqwest's optional `form` feature.
pub trait FormExt {
    fn form_urlencoded(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormExt for reqwest::RequestBuilder {
    fn form_urlencoded(self, pairs: &[(&str, &str)]) -> Self {
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(pairs).unwrap())
    }
}

pub const REDIRECT: &str = "http://127.0.0.1:4180/oauth2/callback";
pub const SECOND_REDIRECT: &str = "http://127.0.0.1:4181/callback";

/// A client that neither follows redirects nor keeps cookies: every hop is asserted.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

pub fn builder() -> DevProviderBuilder {
    DevProvider::builder()
        .user(
            DevUser::new("alice", "alice-password")
                .name("Alice")
                .email("alice@example.com")
                .groups(["admins"])
                .claim("department", "research".into()),
        )
        .user(DevUser::new("bob", "bob-password"))
        .client(
            DevClient::confidential("app", "app-secret")
                .redirect_uri(REDIRECT)
                .post_logout_redirect_uri("http://127.0.0.1:4180/signed-out")
                .access_token_audience("https://api.example"),
        )
        .client(DevClient::confidential("second", "second-secret").redirect_uri(SECOND_REDIRECT))
        .client(DevClient::public("spa").redirect_uri("http://127.0.0.1:4182/cb"))
}

pub async fn start() -> RunningProvider {
    start_with(builder()).await
}

pub async fn start_with(builder: DevProviderBuilder) -> RunningProvider {
    builder
        .build()
        .unwrap()
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// (verifier, S256 challenge)
pub fn pkce_pair(seed: &str) -> (String, String) {
    let verifier = format!("{seed:-<50}");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    (verifier, URL_SAFE_NO_PAD.encode(digest.as_ref()))
}

pub fn query_param(location: &str, name: &str) -> Option<String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The `devop_session=...` pair from a Set-Cookie header.
pub fn session_cookie(response: &reqwest::Response) -> String {
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .expect("a Set-Cookie header")
        .to_str()
        .unwrap();
    set_cookie.split(';').next().unwrap().to_owned()
}

pub struct Authorize<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
    pub challenge: Option<&'a str>,
    pub extra: Vec<(&'a str, &'a str)>,
}

impl<'a> Authorize<'a> {
    pub fn app(challenge: Option<&'a str>) -> Self {
        Authorize {
            client_id: "app",
            redirect_uri: REDIRECT,
            scope: "openid profile email",
            challenge,
            extra: vec![("state", "st-1"), ("nonce", "n-1")],
        }
    }

    pub fn url(&self, provider: &RunningProvider) -> String {
        let mut url = url::Url::parse(&provider.endpoint("/authorize")).unwrap();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code");
            q.append_pair("client_id", self.client_id);
            q.append_pair("redirect_uri", self.redirect_uri);
            q.append_pair("scope", self.scope);
            if let Some(challenge) = self.challenge {
                q.append_pair("code_challenge", challenge);
                q.append_pair("code_challenge_method", "S256");
            }
            for (k, v) in &self.extra {
                q.append_pair(k, v);
            }
        }
        url.to_string()
    }
}

/// The hidden `login_id` of a login form.
pub fn login_id(html: &str) -> String {
    let start =
        html.find("name=\"login_id\" value=\"").unwrap() + "name=\"login_id\" value=\"".len();
    let end = html[start..].find('"').unwrap();
    html[start..start + end].to_owned()
}

/// Goes through the login form; returns (redirect location, session cookie).
pub async fn login(
    provider: &RunningProvider,
    request: &Authorize<'_>,
    username: &str,
    password: &str,
) -> (String, String) {
    let http = http();
    let form = http.get(request.url(provider)).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let html = form.text().await.unwrap();
    assert!(html.contains("NOT FOR PRODUCTION"));
    let response = http
        .post(provider.endpoint("/login"))
        .form_urlencoded(&[
            ("login_id", login_id(&html).as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let cookie = session_cookie(&response);
    (location(&response), cookie)
}

pub async fn redeem(
    provider: &RunningProvider,
    code: &str,
    verifier: Option<&str>,
) -> (reqwest::StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier));
    }
    post_token(provider, ("app", "app-secret"), &form).await
}

pub async fn post_token(
    provider: &RunningProvider,
    (id, secret): (&str, &str),
    form: &[(&str, &str)],
) -> (reqwest::StatusCode, Value) {
    let response = http()
        .post(provider.endpoint("/token"))
        .basic_auth(id, Some(secret))
        .form_urlencoded(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

pub async fn introspect(provider: &RunningProvider, token: &str) -> Value {
    let response = http()
        .post(provider.endpoint("/introspect"))
        .basic_auth("app", Some("app-secret"))
        .form_urlencoded(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Verifies a JWT against the provider's published JWKS; returns (header typ, claims).
pub async fn verify(provider: &RunningProvider, token: &str) -> (Option<String>, Value) {
    let jwks: jsonwebtoken::jwk::JwkSet = http()
        .get(provider.endpoint("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid in JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation).unwrap();
    (header.typ, data.claims)
}
