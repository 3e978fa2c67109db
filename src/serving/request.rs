//! Reading a request object: only the fields the evaluator reads are kept.
//!
//! A request line may carry fields the transform does not read, some of
//! them large; they are skipped as they are parsed (serde's `IgnoredAny`),
//! never materialized. A key that appears twice is refused, as the artifact
//! reader refuses it: which of the two values was meant is not knowable.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, Visitor};

use super::Evaluator;

/// What a line holds: a request, or (`{"event": {…}}`) an event to push.
pub(super) enum Parsed {
    Request(Vec<Option<serde_json::Value>>),
    Event(Vec<Option<serde_json::Value>>),
}

/// The fields of a line by input slot (`None`: absent), keeping the inputs
/// of `mask`. With `events`, `{"event": {…}}` is an event (unless the
/// transform has an input named `event`).
pub(super) struct Fields<'e> {
    pub evaluator: &'e Evaluator,
    pub mask: &'e [bool],
    pub events: bool,
}

impl<'de> DeserializeSeed<'de> for Fields<'_> {
    type Value = Parsed;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Fields<'_> {
    type Value = Parsed;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of input columns")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let e = self.evaluator;
        let mut fields: Vec<Option<serde_json::Value>> = vec![None; e.inputs.len()];
        let mut others: HashSet<Cow<'de, str>> = HashSet::new();
        let mut first = true;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if first && self.events && key == "event" && e.input_index("event").is_none() {
                let event = map.next_value_seed(Fields {
                    evaluator: e,
                    mask: &e.event_required,
                    events: false,
                })?;
                if map.next_key::<Key<'de>>()?.is_some() {
                    return Err(A::Error::custom(
                        "an event line is {\"event\": {…}} and nothing else",
                    ));
                }
                let (Parsed::Request(fields) | Parsed::Event(fields)) = event;
                return Ok(Parsed::Event(fields));
            }
            first = false;
            match e.input_index(&key).filter(|&i| self.mask[i]) {
                Some(i) => {
                    if fields[i].is_some() {
                        return Err(A::Error::custom(format!("field '{key}' appears twice")));
                    }
                    fields[i] = Some(map.next_value()?);
                }
                None => {
                    if others.contains(&key) {
                        return Err(A::Error::custom(format!("field '{key}' appears twice")));
                    }
                    map.next_value::<IgnoredAny>()?;
                    others.insert(key);
                }
            }
        }
        Ok(Parsed::Request(fields))
    }
}

/// An object key, borrowed from the request text when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}
