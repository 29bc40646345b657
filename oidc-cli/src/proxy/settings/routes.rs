//! Which requests skip authentication or are answered as API calls, and which domains
//! redirects after sign-in may go to.

use oidc_tower::routes::RouteRules;

use super::reader::{Resolver, values};

/// The route rules and the redirect domains.
pub(super) struct Routes {
    pub(super) skip_auth_routes: Vec<String>,
    pub(super) api_routes: Vec<String>,
    pub(super) whitelist_domains: Vec<String>,
}

impl Resolver<'_> {
    /// `--skip-auth-route` (plus `OPTIONS=/` with `--skip-auth-preflight`), `--api-route` and
    /// `--whitelist-domain`.
    pub(super) fn routes(&mut self) -> Routes {
        let mut skip_auth_routes = self.route_rules("skip-auth-route", RouteRules::skip_auth);
        if self.bool("skip-auth-preflight", false) {
            skip_auth_routes.push("OPTIONS=/".to_owned());
        }
        Routes {
            skip_auth_routes,
            api_routes: self.route_rules("api-route", RouteRules::api),
            whitelist_domains: self.whitelist_domains(),
        }
    }

    fn route_rules<E: std::fmt::Display>(
        &mut self,
        option: &'static str,
        compile: fn(Vec<String>) -> Result<RouteRules, E>,
    ) -> Vec<String> {
        let rules = self.list(option);
        let texts = values(&rules);
        for (index, rule) in rules.iter().enumerate() {
            if let Err(e) = compile(vec![rule.value.trim().to_owned()]) {
                self.fail(
                    option,
                    &rule.source,
                    "invalid_route_rule",
                    format!("rule #{} {:?}: {e}", index + 1, rule.value),
                );
            }
        }
        if let (Err(e), Some(first)) = (compile(texts.clone()), rules.first())
            && !self.errors.iter().any(|err| err.option == option)
        {
            self.fail(option, &first.source, "invalid_route_rule", e.to_string());
        }
        texts
    }

    fn whitelist_domains(&mut self) -> Vec<String> {
        let domains = self.list("whitelist-domain");
        for s in &domains {
            if let Err(e) = oidc_core::RedirectPolicy::new([s.value.trim()]) {
                self.fail(
                    "whitelist-domain",
                    &s.source,
                    e.code(),
                    format!("{:?}: {e}", s.value),
                );
            }
        }
        values(&domains)
    }
}
