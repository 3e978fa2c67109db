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
    /// `{"event": {…}[, "table": "…"]}`: the event's fields, and its table
    /// when given (the request table when not).
    Event {
        table: Option<String>,
        fields: serde_json::Map<String, serde_json::Value>,
    },
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
            if first
                && self.events
                && (key == "event" || key == "table")
                && e.input_index(&key).is_none()
            {
                return event(key, &mut map);
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

/// The rest of an event line, whose first key was `first`: `event` (the
/// event's columns) and, optionally, `table`, in either order.
fn event<'de, A: MapAccess<'de>>(first: Cow<'de, str>, map: &mut A) -> Result<Parsed, A::Error> {
    let mut table: Option<String> = None;
    let mut fields: Option<serde_json::Map<String, serde_json::Value>> = None;
    let mut key = Some(first);
    while let Some(k) = key {
        match k.as_ref() {
            "event" if fields.is_none() => fields = Some(map.next_value()?),
            "table" if table.is_none() => table = Some(map.next_value()?),
            other => {
                return Err(A::Error::custom(format!(
                    "an event line is {{\"event\": {{…}}}}, with \"table\": \"…\" for an event \
                     of another table than the requests', and nothing else (got '{other}')"
                )));
            }
        }
        key = map.next_key::<Key<'de>>()?.map(|Key(k)| k);
    }
    match fields {
        Some(fields) => Ok(Parsed::Event { table, fields }),
        None => Err(A::Error::custom("an event line needs \"event\": {…}")),
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
