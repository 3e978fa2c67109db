//! JSON as the server takes it: a scan for the nesting and string limits
//! before anything is parsed, and the Open Inference Protocol's data types.

use datafusion::arrow::datatypes::DataType;

/// Checks a body against the nesting and string-length limits in one pass
/// over its bytes, before it is parsed (so that a deep or huge document
/// costs no more than reading it). Strings are measured in bytes as sent
/// (escapes counted as written).
pub fn check_shape(body: &[u8], max_depth: usize, max_string: usize) -> Result<(), String> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut string_start = 0usize;
    for (i, &b) in body.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
                if i - string_start - 1 > max_string {
                    return Err(format!(
                        "a string of {} bytes at byte {string_start}: longer than the limit of \
                         {max_string} (--max-string-bytes)",
                        i - string_start - 1
                    ));
                }
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                string_start = i;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(format!(
                        "nested deeper than the limit of {max_depth} (--max-json-depth) at byte {i}"
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if in_string && body.len() - string_start - 1 > max_string {
        return Err(format!(
            "a string of {} bytes at byte {string_start}: longer than the limit of {max_string} \
             (--max-string-bytes)",
            body.len() - string_start - 1
        ));
    }
    Ok(())
}

/// The Open Inference Protocol (v2) data type of an Arrow type. Times and
/// dates travel as text, as `skewless eval` writes them: `BYTES`.
pub fn v2_datatype(t: &DataType) -> &'static str {
    match t {
        DataType::Boolean => "BOOL",
        DataType::Int8 => "INT8",
        DataType::Int16 => "INT16",
        DataType::Int32 => "INT32",
        DataType::Int64 => "INT64",
        DataType::UInt8 => "UINT8",
        DataType::UInt16 => "UINT16",
        DataType::UInt32 => "UINT32",
        DataType::UInt64 => "UINT64",
        DataType::Float16 => "FP16",
        DataType::Float32 => "FP32",
        DataType::Float64 => "FP64",
        _ => "BYTES",
    }
}

/// Whether a v2 tensor of `datatype` may feed a column of type `t`: its
/// own type, any integer type for an integer column, any number for a
/// float column.
pub fn v2_accepts(t: &DataType, datatype: &str) -> bool {
    let own = v2_datatype(t);
    let integer = datatype.starts_with("INT") || datatype.starts_with("UINT");
    datatype == own
        || (t.is_integer() && integer)
        || (t.is_floating() && (integer || datatype.starts_with("FP")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_and_strings_are_measured_outside_and_inside_strings() {
        assert!(check_shape(br#"{"a":[[1]]}"#, 3, 10).is_ok());
        let e = check_shape(br#"{"a":[[[1]]]}"#, 3, 10).unwrap_err();
        assert!(e.contains("deeper than the limit of 3"), "{e}");
        assert!(e.contains("at byte 7"), "{e}");
        // Brackets inside a string are text; an escaped quote does not end it.
        assert!(check_shape(br#"{"a":"[[[[\"{{{{"}"#, 1, 20).is_ok());
        assert!(check_shape(br#"{"abcd":1}"#, 1, 4).is_ok());
        let e = check_shape(br#"{"abcde":1}"#, 1, 4).unwrap_err();
        assert!(e.contains("a string of 5 bytes at byte 1"), "{e}");
        // An unterminated string is measured too.
        assert!(check_shape(br#"{"abcdef"#, 1, 4).is_err());
    }

    #[test]
    fn v2_types() {
        assert_eq!(v2_datatype(&DataType::Utf8View), "BYTES");
        assert!(v2_accepts(&DataType::Int64, "INT32"));
        assert!(v2_accepts(&DataType::Float64, "INT64"));
        assert!(!v2_accepts(&DataType::Int64, "FP64"));
        assert!(!v2_accepts(&DataType::Utf8, "INT64"));
        assert!(v2_accepts(&DataType::Utf8, "BYTES"));
    }
}
