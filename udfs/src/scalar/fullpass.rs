//! The full-pass ("analyzer") functions as SQL: `min_max_scale`, `z_score`,
//! `max_abs_scale`, `robust_scale`, `vocab_index`, `one_hot`,
//! `quantile_bucket`, `impute`.
//!
//! A full-pass function needs a statistic of the whole relation that feeds
//! its SELECT. These UDFs are the planning half only: they type-check the
//! call and validate its literal arguments. skewless's fit step then computes
//! the statistics in one aggregate pass and replaces each call by its
//! instance-level form with the statistics as literals
//! (`min_max_scale(x)` → `min_max_scale_with(x, 17.0, 90.0)`). Invoked
//! without that step, they fail with an error saying so.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl,
    Signature, Volatility,
};

use super::args::{self, check_arity, coerce_numeric};
use super::coerce_text_or_integer;
use super::split_of::split_pairs;
pub use crate::kernel::sample::{SampleSize, Shares};

/// Which full-pass function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FullPassKind {
    MinMaxScale,
    ZScore,
    MaxAbsScale,
    RobustScale,
    VocabIndex,
    OneHot,
    QuantileBucket,
    Impute,
    StratifiedSplit,
    StratifiedSample,
    Undersample,
    Oversample,
}

impl FullPassKind {
    pub const ALL: [FullPassKind; 12] = [
        Self::MinMaxScale,
        Self::ZScore,
        Self::MaxAbsScale,
        Self::RobustScale,
        Self::VocabIndex,
        Self::OneHot,
        Self::QuantileBucket,
        Self::Impute,
        Self::StratifiedSplit,
        Self::StratifiedSample,
        Self::Undersample,
        Self::Oversample,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::MinMaxScale => "min_max_scale",
            Self::ZScore => "z_score",
            Self::MaxAbsScale => "max_abs_scale",
            Self::RobustScale => "robust_scale",
            Self::VocabIndex => "vocab_index",
            Self::OneHot => "one_hot",
            Self::QuantileBucket => "quantile_bucket",
            Self::Impute => "impute",
            Self::StratifiedSplit => "stratified_split",
            Self::StratifiedSample => "stratified_sample",
            Self::Undersample => "undersample",
            Self::Oversample => "oversample",
        }
    }

    /// The full-pass function of this name, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    fn syntax(self) -> &'static str {
        match self {
            Self::MinMaxScale => "(x [, lo, hi])",
            Self::ZScore | Self::MaxAbsScale | Self::RobustScale => "(x)",
            Self::VocabIndex => "(x [, top_k [, min_frequency [, num_oov_buckets]]])",
            Self::OneHot => "(x [, top_k [, min_frequency]])",
            Self::QuantileBucket => "(x, n)",
            Self::Impute => "(x, strategy)",
            Self::StratifiedSplit => "(key, stratum, name1, p1 [, name2, p2, ...])",
            Self::StratifiedSample => {
                "(key, stratum, n, seed [, 'proportional' | 'balanced' | stratum1, w1 [, stratum2, w2, ...]])"
            }
            Self::Undersample | Self::Oversample => {
                "(key, stratum, seed [, stratum1, w1 [, stratum2, w2, ...]])"
            }
        }
    }

    fn arity(self) -> std::ops::RangeInclusive<usize> {
        match self {
            Self::MinMaxScale => 1..=3,
            Self::ZScore | Self::MaxAbsScale | Self::RobustScale => 1..=1,
            Self::VocabIndex => 1..=4,
            Self::OneHot => 1..=3,
            Self::QuantileBucket | Self::Impute => 2..=2,
            Self::StratifiedSplit | Self::StratifiedSample => 4..=usize::MAX,
            Self::Undersample | Self::Oversample => 3..=usize::MAX,
        }
    }

    /// How many leading arguments are expressions (the rest are literals):
    /// 2 for the stratified functions (key and stratum), 1 for the others.
    pub fn expression_args(self) -> usize {
        if self.stratified() { 2 } else { 1 }
    }

    /// The stratified functions select or partition rows: training only.
    pub fn stratified(self) -> bool {
        matches!(
            self,
            Self::StratifiedSplit | Self::StratifiedSample | Self::Undersample | Self::Oversample
        )
    }

    /// Categorical functions take strings or integers; the others numbers
    /// (impute takes both).
    fn categorical(self) -> bool {
        matches!(self, Self::VocabIndex | Self::OneHot)
    }
}

