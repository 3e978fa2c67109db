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
//! form).
//!
//! Trust ([`docs/artifact.md`](../../docs/artifact.md)): an artifact is data,
//! never code. On load its SHA-256 checksum over the canonical JSON
//! ([`canonical`]) detects damage and says which fields changed; an
//! optional HMAC-SHA-256 signature ([`SigningKey`]) detects tampering; and
//! before any of its SQL is planned against data, [`check`] verifies that
//! it is one SELECT over the declared inputs whose fitted form follows from
//! the transform and the recorded statistics.

mod canonical;
pub mod check;

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fit::{Fitted, Statistic};
use canonical::Json;

/// The value of [`Artifact::format`].
pub const FORMAT: &str = "skewless-transform";
/// The current [`Artifact::format_version`]. Version 1 (a checksum over the
/// file's bytes) is still read.
pub const FORMAT_VERSION: u32 = 2;

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
    /// The training profile of the inputs served outputs read (see
    /// [`crate::profile`]); absent in artifacts written before it, or with
    /// `fit --profile none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<crate::profile::Profile>,
    /// A short digest of each other field (of each element, for arrays), so
    /// that a checksum mismatch can say what changed.
    #[serde(default)]
    pub digests: BTreeMap<String, Digest>,
    /// `sha256:` and the hex SHA-256 of the canonical JSON of every other
    /// field but `signature`.
    pub checksum: String,
    /// `hmac-sha256:` and the hex HMAC-SHA-256, under the key given to
    /// `fit --sign-key`, of the same canonical text as the checksum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// The digest of a field: one for a value, one per element for an array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Digest {
    One(String),
    Each(Vec<String>),
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
    /// their row counts, and the key hashes at the ranks the fitted calls
    /// cut at (their thresholds).
    Strata {
        strata: Vec<String>,
        counts: Vec<u64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cuts: Vec<StrataCut>,
    },
}

/// The key hash at one rank of a stratum's sorted hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrataCut {
    pub stratum: String,
    pub rank: u64,
    /// The hash, in decimal (a string: JSON numbers beyond 2^53 do not
    /// survive every tool).
    pub hash: String,
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
                strata: strata.names.clone(),
                counts: strata.counts.clone(),
                cuts: strata
                    .cuts()
                    .into_iter()
                    .map(|(stratum, rank, hash)| StrataCut {
                        stratum: strata.names[stratum].clone(),
                        rank,
                        hash: hash.to_string(),
                    })
                    .collect(),
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

