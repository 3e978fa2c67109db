//! skewless: SQL-first preprocessing for machine learning on Apache DataFusion.
//!
//! The data flow: a SQL script → statements ([`script`]) → a DataFusion
//! session with skewless's functions ([`session`], functions from the
//! `skewless-udfs` crate) over tables at local or object-store locations
//! ([`location`]) → execution with progress ([`exec`], [`progress`]) →
//! results in a chosen format ([`output`]). Queries that call full-pass
//! functions are fitted first ([`fit`]): one aggregate pass computes their
//! statistics, which are inlined as literals. A fitted transform is saved as
//! an [`artifact`], applied in batch, or compiled by [`serving`] into a row
//! evaluator with the same results. The command line and the REPL live in
//! [`cli`].

pub mod artifact;
pub mod cancel;
pub mod cli;
pub mod cluster;
pub mod error;
pub mod exec;
pub mod fit;
pub mod json;
pub mod location;
pub mod output;
pub mod profile;
pub mod progress;
pub mod query;
pub mod script;
pub mod server;
pub mod serving;
pub mod session;
pub mod validate;
pub mod write;

pub use error::{Error, Result};
pub use skewless_udfs as udfs;