/// How `impute` fills NULLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImputeStrategy {
    Mean,
    Median,
    MostFrequent,
}

/// A full-pass call with its literal arguments read and checked.
#[derive(Debug, Clone, PartialEq)]
pub enum FullPassCall {
    MinMaxScale {
        range: Option<(f64, f64)>,
    },
    ZScore,
    MaxAbsScale,
    RobustScale,
    VocabIndex {
        top_k: Option<u64>,
        min_frequency: u64,
        num_oov_buckets: u64,
    },
    OneHot {
        top_k: Option<u64>,
        min_frequency: u64,
    },
    QuantileBucket {
        n: u64,
    },
    Impute {
        strategy: ImputeStrategy,
    },
    StratifiedSplit {
        names: Vec<String>,
        proportions: Vec<f64>,
    },
    /// `stratified_sample`, `undersample` and `oversample`.
    Sample {
        seed: u64,
        size: SampleSize,
        shares: Shares,
    },
}

impl FullPassCall {
    /// Reads the literal arguments of a call (x first, its value ignored).
    /// Fails naming the function and argument when one is missing, not a
    /// literal, or out of range.
    pub fn parse(kind: FullPassKind, literals: &[Option<&ScalarValue>]) -> Result<Self> {
        let name = kind.name();
        check_arity(name, kind.syntax(), literals.len(), kind.arity())?;
        let arg = |i: usize| literals.get(i).copied();
        Ok(match kind {
            FullPassKind::MinMaxScale => match literals.len() {
                1 => Self::MinMaxScale { range: None },
                3 => {
                    let lo = args::float(name, "lo", arg(1).flatten())?;
                    let hi = args::float(name, "hi", arg(2).flatten())?;
                    if lo >= hi {
                        return plan_err!(
                            "{name}: lo must be below hi, got lo = {lo} and hi = {hi}"
                        );
                    }
                    Self::MinMaxScale {
                        range: Some((lo, hi)),
                    }
                }
                n => return plan_err!("{name} takes {}, got {n} argument(s)", kind.syntax()),
            },
            FullPassKind::ZScore => Self::ZScore,
            FullPassKind::MaxAbsScale => Self::MaxAbsScale,
            FullPassKind::RobustScale => Self::RobustScale,
            FullPassKind::VocabIndex => Self::VocabIndex {
                top_k: top_k(name, arg(1))?,
                min_frequency: min_frequency(name, arg(2))?,
                num_oov_buckets: match arg(3) {
                    Some(v) => args::non_negative_int(name, "num_oov_buckets", v)?,
                    None => 1,
                },
            },
            FullPassKind::OneHot => Self::OneHot {
                top_k: top_k(name, arg(1))?,
                min_frequency: min_frequency(name, arg(2))?,
            },
            FullPassKind::QuantileBucket => Self::QuantileBucket {
                n: args::positive_int(name, "n", arg(1).flatten())?,
            },
            FullPassKind::Impute => {
                let s = args::string(name, "strategy", arg(1).flatten())?;
                let strategy = match s.as_str() {
                    "mean" => ImputeStrategy::Mean,
                    "median" => ImputeStrategy::Median,
                    "most_frequent" => ImputeStrategy::MostFrequent,
                    other => {
                        return plan_err!(
                            "{name}: strategy must be 'mean', 'median' or 'most_frequent', got '{other}'"
                        );
                    }
                };
                Self::Impute { strategy }
            }
            FullPassKind::StratifiedSplit => {
                let pairs = &literals[2..];
                if !pairs.len().is_multiple_of(2) {
                    return plan_err!(
                        "{name} takes {}: pairs of a split name and its proportion, got {} \
                         argument(s) after the stratum",
                        kind.syntax(),
                        pairs.len()
                    );
                }
                let spec = split_pairs(name, pairs)?;
                Self::StratifiedSplit {
                    names: spec.names,
                    proportions: spec.proportions,
                }
            }
            FullPassKind::StratifiedSample => Self::Sample {
                size: sample_size(name, arg(2).flatten())?,
                seed: super::stratified::seed(name, arg(3).flatten())?,
                shares: match &literals[4..] {
                    [] => Shares::Proportional,
                    [how] => match args::string(name, "shares", *how)?.as_str() {
                        "proportional" => Shares::Proportional,
                        "balanced" => Shares::Balanced,
                        other => {
                            return plan_err!(
                                "{name}: shares must be 'proportional', 'balanced' or pairs of a \
                                 stratum and its weight, got '{other}'"
                            );
                        }
                    },
                    pairs => weights(name, pairs)?,
                },
            },
            FullPassKind::Undersample | FullPassKind::Oversample => Self::Sample {
                size: if kind == FullPassKind::Oversample {
                    SampleSize::Smallest
                } else {
                    SampleSize::Largest
                },
                seed: super::stratified::seed(name, arg(2).flatten())?,
                shares: match &literals[3..] {
                    [] => Shares::Balanced,
                    pairs => weights(name, pairs)?,
                },
            },
        })
    }
}

