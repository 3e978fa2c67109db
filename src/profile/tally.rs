//! Live skew: served rows counted over the training profile's slots, one
//! row at a time, into a caller-owned [`Tally`] — the counts `validate`
//! computes in batch, so a tally turned into a profile ([`Tally::profile`])
//! gives the same report by the same formulas ([`crate::validate`]).
//!
//! A [`TallyPlan`] is made once per evaluator from the artifact's profile:
//! per profiled column its input slot, its edges or a table of its training
//! values. Counting a row is a search among the edges per number and a
//! hash lookup per category, into plain integer counters: no allocation
//! but for an unseen value the first time it is seen. A category that an
//! output looks up as it is (`vocab_index(x)`, `vocab_index(coalesce(x,
//! '?'))`) is not looked up again: the output's index, read from the row's
//! evaluated outputs, gives its slot ([`LookupOutput`]).

use std::collections::HashMap;

use skewless_udfs::kernel::profile::{slot, slots};
use skewless_udfs::kernel::vocab::Vocabulary;

use super::{ColumnProfile, Counts, Profile};
use crate::serving::Value;

/// At most this many distinct unseen values are kept by name per column;
/// more are counted together as [`MORE_UNSEEN`].
const UNSEEN_KEPT: usize = 1000;
/// The name the unseen values beyond [`UNSEEN_KEPT`] are counted under.
pub const MORE_UNSEEN: &str = "(more unseen values)";

/// How to count a profile's columns in rows of an evaluator's inputs.
#[derive(Debug, Clone)]
pub struct TallyPlan {
    columns: Vec<Planned>,
    /// The numeric columns' (input, first counter, edges), and the
    /// categorical ones' (input, first counter, column index): counted in
    /// two tight loops.
    numbers: Vec<Number>,
    categories: Vec<Category>,
    /// The summary columns' (input, first counter).
    summaries: Vec<(usize, usize)>,
    /// Counters per tally.
    width: usize,
    training: Profile,
    /// The checksum of the artifact the profile comes from.
    artifact: String,
    /// The training profile's out-of-vocabulary shares, worked out on the
    /// first report (they do not change).
    training_oov: std::sync::OnceLock<Vec<(String, String, Option<f64>)>>,
}

/// A numeric column's place in a row and in the counters, and its edges.
#[derive(Debug, Clone)]
struct Number {
    input: usize,
    base: usize,
    /// The edges, padded with +inf to 16 (a value inside the outer edges
    /// falls in the slot of the number of edges at or below it: 16
    /// comparisons without branches), when there are at most 16.
    padded: Option<[f64; 16]>,
    edges: Box<[f64]>,
    /// When the outer edges are integers at most [`TABLE_SPAN`] apart: the
    /// first edge and the slot of each integer from it to the last edge
    /// (integer values find their slot in one read).
    table: Option<(i64, Box<[u8]>)>,
}

/// The widest range of integers whose slots are tabulated (4 KiB a column).
const TABLE_SPAN: f64 = 4096.0;

impl Number {
    fn new(input: usize, base: usize, edges: &[f64]) -> Self {
        let table = match edges {
            [first, .., last]
                if first.fract() == 0.0
                    && last.fract() == 0.0
                    && last - first <= TABLE_SPAN
                    && slots(edges.len()) <= usize::from(u8::MAX) =>
            {
                let first = *first as i64;
                let slots = (first..=*last as i64)
                    .map(|i| slot(edges, i as f64) as u8)
                    .collect();
                Some((first, slots))
            }
            _ => None,
        };
        Self {
            input,
            base,
            padded: (edges.len() <= 16).then(|| {
                let mut padded = [f64::INFINITY; 16];
                padded[..edges.len()].copy_from_slice(edges);
                padded
            }),
            edges: edges.into(),
            table,
        }
    }

    /// [`slot`] of an integer.
    #[inline]
    fn int_slot(&self, i: i64) -> usize {
        match &self.table {
            Some((first, table)) => match i.checked_sub(*first) {
                Some(k) if k >= 0 => match table.get(k as usize) {
                    Some(s) => usize::from(*s),
                    None => slots(self.edges.len()) - 1,
                },
                _ => 0,
            },
            None => self.slot(i as f64),
        }
    }

