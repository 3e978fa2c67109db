//! skewless's function library: the preprocessing functions of skewless as
//! Apache DataFusion UDFs.
//!
//! Every function's maths lives once, in [`kernel`], as small per-value
//! functions with no DataFusion types. The Arrow drivers in [`scalar`] call
//! them over whole arrays, and skewless's serving evaluator calls the very same
//! kernels one row at a time, so that batch and serving agree by construction.
//!
//! The functions register on any DataFusion session with [`register_all`].

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};

pub mod aggregate;
pub mod kernel;
mod keys;
pub mod row;
pub mod scalar;
pub mod window;

/// The documentation section every skewless function is listed under.
pub const DOC_SECTION: datafusion::logical_expr::DocSection =
    datafusion::logical_expr::DocSection {
        include: true,
        label: "skewless preprocessing",
        description: Some("Feature preprocessing functions of skewless"),
    };

/// All of skewless's scalar (instance-level) functions.
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    scalar::functions()
}

/// All of skewless's aggregate (full-pass) functions: the statistics a fit
/// computes.
pub fn aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    aggregate::functions()
}

/// All of skewless's window aggregations (`window_mean`, …): features of
/// an entity's events over a time window.
pub fn window_functions() -> Vec<Arc<WindowUDF>> {
    window::functions()
}

/// Registers every skewless function on a DataFusion function registry (a
/// `SessionState`, or anything else implementing [`FunctionRegistry`]).
///
/// # Errors
/// Fails only if the registry refuses a registration.
pub fn register_all(registry: &mut dyn FunctionRegistry) -> Result<()> {
    for udf in scalar_functions() {
        registry.register_udf(udf)?;
    }
    for udaf in aggregate_functions() {
        registry.register_udaf(udaf)?;
    }
    for udwf in window_functions() {
        registry.register_udwf(udwf)?;
    }
    Ok(())
}

/// The names of every function this crate provides, with their aliases.
pub fn function_names() -> Vec<String> {
    let scalar = scalar_functions()
        .into_iter()
        .map(|f| (f.name().to_string(), f.aliases().to_vec()));
    let aggregate = aggregate_functions()
        .into_iter()
        .map(|f| (f.name().to_string(), f.aliases().to_vec()));
    let window = window_functions()
        .into_iter()
        .map(|f| (f.name().to_string(), f.aliases().to_vec()));
    scalar
        .chain(aggregate)
        .chain(window)
        .flat_map(|(name, aliases)| std::iter::once(name).chain(aliases))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    #[test]
    fn names_and_aliases_are_unique() {
        let names = super::function_names();
        let unique: HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "duplicate names in {names:?}");
        assert!(names.contains(&"hash_bucket".to_string()));
        for aggregate in [
            "min_max_stats",
            "moments",
            "vocabulary",
            "quantile_boundaries",
            "robust_stats",
            "most_frequent",
        ] {
            assert!(
                names.contains(&aggregate.to_string()),
                "{aggregate} missing"
            );
        }
    }

    #[test]
    fn every_function_is_documented() {
        for f in super::scalar_functions() {
            let doc = f
                .documentation()
                .unwrap_or_else(|| panic!("{} has no documentation", f.name()));
            assert!(doc.sql_example.is_some(), "{} has no SQL example", f.name());
        }
        for f in super::aggregate_functions() {
            let doc = f
                .documentation()
                .unwrap_or_else(|| panic!("{} has no documentation", f.name()));
            assert!(doc.sql_example.is_some(), "{} has no SQL example", f.name());
            assert!(doc.arguments.is_some(), "{} has no arguments", f.name());
        }
    }
}
