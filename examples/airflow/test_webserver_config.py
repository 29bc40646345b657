"""Checks webserver_config.py without Airflow installed: the FAB/Airflow modules it imports are
stubbed, the claim mapping is real.

Run: python3 -m unittest discover -s examples/airflow -p 'test_*.py'
"""

import importlib
import os
import sys
import unittest
from types import ModuleType
from unittest import mock


class FakeBaseSecurityManager:
    def get_oauth_user_info(self, provider, resp):
        return {"from": "base", "provider": provider}

    def auth_user_oauth(self, userinfo, rotate_session_id=True):
        return {"signed_in": userinfo["username"]}


def stub_modules():
    override = ModuleType("airflow.providers.fab.auth_manager.security_manager.override")
    override.FabAirflowSecurityManagerOverride = FakeBaseSecurityManager
    manager = ModuleType("flask_appbuilder.security.manager")
    manager.AUTH_OAUTH = 4
    modules = {name: ModuleType(name) for name in [
        "airflow", "airflow.providers", "airflow.providers.fab", "airflow.providers.fab.auth_manager",
        "airflow.providers.fab.auth_manager.security_manager", "flask_appbuilder", "flask_appbuilder.security",
    ]}
    modules[override.__name__] = override
    modules[manager.__name__] = manager
    return modules


def load_config(env):
    with mock.patch.dict(sys.modules, stub_modules()), mock.patch.dict(os.environ, env):
        sys.modules.pop("webserver_config", None)
        return importlib.import_module("webserver_config")


class WebserverConfigTest(unittest.TestCase):
    def test_provider_uses_discovery_pkce_and_groups_scope(self):
        config = load_config({"AIRFLOW_OIDC_ISSUER": "http://127.0.0.1:9000/", "AIRFLOW_OIDC_CLIENT_ID": "airflow"})
        self.assertEqual(config.AUTH_TYPE, 4)
        [provider] = config.OAUTH_PROVIDERS
        remote = provider["remote_app"]
        self.assertEqual(remote["server_metadata_url"], "http://127.0.0.1:9000/.well-known/openid-configuration")
        self.assertEqual(remote["client_kwargs"]["code_challenge_method"], "S256")
        self.assertIn("groups", remote["client_kwargs"]["scope"].split())
        self.assertIs(config.SECURITY_MANAGER_CLASS, config.OidcSecurityManager)

    def test_claims_map_to_fab_user_info_with_role_keys(self):
        config = load_config({})
        info = config.user_info_from_claims({
            "sub": "alice", "email": "alice@example.com", "name": "Alice Admin",
            "preferred_username": "alice", "groups": ["mlflow-users", "admins"],
        })
        self.assertEqual(info, {
            "username": "alice", "email": "alice@example.com", "first_name": "Alice",
            "last_name": "Admin", "role_keys": ["mlflow-users", "admins"],
        })
        self.assertEqual(config.AUTH_ROLES_MAPPING, {"admins": ["Admin"], "mlflow-users": ["Viewer"]})

    def test_missing_claims_fall_back_to_email_then_sub(self):
        config = load_config({})
        self.assertEqual(config.user_info_from_claims({"sub": "s1"})["username"], "s1")
        self.assertEqual(config.user_info_from_claims({"sub": "s1", "email": "e@x.org", "groups": "a, b"})["role_keys"], ["a", "b"])

    def test_security_manager_reads_validated_userinfo_and_defers_other_providers(self):
        config = load_config({})
        manager = config.OidcSecurityManager()
        info = manager.get_oauth_user_info("oidc", {"userinfo": {"sub": "bob", "email": "bob@example.com", "groups": []}})
        self.assertEqual(info["email"], "bob@example.com")
        self.assertEqual(manager.get_oauth_user_info("github", {}), {"from": "base", "provider": "github"})

    def test_groups_map_to_roles_without_repeats_and_unknown_groups_to_none(self):
        config = load_config({})
        self.assertEqual(config.mapped_roles(["admins", "mlflow-users", "admins"]), ["Admin", "Viewer"])
        self.assertEqual(config.mapped_roles(["other"]), [])
        self.assertEqual(config.mapped_roles(None), [])

    def test_users_with_a_role_go_on_to_fab(self):
        config = load_config({})
        manager = config.OidcSecurityManager()
        self.assertEqual(manager.auth_user_oauth({"username": "bob", "role_keys": ["mlflow-users"]}), {"signed_in": "bob"})

    def test_refusal_page_escapes_the_name_and_links_to_sign_out(self):
        config = load_config({"AIRFLOW_OIDC_SIGN_OUT_URL": "/oauth2/sign_out?rd=/airflow/"})
        page = config.refusal_page("<carol>")
        self.assertIn("&lt;carol&gt;", page)
        self.assertNotIn("<carol>", page)
        self.assertIn('href="/oauth2/sign_out?rd=/airflow/"', page)


if __name__ == "__main__":
    unittest.main()
