//! The whole request path of `skewless serve` (HTTP/1.1 parsing, limits,
//! routes, handlers) over an in-memory connection: any bytes in, and the
//! server must answer without a panic (a caught panic is a 500, which is
//! a finding too). The CI runs a seeded, bounded version of this
//! (`fuzzed_requests_get_well_formed_answers`); this target runs it for as
//! long as you like.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use skewless::server::{Limits, harness::Harness};

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let artifact = std::env::var("SKEWLESS_FUZZ_ARTIFACT")
            .unwrap_or_else(|_| "../target/fuzz-census.json".to_string());
        let limits = Limits {
            max_body_bytes: 64 << 10,
            max_rows: 50,
            ..Limits::default()
        };
        Harness::new(&[&format!("census={artifact}")], limits, None)
            .unwrap_or_else(|e| panic!("load {artifact} (see fuzz/README.md): {e}"))
    })
}

fuzz_target!(|input: &[u8]| {
    let out = harness().exchange(input);
    // hyper answers what it cannot parse itself; whatever reached
    // skewless's handlers must never be a 500.
    assert!(
        !out.starts_with(b"HTTP/1.1 500") && !out.windows(13).any(|w| w == b"\r\nHTTP/1.1 500"),
        "a 500 for {:?}",
        String::from_utf8_lossy(input)
    );
});
