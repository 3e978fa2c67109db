//! Full-pass functions (UDAFs): the statistics a fit computes over a column.
//!
//! Each aggregate drives a mergeable state from [`crate::kernel::stats`] over
//! Arrow arrays. Partial states are plain Arrow values (see [`state`]), so
//! they can be merged across partitions, threads and, later, machines; the
//! kernels make every result independent of the order of updates and merges.
//!
//! One function per file, each in the same order: documentation, the struct
//! (only a `Signature`), `new()`, the `AggregateUDFImpl`, the accumulator,
//! then tests.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::AggregateUDF;

mod counts;
mod exact;
mod min_max_stats;
mod moments;
mod most_frequent;
mod profile;
mod quantile_boundaries;
mod robust_stats;
mod state;
mod stratum_hashes;
#[cfg(test)]
pub(crate) mod test_util;
mod vocabulary;

pub use exact::ExactAggregate;
pub use min_max_stats::MinMaxStats;
pub use moments::Moments;
pub use most_frequent::MostFrequent;
pub use profile::{NumericProfile, ProfileSlots};
pub use quantile_boundaries::QuantileBoundaries;
pub use robust_stats::RobustStats;
pub use stratum_hashes::{StratumHashesUdaf, decode_strata};
pub use vocabulary::Vocabulary;

/// Every aggregate function of this crate.
pub fn functions() -> Vec<Arc<AggregateUDF>> {
    vec![
        Arc::new(AggregateUDF::from(MinMaxStats::new())),
        Arc::new(AggregateUDF::from(Moments::new())),
        Arc::new(AggregateUDF::from(Vocabulary::new())),
        Arc::new(AggregateUDF::from(QuantileBoundaries::new())),
        Arc::new(AggregateUDF::from(RobustStats::new())),
        Arc::new(AggregateUDF::from(MostFrequent::new())),
        Arc::new(AggregateUDF::from(StratumHashesUdaf::new())),
        Arc::new(AggregateUDF::from(NumericProfile::new())),
        Arc::new(AggregateUDF::from(ProfileSlots::new())),
    ]
    .into_iter()
    .chain(exact::functions())
    .collect()
}

/// The type a numeric argument is computed as: Float64 for every integer,
/// float and decimal type (dictionaries unpacked, NULL literals included).
/// Anything else is a planning error naming the function and argument.
pub(crate) fn coerce_numeric(function: &str, argument: &str, arg: &DataType) -> Result<DataType> {
    match arg {
        DataType::Null => Ok(DataType::Float64),
        DataType::Dictionary(_, value) => coerce_numeric(function, argument, value),
        t if t.is_numeric() => Ok(DataType::Float64),
        other => plan_err!(
            "{function}: {argument} must be numeric, got {other}; \
             cast it first, e.g. CAST({argument} AS DOUBLE)"
        ),
    }
}

/// The type a "string or integer" argument is computed as: strings keep their
/// string type, integers become Int64, dictionaries are unpacked and a NULL
/// literal counts as a string.
pub(crate) fn coerce_text_or_integer(
    function: &str,
    argument: &str,
    arg: &DataType,
) -> Result<DataType> {
    match arg {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(arg.clone()),
        DataType::Null => Ok(DataType::Utf8),
        t if t.is_integer() => Ok(DataType::Int64),
        DataType::Dictionary(_, value) => coerce_text_or_integer(function, argument, value),
        other => plan_err!(
            "{function}: {argument} must be a string or an integer, got {other}; \
             cast it first, e.g. CAST({argument} AS VARCHAR)"
        ),
    }
}

/// The type of an integer literal argument (`top_k`, `n`, …): kept as it is,
/// so that the literal reaches the accumulator without a cast around it; its
/// value is checked when the accumulator is made
/// ([`state::positive_literal`]).
pub(crate) fn coerce_integer_literal(
    function: &str,
    argument: &str,
    arg: &DataType,
) -> Result<DataType> {
    if arg.is_integer() || arg.is_null() {
        Ok(arg.clone())
    } else {
        plan_err!("{function}: {argument} must be a positive integer literal, got type {arg}")
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::check_doc_example;

    #[tokio::test]
    async fn documented_examples_are_true() {
        let mut wrong = Vec::new();
        for f in super::functions() {
            if let Err(e) = check_doc_example(f.documentation().expect("documented")).await {
                wrong.push(e);
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    }
}
