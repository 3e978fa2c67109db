//! One JSON convention for every output skewless writes: `eval`'s feature
//! lines, `apply --out x.ndjson`, `COPY … TO 'x.ndjson'` and `run --format
//! json|ndjson`.
//!
//! - Floats are written in their shortest form that reads back to the same
//!   value (serde_json's), a Float32 in its shortest Float32 form.
//! - NaN and ±infinity, which JSON numbers cannot hold, are the strings
//!   `"NaN"` (`"-NaN"` with the sign bit set), `"Infinity"` and
//!   `"-Infinity"`. skewless reads them back as floats: `eval` in float
//!   inputs, and NDJSON tables ([`format`]), whose schema inference takes a
//!   column of numbers and these strings as Float64.
//! - NULL is `null`, and a NULL field is written, not left out.

pub mod format;

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::FieldRef;
use arrow::datatypes::{DataType, Float16Type, Float32Type, Float64Type};
use arrow::error::ArrowError;
use arrow::json::writer::{Encoder, EncoderFactory, EncoderOptions, NullableEncoder};

/// Text that JSON is appended to.
pub trait JsonText {
    fn push(&mut self, s: &str);
}

impl JsonText for String {
    fn push(&mut self, s: &str) {
        self.push_str(s);
    }
}

impl JsonText for Vec<u8> {
    fn push(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
}

/// Appends a float in the convention: shortest round-trip text, or the
/// strings for NaN and infinities. `single` prints it as a Float32.
pub fn push_float<T: JsonText + ?Sized>(out: &mut T, f: f64, single: bool) {
    if f.is_nan() {
        // The sign of a NaN survives (e.g. -x of NaN): keep it visible.
        out.push(if f.is_sign_negative() {
            "\"-NaN\""
        } else {
            "\"NaN\""
        });
        return;
    }
    if f.is_infinite() {
        out.push(if f > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
        return;
    }
    let mut buffer = [0u8; 48];
    let mut cursor = std::io::Cursor::new(&mut buffer[..]);
    let written = if single {
        serde_json::to_writer(&mut cursor, &(f as f32))
    } else {
        serde_json::to_writer(&mut cursor, &f)
    };
    written.expect("a finite float fits 48 bytes");
    let len = cursor.position() as usize;
    out.push(std::str::from_utf8(&buffer[..len]).expect("numbers are ASCII"));
}

/// The float strings the convention writes, as the float they stand for.
pub fn special_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "-NaN" => Some(-f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// Arrow's JSON writer with the convention: explicit nulls and floats as
/// above.
pub fn writer_builder() -> arrow::json::WriterBuilder {
    arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .with_encoder_factory(Arc::new(FloatEncoders))
}

/// Float encoders for Arrow's JSON writer (at any depth: list items too).
#[derive(Debug)]
struct FloatEncoders;

impl EncoderFactory for FloatEncoders {
    fn make_default_encoder<'a>(
        &self,
        _field: &'a FieldRef,
        array: &'a dyn Array,
        _options: &'a EncoderOptions,
    ) -> Result<Option<NullableEncoder<'a>>, ArrowError> {
        let encoder: Box<dyn Encoder + 'a> = match array.data_type() {
            DataType::Float64 => Box::new(Float64s(array.as_primitive::<Float64Type>())),
            DataType::Float32 => Box::new(Float32s(array.as_primitive::<Float32Type>())),
            DataType::Float16 => Box::new(Float16s(array.as_primitive::<Float16Type>())),
            _ => return Ok(None),
        };
        Ok(Some(NullableEncoder::new(encoder, array.nulls().cloned())))
    }
}

struct Float64s<'a>(&'a arrow::array::Float64Array);
struct Float32s<'a>(&'a arrow::array::Float32Array);
struct Float16s<'a>(&'a arrow::array::Float16Array);

impl Encoder for Float64s<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        push_float(out, self.0.value(idx), false);
    }
}

impl Encoder for Float32s<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        push_float(out, f64::from(self.0.value(idx)), true);
    }
}

impl Encoder for Float16s<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        push_float(out, f64::from(self.0.value(idx).to_f32()), true);
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Float32Array, Float64Array, Int64Array, ListArray, RecordBatch};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn text(f: f64, single: bool) -> String {
        let mut s = String::new();
        push_float(&mut s, f, single);
        s
    }

    #[test]
    fn floats_round_trip_and_specials_are_strings() {
        for f in [
            0.1,
            -0.0,
            1e300,
            5e-324,
            1.0 / 3.0,
            123456789.125,
            1e10,
            17.0,
        ] {
            let back: f64 = serde_json::from_str(&text(f, false)).unwrap();
            assert_eq!(back.to_bits(), f.to_bits(), "{f}");
        }
        assert_eq!(text(1e300, false), "1e+300");
        assert_eq!(text(17.0, false), "17.0");
        assert_eq!(text(-0.0, false), "-0.0");
        assert_eq!(text(f64::from(0.1f32), true), "0.1");
        assert_eq!(text(f64::NAN, false), "\"NaN\"");
        assert_eq!(text(-f64::NAN, false), "\"-NaN\"");
        assert_eq!(text(f64::INFINITY, true), "\"Infinity\"");
        assert_eq!(text(f64::NEG_INFINITY, false), "\"-Infinity\"");
        assert!(special_float("-NaN").unwrap().is_sign_negative());
        assert_eq!(special_float("nan"), None);
    }

    #[test]
    fn batches_follow_the_convention() {
        let items = Float32Array::from(vec![Some(1.5), Some(f32::NAN), None]);
        let list = ListArray::new(
            Arc::new(Field::new_list_field(DataType::Float32, true)),
            arrow::buffer::OffsetBuffer::from_lengths([3, 0]),
            Arc::new(items),
            None,
        );
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Float64, true),
            Field::new("n", DataType::Int64, true),
            Field::new("l", list.data_type().clone(), true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Float64Array::from(vec![Some(f64::INFINITY), None])),
                Arc::new(Int64Array::from(vec![None, Some(7)])),
                Arc::new(list),
            ],
        )
        .unwrap();
        let mut out = Vec::new();
        let mut w = writer_builder().build::<_, arrow::json::writer::LineDelimited>(&mut out);
        w.write(&batch).unwrap();
        w.finish().unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"x\":\"Infinity\",\"n\":null,\"l\":[1.5,\"NaN\",null]}\n\
             {\"x\":null,\"n\":7,\"l\":[]}\n"
        );
    }
}
