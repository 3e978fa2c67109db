//! The fitted transform artifact: one versioned JSON document.
//!
//! `skewless fit` writes it; `skewless apply` and the serving evaluator
//! ([`crate::serving`]) read it. The format is documented field by field on
//! [`Artifact`]. Readers must accept unknown fields and new statistic kinds
//! within the same `format_version`; a new `format_version` is a breaking
//! change.
//!
//! The artifact is deterministic: the same transform fitted on the same data
//! gives the same bytes whatever the partitioning (statistics are exact and
//! order-independent; JSON floats are printed in their shortest round-trip
//! form). A SHA-256 checksum of the content is verified on load, so a
//! tampered or truncated file is refused.

use std::path::Path;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::fit::{Fitted, Statistic};

/// The value of [`Artifact::format`].
pub const FORMAT: &str = "skewless-transform";
/// The current [`Artifact::format_version`].
pub const FORMAT_VERSION: u32 = 1;

/// A fitted transform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// Always `"skewless-transform"`.
    pub format: String,
    /// The format's version, currently 1.
    pub format_version: u32,
    /// The skewless version that wrote the artifact.
    pub skewless_version: String,
    /// The transform as written (one SELECT).
    pub sql: String,
    /// The fitted transform: the SELECT with every statistic inlined as
    /// constants (`min_max_scale(age)` → `min_max_scale_with(age, 17.0, 90.0)`),
    /// runnable with `skewless run` on new data.
    pub fitted_sql: String,
    /// The tables the transform reads, each with the columns it reads and
    /// their types at fit time: what apply and serving require of new data.
    pub inputs: Vec<InputTable>,
    /// The transform's output columns, in order.
    pub outputs: Vec<Output>,
    /// Every statistic computed by the fit, with provenance.
    pub statistics: Vec<StatisticRecord>,
    /// Rows of the relation each statistics pass ran over (one entry per
    /// pass; one pass for a single-level SELECT).
    pub rows_seen: Vec<u64>,
    /// `sha256:` and the hex digest of the file's bytes with this value
    /// left empty (`"checksum": ""`). Always the last field.
    pub checksum: String,
}

/// An input table and the columns it had at fit time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputTable {
    pub name: String,
    pub columns: Vec<Column>,
}

/// A column: name, Arrow type (as Arrow displays it, e.g. `Int64`,
/// `Utf8View`), nullability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
}

/// An output column of the transform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
    /// The input columns its expression reads.
    pub reads: Vec<String>,
    /// True for `--label` outputs: produced in batch, skipped at serving.
    pub training_only: bool,
}

/// A statistic with the calls that use it and what it was computed over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatisticRecord {
    /// The full-pass functions that use it.
    pub functions: Vec<String>,
    /// The expression it was computed over.
    pub argument: String,
    /// The values; `kind` says which. NaN (a statistic of no values) is
    /// written as null.
    pub value: StatisticValue,
}

/// The value of a statistic. New kinds may appear in later versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StatisticValue {
    MinMax {
        count: i64,
        nulls: i64,
        non_finite: i64,
        min: Option<f64>,
        max: Option<f64>,
    },
    Moments {
        count: i64,
        nulls: i64,
        non_finite: i64,
        mean: Option<f64>,
        stddev: Option<f64>,
        /// 1/σ rounded once from the exact sums (null when σ is 0 or unknown).
        inv_stddev: Option<f64>,
    },
    Robust {
        count: i64,
        nulls: i64,
        non_finite: i64,
        median: Option<f64>,
        q25: Option<f64>,
        q75: Option<f64>,
    },
    /// The vocabulary in index order with each value's count.
    Vocabulary {
        values: Vec<serde_json::Value>,
        counts: Vec<i64>,
    },
    Quantiles {
        boundaries: Vec<f64>,
    },
    MostFrequent {
        value: serde_json::Value,
    },
    /// The strata of a stratified split or sample (in byte order) with
    /// their row counts. The hashes themselves live in the fitted SQL as
    /// thresholds.
    Strata {
        strata: Vec<String>,
        counts: Vec<u64>,
    },
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

impl From<&Statistic> for StatisticValue {
    fn from(s: &Statistic) -> Self {
        match s {
            Statistic::MinMax {
                count,
                nulls,
                non_finite,
                min,
                max,
            } => Self::MinMax {
                count: *count,
                nulls: *nulls,
                non_finite: *non_finite,
                min: finite(*min),
                max: finite(*max),
            },
            Statistic::Moments {
                count,
                nulls,
                non_finite,
                mean,
                stddev,
                inv_stddev,
            } => Self::Moments {
                count: *count,
                nulls: *nulls,
                non_finite: *non_finite,
                mean: finite(*mean),
                stddev: finite(*stddev),
                inv_stddev: finite(*inv_stddev),
            },
            Statistic::Robust {
                count,
                nulls,
                non_finite,
                median,
                q25,
                q75,
            } => Self::Robust {
                count: *count,
                nulls: *nulls,
                non_finite: *non_finite,
                median: finite(*median),
                q25: finite(*q25),
                q75: finite(*q75),
            },
            Statistic::Vocabulary { values, counts } => Self::Vocabulary {
                values: (0..values.len())
                    .map(|i| match values.data_type() {
                        DataType::Int64 => {
                            serde_json::Value::from(values.as_primitive::<Int64Type>().value(i))
                        }
                        _ => serde_json::Value::from(
                            datafusion::arrow::util::display::array_value_to_string(values, i)
                                .unwrap_or_default(),
                        ),
                    })
                    .collect(),
                counts: counts.clone(),
            },
            Statistic::Quantiles { boundaries } => Self::Quantiles {
                boundaries: boundaries.clone(),
            },
            Statistic::Strata(strata) => Self::Strata {
                strata: strata.strata.iter().map(|(s, _)| s.clone()).collect(),
                counts: strata.counts().into_iter().map(|(_, n)| n).collect(),
            },
            Statistic::MostFrequent { value } => Self::MostFrequent {
                value: if value.is_null() {
                    serde_json::Value::Null
                } else {
                    match value.cast_to(&DataType::Float64) {
                        Ok(datafusion::common::ScalarValue::Float64(Some(f)))
                            if value.data_type().is_numeric() =>
                        {
                            serde_json::Value::from(f)
                        }
                        _ => serde_json::Value::from(value.to_string()),
                    }
                },
            },
        }
    }
}