/// The type a key or stratum is computed as (strings, integers), or an
/// error naming the argument.
fn key_or_stratum(name: &str, argument: &str, t: &DataType) -> Result<DataType> {
    coerce_text_or_integer(name, t).map_err(|_| {
        datafusion::common::plan_datafusion_err!(
            "{name}: {argument} must be a string or an integer, got {t}; cast it first, e.g. \
             CAST({argument} AS VARCHAR)"
        )
    })
}

/// A sample's size: a positive integer count, or a fraction in (0, 1].
fn sample_size(name: &str, value: Option<&ScalarValue>) -> Result<SampleSize> {
    match value {
        Some(v) if v.data_type().is_integer() => {
            Ok(SampleSize::Count(args::positive_int(name, "n", Some(v))?))
        }
        Some(v)
            if v.data_type().is_floating() || matches!(v.data_type(), DataType::Decimal128(..)) =>
        {
            let f = args::float(name, "n", Some(v))?;
            if f > 0.0 && f <= 1.0 {
                Ok(SampleSize::Fraction(f))
            } else {
                plan_err!(
                    "{name}: n must be a positive integer (a count) or a fraction in (0, 1], got {f}"
                )
            }
        }
        Some(v) => plan_err!(
            "{name}: n must be a positive integer (a count) or a fraction in (0, 1], got {v}"
        ),
        None => plan_err!(
            "{name}: n must be a positive integer (a count) or a fraction in (0, 1], not a column \
             or expression"
        ),
    }
}

/// Weights: pairs of a stratum (string or integer literal) and a
/// non-negative number, strata unique, not all zero.
fn weights(name: &str, pairs: &[Option<&ScalarValue>]) -> Result<Shares> {
    if !pairs.len().is_multiple_of(2) {
        return plan_err!(
            "{name}: weights come in pairs of a stratum and its weight, got {} argument(s) for \
             them",
            pairs.len()
        );
    }
    let mut out: Vec<(String, f64)> = Vec::with_capacity(pairs.len() / 2);
    for (i, pair) in pairs.chunks(2).enumerate() {
        let stratum = match pair[0] {
            Some(v)
                if (v.data_type().is_integer() || v.data_type() == DataType::Boolean)
                    && !v.is_null() =>
            {
                v.to_string()
            }
            Some(v) if v.data_type().is_string() && !v.is_null() => {
                args::string(name, "stratum", Some(v))?
            }
            Some(v) => {
                return plan_err!(
                    "{name}: stratum {} of the weights must be a string, integer or boolean \
                     literal, got {v}",
                    i + 1
                );
            }
            None => {
                return plan_err!(
                    "{name}: stratum {} of the weights must be a literal, not a column or \
                     expression",
                    i + 1
                );
            }
        };
        if out.iter().any(|(s, _)| *s == stratum) {
            return plan_err!("{name}: stratum '{stratum}' is weighted twice");
        }
        let w = args::float(name, &format!("weight of '{stratum}'"), pair[1])?;
        if !(w == 0.0 || (1e-9..=1e9).contains(&w)) {
            return plan_err!(
                "{name}: weight of '{stratum}' must be 0 or between 1e-9 and 1e9, got {w}"
            );
        }
        out.push((stratum, w));
    }
    if out.iter().all(|(_, w)| *w == 0.0) {
        return plan_err!("{name}: every weight is 0");
    }
    Ok(Shares::Weights(out))
}