impl StatisticValue {
    /// The statistic as the fit computed it, for refitting (see
    /// [`crate::fit::refit`]). An empty vocabulary is typed Utf8 here; the
    /// refit gives it the type of its input.
    pub fn to_statistic(&self) -> std::result::Result<Statistic, String> {
        use datafusion::arrow::array::{Int64Array, StringArray};
        use datafusion::common::ScalarValue;
        let nan = |v: &Option<f64>| v.unwrap_or(f64::NAN);
        Ok(match self {
            Self::MinMax {
                count,
                nulls,
                non_finite,
                min,
                max,
            } => Statistic::MinMax {
                count: *count,
                nulls: *nulls,
                non_finite: *non_finite,
                min: nan(min),
                max: nan(max),
            },
            Self::Moments {
                count,
                nulls,
                non_finite,
                mean,
                stddev,
                inv_stddev,
            } => Statistic::Moments {
                count: *count,
                nulls: *nulls,
                non_finite: *non_finite,
                mean: nan(mean),
                stddev: nan(stddev),
                inv_stddev: nan(inv_stddev),
            },
            Self::Robust {
                count,
                nulls,
                non_finite,
                median,
                q25,
                q75,
            } => Statistic::Robust {
                count: *count,
                nulls: *nulls,
                non_finite: *non_finite,
                median: nan(median),
                q25: nan(q25),
                q75: nan(q75),
            },
            Self::Vocabulary { values, counts } => {
                let array: datafusion::arrow::array::ArrayRef =
                    if !values.is_empty() && values.iter().all(|v| v.is_i64()) {
                        std::sync::Arc::new(Int64Array::from_iter_values(
                            values.iter().filter_map(|v| v.as_i64()),
                        ))
                    } else if values.iter().all(|v| v.is_string()) {
                        std::sync::Arc::new(StringArray::from_iter_values(
                            values.iter().filter_map(|v| v.as_str()),
                        ))
                    } else {
                        return Err("a vocabulary mixes strings and numbers".into());
                    };
                Statistic::Vocabulary {
                    values: array,
                    counts: counts.clone(),
                }
            }
            Self::Quantiles { boundaries } => Statistic::Quantiles {
                boundaries: boundaries.clone(),
            },
            Self::MostFrequent { value } => Statistic::MostFrequent {
                value: match value {
                    serde_json::Value::Null => ScalarValue::Null,
                    serde_json::Value::Number(n) => ScalarValue::Float64(n.as_f64()),
                    serde_json::Value::String(s) => ScalarValue::Utf8(Some(s.clone())),
                    other => return Err(format!("a most frequent value {other} is not a scalar")),
                },
            },
            Self::Strata {
                strata,
                counts,
                cuts,
            } => {
                if strata.len() != counts.len() {
                    return Err(format!(
                        "{} strata but {} counts",
                        strata.len(),
                        counts.len()
                    ));
                }
                let mut by_rank = BTreeMap::new();
                for cut in cuts {
                    let stratum = strata
                        .iter()
                        .position(|s| *s == cut.stratum)
                        .ok_or_else(|| format!("a cut names no stratum: '{}'", cut.stratum))?;
                    let hash = cut
                        .hash
                        .parse::<u64>()
                        .map_err(|_| format!("a cut's hash is not a number: '{}'", cut.hash))?;
                    by_rank.insert((stratum, cut.rank), hash);
                }
                Statistic::Strata(std::sync::Arc::new(crate::fit::StrataStat::from_cuts(
                    strata.clone(),
                    counts.clone(),
                    by_rank,
                )))
            }
        })
    }
}

/// A secret key for signing artifacts (`fit --sign-key`) and verifying
/// them (`apply` / `eval --verify-key`).
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(…)")
    }
}

impl SigningKey {
    /// The shortest key accepted, in bytes.
    pub const MIN_LEN: usize = 16;

    /// A key from a file: its bytes, without trailing whitespace (so that
    /// `openssl rand -hex 32 > key` makes a key). At least 16 bytes.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(bytes).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))
    }

    /// A key from its bytes (trailing whitespace removed).
    pub fn new(mut bytes: Vec<u8>) -> std::result::Result<Self, String> {
        while bytes.last().is_some_and(|b| b.is_ascii_whitespace()) {
            bytes.pop();
        }
        if bytes.len() < Self::MIN_LEN {
            return Err(format!(
                "a signing key needs at least {} bytes, this one has {} \
                 (make one with: openssl rand -hex 32 > KEYFILE)",
                Self::MIN_LEN,
                bytes.len()
            ));
        }
        Ok(Self(bytes))
    }

    fn mac(&self, content: &[u8]) -> hmac::Hmac<sha2::Sha256> {
        use hmac::{KeyInit, Mac};
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes any key");
        mac.update(content);
        mac
    }

    fn sign(&self, content: &[u8]) -> String {
        use hmac::Mac;
        format!(
            "{SIGNATURE_PREFIX}{}",
            canonical::hex(&self.mac(content).finalize().into_bytes())
        )
    }

    /// Whether `signature` is this key's over `content` (in constant time).
    fn verifies(&self, content: &[u8], signature: &str) -> bool {
        use hmac::Mac;
        let Some(hex) = signature.strip_prefix(SIGNATURE_PREFIX) else {
            return false;
        };
        let Some(bytes) = from_hex(hex) else {
            return false;
        };
        self.mac(content).verify_slice(&bytes).is_ok()
    }
}

