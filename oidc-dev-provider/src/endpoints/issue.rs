//! What a grant is issued: the token response (access token, ID token, refresh token) and the
//! access token itself, an RFC 9068 JWT or an opaque string.

use oidc_core::{Issuer, UnixTime};
use serde_json::{Value, json};

use super::has_scope;
use super::respond::OAuthError;
use crate::config::AccessTokenFormat;
use crate::keys::{KeyError, left_half_hash};
use crate::provider::{Shared, lock};
use crate::store::{AccessRecord, IdTokenRecord, RefreshRecord, Store, Subject, random_token};

/// The token response for a grant: an access token, an ID token when the scope has `openid`
/// and a user is behind it, and a refresh token when `with_refresh`.
pub(crate) fn issue_token_response(
    shared: &Shared,
    issuer: &Issuer,
    store: &mut Store,
    grant_id: u64,
    nonce: Option<&str>,
    with_refresh: bool,
    now: UnixTime,
) -> Result<Value, IssueError> {
    let access_token = issue_access_token(shared, issuer, store, grant_id, now)?;
    let grant = store
        .grants
        .get(&grant_id)
        .cloned()
        .ok_or(IssueError::UnknownGrant)?;
    let token_type = if store.dpop_bindings.contains_key(&grant_id) {
        "DPoP"
    } else {
        "Bearer"
    };
    let mut response = json!({
        "access_token": access_token,
        "token_type": token_type,
        "expires_in": shared.settings.access_token_lifetime.as_secs(),
    });
    if !grant.scope.is_empty() {
        response["scope"] = Value::String(grant.scope.clone());
    }
    if let Subject::User {
        username,
        sid,
        auth_time,
    } = &grant.subject
    {
        if has_scope(&grant.scope, "openid") {
            let user = shared
                .users
                .get(username)
                .ok_or_else(|| IssueError::UnknownUser(username.clone()))?;
            let mut claims = user.claims_for_scope(&grant.scope);
            claims.insert("iss".into(), issuer.as_str().into());
            claims.insert("aud".into(), grant.client_id.clone().into());
            claims.insert("azp".into(), grant.client_id.clone().into());
            claims.insert("iat".into(), now.as_secs().into());
            claims.insert(
                "exp".into(),
                now.saturating_add(shared.settings.id_token_lifetime)
                    .as_secs()
                    .into(),
            );
            claims.insert("auth_time".into(), auth_time.as_secs().into());
            claims.insert("at_hash".into(), left_half_hash(&access_token).into());
            if let Some(nonce) = nonce {
                claims.insert("nonce".into(), nonce.into());
            }
            if let Some(sid) = sid {
                claims.insert("sid".into(), sid.clone().into());
            }
            let id_token = lock(&shared.keys).sign("JWT", &claims)?;
            store.id_tokens.insert(
                id_token.clone(),
                IdTokenRecord {
                    client_id: grant.client_id.clone(),
                    sid: sid.clone(),
                },
            );
            response["id_token"] = Value::String(id_token);
        }
        if with_refresh {
            let refresh = random_token();
            store.refresh_tokens.insert(
                refresh.clone(),
                RefreshRecord {
                    grant_id,
                    issued: now,
                    expires: now.saturating_add(shared.settings.refresh_token_lifetime),
                    used: false,
                },
            );
            response["refresh_token"] = Value::String(refresh);
        }
    }
    Ok(response)
}

/// Why tokens could not be issued for a grant.
#[derive(Debug)]
pub(crate) enum IssueError {
    Key(KeyError),
    UnknownGrant,
    UnknownUser(String),
}

impl From<KeyError> for IssueError {
    fn from(error: KeyError) -> Self {
        IssueError::Key(error)
    }
}

impl From<IssueError> for OAuthError {
    fn from(error: IssueError) -> Self {
        match error {
            IssueError::Key(e) => OAuthError::server_error(&e),
            IssueError::UnknownGrant => OAuthError::invalid_grant("the grant no longer exists"),
            IssueError::UnknownUser(_) => OAuthError::invalid_grant("the user no longer exists"),
        }
    }
}

/// Issues and records an access token for a grant: an RFC 9068 JWT or an opaque string,
/// as the client is configured.
pub(crate) fn issue_access_token(
    shared: &Shared,
    issuer: &Issuer,
    store: &mut Store,
    grant_id: u64,
    now: UnixTime,
) -> Result<String, IssueError> {
    let grant = store.grants.get(&grant_id).cloned();
    let client = grant
        .as_ref()
        .and_then(|g| shared.clients.get(&g.client_id));
    let (Some(grant), Some(client)) = (grant, client) else {
        return Err(IssueError::UnknownGrant);
    };
    let audience = client.audience();
    let jti = random_token();
    let expires = now.saturating_add(shared.settings.access_token_lifetime);
    let token = match client.access_token_format {
        AccessTokenFormat::Opaque => random_token(),
        AccessTokenFormat::Jwt => {
            let mut claims = serde_json::Map::new();
            match &grant.subject {
                Subject::User {
                    username,
                    sid,
                    auth_time,
                } => {
                    if let Some(user) = shared.users.get(username) {
                        claims = user.claims_for_scope(&grant.scope);
                    }
                    claims.insert("auth_time".into(), auth_time.as_secs().into());
                    if let Some(sid) = sid {
                        claims.insert("sid".into(), sid.clone().into());
                    }
                }
                Subject::Client => {
                    claims.insert("sub".into(), client.client_id.clone().into());
                }
            }
            claims.insert("iss".into(), issuer.as_str().into());
            claims.insert("aud".into(), audience_value(&audience));
            claims.insert("client_id".into(), client.client_id.clone().into());
            claims.insert("iat".into(), now.as_secs().into());
            claims.insert("exp".into(), expires.as_secs().into());
            claims.insert("jti".into(), jti.clone().into());
            if !grant.scope.is_empty() {
                claims.insert("scope".into(), grant.scope.clone().into());
            }
            if let Some(jkt) = store.dpop_bindings.get(&grant_id) {
                claims.insert("cnf".into(), json!({ "jkt": jkt }));
            }
            lock(&shared.keys).sign("at+jwt", &claims)?
        }
    };
    store.access_tokens.insert(
        token.clone(),
        AccessRecord {
            grant_id,
            jti,
            issued: now,
            expires,
            audience,
        },
    );
    Ok(token)
}

/// `audience` as a JSON string when single, an array otherwise.
pub(super) fn audience_value(audience: &[String]) -> Value {
    match audience {
        [one] => Value::String(one.clone()),
        many => json!(many),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_is_a_string_when_single() {
        assert_eq!(audience_value(&["a".into()]), json!("a"));
        assert_eq!(audience_value(&["a".into(), "b".into()]), json!(["a", "b"]));
    }
}