/// `top_k`: absent or NULL means no limit.
fn top_k(name: &str, value: Option<Option<&ScalarValue>>) -> Result<Option<u64>> {
    match value {
        None => Ok(None),
        Some(Some(v)) if v.is_null() => Ok(None),
        Some(v) => args::positive_int(name, "top_k", v).map(Some),
    }
}

/// `min_frequency`: absent means 1.
fn min_frequency(name: &str, value: Option<Option<&ScalarValue>>) -> Result<u64> {
    match value {
        None => Ok(1),
        Some(v) => args::positive_int(name, "min_frequency", v),
    }
}

static DOCS: LazyLock<Vec<Documentation>> = LazyLock::new(|| {
    FullPassKind::ALL
        .iter()
        .map(|k| documentation(*k))
        .collect()
});

fn documentation(kind: FullPassKind) -> Documentation {
    let full_pass = " Full-pass: the statistic is computed over all rows of the relation that \
                     feeds the SELECT (after FROM, JOIN and WHERE), skipping NULL and \
                     non-finite values, then applied row by row.";
    let stratified = " Full-pass: the strata and their key hashes are gathered over all rows of \
                      the relation that feeds the SELECT (after FROM, JOIN and WHERE; in a WHERE, \
                      after its other AND-ed conditions) in a narrow pass, then each row is placed by comparing its hash with its stratum's \
                      thresholds. Training only: serving ignores outputs that use it.";
    let (description, args, example): (String, Vec<(&str, &str)>, &str) = match kind {
        FullPassKind::MinMaxScale => (
            format!(
                "Scales to [0, 1] by the minimum and maximum: (x - min) / (max - min), or to \
                 [lo, hi]: lo + (x - min) / (max - min) * (hi - lo). max = min gives x - min \
                 (+ lo). No clipping: values outside the fitted range extrapolate. NULL gives \
                 NULL, NaN gives NaN.{full_pass}"
            ),
            vec![
                ("x", "A numeric expression (integers are computed as Float64)."),
                ("lo, hi", "Optional numeric literals with lo < hi: the target range."),
            ],
            "```sql
> SELECT x, min_max_scale(x) AS s FROM (VALUES (1), (2), (3), (4), (5)) t(x);
+---+------+
| x | s    |
+---+------+
| 1 | 0.0  |
| 2 | 0.25 |
| 3 | 0.5  |
| 4 | 0.75 |
| 5 | 1.0  |
+---+------+
```",
        ),
        FullPassKind::ZScore => (
            format!(
                "Standardizes: (x - mean) / σ, with σ the population standard deviation \
                 (computed as (x - mean) times 1/σ rounded once). σ = 0 gives x - mean. \
                 NULL gives NULL, NaN gives NaN.{full_pass}"
            ),
            vec![("x", "A numeric expression.")],
            "```sql
> SELECT x, z_score(x) AS z FROM (VALUES (1), (1), (2), (2)) t(x);
+---+------+
| x | z    |
+---+------+
| 1 | -1.0 |
| 1 | -1.0 |
| 2 | 1.0  |
| 2 | 1.0  |
+---+------+
```",
        ),
        FullPassKind::MaxAbsScale => (
            format!(
                "Scales by the largest magnitude: x / max|x|. max|x| = 0 gives x. NULL gives \
                 NULL, NaN gives NaN.{full_pass}"
            ),
            vec![("x", "A numeric expression.")],
            "```sql
> SELECT x, max_abs_scale(x) AS s FROM (VALUES (-3), (1), (5)) t(x);
+----+------+
| x  | s    |
+----+------+
| -3 | -0.6 |
| 1  | 0.2  |
| 5  | 1.0  |
+----+------+
```",
        ),
        FullPassKind::RobustScale => (
            format!(
                "Scales robustly: (x - median) / (q75 - q25), with NumPy's median and linear \
                 percentiles (as scikit-learn's RobustScaler). An IQR of 0 gives x - median. \
                 NULL gives NULL, NaN gives NaN.{full_pass}"
            ),
            vec![("x", "A numeric expression.")],
            "```sql
> SELECT x, robust_scale(x) AS s FROM (VALUES (1), (2), (3), (4)) t(x);
+---+---------------------+
| x | s                   |
+---+---------------------+
| 1 | -1.0                |
| 2 | -0.3333333333333333 |
| 3 | 0.3333333333333333  |
| 4 | 1.0                 |
+---+---------------------+
```",
        ),
        FullPassKind::VocabIndex => (
            format!(
                "Maps a value to its index in the vocabulary: the distinct non-NULL values with \
                 count >= min_frequency (default 1), by count descending then value ascending, \
                 cut to top_k (default: no limit; NULL also means no limit). An unseen value \
                 gives V + hash_bucket(x, num_oov_buckets) (default 1 bucket, so V); with 0 \
                 buckets, NULL. NULL gives NULL.{full_pass}"
            ),
            vec![
                ("x", "A string or integer expression."),
                ("top_k", "Optional positive integer literal (or NULL: no limit)."),
                ("min_frequency", "Optional positive integer literal, default 1."),
                ("num_oov_buckets", "Optional non-negative integer literal, default 1."),
            ],
            "```sql
> SELECT x, vocab_index(x) AS i FROM (VALUES ('b'), ('a'), ('b'), (NULL)) t(x);
+---+---+
| x | i |
+---+---+
| b | 0 |
| a | 1 |
| b | 0 |
|   |   |
+---+---+
```",
        ),
        FullPassKind::OneHot => (
            format!(
                "One-hot encodes with the vocabulary of vocab_index: a list of V+1 Float32 with \
                 1.0 at the value's index and the last slot for unseen values. NULL gives \
                 NULL.{full_pass}"
            ),
            vec![
                ("x", "A string or integer expression."),
                ("top_k", "Optional positive integer literal (or NULL: no limit)."),
                ("min_frequency", "Optional positive integer literal, default 1."),
            ],
            "```sql
> SELECT x, one_hot(x) AS v FROM (VALUES ('b'), ('a'), ('b')) t(x);
+---+-----------------+
| x | v               |
+---+-----------------+
| b | [1.0, 0.0, 0.0] |
| a | [0.0, 1.0, 0.0] |
| b | [1.0, 0.0, 0.0] |
+---+-----------------+
```",
        ),
        FullPassKind::QuantileBucket => (
            format!(
                "Buckets a number into n quantile buckets: with v1 <= … <= vN the sorted values, \
                 boundaries b_i = v_(floor(i*N/n)+1) for i = 1..n-1, duplicates dropped; the \
                 result is the number of boundaries <= x. NaN gives the number of boundaries; NULL gives \
                 NULL. Exact, whatever the partitioning.{full_pass}"
            ),
            vec![
                ("x", "A numeric expression."),
                ("n", "The number of buckets: a positive integer literal."),
            ],
            "```sql
> SELECT x, quantile_bucket(x, 3) AS b FROM (VALUES (1), (2), (3), (4), (5)) t(x);
+---+---+
| x | b |
+---+---+
| 1 | 0 |
| 2 | 1 |
| 3 | 1 |
| 4 | 2 |
| 5 | 2 |
+---+---+
```",
        ),
        FullPassKind::Impute => (
            format!(
                "Replaces NULL by a statistic: 'mean', 'median' (NumPy's median) or \
                 'most_frequent' (ties: the smallest value; works for strings). Numbers are \
                 returned as Float64, strings as strings. NaN stays NaN.{full_pass}"
            ),
            vec![
                ("x", "A numeric or (for 'most_frequent') string expression."),
                ("strategy", "'mean', 'median' or 'most_frequent'."),
            ],
            "```sql
> SELECT x, impute(x, 'mean') AS y FROM (VALUES (NULL), (-3), (-3), (-3), (1), (2), (3), (4), (5)) t(x);
+----+------+
| x  | y    |
+----+------+
|    | 0.75 |
| -3 | -3.0 |
| -3 | -3.0 |
| -3 | -3.0 |
| 1  | 1.0  |
| 2  | 2.0  |
| 3  | 3.0  |
| 4  | 4.0  |
| 5  | 5.0  |
+----+------+
```",
        ),
        FullPassKind::StratifiedSplit => (
            format!(
                "Splits every stratum exactly: inside each stratum the rows are ranked by their \
                 key's hash (FarmHash Fingerprint64 of its text, as split_of) and cut into splits \
                 whose sizes are the integers nearest to the proportions (largest remainder, so \
                 they sum to the stratum's size; proportions taken as the decimals written). \
                 Rows with equal keys share a split, so sizes are exact when keys are distinct. \
                 Deterministic for any partitioning; unlike split_of, rows near a cut may move \
                 when rows are added. NULL key or stratum gives NULL.{stratified}"
            ),
            vec![
                ("key", "A string or integer expression identifying the row (an id)."),
                ("stratum", "A string or integer expression: the row's stratum."),
                ("name", "A string literal: a split's name."),
                ("p", "A numeric literal in [0, 1]: its proportion; all sum to 1."),
            ],
            "```sql
> SELECT k, s, stratified_split(k, s, 'train', 0.5, 'eval', 0.5) AS split
  FROM (VALUES ('a', 'x'), ('b', 'x'), ('c', 'y'), ('d', 'y')) t(k, s);
+---+---+-------+
| k | s | split |
+---+---+-------+
| a | x | eval  |
| b | x | train |
| c | y | eval  |
| d | y | train |
+---+---+-------+
```",
        ),
        FullPassKind::StratifiedSample => (
            format!(
                "True for the rows of a sample without replacement with exact per-stratum \
                 counts: n rows in all (or the fraction n of the rows), shared out among the \
                 strata in proportion to their sizes (default), equally ('balanced'), or by \
                 weights ('Seoul', 9, 'Daegu', 2, 'Busan', 3: strata not listed are left out), \
                 each share the nearest integer (largest remainder). Inside a stratum the rows \
                 with the smallest seeded key hashes are taken: deterministic under the seed. A \
                 share larger than its stratum is an error giving the largest possible n. Use \
                 it in WHERE. NULL key or stratum gives NULL (not sampled).{stratified}"
            ),
            vec![
                ("key", "A string or integer expression identifying the row (an id)."),
                ("stratum", "A string or integer expression: the row's stratum."),
                ("n", "A positive integer literal (rows) or a fraction in (0, 1]."),
                ("seed", "An integer literal."),
                (
                    "shares",
                    "Optional: 'proportional' (default), 'balanced', or pairs of a stratum \
                     literal and a non-negative weight.",
                ),
            ],
            "```sql
> SELECT k, s, stratified_sample(k, s, 2, 7) AS picked
  FROM (VALUES ('a', 'x'), ('b', 'x'), ('c', 'y'), ('d', 'y')) t(k, s);
+---+---+--------+
| k | s | picked |
+---+---+--------+
| a | x | true   |
| b | x | false  |
| c | y | false  |
| d | y | true   |
+---+---+--------+
```",
        ),
        FullPassKind::Undersample => (
            format!(
                "True for the rows of the largest sample without replacement whose strata are in \
                 the given ratio (default 1:1 over all strata; with weights, strata not listed \
                 are left out): the smallest stratum relative to its weight is kept whole and \
                 the others cut to their share, taking the rows with the smallest seeded key \
                 hashes. Deterministic under the seed. Use it in WHERE. NULL key or stratum gives \
                 NULL.{stratified}"
            ),
            vec![
                ("key", "A string or integer expression identifying the row (an id)."),
                ("stratum", "A string or integer expression: the row's stratum (the class)."),
                ("seed", "An integer literal."),
                ("stratum, w", "Optional pairs of a stratum literal and a non-negative weight."),
            ],
            "```sql
> SELECT k, s, undersample(k, s, 7) AS kept
  FROM (VALUES ('a', 'x'), ('b', 'x'), ('c', 'x'), ('d', 'y')) t(k, s);
+---+---+-------+
| k | s | kept  |
+---+---+-------+
| a | x | false |
| b | x | false |
| c | x | true  |
| d | y | true  |
+---+---+-------+
```",
        ),
        FullPassKind::Oversample => (
            format!(
                "The number of copies of the row in the smallest sample with replacement whose \
                 strata are in the given ratio (default 1:1; with weights, strata not listed get \
                 0) and that keeps every row at least once: a stratum of m rows with target t \
                 gives each row t / m copies and the t % m rows with the smallest seeded key \
                 hashes one more, so counts are exact and repeats spread evenly. Deterministic \
                 under the seed. Expand the copies with unnest: SELECT *, unnest(range(copies)) \
                 AS copy FROM (SELECT *, oversample(id, label, 42) AS copies FROM t). NULL key or \
                 stratum gives NULL.{stratified}"
            ),
            vec![
                ("key", "A string or integer expression identifying the row (an id)."),
                ("stratum", "A string or integer expression: the row's stratum (the class)."),
                ("seed", "An integer literal."),
                ("stratum, w", "Optional pairs of a stratum literal and a non-negative weight."),
            ],
            "```sql
> SELECT k, s, oversample(k, s, 7) AS copies
  FROM (VALUES ('a', 'x'), ('b', 'x'), ('c', 'x'), ('d', 'y')) t(k, s);
+---+---+--------+
| k | s | copies |
+---+---+--------+
| a | x | 1      |
| b | x | 1      |
| c | x | 1      |
| d | y | 3      |
+---+---+--------+
```",
        ),
    };
    let mut builder = Documentation::builder(
        crate::DOC_SECTION,
        description,
        format!("{}{}", kind.name(), kind.syntax()),
    )
    .with_sql_example(example);
    for (name, text) in args {
        builder = builder.with_argument(name, text);
    }
    builder.build()
}

/// The planning half of a full-pass function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FullPass {
    kind: FullPassKind,
    signature: Signature,
}

impl FullPass {
    pub fn new(kind: FullPassKind) -> Self {
        Self {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    pub fn kind(&self) -> FullPassKind {
        self.kind
    }
}

impl ScalarUDFImpl for FullPass {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let name = self.name();
        check_arity(name, self.kind.syntax(), arg_types.len(), self.kind.arity())?;
        let mut out = arg_types.to_vec();
        if self.kind.stratified() {
            out[0] = key_or_stratum(name, "key", &arg_types[0])?;
            out[1] = match &arg_types[1] {
                // A boolean label is a stratum too: 'true' / 'false'.
                DataType::Boolean => DataType::Utf8,
                t => key_or_stratum(name, "stratum", t)?,
            };
            return Ok(out);
        }
        out[0] = match self.kind {
            k if k.categorical() => coerce_text_or_integer(name, &arg_types[0])?,
            FullPassKind::Impute => match &arg_types[0] {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => arg_types[0].clone(),
                DataType::Dictionary(_, v) if v.is_string() => v.as_ref().clone(),
                t => coerce_numeric(name, "x", t)?,
            },
            _ => coerce_numeric(name, "x", &arg_types[0])?,
        };
        if out[0] == DataType::UInt64 {
            out[0] = DataType::Int64;
        }
        Ok(out)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            FullPassKind::VocabIndex | FullPassKind::QuantileBucket => DataType::Int64,
            FullPassKind::OneHot => DataType::new_list(DataType::Float32, true),
            FullPassKind::Impute => arg_types[0].clone(),
            FullPassKind::StratifiedSplit => DataType::Utf8,
            FullPassKind::StratifiedSample | FullPassKind::Undersample => DataType::Boolean,
            FullPassKind::Oversample => DataType::Int64,
            _ => DataType::Float64,
        })
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        // Literals written as such are checked now; the rest (e.g. `-1`) when
        // skewless fits the call, after constant folding.
        if args
            .scalar_arguments
            .iter()
            .skip(self.kind.expression_args())
            .all(Option::is_some)
        {
            let call = FullPassCall::parse(self.kind, args.scalar_arguments)?;
            if let FullPassCall::Impute { strategy } = call {
                let x = args.arg_fields[0].data_type();
                if strategy != ImputeStrategy::MostFrequent && x.is_string() {
                    return plan_err!(
                        "impute: strategy '{}' needs a numeric x, got {x}; use 'most_frequent' for strings",
                        if strategy == ImputeStrategy::Mean {
                            "mean"
                        } else {
                            "median"
                        }
                    );
                }
            }
        }
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let nullable = match self.kind {
            // Unseen values are NULL only without OOV buckets; a row of a
            // stratum unseen at fit gets NULL.
            FullPassKind::VocabIndex => true,
            k if k.stratified() => true,
            _ => args.arg_fields[0].is_nullable(),
        };
        Ok(Arc::new(Field::new(
            self.name(),
            self.return_type(&types)?,
            nullable,
        )))
    }

    fn simplify(&self, args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        FullPassCall::parse(self.kind, &args::literals(&args))?;
        Ok(ExprSimplifyResult::Original(args))
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        exec_err!(
            "{} is a full-pass function: its statistics must be computed before the query runs. \
             Run the SQL through skewless (skewless run, skewless repl), which fits full-pass \
             calls in the SELECT list, WHERE and aggregate arguments",
            self.name()
        )
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCS[self.kind as usize])
    }
}
