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

/// TF Serving's row form, `{"instances": [row, …]}`, read row by row with
/// [`Fields`] (each row's needed fields kept, the others skipped), as
/// `eval` reads a line.
pub(super) enum Instances {
    /// Each row's fields by input slot.
    Rows(Vec<Vec<Option<serde_json::Value>>>),
    /// The body holds no `instances` (or also `inputs`): another form.
    Other,
    /// Row `index` is not a row (its message), or there are `count` rows,
    /// more than the limit.
    BadRow {
        index: usize,
        message: String,
    },
    TooMany {
        count: usize,
    },
}

pub(super) struct InstancesSeed<'e> {
    evaluator: &'e Evaluator,
    mask: &'e [bool],
    max_rows: usize,
    /// Why reading stopped, when a row did (serde's error carries text only).
    stop: std::cell::RefCell<Option<Stop>>,
}

/// Why reading the rows stopped, carried through serde's error.
enum Stop {
    BadRow(usize, String),
    TooMany(usize),
}

impl<'e> InstancesSeed<'e> {
    pub fn new(evaluator: &'e Evaluator, mask: &'e [bool], max_rows: usize) -> Self {
        Self {
            evaluator,
            mask,
            max_rows,
            stop: std::cell::RefCell::new(None),
        }
    }

    /// Reads `body`; `None` when it is not a JSON object of that shape
    /// (the caller's general path then says what is wrong).
    pub fn read(&self, body: &[u8]) -> Option<Instances> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let read = TopLevel { seed: self }
            .deserialize(&mut de)
            .and_then(|r| de.end().map(|()| r));
        // Text that is not JSON is the body's fault, not a row's.
        let syntax = read.as_ref().is_err_and(|e| {
            matches!(
                e.classify(),
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof
            )
        });
        match (read, self.stop.take()) {
            _ if syntax => None,
            (_, Some(Stop::BadRow(index, message))) => Some(Instances::BadRow { index, message }),
            (_, Some(Stop::TooMany(count))) => Some(Instances::TooMany { count }),
            (Ok(r), None) => Some(r),
            (Err(_), None) => None,
        }
    }
}

struct TopLevel<'s, 'e> {
    seed: &'s InstancesSeed<'e>,
}

impl<'de> DeserializeSeed<'de> for TopLevel<'_, '_> {
    type Value = Instances;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopLevel<'_, '_> {
    type Value = Instances;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut rows = None;
        let mut other = false;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "instances" if rows.is_none() => {
                    rows = Some(map.next_value_seed(RowsSeed { seed: self.seed })?)
                }
                "instances" => return Err(A::Error::custom("\"instances\" appears twice")),
                "inputs" => {
                    other = true;
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(match (rows, other) {
            (Some(rows), false) => Instances::Rows(rows),
            _ => Instances::Other,
        })
    }
}

struct RowsSeed<'s, 'e> {
    seed: &'s InstancesSeed<'e>,
}

impl<'de> DeserializeSeed<'de> for RowsSeed<'_, '_> {
    type Value = Vec<Vec<Option<serde_json::Value>>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_, '_> {
    type Value = Vec<Vec<Option<serde_json::Value>>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of rows")
    }

    fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let mut rows = Vec::new();
        loop {
            let index = rows.len();
            if index == self.seed.max_rows {
                // Over the limit: counted to the end, for the message.
                let mut count = index;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    count += 1;
                }
                if count > index {
                    *self.seed.stop.borrow_mut() = Some(Stop::TooMany(count));
                    return Err(S::Error::custom("too many rows"));
                }
                return Ok(rows);
            }
            let fields = Fields {
                evaluator: self.seed.evaluator,
                mask: self.seed.mask,
                events: false,
            };
            match seq.next_element_seed(fields) {
                Ok(Some(Parsed::Request(row))) => rows.push(row),
                Ok(Some(Parsed::Event { .. })) => unreachable!("events are not parsed here"),
                Ok(None) => return Ok(rows),
                Err(e) => {
                    let text = e.to_string();
                    let message = if text.contains("expected a JSON object of input columns") {
                        "expected a JSON object of input columns".to_string()
                    } else {
                        text.replace(" at line 1 column ", " at column ")
                    };
                    *self.seed.stop.borrow_mut() = Some(Stop::BadRow(index, message));
                    return Err(e);
                }
            }
        }
    }
}
