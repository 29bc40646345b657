//! JSON that refuses duplicate object members at every depth.
//!
//! `serde_json` keeps the last of two members with the same name without a word; for a signed
//! header or claim set that means two readers of the same bytes can disagree about what they
//! say. [`StrictValue`] builds an ordinary `serde_json::Value` but fails on the first repeated
//! name. Depth stays bounded by `serde_json`'s own recursion limit (128 levels), which turns a
//! deeply nested document into an error instead of a stack overflow.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON value parsed with duplicate object members refused.
pub(crate) struct StrictValue(pub(crate) Value);

/// The prefix of the error message a duplicate member produces; the name follows it.
pub(crate) const DUPLICATE_MEMBER: &str = "duplicate member ";

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON text cannot spell NaN or infinity, so `from_f64` only fails on input that
        // cannot come from the parser; keep the value as null rather than panic.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            let StrictValue(value) = map.next_value()?;
            insert_unique(&mut members, name, value)?;
        }
        Ok(Value::Object(members))
    }
}

/// An object member's name, borrowed from the input when it holds no escapes.
pub(crate) struct MemberName<'de>(pub(crate) std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for MemberName<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(NameVisitor).map(MemberName)
    }
}

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = std::borrow::Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v))
    }
}

/// Inserts a member, failing when the name is already there.
pub(crate) fn insert_unique<E: de::Error>(
    members: &mut Map<String, Value>,
    name: String,
    value: Value,
) -> Result<(), E> {
    use serde_json::map::Entry;
    match members.entry(name) {
        Entry::Vacant(slot) => {
            slot.insert(value);
            Ok(())
        }
        Entry::Occupied(slot) => Err(E::custom(format_args!(
            "{DUPLICATE_MEMBER}{:?}",
            slot.key()
        ))),
    }
}

/// Parses a JSON document with duplicate members refused at every depth.
pub(crate) fn parse_strict(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<StrictValue>(bytes).map(|v| v.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_duplicates_at_any_depth() {
        let top = parse_strict(br#"{"a":1,"a":2}"#).unwrap_err();
        assert!(top.to_string().contains("duplicate member \"a\""), "{top}");
        let nested = parse_strict(br#"{"x":[{"b":true,"b":false}]}"#).unwrap_err();
        assert!(nested.to_string().contains("duplicate member \"b\""));
    }

    #[test]
    fn keeps_ordinary_documents_as_they_are() {
        let text = br#"{"a":[1,-2,3.5,"s",null,true,{"b":{}}]}"#;
        assert_eq!(
            parse_strict(text).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let depth = 100_000;
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let err = parse_strict(text.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
        // 127 levels are within serde_json's limit of 128.
        let ok = format!("{}{}", "[".repeat(127), "]".repeat(127));
        assert!(parse_strict(ok.as_bytes()).is_ok());
    }
}