const SIGNATURE_PREFIX: &str = "hmac-sha256:";

fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Fields outside the canonical content: the checksum and signature over it.
const SEALS: [&str; 2] = ["checksum", "signature"];

/// The canonical content of an artifact's JSON object: every field but the
/// checksum and the signature.
fn content_of(fields: &BTreeMap<String, Json>) -> String {
    let mut content = fields.clone();
    for seal in SEALS {
        content.remove(seal);
    }
    Json::Object(content).canonical()
}

/// The digest of every field but the digests and seals.
fn digests_of(fields: &BTreeMap<String, Json>) -> BTreeMap<String, Digest> {
    fields
        .iter()
        .filter(|(k, _)| k.as_str() != "digests" && !SEALS.contains(&k.as_str()))
        .map(|(k, v)| {
            let digest = match v {
                Json::Array(items) => Digest::Each(
                    items
                        .iter()
                        .map(|i| canonical::short_digest(i.canonical().as_bytes()))
                        .collect(),
                ),
                other => Digest::One(canonical::short_digest(other.canonical().as_bytes())),
            };
            (k.clone(), digest)
        })
        .collect()
}

/// What differs between the recorded digests and the content's: field
/// names, and `field[i]` for array elements.
fn changed_fields(fields: &BTreeMap<String, Json>) -> Vec<String> {
    let recorded: BTreeMap<String, Digest> = fields
        .get("digests")
        .and_then(|d| serde_json::from_str(&d.canonical()).ok())
        .unwrap_or_default();
    if recorded.is_empty() {
        return Vec::new();
    }
    let actual = digests_of(fields);
    let mut changed = Vec::new();
    for (name, digest) in &actual {
        match (recorded.get(name), digest) {
            (None, _) => changed.push(format!("{name} (added)")),
            (Some(Digest::Each(old)), Digest::Each(new)) => {
                for i in 0..old.len().max(new.len()) {
                    match (old.get(i), new.get(i)) {
                        (Some(a), Some(b)) if a == b => {}
                        (Some(_), Some(_)) => changed.push(format!("{name}[{i}]")),
                        (None, Some(_)) => changed.push(format!("{name}[{i}] (added)")),
                        (Some(_), None) => changed.push(format!("{name}[{i}] (removed)")),
                        (None, None) => {}
                    }
                }
            }
            (Some(old), new) if old != new => changed.push(name.clone()),
            _ => {}
        }
    }
    for name in recorded.keys() {
        if !actual.contains_key(name) {
            changed.push(format!("{name} (removed)"));
        }
    }
    changed
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
            profile: None,
            digests: BTreeMap::new(),
            checksum: String::new(),
            signature: None,
        }
    }

    /// The JSON object of this artifact with its digests filled in, and its
    /// canonical content.
    fn sealed_fields(&self) -> (Self, String) {
        let mut sealed = self.clone();
        sealed.format_version = FORMAT_VERSION;
        sealed.checksum = String::new();
        sealed.signature = None;
        sealed.digests = BTreeMap::new();
        let fields = |a: &Self| -> BTreeMap<String, Json> {
            let text = serde_json::to_string(a).expect("artifacts serialize");
            match canonical::parse(&text).expect("serde_json writes valid JSON") {
                Json::Object(fields) => fields,
                _ => unreachable!("an artifact serializes to an object"),
            }
        };
        sealed.digests = digests_of(&fields(&sealed));
        let content = content_of(&fields(&sealed));
        (sealed, content)
    }

    /// Signs the artifact with `key` (HMAC-SHA-256 over its canonical
    /// content); [`Artifact::to_json`] writes the signature.
    pub fn sign(&mut self, key: &SigningKey) {
        let (_, content) = self.sealed_fields();
        self.signature = Some(key.sign(content.as_bytes()));
    }

    /// The JSON document (pretty-printed, with a final newline), with its
    /// digests and checksum.
    pub fn to_json(&self) -> String {
        let (mut sealed, content) = self.sealed_fields();
        sealed.checksum = canonical::sha256(content.as_bytes());
        sealed.signature = self.signature.clone();
        let mut text = serde_json::to_string_pretty(&sealed).expect("artifacts serialize");
        text.push('\n');
        text
    }

    /// Reads an artifact: a wrong format, an unknown version, a checksum
    /// that does not match the content (naming what changed), or — with a
    /// key — a missing or wrong signature is refused. Then its SQL is
    /// checked ([`check::check`]): only data that is one SELECT over the
    /// declared inputs, following from the transform and its statistics,
    /// is accepted.
    pub fn load(path: &Path, key: Option<&SigningKey>) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let artifact = Self::from_json(&text, key)
            .map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
        check::check(&artifact)
            .map_err(|e| Error::Data(format!("{}: refused: {e}", path.display())))?;
        Ok(artifact)
    }

    /// Verifies and parses an artifact document (its SQL is not checked
    /// here: see [`check::check`]).
    pub fn from_json(text: &str, key: Option<&SigningKey>) -> std::result::Result<Self, String> {
        let incomplete =
            |e: String| format!("not a readable skewless artifact ({e}); is the file complete?");
        let json = canonical::parse(text).map_err(incomplete)?;
        let fields = json
            .as_object()
            .ok_or_else(|| incomplete("not a JSON object".into()))?;
        let format = fields.get("format").and_then(Json::as_str);
        if format != Some(FORMAT) {
            return Err(format!(
                "format is {}, expected '{FORMAT}'",
                format.map_or("missing".to_string(), |f| format!("'{f}'"))
            ));
        }
        let version = match fields.get("format_version") {
            Some(Json::Int(v)) => *v,
            _ => return Err("format_version is missing".into()),
        };
        match version {
            1 => legacy_checksum(text)?,
            2 => {
                let declared = fields
                    .get("checksum")
                    .and_then(Json::as_str)
                    .ok_or_else(|| incomplete("no checksum".into()))?;
                let actual = canonical::sha256(content_of(fields).as_bytes());
                if declared != actual {
                    let changed = changed_fields(fields);
                    let what = if changed.is_empty() {
                        "the checksum (or the digests) were edited".to_string()
                    } else {
                        format!("changed since it was written: {}", changed.join(", "))
                    };
                    return Err(format!(
                        "checksum mismatch ({what}); the artifact was modified or damaged: \
                         fit it again or restore it"
                    ));
                }
            }
            v => {
                return Err(format!(
                    "format version {v} is not supported by skewless {} (reads versions 1 and \
                     {FORMAT_VERSION})",
                    env!("CARGO_PKG_VERSION")
                ));
            }
        }
        if let Some(key) = key {
            let signature = fields.get("signature").and_then(Json::as_str).ok_or(
                "the artifact is not signed, and a key to verify it was given \
                 (sign it with fit --sign-key)",
            )?;
            if version < 2 || !key.verifies(content_of(fields).as_bytes(), signature) {
                return Err(
                    "the signature does not verify: the artifact was changed after it was \
                     signed, or signed with another key"
                        .into(),
                );
            }
        }
        serde_json::from_str(text).map_err(|e| incomplete(e.to_string()))
    }
}

