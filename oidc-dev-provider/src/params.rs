//! Request parameters from a query string or a form body, with the OAuth rule that no
//! parameter may appear twice (RFC 6749 §3.1).

use std::collections::HashMap;

/// Parameters of one request, each name at most once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Params(HashMap<String, String>);

/// Why parameters could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ParamsError {
    /// The text is not `application/x-www-form-urlencoded`.
    Malformed,
    /// A parameter appears twice.
    Repeated(String),
}

impl ParamsError {
    pub(crate) fn description(&self) -> String {
        match self {
            ParamsError::Malformed => "the parameters are not form-urlencoded".to_owned(),
            ParamsError::Repeated(name) => format!("parameter {name} appears more than once"),
        }
    }
}

impl Params {
    /// Parses `a=1&b=2` text (a query string or a form body).
    pub(crate) fn parse(text: &[u8]) -> Result<Self, ParamsError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(text).map_err(|_| ParamsError::Malformed)?;
        let mut map = HashMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            if map.contains_key(&name) {
                return Err(ParamsError::Repeated(name));
            }
            map.insert(name, value);
        }
        Ok(Params(map))
    }

    /// The value of `name`, with an empty value treated as absent (RFC 6749 §3.1).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// These parameters with `name` set to `value`.
    pub(crate) fn with(mut self, name: &str, value: &str) -> Params {
        self.0.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Both parameters, merged; `self` wins. Used for POSTed end_session forms with a query.
    pub(crate) fn merged(mut self, other: Params) -> Params {
        for (k, v) in other.0 {
            self.0.entry(k).or_insert(v);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_decoded_values_and_refuses_repeats() {
        let p = Params::parse(b"a=1&redirect_uri=http%3A%2F%2Fx%2Fcb&empty=").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("redirect_uri"), Some("http://x/cb"));
        assert_eq!(p.get("empty"), None);
        assert_eq!(p.get("missing"), None);
        assert_eq!(
            Params::parse(b"a=1&a=2"),
            Err(ParamsError::Repeated("a".into()))
        );
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Params::parse(&bytes);
        }

        #[test]
        fn round_trips(pairs in proptest::collection::hash_map("[a-z_]{1,8}", ".{0,12}", 0..6)) {
            let text = serde_urlencoded::to_string(pairs.iter().collect::<Vec<_>>()).unwrap();
            let parsed = Params::parse(text.as_bytes()).unwrap();
            for (k, v) in &pairs {
                prop_assert_eq!(parsed.get(k), Some(v.as_str()).filter(|v| !v.is_empty()));
            }
        }
    }
}