    /// [`slot`] of a finite `x`.
    #[inline]
    fn slot(&self, x: f64) -> usize {
        match (&self.padded, &self.edges[..]) {
            (Some(padded), [first, .., last]) if *first <= x && x < *last => at_or_below(padded, x),
            _ => slot(&self.edges, x),
        }
    }
}

/// How many of `edges` are at or below `x`: eight comparisons of two
/// edges at once (SSE2, which every x86-64 CPU has), the all-ones masks
/// subtracted from two counters.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
fn at_or_below(edges: &[f64; 16], x: f64) -> usize {
    use std::arch::x86_64::{
        _mm_castpd_si128, _mm_cmple_pd, _mm_cvtsi128_si64, _mm_set_pd, _mm_set1_pd,
        _mm_setzero_si128, _mm_sub_epi64, _mm_unpackhi_epi64,
    };
    // SAFETY: the intrinsics need SSE2, which this build enables (the cfg
    // above); none reads memory.
    unsafe {
        let xx = _mm_set1_pd(x);
        let mut below = _mm_setzero_si128();
        for pair in edges.chunks_exact(2) {
            let e = _mm_set_pd(pair[1], pair[0]);
            below = _mm_sub_epi64(below, _mm_castpd_si128(_mm_cmple_pd(e, xx)));
        }
        (_mm_cvtsi128_si64(below) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(below, below))) as usize
    }
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
fn at_or_below(edges: &[f64; 16], x: f64) -> usize {
    edges.iter().map(|e| usize::from(*e <= x)).sum()
}

/// A categorical column's place in a row and in the counters.
#[derive(Debug, Clone)]
struct Category {
    input: usize,
    /// The first of its counters.
    base: usize,
    /// Its index among the planned columns.
    column: usize,
    /// An output that looks the column up as it is, and per index below
    /// V the counter its value goes to (`u32::MAX`: not a listed training
    /// value, looked up instead).
    shared: Option<(usize, Box<[u32]>)>,
}

/// An output that is a vocabulary index of an input as it is (for a
/// non-NULL value): the input's slot, the output's place among the
/// evaluator's outputs, the vocabulary's values in position order (as
/// text, as the profile lists them).
#[derive(Debug, Clone)]
pub struct LookupOutput {
    pub input: usize,
    pub output: usize,
    pub values: Vec<Option<String>>,
}

#[derive(Debug, Clone)]
struct Planned {
    /// The input slot of the column in a row.
    input: usize,
    /// The first of its counters.
    base: usize,
    kind: PlannedKind,
}

#[derive(Debug, Clone)]
enum PlannedKind {
    /// Counters: nulls, nan, +inf, −inf, then one per slot (the finite
    /// values are the slots' sum).
    Numeric { edges: Vec<f64> },
    /// Counters: nulls, then one per training value listed (the non-NULL
    /// values are their sum plus the unseen ones').
    Categorical {
        /// The training values' positions (short values packed into one
        /// integer, as vocabulary lookups do).
        index: Vocabulary<String>,
        listed: usize,
    },
    /// Counters: nulls, finite or non-NULL, NaN, +inf, −inf.
    Summary,
}

/// Counts of served rows over a [`TallyPlan`]'s slots. Tallies of the same
/// plan add up ([`Tally::add`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tally {
    pub rows: u64,
    counts: Vec<u64>,
    /// Per planned column: unseen values by name (categorical columns).
    unseen: Vec<HashMap<String, u64>>,
}