/// Format version 1: a SHA-256 of the file's bytes with the checksum value
/// left empty.
fn legacy_checksum(text: &str) -> std::result::Result<(), String> {
    const FIELD: &str = "\"checksum\": \"";
    let at = text
        .rfind(FIELD)
        .ok_or("no checksum (a version 1 artifact keeps its original formatting)")?;
    let start = at + FIELD.len();
    let len = text[start..].find('"').ok_or("unterminated checksum")?;
    let declared = &text[start..start + len];
    let mut unsigned = String::with_capacity(text.len());
    unsigned.push_str(&text[..start]);
    unsigned.push_str(&text[start + len..]);
    let actual = canonical::sha256(unsigned.as_bytes());
    if declared != actual {
        return Err(format!(
            "checksum mismatch: the file says {declared} but its content hashes to {actual}; \
             the (version 1) artifact was modified or damaged, fit it again"
        ));
    }
    Ok(())
}

/// How an artifact spells an Arrow type: one spelling per kind of value,
/// whatever layout the engine that fitted it read the data in. Strings are
/// `Utf8` (DataFusion reads Parquet strings as `Utf8View`, Ballista as
/// `Utf8`; `LargeUtf8` is the same values), bytes are `Binary`, inside
/// nested types too. So a fit on one machine and on a cluster write the
/// same artifact. Artifacts written before this spell `Utf8View`: they load
/// as before, every comparison goes through [`canonical_type`].
pub fn type_name(t: &DataType) -> String {
    canonical_type(t).to_string()
}

