//! Integration tests: the real `skewless` binary run as a user would, against
//! the bundled census data, local files, and a real S3-compatible server on
//! loopback. One test binary for all of them keeps link time down.

mod common;

#[global_allocator]
static ALLOCATOR: common::CountingAllocator = common::CountingAllocator;

mod cli;
mod cluster;
mod fit;
mod outputs;
mod query;
mod repl;
mod replay;
mod robust;
mod s3;
mod server;
mod serving;
mod slt;
mod splits;
mod trust;
mod validate;
mod windows;