impl TallyPlan {
    /// The plan of `profile`'s columns, found by name among `inputs` (a
    /// column the evaluator does not read is left out); `lookups`, the
    /// evaluator's outputs that look an input up as it is.
    pub fn new(
        profile: &Profile,
        inputs: &[String],
        artifact: &str,
        lookups: &[LookupOutput],
    ) -> Self {
        let mut columns = Vec::new();
        let mut kept = Vec::new();
        let mut width = 0;
        for c in &profile.columns {
            let Some(input) = inputs.iter().position(|n| *n == c.name) else {
                continue;
            };
            let kind = match &c.counts {
                counts if counts.is_summary() => PlannedKind::Summary,
                Counts::Numeric { edges, .. } => PlannedKind::Numeric {
                    edges: edges.clone(),
                },
                Counts::Categorical { values, .. } => PlannedKind::Categorical {
                    index: Vocabulary::new(values.iter().map(|(v, _)| v.clone()), 0),
                    listed: values.len(),
                },
            };
            let n = match &kind {
                PlannedKind::Numeric { edges } => 4 + slots(edges.len()),
                PlannedKind::Categorical { listed, .. } => 1 + listed,
                PlannedKind::Summary => 5,
            };
            columns.push(Planned {
                input,
                base: width,
                kind,
            });
            kept.push(c.clone());
            width += n;
        }
        let numbers = columns
            .iter()
            .filter_map(|c| match &c.kind {
                PlannedKind::Numeric { edges } => Some(Number::new(c.input, c.base, edges)),
                _ => None,
            })
            .collect();
        let summaries = columns
            .iter()
            .filter(|c| matches!(c.kind, PlannedKind::Summary))
            .map(|c| (c.input, c.base))
            .collect();
        let categories = columns
            .iter()
            .enumerate()
            .filter_map(|(k, c)| {
                let PlannedKind::Categorical { index, .. } = &c.kind else {
                    return None;
                };
                let shared = lookups.iter().find(|l| l.input == c.input).map(|l| {
                    let slots = l
                        .values
                        .iter()
                        .map(|v| {
                            v.as_deref()
                                .and_then(|v| index.position(v))
                                .map_or(u32::MAX, |p| (c.base + 1) as u32 + p as u32)
                        })
                        .collect();
                    (l.output, slots)
                });
                Some(Category {
                    input: c.input,
                    base: c.base,
                    column: k,
                    shared,
                })
            })
            .collect();
        Self {
            columns,
            numbers,
            categories,
            summaries,
            width,
            training: Profile {
                columns: kept,
                ..profile.clone()
            },
            artifact: artifact.to_string(),
            training_oov: std::sync::OnceLock::new(),
        }
    }

    /// The report of what `tally` counted against the training profile,
    /// as `skewless validate` makes it.
    pub fn report(
        &self,
        tally: &Tally,
        evaluator: &crate::serving::Evaluator,
        limits: &crate::validate::Limits,
    ) -> crate::validate::Report {
        let new = self.profile(tally);
        let vocabularies = crate::validate::vocabulary_checks(
            self.training_oov
                .get_or_init(|| evaluator.oov_shares(&self.training)),
            &evaluator.oov_shares(&new),
            limits,
        );
        crate::validate::compare(
            &self.artifact,
            &self.training,
            "training",
            &new,
            &[],
            vocabularies,
            limits,
        )
    }

    /// The profile tallies are compared with.
    pub fn training(&self) -> &Profile {
        &self.training
    }

    /// An empty tally of this plan.
    pub fn tally(&self) -> Tally {
        Tally {
            rows: 0,
            counts: vec![0; self.width],
            unseen: vec![HashMap::new(); self.columns.len()],
        }
    }

