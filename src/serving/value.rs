//! Values of one row: what a request holds and what a feature is.

use std::borrow::Cow;
use std::fmt::Write as _;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

/// One value of a row: an input field or an output feature.
///
/// Integers of every width are [`Value::Int`] (signed) or [`Value::UInt`]
/// (unsigned); Float32 and Float64 are both [`Value::Float`] (a Float32 is
/// held exactly). The column's Arrow type, known to the evaluator, says which
/// width a value has. Strings borrow from the request when they can.
// An 8-byte tag keeps every payload 8-byte aligned: with the default
// layout `Bool`'s payload sits at offset 1 and copies of a value become
// misaligned, overlapping moves that stall store forwarding (measured: twice
// as slow on the census transform).
#[derive(Debug, Clone)]
#[repr(u64)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    List(Vec<Value<'a>>),
}

#[cold]
fn owned_list(items: Vec<Value<'_>>) -> Value<'static> {
    Value::List(items.into_iter().map(Value::into_owned).collect())
}

impl Value<'_> {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value with its strings copied, so it outlives the request.
    /// (Inlined: most features are numbers, which only change lifetime.)
    #[inline]
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::UInt(u) => Value::UInt(u),
            Value::Float(f) => Value::Float(f),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::List(l) => owned_list(l),
        }
    }

    /// Identity: same variant and, for floats, the same bits. (`==` on
    /// floats would call NaN unequal to itself and -0.0 equal to 0.0.)
    pub fn same(&self, other: &Value<'_>) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::UInt(a), Value::UInt(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::List(a), Value::List(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
            }
            _ => false,
        }
    }
}

/// SQL-like text for messages: NULL, 42, 1.5, 'text', [1, 2].
impl std::fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => write!(f, "NULL"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::UInt(u) => write!(f, "{u}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Str(s) => write!(f, "'{s}'"),
            Value::List(items) => {
                write!(f, "[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{v}")?;
                }
                write!(f, "]")
            }
        }
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Str(Cow::Borrowed(s))
    }
}

impl From<String> for Value<'static> {
    fn from(s: String) -> Self {
        Value::Str(Cow::Owned(s))
    }
}

impl From<i64> for Value<'static> {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<f64> for Value<'static> {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

impl From<bool> for Value<'static> {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl<'a, T: Into<Value<'a>>> From<Option<T>> for Value<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// A literal of the plan as a value, or None for a type serving does not
/// handle.
pub(crate) fn from_scalar(v: &ScalarValue) -> Option<Value<'static>> {
    if v.is_null() {
        return Some(Value::Null);
    }
    Some(match v {
        ScalarValue::Boolean(Some(b)) => Value::Bool(*b),
        ScalarValue::Int8(Some(i)) => Value::Int(i64::from(*i)),
        ScalarValue::Int16(Some(i)) => Value::Int(i64::from(*i)),
        ScalarValue::Int32(Some(i)) => Value::Int(i64::from(*i)),
        ScalarValue::Int64(Some(i)) => Value::Int(*i),
        ScalarValue::UInt8(Some(i)) => Value::UInt(u64::from(*i)),
        ScalarValue::UInt16(Some(i)) => Value::UInt(u64::from(*i)),
        ScalarValue::UInt32(Some(i)) => Value::UInt(u64::from(*i)),
        ScalarValue::UInt64(Some(i)) => Value::UInt(*i),
        ScalarValue::Float32(Some(f)) => Value::Float(f64::from(*f)),
        ScalarValue::Float64(Some(f)) => Value::Float(*f),
        // Times are integers in their column's unit.
        ScalarValue::TimestampSecond(Some(t), _)
        | ScalarValue::TimestampMillisecond(Some(t), _)
        | ScalarValue::TimestampMicrosecond(Some(t), _)
        | ScalarValue::TimestampNanosecond(Some(t), _)
        | ScalarValue::Date64(Some(t)) => Value::Int(*t),
        ScalarValue::Date32(Some(d)) => Value::Int(i64::from(*d)),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Value::Str(Cow::Owned(s.clone())),
        ScalarValue::List(a) => {
            let values = a.value(0);
            let mut out = Vec::with_capacity(values.len());
            for i in 0..values.len() {
                out.push(from_scalar(&ScalarValue::try_from_array(&values, i).ok()?)?);
            }
            Value::List(out)
        }
        _ => return None,
    })
}

