"""MLflow ``authorization_function`` that trusts the identity header set by the ``oidc`` proxy.

Needs ``pip install 'mlflow[auth]'`` (the auth app's extra; without it MLflow fails with
``ImportError ... requires the Flask-WTF package``). MLflow's auth app
(``mlflow server --app-name basic-auth``) calls the function named by
``authorization_function`` in ``basic_auth.ini`` for every protected request. The function takes
no arguments, reads ``flask.request`` and returns either a
``werkzeug.datastructures.Authorization`` naming the user (MLflow then applies its permission
checks to that user) or a Flask ``Response`` that is sent instead (here: 401).

This module takes the user from one header (``X-Forwarded-Email`` by default, as the proxy
sends it in sidecar mode; ``X-Auth-Request-Email`` behind Caddy ``forward_auth``), creates the
MLflow user on first sight with a random password nobody knows, and optionally keeps the
``is_admin`` flag in step with membership of one group.

SECURITY WARNING: a header is only as trustworthy as the network path it came over. This is
safe only when
  * MLflow listens on loopback (``--host 127.0.0.1``) or on a network only the proxy can reach,
    so every request passes the proxy;
  * the proxy removes the same headers arriving from clients (including ``_`` spellings) before
    setting its own: the ``oidc`` proxy does, and ``examples/caddy/Caddyfile`` strips them in the
    same ``route`` block as ``forward_auth``;
  * MLflow's ``--allowed-hosts`` names only the proxy's public host.
Anyone who can reach MLflow directly can claim any identity, administrators included.

Remedy when other processes share the host: set ``MLFLOW_OIDC_PROXY_SECRET`` here and make the
proxy in front send it in ``X-Proxy-Secret`` (``examples/deployment/Caddyfile`` does with
``header_up``). A request without the right value is refused before any header is believed, so
reaching MLflow's port directly with a forged identity gets 401. The comparison is constant-time.

Settings (environment variables of the MLflow server process):
  MLFLOW_OIDC_PROXY_SECRET   when set, requests must carry it in X-Proxy-Secret (default: unset)
  MLFLOW_OIDC_USER_HEADER    header holding the user name   (default: X-Forwarded-Email)
  MLFLOW_OIDC_GROUPS_HEADER  header holding the groups, comma-separated (default: X-Forwarded-Groups)
  MLFLOW_OIDC_ADMIN_GROUP    members are MLflow admins, others are not (default: unset = never touch)
"""

from __future__ import annotations

import hmac
import os
import secrets
from typing import Mapping, Protocol

from flask import Response, request
from werkzeug.datastructures import Authorization

PROXY_SECRET_HEADER = "X-Proxy-Secret"
DEFAULT_USER_HEADER = "X-Forwarded-Email"
DEFAULT_GROUPS_HEADER = "X-Forwarded-Groups"
MAX_USERNAME_LENGTH = 320


class UserStore(Protocol):
    """The part of MLflow's auth ``SqlAlchemyStore`` this module uses."""

    def has_user(self, username: str) -> bool: ...

    def create_user(self, username: str, password: str, is_admin: bool = False): ...

    def get_user(self, username: str): ...

    def update_user(self, username: str, password: str | None = None, is_admin: bool | None = None): ...


def authenticate_request_from_proxy_headers() -> Authorization | Response:
    """The ``authorization_function`` to name in ``basic_auth.ini``."""
    from mlflow.server.auth import store  # the auth app's user store, set up when the app loads

    return authenticate(request.headers, store, os.environ)


def authenticate(headers: Mapping[str, str], store: UserStore, settings: Mapping[str, str]) -> Authorization | Response:
    """Decides who sent the request from the proxy's headers; provisions the MLflow user."""
    if not came_through_proxy(headers, settings):
        return unauthenticated("the request did not come through the proxy")
    user_header = settings.get("MLFLOW_OIDC_USER_HEADER") or DEFAULT_USER_HEADER
    username = clean_username(headers.get(user_header))
    if username is None:
        return unauthenticated(f"missing or invalid {user_header} header: sign in through the proxy")

    if not store.has_user(username):
        try:
            store.create_user(username, secrets.token_urlsafe(32))
        except Exception:
            # Another worker created the same user in the meantime; anything else is re-raised.
            if not store.has_user(username):
                raise

    admin_group = settings.get("MLFLOW_OIDC_ADMIN_GROUP")
    if admin_group:
        groups_header = settings.get("MLFLOW_OIDC_GROUPS_HEADER") or DEFAULT_GROUPS_HEADER
        groups = {group.strip() for group in (headers.get(groups_header) or "").split(",")}
        should_be_admin = admin_group in groups
        if store.get_user(username).is_admin != should_be_admin:
            store.update_user(username, is_admin=should_be_admin)

    return Authorization("basic", {"username": username, "password": ""})


def came_through_proxy(headers: Mapping[str, str], settings: Mapping[str, str]) -> bool:
    """True unless MLFLOW_OIDC_PROXY_SECRET is set and the request lacks it (constant-time)."""
    expected = settings.get("MLFLOW_OIDC_PROXY_SECRET")
    if not expected:
        return True
    given = headers.get(PROXY_SECRET_HEADER) or ""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def clean_username(value: str | None) -> str | None:
    """The user name from a header value, or None when it is absent or not plausible.

    Caddy 2.6 sends the literal placeholder (``{http.reverse_proxy.header.X-...}``) when the auth
    answer lacked the header; that, control characters and over-long values are refused.
    """
    if value is None:
        return None
    username = value.strip()
    if not username or len(username) > MAX_USERNAME_LENGTH:
        return None
    if "{" in username or "}" in username or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in username):
        return None
    return username


def unauthenticated(reason: str) -> Response:
    """A 401 without ``WWW-Authenticate: Basic``, so browsers do not pop up a password dialog."""
    return Response(f"Unauthenticated: {reason}\n", status=401, mimetype="text/plain")
