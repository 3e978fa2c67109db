//! Skew counters kept by the evaluator as it works: NULL and non-finite
//! values of each input a served output reads, keys a vocabulary does not
//! hold, numbers outside a min-max scaler's fitted range. Counted by kind
//! and by column or feature name, never by value.
//!
//! A count is a relaxed atomic add on a line of counters of the calling
//! thread's stripe (threads spread over stripes, so they rarely share a
//! cache line); a row that is in range costs one predictable branch per
//! watched value and nothing else. Totals sum the stripes.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Threads are spread over this many stripes.
const STRIPES: usize = 16;

/// Eight counters on one cache line.
#[repr(align(64))]
#[derive(Default)]
struct Line([AtomicU64; 8]);

pub(crate) struct Counters {
    /// Lines per stripe.
    lines: usize,
    cells: Box<[Line]>,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counters({})", self.lines * 8)
    }
}

fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|s| *s)
}

impl Counters {
    pub(crate) fn new(n: usize) -> Self {
        let lines = n.div_ceil(8).max(1);
        Self {
            lines,
            cells: (0..lines * STRIPES).map(|_| Line::default()).collect(),
        }
    }

    /// Counts one of `slot`.
    #[inline]
    pub(crate) fn hit(&self, slot: usize) {
        let line = &self.cells[stripe() * self.lines + slot / 8];
        line.0[slot % 8].fetch_add(1, Ordering::Relaxed);
    }

    /// The count of `slot` over every thread.
    pub(crate) fn total(&self, slot: usize) -> u64 {
        (0..STRIPES)
            .map(|s| self.cells[s * self.lines + slot / 8].0[slot % 8].load(Ordering::Relaxed))
            .sum()
    }
}

/// A node's counter: where its counts go.
#[derive(Clone)]
pub(crate) struct Watch {
    pub counters: std::sync::Arc<Counters>,
    pub slot: usize,
}

impl Watch {
    #[inline]
    pub(crate) fn hit(&self) {
        self.counters.hit(self.slot);
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Watch({})", self.slot)
    }
}

/// One skew count ([`super::Evaluator::skew_counts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkewCount {
    /// `null`, `non_finite` (of an input), `unseen` (by a vocabulary),
    /// `out_of_range` (of a min-max scaler's fitted min and max).
    pub kind: &'static str,
    /// The input column, or the expression a function reads.
    pub column: String,
    /// The served output whose function counted (empty for inputs).
    pub output: String,
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads_add_up() {
        let c = std::sync::Arc::new(Counters::new(11));
        std::thread::scope(|s| {
            for t in 0..20 {
                let c = &c;
                s.spawn(move || {
                    for i in 0..1000 {
                        c.hit((t + i) % 11);
                    }
                });
            }
        });
        let totals: Vec<u64> = (0..11).map(|k| c.total(k)).collect();
        assert_eq!(totals.iter().sum::<u64>(), 20_000);
        // Thread t hits slot k for the i ≡ k − t (mod 11): 91 or 90 times.
        for (k, n) in totals.iter().enumerate() {
            let expected: u64 = (0..20u64)
                .map(|t| (0..1000u64).filter(|i| (t + i) % 11 == k as u64).count() as u64)
                .sum();
            assert_eq!(*n, expected, "slot {k}");
        }
    }
}
