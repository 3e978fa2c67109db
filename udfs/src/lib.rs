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
use datafusion::logical_expr::ScalarUDF;

pub mod kernel;
pub mod scalar;

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

/// Registers every skewless function on a DataFusion function registry (a
/// `SessionState`, or anything else implementing [`FunctionRegistry`]).
///
/// # Errors
/// Fails only if the registry refuses a registration.
pub fn register_all(registry: &mut dyn FunctionRegistry) -> Result<()> {
    for udf in scalar_functions() {
        registry.register_udf(udf)?;
    }
    Ok(())
}

/// The names of every function this crate provides, with their aliases.
pub fn function_names() -> Vec<String> {
    scalar_functions()
        .iter()
        .flat_map(|f| std::iter::once(f.name().to_string()).chain(f.aliases().iter().cloned()))
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
    }

    #[test]
    fn every_function_is_documented() {
        for f in super::scalar_functions() {
            let doc = f
                .documentation()
                .unwrap_or_else(|| panic!("{} has no documentation", f.name()));
            assert!(doc.sql_example.is_some(), "{} has no SQL example", f.name());
        }
    }
}
