//! Per-value kernels: the single source of each function's maths.
//!
//! Nothing here knows about Arrow or DataFusion. The UDFs in
//! [`crate::scalar`] and [`crate::aggregate`] drive these functions over
//! arrays; skewless's serving evaluator calls them on one value at a time.
//! Keeping one implementation is what makes batch and serving results
//! identical bit for bit.

pub mod bucket;
pub mod bytes;
pub mod exact;
pub mod farmhash;
mod hash;
pub mod packed;
pub mod profile;
pub mod sample;
pub mod scale;
pub mod split;
pub mod stats;
pub mod vocab;
pub mod window;

pub use hash::{CrossBuffer, hash_bucket_bytes, hash_bucket_i64, hash_bucket_u64};
pub(crate) use hash::{format_i64, format_u64};
