"""Unit tests of oidc_header_auth with a fake user store and Flask's test request context.

Run: .venv-e2e/bin/python -m unittest discover -s examples/mlflow -p 'test_*.py'
"""

import os
import sys
import unittest
from types import ModuleType, SimpleNamespace
from unittest import mock

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
    def test_with_a_proxy_secret_only_requests_carrying_it_are_believed(self):
        store = FakeStore()
        settings = {"MLFLOW_OIDC_PROXY_SECRET": "s3cret-from-caddy"}
        forged = oidc_header_auth.authenticate({"X-Forwarded-Email": "alice@example.com"}, store, settings)
        self.assertEqual(forged.status_code, 401)
        self.assertIn(b"did not come through the proxy", forged.get_data())
        wrong = oidc_header_auth.authenticate({"X-Forwarded-Email": "alice@example.com", "X-Proxy-Secret": "guess"}, store, settings)
        self.assertEqual(wrong.status_code, 401)
        self.assertEqual(store.created, [], "nobody provisioned by a refused request")
        passed = oidc_header_auth.authenticate({"X-Forwarded-Email": "alice@example.com", "X-Proxy-Secret": "s3cret-from-caddy"}, store, settings)
        self.assertIsInstance(passed, Authorization)
        self.assertEqual(passed.username, "alice@example.com")

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

if __name__ == "__main__":
    unittest.main()