/// The canonical form of `t` (see [`type_name`]).
pub fn canonical_type(t: &DataType) -> DataType {
    use std::sync::Arc;
    let field = |f: &datafusion::arrow::datatypes::FieldRef| {
        Arc::new(
            f.as_ref()
                .clone()
                .with_data_type(canonical_type(f.data_type())),
        )
    };
    match t {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
        DataType::List(f) | DataType::ListView(f) => DataType::List(field(f)),
        DataType::LargeList(f) | DataType::LargeListView(f) => DataType::List(field(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(field(f), *n),
        DataType::Struct(fs) => DataType::Struct(fs.iter().map(field).collect()),
        DataType::Map(f, sorted) => DataType::Map(field(f), *sorted),
        DataType::Dictionary(k, v) => DataType::Dictionary(k.clone(), Box::new(canonical_type(v))),
        t => t.clone(),
    }
}

/// The type an output column of strings has in what skewless writes and
/// serves: `Utf8View` (as DataFusion reads strings on one machine), so
/// batch apply on one machine or on a cluster and the serving evaluator
/// give the same schema. Other types are as they are.
pub fn written_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8View,
        t => t.clone(),
    }
}

/// Whether two type names an artifact or a plan give are the same type in
/// the artifact's spelling; a name that does not parse is compared as it is.
pub fn same_type_name(a: &str, b: &str) -> bool {
    let canon = |s: &str| {
        s.parse::<DataType>()
            .map(|t| type_name(&t))
            .unwrap_or_else(|_| s.to_string())
    };
    a == b || canon(a) == canon(b)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_spelling_per_kind_of_value() {
        use datafusion::arrow::datatypes::Field;
        use std::sync::Arc;
        assert_eq!(type_name(&DataType::Utf8View), "Utf8");
        assert_eq!(type_name(&DataType::LargeUtf8), "Utf8");
        assert_eq!(type_name(&DataType::BinaryView), "Binary");
        assert_eq!(type_name(&DataType::Int32), "Int32");
        let list = |t| DataType::List(Arc::new(Field::new("item", t, true)));
        let large = DataType::LargeList(Arc::new(Field::new("item", DataType::Utf8View, true)));
        assert_eq!(type_name(&large), list(DataType::Utf8).to_string());
        assert_eq!(
            canonical_type(&list(DataType::Utf8View)),
            list(DataType::Utf8)
        );
        // Older artifacts spell the view type; names compare as types.
        assert!(same_type_name("Utf8View", "Utf8"));
        assert!(same_type_name(
            &list(DataType::Utf8View).to_string(),
            &list(DataType::LargeUtf8).to_string()
        ));
        assert!(!same_type_name("Utf8", "Int64"));
        assert!(!same_type_name("Int32", "Int64"));
    }

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
