"""Unit tests of oidc_header_auth with a fake user store and Flask's test request context.

Run: .venv-e2e/bin/python -m unittest discover -s examples/mlflow -p 'test_*.py'
"""

import os
import sys
import time
import unittest
from types import ModuleType, SimpleNamespace
from unittest import mock

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from flask import Flask
from werkzeug.datastructures import Authorization

import oidc_header_auth


class FakeStore:
    def __init__(self):
        self.users = {}
        self.created = []

    def has_user(self, username):
        return username in self.users

    def create_user(self, username, password, is_admin=False):
        self.created.append((username, password))
        self.users[username] = SimpleNamespace(username=username, is_admin=is_admin)
        return self.users[username]

    def get_user(self, username):
        return self.users[username]

    def update_user(self, username, password=None, is_admin=None):
        if is_admin is not None:
            self.users[username].is_admin = is_admin
        return self.users[username]


class RacingStore(FakeStore):
    """Says the user is missing once, then fails creation because another worker made it."""

    def __init__(self):
        super().__init__()
        self.checks = 0

    def has_user(self, username):
        self.checks += 1
        return self.checks > 1

    def create_user(self, username, password, is_admin=False):
        self.users[username] = SimpleNamespace(username=username, is_admin=False)
        raise RuntimeError("already exists")


class AuthenticateTest(unittest.TestCase):
    def test_known_header_gives_authorization_and_provisions_user(self):
        store = FakeStore()
        result = oidc_header_auth.authenticate({"X-Forwarded-Email": "alice@example.com"}, store, {})
        self.assertIsInstance(result, Authorization)
        self.assertEqual(result.username, "alice@example.com")
        self.assertEqual([name for name, _ in store.created], ["alice@example.com"])
        self.assertGreaterEqual(len(store.created[0][1]), 32)

    def test_existing_user_is_not_created_again(self):
        store = FakeStore()
        store.create_user("bob@example.com", "x")
        oidc_header_auth.authenticate({"X-Forwarded-Email": "bob@example.com"}, store, {})
        self.assertEqual(len(store.created), 1)

    def test_missing_header_is_401_without_basic_challenge(self):
        result = oidc_header_auth.authenticate({}, FakeStore(), {})
        self.assertEqual(result.status_code, 401)
        self.assertNotIn("WWW-Authenticate", result.headers)
        self.assertIn(b"X-Forwarded-Email", result.get_data())

    def test_caddy_placeholder_and_control_characters_are_refused(self):
        for value in ["{http.reverse_proxy.header.X-Auth-Request-Email}", "", "   ", "a\x00b", "x" * 321]:
            with self.subTest(value=value):
                result = oidc_header_auth.authenticate({"X-Forwarded-Email": value}, FakeStore(), {})
                self.assertEqual(result.status_code, 401)

    def test_configured_header_name_is_used(self):
        settings = {"MLFLOW_OIDC_USER_HEADER": "X-Auth-Request-Email"}
        headers = {"X-Forwarded-Email": "mallory@evil.example", "X-Auth-Request-Email": "carol@other.example.org"}
        result = oidc_header_auth.authenticate(headers, FakeStore(), settings)
        self.assertEqual(result.username, "carol@other.example.org")

    def test_admin_flag_follows_the_admin_group(self):
        store = FakeStore()
        settings = {"MLFLOW_OIDC_ADMIN_GROUP": "admins"}
        oidc_header_auth.authenticate({"X-Forwarded-Email": "alice@example.com", "X-Forwarded-Groups": "mlflow-users,admins"}, store, settings)
        self.assertTrue(store.users["alice@example.com"].is_admin)
        oidc_header_auth.authenticate({"X-Forwarded-Email": "alice@example.com", "X-Forwarded-Groups": "mlflow-users"}, store, settings)
        self.assertFalse(store.users["alice@example.com"].is_admin)

    def test_admin_flag_untouched_without_admin_group_setting(self):
        store = FakeStore()
        store.create_user("root@example.com", "x", is_admin=True)
        oidc_header_auth.authenticate({"X-Forwarded-Email": "root@example.com", "X-Forwarded-Groups": ""}, store, {})
        self.assertTrue(store.users["root@example.com"].is_admin)

    def test_creation_race_with_another_worker_is_tolerated(self):
        store = RacingStore()
        result = oidc_header_auth.authenticate({"X-Forwarded-Email": "dave@example.com"}, store, {})
        self.assertEqual(result.username, "dave@example.com")

    def test_flask_entry_point_reads_the_request_headers_and_mlflow_store(self):
        app = Flask(__name__)
        store = FakeStore()
        fake_auth = ModuleType("mlflow.server.auth")
        fake_auth.store = store
        modules = {"mlflow": ModuleType("mlflow"), "mlflow.server": ModuleType("mlflow.server"), "mlflow.server.auth": fake_auth}
        headers = {"X-Forwarded-Email": "erin@example.com"}
        with mock.patch.dict(sys.modules, modules), mock.patch.dict(os.environ, {}, clear=False):
            os.environ.pop("MLFLOW_OIDC_USER_HEADER", None)
            with app.test_request_context("/api/2.0/mlflow/experiments/search", headers=headers):
                result = oidc_header_auth.authenticate_request_from_proxy_headers()
        self.assertIsInstance(result, Authorization)
        self.assertEqual(result.username, "erin@example.com")
        self.assertIn("erin@example.com", store.users)

