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

Two ways to learn who the user is:

* **A signed identity assertion (recommended).** With ``MLFLOW_OIDC_ASSERTION_JWKS_URL`` set, the
  user comes only from the ``X-Identity-Assertion`` header: a short-lived ES256 JWT that
  ``oidc proxy --identity-assertion-audience=mlflow`` signs for every request it lets through,
  verified here against the proxy's published keys (``{proxy}/oauth2/jwks``), its issuer, the
  audience and its expiry. Identity headers are then ignored, so a process on this host that
  reaches MLflow directly cannot claim anyone: it has no key to sign with. Needs
  ``pip install 'PyJWT[crypto]'``.
* **Identity headers only.** Without that setting the user is read from one header. This is safe
  only when nothing but the proxy can reach MLflow: MLflow on a Unix socket only the proxy may
  open, or on loopback of a host no one else uses, the proxy stripping client-sent copies of the
  headers (the ``oidc`` proxy does; ``examples/caddy/Caddyfile`` strips them in the same
  ``route`` as ``forward_auth``), and ``--allowed-hosts`` naming only the proxy's public host.
  Anyone who can reach MLflow directly can claim any identity, administrators included.

Either way the MLflow user is created on first sight with a random password nobody knows, and
``is_admin`` optionally follows membership of one group.

Settings (environment variables of the MLflow server process):
  MLFLOW_OIDC_ASSERTION_JWKS_URL  the proxy's key set; when set, only verified assertions count
  MLFLOW_OIDC_ASSERTION_ISSUER    the assertions' expected ``iss`` (required with the URL; the
                                  proxy's default is the origin of its --redirect-url)
  MLFLOW_OIDC_ASSERTION_AUDIENCE  the expected ``aud`` (default: mlflow)
  MLFLOW_OIDC_USER_CLAIM          assertion claim naming the user (default: email, else ``sub``)
  MLFLOW_OIDC_USER_HEADER    header holding the user name   (default: X-Forwarded-Email)
  MLFLOW_OIDC_GROUPS_HEADER  header holding the groups, comma-separated (default: X-Forwarded-Groups)
  MLFLOW_OIDC_ADMIN_GROUP    members are MLflow admins, others are not (default: unset = never touch)
"""

from __future__ import annotations

import os
import secrets
import threading
from typing import Any, Mapping, Protocol

from flask import Response, request
from werkzeug.datastructures import Authorization

ASSERTION_HEADER = "X-Identity-Assertion"
ASSERTION_ALGORITHMS = ["ES256"]
DEFAULT_ASSERTION_AUDIENCE = "mlflow"
DEFAULT_USER_CLAIM = "email"
# Seconds of clock difference tolerated between the proxy and MLflow.
ASSERTION_LEEWAY = 5
DEFAULT_USER_HEADER = "X-Forwarded-Email"
DEFAULT_GROUPS_HEADER = "X-Forwarded-Groups"
MAX_USERNAME_LENGTH = 320


class UserStore(Protocol):
    """The part of MLflow's auth ``SqlAlchemyStore`` this module uses."""

    def has_user(self, username: str) -> bool: ...

    def create_user(self, username: str, password: str, is_admin: bool = False): ...

    def get_user(self, username: str): ...

    def update_user(self, username: str, password: str | None = None, is_admin: bool | None = None): ...


class KeySource(Protocol):
    """Finds the public key an assertion was signed with (PyJWT's ``PyJWKClient``)."""

    def get_signing_key_from_jwt(self, token: str) -> Any: ...


def authenticate_request_from_proxy_headers() -> Authorization | Response:
    """The ``authorization_function`` to name in ``basic_auth.ini``."""
    from mlflow.server.auth import store  # the auth app's user store, set up when the app loads

    return authenticate(request.headers, store, os.environ)


def authenticate(
    headers: Mapping[str, str],
    store: UserStore,
    settings: Mapping[str, str],
    keys: KeySource | None = None,
) -> Authorization | Response:
    """Decides who sent the request from the proxy's assertion or headers; provisions the user."""
    if settings.get("MLFLOW_OIDC_ASSERTION_JWKS_URL"):
        identity = identity_from_assertion(headers, settings, keys or proxy_keys(settings))
    else:
        identity = identity_from_headers(headers, settings)
    if isinstance(identity, Response):
        return identity
    username, groups = identity

    if not store.has_user(username):
        try:
            store.create_user(username, secrets.token_urlsafe(32))
        except Exception:
            # Another worker created the same user in the meantime; anything else is re-raised.
            if not store.has_user(username):
                raise

    admin_group = settings.get("MLFLOW_OIDC_ADMIN_GROUP")
    if admin_group:
        should_be_admin = admin_group in groups
        if store.get_user(username).is_admin != should_be_admin:
            store.update_user(username, is_admin=should_be_admin)

    return Authorization("basic", {"username": username, "password": ""})


def identity_from_headers(headers: Mapping[str, str], settings: Mapping[str, str]) -> tuple[str, set[str]] | Response:
    """The user and groups from the identity headers, believed as they come."""
    user_header = settings.get("MLFLOW_OIDC_USER_HEADER") or DEFAULT_USER_HEADER
    username = clean_username(headers.get(user_header))
    if username is None:
        return unauthenticated(f"missing or invalid {user_header} header: sign in through the proxy")
    groups_header = settings.get("MLFLOW_OIDC_GROUPS_HEADER") or DEFAULT_GROUPS_HEADER
    groups = {group.strip() for group in (headers.get(groups_header) or "").split(",")}
    return username, groups


def identity_from_assertion(
    headers: Mapping[str, str], settings: Mapping[str, str], keys: KeySource
) -> tuple[str, set[str]] | Response:
    """The user and groups from a verified identity assertion; identity headers are ignored."""
    import jwt  # PyJWT, needed only in this mode

    token = (headers.get(ASSERTION_HEADER) or "").strip()
    if not token:
        return unauthenticated("the request did not come through the proxy (no identity assertion)")
    issuer = settings.get("MLFLOW_OIDC_ASSERTION_ISSUER")
    if not issuer:
        return unauthenticated("MLFLOW_OIDC_ASSERTION_ISSUER is not set: no assertion can be trusted")
    try:
        key = keys.get_signing_key_from_jwt(token).key
        claims = jwt.decode(
            token,
            key,
            algorithms=ASSERTION_ALGORITHMS,
            audience=settings.get("MLFLOW_OIDC_ASSERTION_AUDIENCE") or DEFAULT_ASSERTION_AUDIENCE,
            issuer=issuer,
            leeway=ASSERTION_LEEWAY,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.PyJWTError as error:
        return unauthenticated(f"the request did not come through the proxy (identity assertion refused: {error})")
    user_claim = settings.get("MLFLOW_OIDC_USER_CLAIM") or DEFAULT_USER_CLAIM
    value = claims.get(user_claim)
    username = clean_username(value if isinstance(value, str) else claims.get("sub"))
    if username is None:
        return unauthenticated("the identity assertion names no usable user")
    groups = claims.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
        return unauthenticated("the identity assertion's groups are not a list of names")
    return username, set(groups)


_key_sources: dict[str, KeySource] = {}
_key_sources_lock = threading.Lock()


def proxy_keys(settings: Mapping[str, str]) -> KeySource:
    """One cached ``PyJWKClient`` per key set URL; it fetches again when it meets an unknown key."""
    import jwt

    url = settings["MLFLOW_OIDC_ASSERTION_JWKS_URL"]
    with _key_sources_lock:
        source = _key_sources.get(url)
        if source is None:
            source = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)
            _key_sources[url] = source
        return source


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