/// A value as a DataFusion scalar of type `t` (for the built-in functions
/// serving calls through DataFusion's own implementation).
pub(crate) fn to_scalar(v: &Value<'_>, t: &DataType) -> datafusion::common::Result<ScalarValue> {
    let s = match v {
        Value::Null => return ScalarValue::try_from(t),
        Value::Int(i) if is_time(t) => return time_scalar(*i, t),
        Value::Bool(b) => ScalarValue::Boolean(Some(*b)),
        Value::Int(i) => ScalarValue::Int64(Some(*i)),
        Value::UInt(u) => ScalarValue::UInt64(Some(*u)),
        Value::Float(f) if *t == DataType::Float32 => ScalarValue::Float32(Some(*f as f32)),
        Value::Float(f) => ScalarValue::Float64(Some(*f)),
        Value::Str(s) => ScalarValue::Utf8(Some(s.to_string())),
        Value::List(items) => {
            let DataType::List(field) = t else {
                return datafusion::common::exec_err!("a list value for a column of type {t}");
            };
            let items = items
                .iter()
                .map(|v| to_scalar(v, field.data_type()))
                .collect::<datafusion::common::Result<Vec<_>>>()?;
            let list = ScalarValue::new_list(&items, field.data_type(), field.is_nullable());
            return Ok(ScalarValue::List(list));
        }
    };
    if s.data_type() == *t {
        Ok(s)
    } else {
        s.cast_to(t)
    }
}

/// Whether a type is a time that serving holds as an integer in its unit:
/// a timestamp of any unit or time zone, or a date.
pub(crate) fn is_time(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
    )
}

/// A time of type `t` from its integer in the type's unit.
fn time_scalar(i: i64, t: &DataType) -> datafusion::common::Result<ScalarValue> {
    use datafusion::arrow::datatypes::TimeUnit as U;
    Ok(match t {
        DataType::Timestamp(U::Second, tz) => ScalarValue::TimestampSecond(Some(i), tz.clone()),
        DataType::Timestamp(U::Millisecond, tz) => {
            ScalarValue::TimestampMillisecond(Some(i), tz.clone())
        }
        DataType::Timestamp(U::Microsecond, tz) => {
            ScalarValue::TimestampMicrosecond(Some(i), tz.clone())
        }
        DataType::Timestamp(U::Nanosecond, tz) => {
            ScalarValue::TimestampNanosecond(Some(i), tz.clone())
        }
        DataType::Date64 => ScalarValue::Date64(Some(i)),
        DataType::Date32 => match i32::try_from(i) {
            Ok(d) => ScalarValue::Date32(Some(d)),
            Err(_) => return datafusion::common::exec_err!("{i} days is not a Date32"),
        },
        other => return datafusion::common::exec_err!("{other} is not a time type"),
    })
}

/// A time as batch outputs write it (Arrow's JSON writer, which the
/// NDJSON and CSV outputs use): RFC 3339 text in the column's unit and
/// time zone, e.g. `2013-01-01T05:00:00` or `2013-01-01T05:00:00Z`.
pub(crate) fn time_text(i: i64, t: &DataType) -> String {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let formatted = time_scalar(i, t)
        .and_then(|s| s.to_array())
        .map_err(|e| e.to_string())
        .and_then(|a| {
            let options = FormatOptions::new().with_display_error(true);
            ArrayFormatter::try_new(a.as_ref(), &options)
                .map(|f| f.value(0).to_string())
                .map_err(|e| e.to_string())
        });
    formatted.unwrap_or_else(|e| format!("<{i} in {t}: {e}>"))
}

/// Appends `v` to `out` as JSON (times as strings, as batch writes them). Floats print in their shortest form that
/// reads back to the same value (a Float32 column in its shortest Float32
/// form); NaN and ±infinity, which JSON cannot hold, print as the strings
/// "NaN" ("-NaN" with the sign bit set), "Infinity" and "-Infinity".
pub fn write_json(out: &mut String, v: &Value<'_>, t: &DataType) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) if is_time(t) => write_json_string(out, &time_text(*i, t)),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::UInt(u) => {
            let _ = write!(out, "{u}");
        }
        Value::Float(f) => write_float(out, *f, *t == DataType::Float32),
        Value::Str(s) => write_json_string(out, s),
        Value::List(items) => {
            let item_type = match t {
                DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                    f.data_type().clone()
                }
                _ => DataType::Null,
            };
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item, &item_type);
            }
            out.push(']');
        }
    }
}

fn write_float(out: &mut String, f: f64, single: bool) {
    crate::json::push_float(out, f, single);
}

/// A JSON string literal.
pub fn write_json_string(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("strings serialize"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(v: Value<'_>, t: DataType) -> String {
        let mut s = String::new();
        write_json(&mut s, &v, &t);
        s
    }

    #[test]
    fn floats_round_trip() {
        for f in [0.1, -0.0, 1e300, 5e-324, 1.0 / 3.0, 123456789.125] {
            let text = json(Value::Float(f), DataType::Float64);
            let back: f64 = serde_json::from_str(&text).unwrap();
            assert_eq!(back.to_bits(), f.to_bits(), "{text}");
        }
        assert_eq!(json(Value::Float(f64::NAN), DataType::Float64), "\"NaN\"");
        assert_eq!(
            json(Value::Float(f64::NEG_INFINITY), DataType::Float64),
            "\"-Infinity\""
        );
        assert_eq!(json(Value::Float(-0.0), DataType::Float64), "-0.0");
        assert_eq!(
            json(Value::Float(f64::from(0.1f32)), DataType::Float32),
            "0.1"
        );
        assert_eq!(json(Value::from("a\"é\n"), DataType::Utf8), "\"a\\\"é\\n\"");
    }
}
