"""Airflow sign-in through the same OpenID Provider as MLflow's proxy (FAB AUTH_OAUTH).

Users who signed in to MLflow through the proxy are not asked for their password again here:
both are clients of one provider, whose session gives single sign-on. The whole deployment
(Caddy, the proxy, MLflow and Airflow on one host) is examples/deployment/README.md.

Register a confidential client at the provider with the redirect URI
  Airflow 3.x:  https://HOST[/PREFIX]/auth/oauth-authorized/oidc
                (e.g. https://apps.example.com/airflow/auth/oauth-authorized/oidc with
                `[api] base_url = https://apps.example.com/airflow`)
  Airflow 2.x:  https://HOST/oauth-authorized/oidc
and set in the environment:
  AIRFLOW_OIDC_ISSUER         e.g. https://login.example.com (exactly the provider's `issuer`)
  AIRFLOW_OIDC_CLIENT_ID      e.g. airflow
  AIRFLOW_OIDC_CLIENT_SECRET  the client's secret (never commit it)
  AIRFLOW_OIDC_ADMIN_GROUP    provider group whose members become Admin (default: admins)
  AIRFLOW_OIDC_USER_GROUP     provider group whose members become Viewer (default: mlflow-users)
  AIRFLOW_OIDC_SIGN_OUT_URL   the "Sign out" link of the refusal page (default: /oauth2/sign_out)
Users in neither group are refused with a 403 page; they never get an account (no Public role).

Airflow 3.x: `pip install apache-airflow apache-airflow-providers-fab authlib`, set
  AIRFLOW__CORE__AUTH_MANAGER=airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager
  AIRFLOW__FAB__CONFIG_FILE=/path/to/this/webserver_config.py  (or copy it to $AIRFLOW_HOME)
and run `airflow api-server` (UI and API are one process). Behind a TLS-terminating proxy
(Caddy, nginx) also:
  AIRFLOW__FAB__ENABLE_PROXY_FIX=True   FAB believes X-Forwarded-Proto/Host: without it the
                                        redirect URI sent to the provider is http://... and the
                                        provider refuses it (invalid_redirect_uri)
  airflow api-server --proxy-headers    the same for the FastAPI part: without it logout and
                                        /airflow -> /airflow/ redirect to http://...
  AIRFLOW__API__BASE_URL=https://HOST/PREFIX  when Airflow lives under a sub-path; the callback
                                        then is /PREFIX/auth/oauth-authorized/oidc
Airflow 2.x: put this file at $AIRFLOW_HOME/webserver_config.py.

Verified: e2e/tests/deployment.test.mjs runs this file in a real Airflow 3.3.2 (FAB provider
3.10.2) behind Caddy and the `oidc` proxy, with the certified `oidc-provider` and Chromium;
test_webserver_config.py checks the mapping without Airflow installed.
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
# Where the "Sign out" link of the refusal page goes (the proxy's sign-out in examples/deployment).
SIGN_OUT_URL = os.environ.get("AIRFLOW_OIDC_SIGN_OUT_URL", "/oauth2/sign_out")

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
# Someone whose groups map to no role is refused (OidcSecurityManager.auth_user_oauth), so FAB's
# registration role (Public by default) is never given to anyone.
AUTH_USER_REGISTRATION = True
AUTH_ROLES_SYNC_AT_LOGIN = True
AUTH_ROLES_MAPPING = {
    ADMIN_GROUP: ["Admin"],
    USER_GROUP: ["Viewer"],
}
PERMANENT_SESSION_LIFETIME = 8 * 3600
# On a host shared with other applications, a name of its own: Flask's default `session` is
# also MLflow's.
SESSION_COOKIE_NAME = "airflow_session"


def mapped_roles(role_keys, mapping=None) -> list:
    """The Airflow roles the provider groups `role_keys` give, in mapping order, no repeats."""
    mapping = AUTH_ROLES_MAPPING if mapping is None else mapping
    roles = []
    for key in role_keys or []:
        for role in mapping.get(key, []):
            if role not in roles:
                roles.append(role)
    return roles


def refusal_page(username: str) -> str:
    """The page shown to a signed-in user whose groups give no Airflow role."""
    from html import escape

    return (
        "<!doctype html><html><head><meta charset=utf-8><title>No access to Airflow</title></head>"
        "<body><h1 id=airflow-no-access>No access to Airflow</h1>"
        f"<p>You are signed in as <b>{escape(username)}</b>, but none of your groups gives "
        "access to Airflow. Ask an administrator to add you to the right group.</p>"
        f"<p><a href=\"{escape(SIGN_OUT_URL)}\">Sign out</a></p></body></html>"
    )


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

    def auth_user_oauth(self, userinfo, *args, **kwargs):
        """Refuses, with a 403 page and before any account change, users mapped to no role."""
        if not mapped_roles(userinfo.get("role_keys")):
            from flask import Response, abort

            username = userinfo.get("username") or userinfo.get("email") or "?"
            abort(Response(refusal_page(username), status=403, mimetype="text/html"))
        return super().auth_user_oauth(userinfo, *args, **kwargs)


SECURITY_MANAGER_CLASS = OidcSecurityManager
