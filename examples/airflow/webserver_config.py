"""Airflow web server sign-in through the same OpenID Provider as the MLflow proxy (FAB AUTH_OAUTH).

Users who signed in to MLflow through the proxy are not asked for their password again here:
both are clients of one provider, whose session gives single sign-on.

Register a confidential client at the provider with the redirect URI
  Airflow 2.x:  https://airflow.example.com/oauth-authorized/oidc
  Airflow 3.x:  https://airflow.example.com/auth/oauth-authorized/oidc
(the FAB auth manager is mounted under /auth in Airflow 3), and set in the environment:
  AIRFLOW_OIDC_ISSUER         e.g. https://login.example.com (exactly the provider's `issuer`)
  AIRFLOW_OIDC_CLIENT_ID      e.g. airflow
  AIRFLOW_OIDC_CLIENT_SECRET  the client's secret (never commit it)
  AIRFLOW_OIDC_ADMIN_GROUP    provider group whose members become Admin (default: admins)
  AIRFLOW_OIDC_USER_GROUP     provider group whose members become Viewer (default: mlflow-users)

Airflow 2.x: put this file at $AIRFLOW_HOME/webserver_config.py (FAB is part of Airflow, or of
`apache-airflow-providers-fab` from 2.9 on).
Airflow 3.x: install `apache-airflow-providers-fab`, set
  AIRFLOW__CORE__AUTH_MANAGER=airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager
and keep this file as $AIRFLOW_HOME/webserver_config.py; the FAB auth manager reads it. In 3.x
the UI and API server are one process (`airflow api-server`) and API clients use JWTs issued
by Airflow itself, not the provider's tokens.

Needs `authlib` (FAB's OAuth client). PKCE (S256) is on, as the provider requires it.

What has been verified: `test_webserver_config.py` (run by the end-to-end suite) loads this file
with stand-ins for the Airflow and FAB modules it imports and checks the provider registration
(discovery URL, PKCE, scopes), the claim-to-user mapping and the role mapping from groups. It has
not been loaded in a running Airflow, which pulls in far more than the test machines install;
the FAB settings used (`AUTH_OAUTH`, `OAUTH_PROVIDERS`, `AUTH_ROLES_MAPPING`,
`SECURITY_MANAGER_CLASS`) are those documented for FAB 4.x, which Airflow 2.9+ and the
Airflow 3 FAB provider both use.
"""

from __future__ import annotations

import os

try:  # Airflow 3.x and 2.9+: the FAB provider package
    from airflow.providers.fab.auth_manager.security_manager.override import (
        FabAirflowSecurityManagerOverride as _BaseSecurityManager,
    )
except ImportError:  # Airflow 2.x before the FAB provider
    from airflow.www.security import AirflowSecurityManager as _BaseSecurityManager

from flask_appbuilder.security.manager import AUTH_OAUTH

PROVIDER_NAME = "oidc"
ISSUER = os.environ.get("AIRFLOW_OIDC_ISSUER", "http://127.0.0.1:9000").rstrip("/")
ADMIN_GROUP = os.environ.get("AIRFLOW_OIDC_ADMIN_GROUP", "admins")
USER_GROUP = os.environ.get("AIRFLOW_OIDC_USER_GROUP", "mlflow-users")

AUTH_TYPE = AUTH_OAUTH
WTF_CSRF_ENABLED = True

OAUTH_PROVIDERS = [
    {
        "name": PROVIDER_NAME,
        "icon": "fa-key",
        "token_key": "access_token",
        "remote_app": {
            "client_id": os.environ.get("AIRFLOW_OIDC_CLIENT_ID", "airflow"),
            "client_secret": os.environ.get("AIRFLOW_OIDC_CLIENT_SECRET", ""),
            # Discovery gives the endpoints and the JWKS; authlib checks the ID token against them.
            "server_metadata_url": f"{ISSUER}/.well-known/openid-configuration",
            "api_base_url": f"{ISSUER}/",
            "client_kwargs": {
                "scope": "openid email profile groups",
                "code_challenge_method": "S256",
            },
        },
    }
]

# Users are created on first sign-in; their roles follow the provider's groups at every sign-in.
AUTH_USER_REGISTRATION = True
AUTH_USER_REGISTRATION_ROLE = "Public"
AUTH_ROLES_SYNC_AT_LOGIN = True
AUTH_ROLES_MAPPING = {
    ADMIN_GROUP: ["Admin"],
    USER_GROUP: ["Viewer"],
}
PERMANENT_SESSION_LIFETIME = 8 * 3600


def user_info_from_claims(claims: dict) -> dict:
    """Maps ID token / userinfo claims to what FAB's OAuth registration expects."""
    email = claims.get("email") or ""
    name = claims.get("name") or ""
    first, _, last = name.partition(" ")
    groups = claims.get("groups") or []
    if isinstance(groups, str):
        groups = [group.strip() for group in groups.split(",") if group.strip()]
    return {
        "username": claims.get("preferred_username") or email or claims.get("sub", ""),
        "email": email,
        "first_name": first,
        "last_name": last,
        "role_keys": list(groups),
    }


class OidcSecurityManager(_BaseSecurityManager):
    """FAB knows a list of named providers; this one reads standard OpenID Connect claims."""

    def get_oauth_user_info(self, provider, resp):
        if provider != PROVIDER_NAME:
            return super().get_oauth_user_info(provider, resp)
        # authlib has already validated the ID token (signature, iss, aud, nonce) into resp["userinfo"].
        claims = dict(resp.get("userinfo") or {})
        if not claims.get("email"):
            claims.update(self.appbuilder.sm.oauth_remotes[provider].userinfo())
        return user_info_from_claims(claims)


SECURITY_MANAGER_CLASS = OidcSecurityManager