impl Artifact {
    /// Builds the artifact of a fitted transform.
    pub fn new(
        sql: &str,
        fitted_sql: String,
        fitted: &Fitted,
        inputs: Vec<InputTable>,
        outputs: Vec<Output>,
    ) -> Self {
        Self {
            format: FORMAT.to_string(),
            format_version: FORMAT_VERSION,
            skewless_version: env!("CARGO_PKG_VERSION").to_string(),
            sql: sql.trim().to_string(),
            fitted_sql,
            inputs,
            outputs,
            statistics: fitted
                .statistics
                .iter()
                .map(|s| StatisticRecord {
                    functions: s.functions.iter().map(|f| f.to_string()).collect(),
                    argument: s.argument.clone(),
                    value: (&s.statistic).into(),
                })
                .collect(),
            rows_seen: fitted.rows_seen.clone(),
            checksum: String::new(),
        }
    }

    /// The JSON document, checksum included, with a final newline.
    ///
    /// The checksum is the SHA-256 of the document's bytes with the checksum
    /// value left empty, so any change to the file is detected on load.
    pub fn to_json(&self) -> String {
        let mut unsigned = self.clone();
        unsigned.checksum = String::new();
        let mut text = serde_json::to_string_pretty(&unsigned).expect("artifacts serialize");
        text.push('\n');
        let checksum = sha256(text.as_bytes());
        let at = text
            .rfind(CHECKSUM_FIELD)
            .expect("the checksum field is serialized");
        let mut signed = String::with_capacity(text.len() + checksum.len());
        signed.push_str(&text[..at + CHECKSUM_FIELD.len()]);
        signed.push_str(&checksum);
        signed.push_str(&text[at + CHECKSUM_FIELD.len()..]);
        signed
    }

    /// Reads an artifact, refusing a wrong format, an unknown version or a
    /// checksum that does not match the content.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text).map_err(|e| Error::Data(format!("{}: {e}", path.display())))
    }

    /// Verifies and parses an artifact document.
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        let incomplete =
            |e: String| format!("not a readable skewless artifact ({e}); is the file complete?");
        let at = text
            .rfind(CHECKSUM_FIELD)
            .ok_or_else(|| incomplete("no checksum".into()))?;
        let value_start = at + CHECKSUM_FIELD.len();
        let value_len = text[value_start..]
            .find('"')
            .ok_or_else(|| incomplete("unterminated checksum".into()))?;
        let declared = &text[value_start..value_start + value_len];
        let mut unsigned = String::with_capacity(text.len());
        unsigned.push_str(&text[..value_start]);
        unsigned.push_str(&text[value_start + value_len..]);
        let artifact: Artifact =
            serde_json::from_str(text).map_err(|e| incomplete(e.to_string()))?;
        if artifact.format != FORMAT {
            return Err(format!(
                "format is '{}', expected '{FORMAT}'",
                artifact.format
            ));
        }
        if artifact.format_version != FORMAT_VERSION {
            return Err(format!(
                "format version {} is not supported by skewless {} (reads version {FORMAT_VERSION})",
                artifact.format_version,
                env!("CARGO_PKG_VERSION")
            ));
        }
        let actual = sha256(unsigned.as_bytes());
        if declared != actual {
            return Err(format!(
                "checksum mismatch: the file says {declared} but its content hashes to {actual}; \
                 the artifact was modified or damaged, fit it again"
            ));
        }
        Ok(artifact)
    }
}

/// Whether new data of type `actual` can feed an input fitted as `fitted`:
/// the same type, or the same family — any string type for a string, any
/// integer for an integer, any float or integer for a float. Used by batch
/// apply and by the serving evaluator alike.
pub fn accepts(fitted: &DataType, actual: &DataType) -> bool {
    let family = |t: &DataType| match t {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => 1,
        t if t.is_integer() => 2,
        t if t.is_floating() => 3,
        _ => 0,
    };
    match (family(fitted), family(actual)) {
        (0, _) | (_, 0) => fitted == actual,
        (3, 2) => true,
        (a, b) => a == b,
    }
}

/// How the checksum field starts in the serialized document; it is the last
/// field, so its last occurrence is the field itself (a string value would
/// have its quotes escaped).
const CHECKSUM_FIELD: &str = "\"checksum\": \"";

fn sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_type_families() {
        assert!(accepts(&DataType::Utf8View, &DataType::Utf8));
        assert!(accepts(&DataType::Int64, &DataType::Int32));
        assert!(accepts(&DataType::Int64, &DataType::UInt8));
        assert!(accepts(&DataType::Float64, &DataType::Int64));
        assert!(accepts(&DataType::Float64, &DataType::Float32));
        assert!(!accepts(&DataType::Int64, &DataType::Float64));
        assert!(!accepts(&DataType::Int64, &DataType::Utf8));
        assert!(!accepts(&DataType::Boolean, &DataType::Int8));
        assert!(accepts(&DataType::Boolean, &DataType::Boolean));
        assert!(!accepts(&DataType::Date32, &DataType::Date64));
    }
}