    /// Counts one row of inputs (a request, typed in the evaluator's input
    /// order) into `tally`; `outputs`, the row's evaluated outputs (as
    /// [`crate::serving::Evaluator::eval`] gives them; empty when there are
    /// none, then every category is looked up).
    #[inline]
    pub fn count(&self, row: &[Value<'_>], outputs: &[Value<'_>], tally: &mut Tally) {
        tally.rows += 1;
        let counts = &mut tally.counts[..];
        for n in &self.numbers {
            let x = match row.get(n.input) {
                Some(Value::Float(f)) => *f,
                Some(Value::Int(i)) => {
                    counts[n.base + 4 + n.int_slot(*i)] += 1;
                    continue;
                }
                Some(Value::UInt(u)) => *u as f64,
                Some(Value::Bool(b)) => f64::from(u8::from(*b)),
                _ => {
                    counts[n.base] += 1;
                    continue;
                }
            };
            let at = if x.is_finite() {
                n.base + 4 + n.slot(x)
            } else if x.is_nan() {
                n.base + 1
            } else if x > 0.0 {
                n.base + 2
            } else {
                n.base + 3
            };
            counts[at] += 1;
        }
        for c in &self.categories {
            let value = match row.get(c.input) {
                Some(v @ (Value::Str(_) | Value::Bool(_) | Value::Int(_) | Value::UInt(_))) => v,
                _ => {
                    counts[c.base] += 1;
                    continue;
                }
            };
            // The output's index of the value, when it is a listed one.
            if let Some((output, slots)) = &c.shared
                && let Some(Value::Int(i)) = outputs.get(*output)
                && let Some(&at) = slots.get(*i as usize)
                && at != u32::MAX
            {
                counts[at as usize] += 1;
                continue;
            }
            let PlannedKind::Categorical { index, .. } = &self.columns[c.column].kind else {
                continue;
            };
            let mut buffer = [0u8; 20];
            let text: &str = match value {
                Value::Str(s) => s,
                Value::Bool(true) => "true",
                Value::Bool(false) => "false",
                Value::Int(i) => decimal(*i as i128, &mut buffer),
                Value::UInt(u) => decimal(*u as i128, &mut buffer),
                _ => unreachable!("matched above"),
            };
            match index.position(text) {
                Some(i) => counts[c.base + 1 + i as usize] += 1,
                None => {
                    let unseen = &mut tally.unseen[c.column];
                    if let Some(n) = unseen.get_mut(text) {
                        *n += 1;
                    } else if unseen.len() < UNSEEN_KEPT {
                        unseen.insert(text.to_string(), 1);
                    } else {
                        *unseen.entry(MORE_UNSEEN.to_string()).or_default() += 1;
                    }
                }
            }
        }
        for &(input, base) in &self.summaries {
            let at = match row.get(input) {
                None | Some(Value::Null) => 0,
                Some(Value::Float(f)) if f.is_nan() => 2,
                Some(Value::Float(f)) if *f == f64::INFINITY => 3,
                Some(Value::Float(f)) if *f == f64::NEG_INFINITY => 4,
                Some(_) => 1,
            };
            counts[base + at] += 1;
        }
    }

    /// The new data's profile of what `tally` counted: what
    /// [`super::count_new`] gives for the same rows.
    pub fn profile(&self, tally: &Tally) -> Profile {
        let columns = self
            .columns
            .iter()
            .zip(&self.training.columns)
            .enumerate()
            .map(|(k, (c, t))| {
                let n = &tally.counts[c.base..];
                let counts = match (&c.kind, &t.counts) {
                    (PlannedKind::Numeric { edges }, _) => Counts::Numeric {
                        count: n[4..4 + slots(edges.len())].iter().sum(),
                        nulls: n[0],
                        nan: n[1],
                        pos_inf: n[2],
                        neg_inf: n[3],
                        min: None,
                        max: None,
                        edges: edges.clone(),
                        slots: n[4..4 + slots(edges.len())].to_vec(),
                    },
                    (
                        PlannedKind::Categorical { listed, .. },
                        Counts::Categorical { values, .. },
                    ) => {
                        let mut seen: Vec<(String, u64)> = values
                            .iter()
                            .zip(&n[1..1 + listed])
                            .filter(|(_, c)| **c > 0)
                            .map(|((v, _), c)| (v.clone(), *c))
                            .collect();
                        seen.extend(tally.unseen[k].iter().map(|(v, c)| (v.clone(), *c)));
                        seen.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                        Counts::Categorical {
                            count: seen.iter().map(|(_, c)| c).sum(),
                            nulls: n[0],
                            distinct: Some(seen.len() as u64),
                            values: seen,
                            other: 0,
                        }
                    }
                    (_, Counts::Categorical { .. }) => Counts::Categorical {
                        count: n[1],
                        nulls: n[0],
                        distinct: None,
                        values: Vec::new(),
                        other: n[1],
                    },
                    _ => Counts::Numeric {
                        count: n[1],
                        nulls: n[0],
                        nan: n[2],
                        pos_inf: n[3],
                        neg_inf: n[4],
                        min: None,
                        max: None,
                        edges: Vec::new(),
                        slots: Vec::new(),
                    },
                };
                ColumnProfile {
                    name: t.name.clone(),
                    data_type: t.data_type.clone(),
                    counts,
                }
            })
            .collect();
        Profile {
            table: self.training.table.clone(),
            rows: tally.rows,
            bins: self.training.bins,
            cap: self.training.cap,
            columns,
            // Serving applies no WHERE: served rows say nothing of it.
            filter: None,
        }
    }
}

