//! The signed identity assertion sent upstream with every allowed request: on when an audience
//! is named, its issuer (by default the callback's origin), key file and lifetime.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::reader::Resolver;

/// The signed identity assertion sent with every allowed request (`--identity-assertion-*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IdentityAssertionSettings {
    pub(crate) audience: String,
    pub(crate) issuer: String,
    /// `None`: a key generated at start.
    pub(crate) key_file: Option<PathBuf>,
    pub(crate) lifetime: Duration,
}

impl Resolver<'_> {
    /// On when an audience is named; the issuer defaults to the callback's origin.
    pub(super) fn identity_assertion(
        &mut self,
        redirect_url: Option<&Url>,
    ) -> Option<IdentityAssertionSettings> {
        let lifetime = self.duration(
            "identity-assertion-lifetime",
            oidc_core::identity_assertion::DEFAULT_ASSERTION_LIFETIME,
        );
        let key_file = self
            .text("identity-assertion-key-file")
            .map(|s| PathBuf::from(s.value.trim()));
        let explicit_issuer = self.text("identity-assertion-issuer").cloned();
        let Some(audience) = self.text("identity-assertion-audience").cloned() else {
            for option in [
                "identity-assertion-issuer",
                "identity-assertion-key-file",
                "identity-assertion-lifetime",
            ] {
                if let Some(set) = self.text(option).cloned() {
                    self.fail(
                        option,
                        &set.source,
                        "needs_identity_assertion_audience",
                        "identity assertions are on only with --identity-assertion-audience (the upstream's name)".to_owned(),
                    );
                }
            }
            return None;
        };
        if lifetime < oidc_core::identity_assertion::MIN_ASSERTION_LIFETIME
            && let Some(set) = self.text("identity-assertion-lifetime").cloned()
        {
            self.fail(
                "identity-assertion-lifetime",
                &set.source,
                "invalid_duration",
                "an identity assertion lives at least 10s".to_owned(),
            );
        }
        let issuer = match (explicit_issuer, redirect_url) {
            (Some(issuer), _) => issuer.value.trim().to_owned(),
            (None, Some(url)) => url.origin().ascii_serialization(),
            (None, None) => return None,
        };
        Some(IdentityAssertionSettings {
            audience: audience.value.trim().to_owned(),
            issuer,
            key_file,
            lifetime,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::settings::ProxySettings;
    use crate::proxy::settings::testing::{errors, flags, minimal};

    #[test]
    fn identity_assertions_are_on_with_an_audience_and_default_to_the_callback_origin() {
        let s = ProxySettings::resolve(&flags(&minimal())).unwrap();
        assert_eq!(s.identity_assertion, None);

        let mut pairs = minimal();
        pairs.push(("identity-assertion-audience", "mlflow"));
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        assert_eq!(
            s.identity_assertion,
            Some(IdentityAssertionSettings {
                audience: "mlflow".into(),
                issuer: "https://mlflow.example.com".into(),
                key_file: None,
                lifetime: Duration::from_secs(60),
            })
        );

        pairs.push((
            "identity-assertion-issuer",
            "https://apps.example.com/oauth2",
        ));
        pairs.push(("identity-assertion-key-file", "/etc/oidc/assertion.pem"));
        pairs.push(("identity-assertion-lifetime", "2m"));
        let settings = ProxySettings::resolve(&flags(&pairs)).unwrap();
        assert!(settings.summary().contains(
            &"identity assertions for mlflow from https://apps.example.com/oauth2, valid 120s, keys at /oauth2/jwks (signing key /etc/oidc/assertion.pem)".to_owned()
        ));
        let assertion = settings.identity_assertion.unwrap();
        assert_eq!(assertion.issuer, "https://apps.example.com/oauth2");
        assert_eq!(
            assertion.key_file,
            Some(PathBuf::from("/etc/oidc/assertion.pem"))
        );
        assert_eq!(assertion.lifetime, Duration::from_secs(120));
    }

    #[test]
    fn identity_assertion_settings_without_an_audience_or_too_short_are_errors() {
        let mut pairs = minimal();
        pairs.push(("identity-assertion-key-file", "/etc/oidc/assertion.pem"));
        assert!(
            errors(&pairs)
                .iter()
                .any(|e| e.option == "identity-assertion-key-file"
                    && e.code == "needs_identity_assertion_audience")
        );

        let mut pairs = minimal();
        pairs.push(("identity-assertion-audience", "mlflow"));
        pairs.push(("identity-assertion-lifetime", "1s"));
        assert!(
            errors(&pairs)
                .iter()
                .any(|e| e.option == "identity-assertion-lifetime" && e.code == "invalid_duration")
        );
    }
}
