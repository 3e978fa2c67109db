//! Live skew: served rows counted over the training profile's slots, one
//! row at a time, into a caller-owned [`Tally`] — the counts `validate`
//! computes in batch, so a tally turned into a profile ([`Tally::profile`])
//! gives the same report by the same formulas ([`crate::validate`]).
//!
//! A [`TallyPlan`] is made once per evaluator from the artifact's profile:
//! per profiled column its input slot, its edges or a table of its training
//! values. Counting a row is a binary search per number and a hash lookup
//! per category, into plain integer counters: no allocation but for an
//! unseen value the first time it is seen.

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
    numbers: Vec<(usize, usize, Box<[f64]>)>,
    categories: Vec<(usize, usize, usize)>,
    /// Counters per tally.
    width: usize,
    training: Profile,
    /// The checksum of the artifact the profile comes from.
    artifact: String,
    /// The training profile's out-of-vocabulary shares, worked out on the
    /// first report (they do not change).
    training_oov: std::sync::OnceLock<Vec<(String, String, Option<f64>)>>,
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
    /// Counters: nulls, nan, +inf, −inf, finite, then one per slot.
    Numeric { edges: Vec<f64> },
    /// Counters: nulls, non-NULL, then one per training value listed.
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
    /// column the evaluator does not read is left out).
    pub fn new(profile: &Profile, inputs: &[String], artifact: &str) -> Self {
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
                PlannedKind::Numeric { edges } => 5 + slots(edges.len()),
                PlannedKind::Categorical { listed, .. } => 2 + listed,
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
                PlannedKind::Numeric { edges } => Some((c.input, c.base, edges.clone().into())),
                _ => None,
            })
            .collect();
        let categories = columns
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c.kind, PlannedKind::Categorical { .. }))
            .map(|(k, c)| (c.input, c.base, k))
            .collect();
        Self {
            columns,
            numbers,
            categories,
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
    /// order) into `tally`.
    #[inline]
    pub fn count(&self, row: &[Value<'_>], tally: &mut Tally) {
        tally.rows += 1;
        let counts = &mut tally.counts[..];
        for (input, base, edges) in &self.numbers {
            let x = match row.get(*input) {
                Some(Value::Float(f)) => *f,
                Some(Value::Int(i)) => *i as f64,
                Some(Value::UInt(u)) => *u as f64,
                Some(Value::Bool(b)) => f64::from(u8::from(*b)),
                _ => {
                    counts[*base] += 1;
                    continue;
                }
            };
            let at = if x.is_finite() {
                counts[base + 4] += 1;
                base + 5 + fast_slot(edges, x)
            } else if x.is_nan() {
                base + 1
            } else if x > 0.0 {
                base + 2
            } else {
                base + 3
            };
            counts[at] += 1;
        }
        for &(input, base, k) in &self.categories {
            let PlannedKind::Categorical { index, .. } = &self.columns[k].kind else {
                continue;
            };
            let mut buffer = [0u8; 20];
            let text: &str = match row.get(input) {
                Some(Value::Str(s)) => s,
                Some(Value::Bool(true)) => "true",
                Some(Value::Bool(false)) => "false",
                Some(Value::Int(i)) => decimal(*i as i128, &mut buffer),
                Some(Value::UInt(u)) => decimal(*u as i128, &mut buffer),
                _ => {
                    counts[base] += 1;
                    continue;
                }
            };
            counts[base + 1] += 1;
            match index.position(text) {
                Some(i) => counts[base + 2 + i as usize] += 1,
                None => {
                    let unseen = &mut tally.unseen[k];
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
        for c in &self.columns {
            if !matches!(c.kind, PlannedKind::Summary) {
                continue;
            }
            let at = match row.get(c.input) {
                None | Some(Value::Null) => 0,
                Some(Value::Float(f)) if f.is_nan() => 2,
                Some(Value::Float(f)) if *f == f64::INFINITY => 3,
                Some(Value::Float(f)) if *f == f64::NEG_INFINITY => 4,
                Some(_) => 1,
            };
            counts[c.base + at] += 1;
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
                        count: n[4],
                        nulls: n[0],
                        nan: n[1],
                        pos_inf: n[2],
                        neg_inf: n[3],
                        min: None,
                        max: None,
                        edges: edges.clone(),
                        slots: n[5..5 + slots(edges.len())].to_vec(),
                    },
                    (
                        PlannedKind::Categorical { listed, .. },
                        Counts::Categorical { values, .. },
                    ) => {
                        let mut seen: Vec<(String, u64)> = values
                            .iter()
                            .zip(&n[2..2 + listed])
                            .filter(|(_, c)| **c > 0)
                            .map(|((v, _), c)| (v.clone(), *c))
                            .collect();
                        seen.extend(tally.unseen[k].iter().map(|(v, c)| (v.clone(), *c)));
                        seen.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                        Counts::Categorical {
                            count: n[1],
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

/// [`slot`] of a finite `x`, counting the edges at or below it without
/// branches (profiles have few edges).
#[inline]
fn fast_slot(edges: &[f64], x: f64) -> usize {
    match edges {
        [] => 1,
        [first, .., last] | [first @ last] => {
            if x < *first || x >= *last {
                slot(edges, x)
            } else {
                edges.iter().map(|e| usize::from(*e <= x)).sum()
            }
        }
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
    use super::decimal;

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
