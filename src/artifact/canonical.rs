//! The canonical form of an artifact, which its checksum and signature
//! cover: the JSON value, not the file's bytes, so that reformatting
//! (`jq -c`, CRLF line endings, another indentation, another key order)
//! changes nothing while any change of a value is detected.
//!
//! Canonical text: objects with their keys in byte order, no whitespace,
//! strings escaped as serde_json escapes them, integers as integers, other
//! numbers in their shortest round-trip form — except that a number with an
//! integral value below 2^53 is written as an integer (`17.0` and `17` are
//! one value, and tools such as jq print one as the other). A key that
//! appears twice in an object is refused: which value was meant is not
//! knowable.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use sha2::{Digest, Sha256};

/// A parsed JSON value, as the canonical form sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

/// Parses JSON text, refusing duplicate keys.
pub(crate) fn parse(text: &str) -> Result<Json, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Json::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value)
}

impl Json {
    /// The canonical text of this value.
    pub(crate) fn canonical(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => out.push_str(&i.to_string()),
            Json::Float(f) => {
                const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
                if f.fract() == 0.0 && f.abs() < EXACT {
                    // -0.0 is 0 here: JSON tools do not keep the sign of zero.
                    out.push_str(&(*f as i64).to_string());
                } else {
                    out.push_str(&serde_json::to_string(f).expect("finite JSON numbers"));
                }
            }
            Json::Str(s) => out.push_str(&serde_json::to_string(s).expect("strings serialize")),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).expect("strings serialize"));
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }

    pub(crate) fn as_object(&self) -> Option<&BTreeMap<String, Json>> {
        match self {
            Json::Object(fields) => Some(fields),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Int(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut fields = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            if fields.contains_key(&key) {
                return Err(A::Error::custom(format!("key '{key}' appears twice")));
            }
            let value = map.next_value()?;
            fields.insert(key, value);
        }
        Ok(Json::Object(fields))
    }
}

/// `sha256:` and the hex SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// The first 16 hex digits of the SHA-256 of `bytes`: enough to tell which
/// part of a document changed, not to secure it (the checksum does that).
pub(crate) fn short_digest(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes)[..8])
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_does_not_change_the_canonical_form() {
        let pretty =
            "{\n  \"b\": [1, 17.0, 0.1, -2.5e-300],\n  \"a\": {\"y\": null, \"x\": \"é\\n\"}\n}\n";
        let compact = r#"{"a":{"x":"é\n","y":null},"b":[1,17,0.1,-2.5e-300]}"#;
        let crlf = pretty.replace('\n', "\r\n");
        let canonical = parse(pretty).unwrap().canonical();
        assert_eq!(
            canonical,
            r#"{"a":{"x":"é\n","y":null},"b":[1,17,0.1,-2.5e-300]}"#
        );
        assert_eq!(parse(compact).unwrap().canonical(), canonical);
        assert_eq!(parse(&crlf).unwrap().canonical(), canonical);
        // jq 1.6 prints 0.1 as 0.10000000000000001: the same double.
        let jq16 = r#"{"a":{"x":"é\n","y":null},"b":[1,17,0.10000000000000001,-2.5e-300]}"#;
        assert_eq!(parse(jq16).unwrap().canonical(), canonical);
        // Values that differ stay different.
        let changed = r#"{"a":{"x":"é\n","y":null},"b":[1,17,0.2,-2.5e-300]}"#;
        assert_ne!(parse(changed).unwrap().canonical(), canonical);
        // Integers beyond 2^53 are kept exactly.
        assert_eq!(
            parse("[18446744073709551615, -9223372036854775808]")
                .unwrap()
                .canonical(),
            "[18446744073709551615,-9223372036854775808]"
        );
    }

    #[test]
    fn duplicate_keys_and_trailing_text_are_refused() {
        assert_eq!(
            parse(r#"{"a": 1, "b": {"c": 1, "c": 2}}"#).unwrap_err(),
            "key 'c' appears twice at line 1 column 26"
        );
        assert!(parse(r#"{"a": 1} {}"#).is_err());
        assert!(parse(r#"{"a": 1"#).is_err());
    }

    #[test]
    fn digests() {
        assert_eq!(
            sha256(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(short_digest(b"abc"), "ba7816bf8f01cfea");
    }
}
