//! The layers and the minimal configuration the settings' tests start from.

use super::{ProxySettings, SettingError};
use crate::proxy::sources::{Layer, Layers, Source, Sourced};

pub(super) const SECRET: &str = "0123456789abcdef0123456789abcdef0123";

pub(super) fn flags(pairs: &[(&'static str, &str)]) -> Layers {
    let mut layer = Layer::default();
    let mut grouped: std::collections::BTreeMap<&'static str, Vec<Sourced>> = Default::default();
    for (name, value) in pairs {
        grouped.entry(name).or_default().push(Sourced {
            value: (*value).to_owned(),
            source: Source::Flag { name },
        });
    }
    for (name, values) in grouped {
        layer.set(name, values);
    }
    Layers {
        flags: layer,
        ..Layers::default()
    }
}

pub(super) fn minimal() -> Vec<(&'static str, &'static str)> {
    vec![
        ("oidc-issuer-url", "https://op.example.com"),
        ("client-id", "mlflow"),
        ("client-secret", "s3cret"),
        ("redirect-url", "https://mlflow.example.com/oauth2/callback"),
        ("cookie-secret", SECRET),
        ("email-domain", "*"),
        ("upstream", "http://127.0.0.1:5000/"),
    ]
}

pub(super) fn errors(pairs: &[(&'static str, &str)]) -> Vec<SettingError> {
    ProxySettings::resolve(&flags(pairs)).unwrap_err()
}