impl Tally {
    /// Adds the counts of `other`, a tally of the same plan.
    pub fn add(&mut self, other: &Tally) {
        self.rows += other.rows;
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
            self.unseen.resize(other.unseen.len(), HashMap::new());
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        for (mine, theirs) in self.unseen.iter_mut().zip(&other.unseen) {
            for (v, n) in theirs {
                *mine.entry(v.clone()).or_default() += n;
            }
        }
    }

    /// Back to no rows, keeping the memory.
    pub fn clear(&mut self) {
        self.rows = 0;
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.unseen.iter_mut().for_each(HashMap::clear);
    }
}

/// `n` in decimal, in `buffer`.
fn decimal(n: i128, buffer: &mut [u8; 20]) -> &str {
    let negative = n < 0;
    let mut m = n.unsigned_abs();
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if negative {
        at -= 1;
        buffer[at] = b'-';
    }
    std::str::from_utf8(&buffer[at..]).expect("ASCII digits")
}

#[cfg(test)]
mod tests {
    use super::{Number, decimal, slot};

    #[test]
    fn the_fast_slots_are_the_kernels_slots() {
        // Repeated edges (a column mostly 0), integer and fractional
        // edges, more edges than the padded 16, a span too wide to
        // tabulate, one edge.
        let cases: [&[f64]; 6] = [
            &[0.0, 0.0, 0.0, 5.0, 7.0, 7.0, 4000.0],
            &[
                17.0, 22.0, 26.0, 30.0, 33.0, 37.0, 41.0, 45.0, 50.0, 58.0, 90.0,
            ],
            &[-3.5, -1.0, 0.25, 2.0],
            &[
                0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0,
                15.0, 16.0, 17.0, 18.0, 19.0,
            ],
            &[0.0, 3.0, 99999.0],
            &[4.0],
        ];
        for edges in cases {
            let n = Number::new(0, 0, edges);
            for i in -20i64..4200 {
                assert_eq!(n.int_slot(i), slot(edges, i as f64), "{edges:?} at {i}");
            }
            for i in [i64::MIN, i64::MAX, 99998, 99999, 100_000] {
                assert_eq!(n.int_slot(i), slot(edges, i as f64), "{edges:?} at {i}");
            }
            for k in -400..4000 {
                let x = f64::from(k) * 0.25;
                assert_eq!(n.slot(x), slot(edges, x), "{edges:?} at {x}");
            }
            assert_eq!(n.slot(-0.0), slot(edges, 0.0));
        }
    }

    #[test]
    fn decimals() {
        let mut b = [0u8; 20];
        assert_eq!(decimal(0, &mut b), "0");
        assert_eq!(decimal(-42, &mut b), "-42");
        assert_eq!(decimal(i64::MIN as i128, &mut b), "-9223372036854775808");
        assert_eq!(decimal(u64::MAX as i128, &mut b), "18446744073709551615");
    }
}

/// The tallies of the most recent served rows, one per second: what a
/// server's validation endpoint reports. Seconds are dropped from the
/// oldest while the rest still hold `rows` rows, so the report covers the
/// last `rows` rows served (and at most one second more).
#[derive(Debug)]
pub struct Recent {
    plan: std::sync::Arc<TallyPlan>,
    ring: std::sync::Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    seconds: std::collections::VecDeque<(u64, Tally)>,
    rows: u64,
}

impl Recent {
    pub fn new(plan: std::sync::Arc<TallyPlan>) -> Self {
        Self {
            plan,
            ring: Default::default(),
        }
    }

    pub fn plan(&self) -> &TallyPlan {
        &self.plan
    }

    /// Adds a request's tally, counted in second `now` (Unix seconds),
    /// keeping the last `rows` rows.
    pub fn add(&self, tally: &Tally, now: u64, rows: u64) {
        if tally.rows == 0 {
            return;
        }
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        match ring.seconds.back_mut() {
            Some((second, t)) if *second >= now => t.add(tally),
            _ => ring.seconds.push_back((now, tally.clone())),
        }
        ring.rows += tally.rows;
        while let Some((_, oldest)) = ring.seconds.front() {
            if ring.rows - oldest.rows < rows.max(1) {
                break;
            }
            ring.rows -= oldest.rows;
            ring.seconds.pop_front();
        }
    }

    /// Every held second's counts added up.
    pub fn total(&self) -> Tally {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let mut total = self.plan.tally();
        for (_, t) in &ring.seconds {
            total.add(t);
        }
        total
    }
}