class ProxyKeys:
    """Stands in for PyJWKClient: the proxy's one published key."""

    def __init__(self):
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.kid = "proxy-key"

    def get_signing_key_from_jwt(self, token):
        if jwt.get_unverified_header(token).get("kid") != self.kid:
            raise jwt.PyJWKClientError("Unable to find a signing key that matches")
        return SimpleNamespace(key=self.private.public_key())

    def sign(self, claims, private=None, algorithm="ES256", kid=None):
        return jwt.encode(claims, private or self.private, algorithm=algorithm, headers={"kid": kid or self.kid})


ASSERTION_SETTINGS = {
    "MLFLOW_OIDC_ASSERTION_JWKS_URL": "http://127.0.0.1:4180/oauth2/jwks",
    "MLFLOW_OIDC_ASSERTION_ISSUER": "https://apps.example.com",
    "MLFLOW_OIDC_ASSERTION_AUDIENCE": "mlflow",
    "MLFLOW_OIDC_ADMIN_GROUP": "admins",
}


def assertion_claims(**overrides):
    now = int(time.time())
    claims = {
        "iss": "https://apps.example.com",
        "aud": "mlflow",
        "sub": "u-alice",
        "email": "alice@example.com",
        "groups": ["mlflow-users", "admins"],
        "iat": now,
        "nbf": now,
        "exp": now + 60,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


class AssertionTest(unittest.TestCase):
    def setUp(self):
        self.keys = ProxyKeys()

    def authenticate(self, headers, store=None):
        return oidc_header_auth.authenticate(headers, store or FakeStore(), ASSERTION_SETTINGS, keys=self.keys)

    def test_a_verified_assertion_names_the_user_and_groups(self):
        store = FakeStore()
        result = self.authenticate({"X-Identity-Assertion": self.keys.sign(assertion_claims())}, store)
        self.assertIsInstance(result, Authorization)
        self.assertEqual(result.username, "alice@example.com")
        self.assertTrue(store.users["alice@example.com"].is_admin)

    def test_identity_headers_alone_are_not_believed(self):
        store = FakeStore()
        headers = {"X-Forwarded-Email": "alice@example.com", "X-Auth-Request-Email": "alice@example.com", "X-Forwarded-Groups": "admins"}
        result = self.authenticate(headers, store)
        self.assertEqual(result.status_code, 401)
        self.assertIn(b"did not come through the proxy", result.get_data())
        self.assertEqual(store.created, [], "nobody provisioned by a refused request")

    def test_the_assertion_wins_over_headers_that_claim_someone_else(self):
        headers = {"X-Identity-Assertion": self.keys.sign(assertion_claims()), "X-Forwarded-Email": "root@example.com"}
        self.assertEqual(self.authenticate(headers).username, "alice@example.com")

    def test_forged_expired_and_misdirected_assertions_are_refused(self):
        other_key = ec.generate_private_key(ec.SECP256R1())
        hmac_secret = "a-shared-secret-long-enough-for-hs256-32b"
        cases = {
            "signed with another key": self.keys.sign(assertion_claims(), private=other_key),
            "unknown kid": self.keys.sign(assertion_claims(), kid="elsewhere"),
            "HS256 (alg confusion)": jwt.encode(assertion_claims(), hmac_secret, algorithm="HS256", headers={"kid": "proxy-key"}),
            "expired": self.keys.sign(assertion_claims(iat=int(time.time()) - 600, nbf=int(time.time()) - 600, exp=int(time.time()) - 300)),
            "for another upstream": self.keys.sign(assertion_claims(aud="airflow")),
            "from another issuer": self.keys.sign(assertion_claims(iss="https://evil.example")),
            "without exp": self.keys.sign(assertion_claims(exp=None)),
            "not a JWT": "forged",
        }
        for name, token in cases.items():
            with self.subTest(name):
                result = self.authenticate({"X-Identity-Assertion": token, "X-Forwarded-Email": "alice@example.com"})
                self.assertEqual(result.status_code, 401, name)
                self.assertNotIn("WWW-Authenticate", result.headers)

    def test_a_machine_identity_without_email_is_its_subject(self):
        token = self.keys.sign(assertion_claims(sub="ci-pipeline", email=None, groups=None))
        result = self.authenticate({"X-Identity-Assertion": token})
        self.assertEqual(result.username, "ci-pipeline")

    def test_groups_that_are_not_a_list_of_names_are_refused(self):
        token = self.keys.sign(assertion_claims(groups="admins"))
        self.assertEqual(self.authenticate({"X-Identity-Assertion": token}).status_code, 401)

    def test_without_an_expected_issuer_nothing_is_trusted(self):
        settings = dict(ASSERTION_SETTINGS)
        del settings["MLFLOW_OIDC_ASSERTION_ISSUER"]
        token = self.keys.sign(assertion_claims())
        result = oidc_header_auth.authenticate({"X-Identity-Assertion": token}, FakeStore(), settings, keys=self.keys)
        self.assertEqual(result.status_code, 401)


if __name__ == "__main__":
    unittest.main()
