//! Window aggregations over an entity's events: the window rule (which
//! events the window of a row at time t holds) and the window state (the
//! aggregate of the values in it).
//!
//! Times are integers in the unit of the time column (nanoseconds, …,
//! days, or plain integers); the rule's length and hop are in the same unit.
//! A window's result is a function of the *multiset* of (time, value) events
//! it holds, never of the order they were added or taken back in: sums are
//! exact ([`crate::kernel::exact::ExactSum`]), the other aggregates keep
//! their values in ordered maps. So the batch path (a sweep over sorted
//! events) and the serving path (events pushed one by one) agree bit for
//! bit.

use std::collections::{BTreeMap, HashMap};

use super::exact::ExactSum;
use super::stats::{Finite, Moments, mean_of};

/// How a hop shapes the window (see [`WindowRule::bounds`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `[t − length, t)`: no hop.
    Sliding,
    /// `[floor_hop(t − length), t)`: the start moves by whole hops, so online
    /// state keeps one partial state per hop.
    Sawtooth,
    /// `[floor_hop(t) − length, floor_hop(t))`: the last complete window of
    /// a hopping series; with hop = length, the last complete tumbling
    /// window.
    Hopping,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Sliding => "sliding",
            Mode::Sawtooth => "sawtooth",
            Mode::Hopping => "hopping",
        }
    }
}

/// Which events the window of a row at time t holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowRule {
    pub length: i64,
    pub hop: Option<i64>,
    pub mode: Mode,
}

impl WindowRule {
    /// A rule from the arguments of a window function: a positive `length`;
    /// a positive `hop` dividing `length`; `mode` `'sawtooth'` (the default
    /// with a hop) or `'hopping'`, which need a hop, or `'sliding'` (the
    /// default without). The error says which
    /// argument is wrong, in the words of the function's signature.
    pub fn new(length: i64, hop: Option<i64>, mode: Option<&str>) -> Result<Self, String> {
        if length <= 0 {
            return Err(format!("length must be positive, got {length}"));
        }
        let mode = match (hop, mode.map(|m| m.trim().to_ascii_lowercase())) {
            (None, None) => Mode::Sliding,
            (None, Some(m)) if m == "sliding" => Mode::Sliding,
            (None, Some(m)) => {
                return Err(format!("mode '{m}' needs a hop (the 4th argument)"));
            }
            (Some(_), None) => Mode::Sawtooth,
            (Some(_), Some(m)) => match m.as_str() {
                "sawtooth" => Mode::Sawtooth,
                "hopping" => Mode::Hopping,
                "sliding" => return Err("mode 'sliding' takes no hop (pass NULL)".into()),
                _ => {
                    return Err(format!(
                        "mode must be 'sliding', 'sawtooth' or 'hopping', got '{m}'"
                    ));
                }
            },
        };
        if let Some(h) = hop {
            if h <= 0 {
                return Err(format!("hop must be positive, got {h}"));
            }
            if length % h != 0 {
                return Err(format!("hop {h} does not divide length {length}"));
            }
        }
        Ok(Self { length, hop, mode })
    }

    /// The window of a row at time `t`: the events with `lo ≤ ts < hi`.
    /// Both bounds are non-decreasing in `t`, `lo < hi`, and `hi ≤ t`: a row
    /// never sees an event at its own instant.
    #[inline]
    pub fn bounds(&self, t: i64) -> (i64, i64) {
        match (self.mode, self.hop) {
            (Mode::Sawtooth, Some(h)) => (floor_to(t.saturating_sub(self.length), h), t),
            (Mode::Hopping, Some(h)) => {
                let end = floor_to(t, h);
                (end.saturating_sub(self.length), end)
            }
            _ => (t.saturating_sub(self.length), t),
        }
    }

    /// The longest span before `t` that a window of `t` can reach back: the
    /// state an online store must keep per entity.
    pub fn reach(&self) -> i64 {
        match self.hop {
            Some(h) => self.length.saturating_add(h),
            None => self.length,
        }
    }

    /// The rule in words, lengths in `unit` (for `--explain`).
    pub fn describe(&self, unit: TimeUnit) -> String {
        let length = unit.words(self.length);
        match (self.mode, self.hop) {
            (Mode::Sawtooth, Some(h)) => format!(
                "the events from {length} before t, rounded down to a whole {hop}, up to t (t excluded)",
                hop = unit.words(h)
            ),
            (Mode::Hopping, Some(h)) => format!(
                "the {length} up to t rounded down to a whole {hop} (the last complete window; t's own {hop} excluded)",
                hop = unit.words(h)
            ),
            _ => format!("the events of the {length} before t (t excluded)"),
        }
    }
}

/// The unit of a time column, for describing lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// Timestamps with this many units a second (1 for seconds, 10⁹ for
    /// nanoseconds).
    Time { per_second: i64 },
    /// Days (a date column).
    Days,
    /// Plain integers.
    Integer,
}

impl TimeUnit {
    /// `n` units in words: `24 hours`, `90 seconds`, `1.5 seconds`, `3 days`, `3`.
    pub fn words(self, n: i64) -> String {
        match self {
            TimeUnit::Integer => n.to_string(),
            TimeUnit::Days => plural(n, "day"),
            TimeUnit::Time { per_second } => {
                if n % per_second != 0 {
                    let seconds = n as f64 / per_second as f64;
                    return format!("{seconds} seconds");
                }
                let s = n / per_second;
                // Days from two on (a window of 24 hours reads as written).
                for (size, name) in [(86_400, "day"), (3_600, "hour"), (60, "minute")] {
                    if s % size == 0 && (size != 86_400 || s.abs() >= 2 * 86_400) {
                        return plural(s / size, name);
                    }
                }
                plural(s, "second")
            }
        }
    }
}

fn plural(n: i64, name: &str) -> String {
    if n.abs() == 1 {
        format!("{n} {name}")
    } else {
        format!("{n} {name}s")
    }
}

/// `x` rounded down to a multiple of `h` (toward −∞, so correct before the
/// epoch: `floor_to(-1, 10)` is −10).
#[inline]
pub fn floor_to(x: i64, h: i64) -> i64 {
    x.saturating_sub(x.rem_euclid(h))
}

/// The window aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Agg {
    Count,
    Sum,
    Mean,
    Min,
    Max,
    /// Population variance (divisor n).
    Var,
    /// Population standard deviation: the IEEE square root of [`Agg::Var`].
    Stddev,
    /// The value of the latest event (ties at one instant: the greatest
    /// value).
    Last,
    /// The number of distinct values, exactly.
    DistinctCount,
}

impl Agg {
    pub const ALL: [Agg; 9] = [
        Agg::Count,
        Agg::Sum,
        Agg::Mean,
        Agg::Min,
        Agg::Max,
        Agg::Var,
        Agg::Stddev,
        Agg::Last,
        Agg::DistinctCount,
    ];

    /// The SQL name: `window_count`, …
    pub fn name(self) -> &'static str {
        match self {
            Agg::Count => "window_count",
            Agg::Sum => "window_sum",
            Agg::Mean => "window_mean",
            Agg::Min => "window_min",
            Agg::Max => "window_max",
            Agg::Var => "window_var",
            Agg::Stddev => "window_stddev",
            Agg::Last => "window_last",
            Agg::DistinctCount => "window_distinct_count",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The result of a count, sum, mean, var or stddev over the values of
    /// `m`: the one finalization of windows and of the `exact_*`
    /// aggregates of tumbling tables. `Value(None)` for the other
    /// aggregates.
    pub fn of_moments(self, m: &Moments) -> WindowValue {
        let value = |v: f64| WindowValue::Value((m.count > 0).then_some(settled(v)));
        match self {
            Agg::Count => WindowValue::Count(m.count as i64),
            Agg::Sum => value(m.sum.value()),
            Agg::Mean => value(m.mean()),
            Agg::Var => value(m.variance()),
            Agg::Stddev => value(m.variance().sqrt()),
            _ => WindowValue::Value(None),
        }
    }

    /// Whether the result is a count (Int64, 0 for an empty window) rather
    /// than a value (Float64, NULL for an empty window).
    pub fn is_count(self) -> bool {
        matches!(self, Agg::Count | Agg::DistinctCount)
    }
}

/// A window's key for distinct counts: the bytes of a value (a finite
/// float's normalised bits, an integer's, a string's).
pub type DistinctKey = Box<[u8]>;

/// The values a window holds, kept as its aggregate needs them. Events are
/// added and taken back ([`WindowState::retract`]) in any order; the result
/// depends only on the events held.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowState {
    /// Count: the number of values.
    Count(u64),
    /// Sum, mean: the number of values and their exact sum.
    Sum { count: u64, sum: ExactSum },
    /// Var, stddev: exact sums of x and x².
    Moments(Moments),
    /// Min, max: each value with its multiplicity.
    Ordered(BTreeMap<Finite, u32>),
    /// Min or max of values that are only ever added, never taken back
    /// (serving's per-hop tiles, [`WindowState::new_tile`]): the extreme
    /// so far and how many values gave it.
    Extreme {
        max: bool,
        value: Option<Finite>,
        count: u64,
    },
    /// Last: each (time, value) with its multiplicity.
    Latest(BTreeMap<(i64, Finite), u32>),
    /// Distinct count: each value's bytes with its multiplicity.
    Distinct(HashMap<DistinctKey, u32>),
}

impl WindowState {
    /// A state that values are only added to and merged from (a tile of
    /// serving's online state): for min and max, only the extreme is kept.
    pub fn new_tile(agg: Agg) -> Self {
        match agg {
            Agg::Min | Agg::Max => WindowState::Extreme {
                max: agg == Agg::Max,
                value: None,
                count: 0,
            },
            agg => WindowState::new(agg),
        }
    }

    pub fn new(agg: Agg) -> Self {
        match agg {
            Agg::Count => WindowState::Count(0),
            Agg::Sum | Agg::Mean => WindowState::Sum {
                count: 0,
                sum: ExactSum::default(),
            },
            Agg::Var | Agg::Stddev => WindowState::Moments(Moments::default()),
            Agg::Min | Agg::Max => WindowState::Ordered(BTreeMap::new()),
            Agg::Last => WindowState::Latest(BTreeMap::new()),
            Agg::DistinctCount => WindowState::Distinct(HashMap::new()),
        }
    }

    /// Adds the finite value `v` of an event at `ts` (callers skip NULL and
    /// non-finite values: [`Finite::new`]).
    #[inline]
    pub fn add(&mut self, ts: i64, v: Finite) {
        match self {
            WindowState::Count(n) => *n += 1,
            WindowState::Sum { count, sum } => {
                *count += 1;
                sum.add(v.get());
            }
            WindowState::Moments(m) => m.update(Some(v.get())),
            WindowState::Ordered(map) => *map.entry(v).or_insert(0) += 1,
            WindowState::Extreme { max, value, count } => {
                *count += 1;
                *value = Some(match *value {
                    Some(old) if *max => old.max(v),
                    Some(old) => old.min(v),
                    None => v,
                });
            }
            WindowState::Latest(map) => *map.entry((ts, v)).or_insert(0) += 1,
            WindowState::Distinct(map) => {
                *map.entry(number_key(v)).or_insert(0) += 1;
            }
        }
    }

    /// Takes back an event [`WindowState::add`] added.
    #[inline]
    pub fn retract(&mut self, ts: i64, v: Finite) {
        match self {
            WindowState::Count(n) => *n -= 1,
            WindowState::Sum { count, sum } => {
                *count -= 1;
                sum.add(-v.get());
            }
            WindowState::Moments(m) => m.retract(v.get()),
            WindowState::Ordered(map) => take(map, v),
            // Never taken back from (WindowState::new_tile).
            WindowState::Extreme { .. } => {
                debug_assert!(false, "a tile's extreme cannot be taken back")
            }
            WindowState::Latest(map) => take(map, (ts, v)),
            WindowState::Distinct(_) => self.retract_key(&number_key(v)),
        }
    }

    /// Adds a value by its bytes (distinct counts of strings and integers).
    #[inline]
    pub fn add_key(&mut self, key: &[u8]) {
        if let WindowState::Distinct(map) = self {
            match map.get_mut(key) {
                Some(n) => *n += 1,
                None => {
                    map.insert(key.into(), 1);
                }
            }
        }
    }

    /// Takes back a value [`WindowState::add_key`] added.
    #[inline]
    pub fn retract_key(&mut self, key: &[u8]) {
        if let WindowState::Distinct(map) = self
            && let Some(n) = map.get_mut(key)
        {
            *n -= 1;
            if *n == 0 {
                map.remove(key);
            }
        }
    }

    /// Adds every value of `other` (a state of the same aggregate): the
    /// state of both sets of events. Serving's tiles (one state per hop)
    /// merge this way.
    pub fn merge(&mut self, other: &WindowState) {
        fn add_all<K: Ord + Clone>(into: &mut BTreeMap<K, u32>, from: &BTreeMap<K, u32>) {
            for (k, n) in from {
                *into.entry(k.clone()).or_insert(0) += n;
            }
        }
        match (self, other) {
            (WindowState::Count(a), WindowState::Count(b)) => *a += b,
            (
                WindowState::Sum { count, sum },
                WindowState::Sum {
                    count: other_count,
                    sum: other_sum,
                },
            ) => {
                *count += other_count;
                sum.merge(other_sum);
            }
            (WindowState::Moments(a), WindowState::Moments(b)) => a.merge(b),
            (WindowState::Ordered(a), WindowState::Ordered(b)) => add_all(a, b),
            (
                WindowState::Extreme { max, value, count },
                WindowState::Extreme {
                    value: other,
                    count: other_count,
                    ..
                },
            ) => {
                *count += other_count;
                *value = match (*value, *other) {
                    (Some(a), Some(b)) if *max => Some(a.max(b)),
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            (WindowState::Latest(a), WindowState::Latest(b)) => add_all(a, b),
            (WindowState::Distinct(a), WindowState::Distinct(b)) => {
                for (k, n) in b {
                    *a.entry(k.clone()).or_insert(0) += n;
                }
            }
            // States of different aggregates (WindowState::new pairs them).
            _ => {}
        }
    }

    /// Appends the state in the binary form [`WindowState::decode`] reads
    /// (deterministic: map entries in key order).
    pub fn encode(&self, out: &mut Vec<u8>) {
        use super::bytes::Put;
        fn sum(out: &mut Vec<u8>, s: &ExactSum) {
            out.put_u64(s.partials().len() as u64);
            for &p in s.partials() {
                out.put_f64(p);
            }
        }
        match self {
            WindowState::Count(n) => {
                out.put_u8(0);
                out.put_u64(*n);
            }
            WindowState::Sum { count, sum: s } => {
                out.put_u8(1);
                out.put_u64(*count);
                sum(out, s);
            }
            WindowState::Moments(m) => {
                out.put_u8(2);
                out.put_u64(m.count);
                sum(out, &m.sum);
                sum(out, &m.sum_squares);
                out.put_u64(m.skipped.nulls);
                out.put_u64(m.skipped.non_finite);
            }
            WindowState::Ordered(map) => {
                out.put_u8(3);
                out.put_u64(map.len() as u64);
                for (v, n) in map {
                    out.put_f64(v.get());
                    out.put_u32(*n);
                }
            }
            WindowState::Extreme { max, value, count } => {
                out.put_u8(4);
                out.put_u8(u8::from(*max));
                match value {
                    Some(v) => {
                        out.put_u8(1);
                        out.put_f64(v.get());
                    }
                    None => out.put_u8(0),
                }
                out.put_u64(*count);
            }
            WindowState::Latest(map) => {
                out.put_u8(5);
                out.put_u64(map.len() as u64);
                for ((t, v), n) in map {
                    out.put_i64(*t);
                    out.put_f64(v.get());
                    out.put_u32(*n);
                }
            }
            WindowState::Distinct(map) => {
                out.put_u8(6);
                let mut entries: Vec<(&DistinctKey, &u32)> = map.iter().collect();
                entries.sort_unstable();
                out.put_u64(entries.len() as u64);
                for (k, n) in entries {
                    out.put_bytes(k);
                    out.put_u32(*n);
                }
            }
        }
    }

    /// Reads a state [`WindowState::encode`] wrote; `None` if the bytes
    /// are not one (truncated, an unknown tag, a non-finite value, a zero
    /// multiplicity).
    pub fn decode(r: &mut super::bytes::Reader<'_>) -> Option<Self> {
        fn sum(r: &mut super::bytes::Reader<'_>) -> Option<ExactSum> {
            let n = r.count(8)?;
            let mut partials = Vec::with_capacity(n);
            for _ in 0..n {
                partials.push(Finite::new(r.f64()?)?.get());
            }
            Some(ExactSum::from_exact_partials(partials))
        }
        fn multiplicity(r: &mut super::bytes::Reader<'_>) -> Option<u32> {
            r.u32().filter(|&n| n > 0)
        }
        Some(match r.u8()? {
            0 => WindowState::Count(r.u64()?),
            1 => WindowState::Sum {
                count: r.u64()?,
                sum: sum(r)?,
            },
            2 => {
                let count = r.u64()?;
                let s = sum(r)?;
                let sum_squares = sum(r)?;
                let mut m = Moments {
                    count,
                    sum: s,
                    sum_squares,
                    ..Moments::default()
                };
                m.skipped.nulls = r.u64()?;
                m.skipped.non_finite = r.u64()?;
                WindowState::Moments(m)
            }
            3 => {
                let n = r.count(12)?;
                let mut map = BTreeMap::new();
                for _ in 0..n {
                    let v = Finite::new(r.f64()?)?;
                    map.insert(v, multiplicity(r)?);
                }
                WindowState::Ordered(map)
            }
            4 => {
                let max = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return None,
                };
                let value = match r.u8()? {
                    0 => None,
                    1 => Some(Finite::new(r.f64()?)?),
                    _ => return None,
                };
                WindowState::Extreme {
                    max,
                    value,
                    count: r.u64()?,
                }
            }
            5 => {
                let n = r.count(20)?;
                let mut map = BTreeMap::new();
                for _ in 0..n {
                    let t = r.i64()?;
                    let v = Finite::new(r.f64()?)?;
                    map.insert((t, v), multiplicity(r)?);
                }
                WindowState::Latest(map)
            }
            6 => {
                let n = r.count(12)?;
                let mut map = HashMap::with_capacity(n);
                for _ in 0..n {
                    let k: DistinctKey = r.bytes()?.into();
                    map.insert(k, multiplicity(r)?);
                }
                WindowState::Distinct(map)
            }
            _ => return None,
        })
    }

    /// The number of values held.
    pub fn len(&self) -> u64 {
        match self {
            WindowState::Count(n)
            | WindowState::Sum { count: n, .. }
            | WindowState::Extreme { count: n, .. } => *n,
            WindowState::Moments(m) => m.count,
            WindowState::Ordered(map) => map.values().map(|&n| u64::from(n)).sum(),
            WindowState::Latest(map) => map.values().map(|&n| u64::from(n)).sum(),
            WindowState::Distinct(map) => map.values().map(|&n| u64::from(n)).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            WindowState::Count(n)
            | WindowState::Sum { count: n, .. }
            | WindowState::Extreme { count: n, .. } => *n == 0,
            WindowState::Moments(m) => m.count == 0,
            WindowState::Ordered(map) => map.is_empty(),
            WindowState::Latest(map) => map.is_empty(),
            WindowState::Distinct(map) => map.is_empty(),
        }
    }

    /// The aggregate of the values held: `Count` for the counts (0 when
    /// empty), `Value` for the others (`None` when empty).
    pub fn result(&self, agg: Agg) -> WindowValue {
        match (agg, self) {
            (Agg::Count, WindowState::Count(n)) => WindowValue::Count(*n as i64),
            (Agg::DistinctCount, WindowState::Distinct(map)) => {
                WindowValue::Count(map.len() as i64)
            }
            (_, s) if s.is_empty() => WindowValue::Value(None),
            (Agg::Sum, WindowState::Sum { sum, .. }) => {
                WindowValue::Value(Some(settled(sum.value())))
            }
            (Agg::Mean, WindowState::Sum { count, sum }) => {
                WindowValue::Value(Some(settled(mean_of(sum, *count))))
            }
            (agg, WindowState::Moments(m)) => agg.of_moments(m),
            (Agg::Min | Agg::Max, WindowState::Extreme { value, .. }) => {
                WindowValue::Value(value.map(Finite::get))
            }
            (Agg::Min, WindowState::Ordered(map)) => {
                WindowValue::Value(map.first_key_value().map(|(v, _)| v.get()))
            }
            (Agg::Max, WindowState::Ordered(map)) => {
                WindowValue::Value(map.last_key_value().map(|(v, _)| v.get()))
            }
            (Agg::Last, WindowState::Latest(map)) => {
                WindowValue::Value(map.last_key_value().map(|((_, v), _)| v.get()))
            }
            // A state made for another aggregate (WindowState::new pairs them).
            _ => WindowValue::Value(None),
        }
    }
}

/// A computed result as windows give it: a NaN (a sum whose running total
/// overflowed) is the one quiet NaN, whatever bits the arithmetic that made
/// it left (Rust does not fix a NaN's sign), so batch and serving agree.
#[inline]
fn settled(v: f64) -> f64 {
    if v.is_nan() { f64::NAN } else { v }
}

/// A window's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WindowValue {
    Count(i64),
    Value(Option<f64>),
}

/// A value of an event, for [`aggregate`].
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    /// A finite number.
    Number(Finite),
    /// The bytes of a string or an integer (distinct counts).
    Key(&'a [u8]),
}

/// The aggregate of the events of one window in one pass: the result that
/// adding them to a [`WindowState`] gives ([`WindowState::result`]), without
/// its maps (serving asks each window once, nothing to take back). Events
/// come as (time, value) in any order.
pub fn aggregate<'a>(agg: Agg, events: impl Iterator<Item = (i64, Item<'a>)>) -> WindowValue {
    let numbers = events.filter_map(|(ts, item)| match item {
        Item::Number(v) => Some((ts, v)),
        Item::Key(_) => None,
    });
    match agg {
        Agg::Count => WindowValue::Count(numbers.count() as i64),
        // One accumulator per thread, reused: no allocation per window.
        Agg::Sum | Agg::Mean => SUM.with_borrow_mut(|sum| {
            sum.clear();
            let mut numbers = numbers.map(|(_, v)| v.get());
            let Some(mut plain) = numbers.next() else {
                return WindowValue::Value(None);
            };
            let mut count = 1;
            // While every addition is exact (most windows of integer or
            // few-digit values), the plain sum is the exact one: the
            // accumulator would hold it as its only partial. At the first
            // inexact step (or overflow: the error is then NaN) it takes
            // over from there, with the same partials as if it had added
            // every value.
            //
            // The loops are the iterator's own (`try_for_each`, `for_each`)
            // rather than `next()` calls: over a window's chain of adapters
            // that is one tight loop instead of a call per event.
            let mut rounded = None;
            let _ = numbers.by_ref().try_for_each(|x| {
                count += 1;
                let (hi, error) = crate::kernel::exact::two_sum(plain, x);
                if error != 0.0 {
                    rounded = Some(x);
                    return std::ops::ControlFlow::Break(());
                }
                plain = hi;
                std::ops::ControlFlow::Continue(())
            });
            sum.add(plain);
            if let Some(x) = rounded {
                sum.add(x);
                numbers.for_each(|x| {
                    sum.add(x);
                    count += 1;
                });
            }
            WindowValue::Value(Some(settled(match agg {
                Agg::Sum => sum.value(),
                _ => mean_of(sum, count),
            })))
        }),
        Agg::Var | Agg::Stddev => MOMENTS.with_borrow_mut(|m| {
            m.clear();
            numbers.for_each(|(_, v)| m.update(Some(v.get())));
            if m.count == 0 {
                WindowValue::Value(None)
            } else {
                agg.of_moments(m)
            }
        }),
        Agg::Min => WindowValue::Value(numbers.map(|(_, v)| v).min().map(Finite::get)),
        Agg::Max => WindowValue::Value(numbers.map(|(_, v)| v).max().map(Finite::get)),
        Agg::Last => WindowValue::Value(numbers.max().map(|(_, v)| v.get())),
        Agg::DistinctCount => unreachable!("distinct counts: aggregate_distinct"),
    }
}

thread_local! {
    static MOMENTS: std::cell::RefCell<Moments> = std::cell::RefCell::new(Moments::default());
    static SUM: std::cell::RefCell<ExactSum> = std::cell::RefCell::new(ExactSum::default());
}

/// [`aggregate`] for `window_distinct_count`: the number of distinct values
/// (numbers by their normalised bits, as [`number_key`], keys by bytes).
/// Each value is hashed; the first 16 distinct ones are kept in a list on
/// the stack and found by comparing hashes (no table to clear per window),
/// more go into an open-addressing table. Equal hashes are compared by
/// value, so a collision never merges two values.
pub fn aggregate_distinct<'a>(events: impl Iterator<Item = Item<'a>>) -> WindowValue {
    use std::hash::BuildHasher;
    const LISTED: usize = 16;
    let hasher = foldhash::fast::FixedState::with_seed(0x0D15_71C7);
    let same = |a: Item<'_>, b: Item<'_>| match (a, b) {
        (Item::Number(x), Item::Number(y)) => x == y,
        (Item::Key(x), Item::Key(y)) => x == y,
        _ => false,
    };
    let mut listed: arrayvec::ArrayVec<(u64, Item<'a>), LISTED> = arrayvec::ArrayVec::new();
    let mut table: Vec<Option<(u64, Item<'a>)>> = Vec::new();
    let mut distinct = 0usize;
    // The iterator's own loop (`for_each`), not a `next()` call per event.
    events.for_each(|item| {
        let h = match item {
            Item::Number(v) => hasher.hash_one(v.get().to_bits()),
            Item::Key(k) => hasher.hash_one(k),
        };
        if table.is_empty() {
            if listed.iter().any(|&(g, seen)| g == h && same(seen, item)) {
                return;
            }
            if listed.try_push((h, item)).is_ok() {
                distinct += 1;
                return;
            }
            // The 17th distinct value: the listed ones move to a table.
            table = vec![None; 4 * LISTED];
            for &(g, it) in &listed {
                insert_distinct(&mut table, g, it, same);
            }
        }
        if 2 * (distinct + 1) > table.len() {
            let size = 2 * table.len();
            let old = std::mem::replace(&mut table, vec![None; size]);
            for (g, it) in old.into_iter().flatten() {
                insert_distinct(&mut table, g, it, same);
            }
        }
        if insert_distinct(&mut table, h, item, same) {
            distinct += 1;
        }
    });
    WindowValue::Count(distinct as i64)
}

/// Puts `item` (hash `h`) in an open-addressing table (a power of two in
/// size, never full) unless it holds it: whether it was new.
fn insert_distinct<'a>(
    table: &mut [Option<(u64, Item<'a>)>],
    h: u64,
    item: Item<'a>,
    same: impl Fn(Item<'_>, Item<'_>) -> bool,
) -> bool {
    let mask = table.len() - 1;
    let mut at = (h as usize) & mask;
    loop {
        match table[at] {
            None => {
                table[at] = Some((h, item));
                return true;
            }
            Some((g, seen)) if g == h && same(seen, item) => return false,
            Some(_) => at = (at + 1) & mask,
        }
    }
}

/// The distinct-count key of a finite number.
#[inline]
pub fn number_key(v: Finite) -> DistinctKey {
    Box::new(v.get().to_bits().to_le_bytes())
}

fn take<K: Ord>(map: &mut BTreeMap<K, u32>, key: K) {
    if let std::collections::btree_map::Entry::Occupied(mut e) = map.entry(key) {
        *e.get_mut() -= 1;
        if *e.get() == 0 {
            e.remove();
        }
    }
}

/// The window results of rows over one entity's events, by a sweep: `events`
/// are (time, value) sorted by time, `rows` the rows' times sorted
/// ascending. Each row's result goes to `emit` (its index in `rows`, the
/// result), in the order of `rows`.
///
/// The events a row's window holds are a contiguous run of the sorted events
/// ([`WindowRule::bounds`] are non-decreasing in t), so each event is added
/// once and taken back once.
pub fn sweep<V: Copy>(
    rule: &WindowRule,
    agg: Agg,
    events: &[(i64, V)],
    rows: &[i64],
    add: impl Fn(&mut WindowState, i64, V),
    retract: impl Fn(&mut WindowState, i64, V),
    mut emit: impl FnMut(usize, WindowValue),
) {
    let mut state = WindowState::new(agg);
    let (mut first, mut end) = (0, 0);
    for (k, &t) in rows.iter().enumerate() {
        let (lo, hi) = rule.bounds(t);
        while end < events.len() && events[end].0 < hi {
            add(&mut state, events[end].0, events[end].1);
            end += 1;
        }
        while first < end && events[first].0 < lo {
            retract(&mut state, events[first].0, events[first].1);
            first += 1;
        }
        emit(k, state.result(agg));
    }
}

/// [`sweep`] for `window_min` and `window_max` over finite values: the
/// same results (the least or greatest value in each row's window, by
/// [`Finite`]'s order), from a queue of the values that can still be the
/// extreme (each later than every value kept behind it and more extreme),
/// in place of a map of every value held.
pub fn sweep_extreme(
    rule: &WindowRule,
    agg: Agg,
    events: &[(i64, Finite)],
    rows: &[i64],
    mut emit: impl FnMut(usize, WindowValue),
) {
    let max = agg == Agg::Max;
    // Indices into `events`; their values strictly decrease (max) or
    // increase (min) from the front.
    let mut queue: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    let (mut first, mut end) = (0, 0);
    for (k, &t) in rows.iter().enumerate() {
        let (lo, hi) = rule.bounds(t);
        while end < events.len() && events[end].0 < hi {
            let v = events[end].1;
            while let Some(&b) = queue.back() {
                let behind = events[b].1;
                if (max && behind <= v) || (!max && behind >= v) {
                    queue.pop_back();
                } else {
                    break;
                }
            }
            queue.push_back(end);
            end += 1;
        }
        while first < end && events[first].0 < lo {
            first += 1;
        }
        while queue.front().is_some_and(|&f| f < first) {
            queue.pop_front();
        }
        emit(
            k,
            WindowValue::Value(queue.front().map(|&i| events[i].1.get())),
        );
    }
}

/// [`sweep`] with knowledge time: an event counts for a row at `t` only if
/// it had arrived by then (`arrival ≤ t`) as well as falling in the row's
/// window. `events` are (time, arrival, value) in any order; `rows` the
/// rows' times sorted ascending; results go to `emit` as in [`sweep`].
pub fn sweep_known<V: Copy>(
    rule: &WindowRule,
    agg: Agg,
    events: &[(i64, i64, V)],
    rows: &[i64],
    add: impl Fn(&mut WindowState, i64, V),
    retract: impl Fn(&mut WindowState, i64, V),
    mut emit: impl FnMut(usize, WindowValue),
) {
    let mut by_arrival: Vec<usize> = (0..events.len()).collect();
    by_arrival.sort_by_key(|&i| (events[i].1, i));
    let mut state = WindowState::new(agg);
    // Arrived events not yet in the window (time ≥ hi), and those in it,
    // each by (time, index).
    let mut waiting: BTreeMap<(i64, usize), ()> = BTreeMap::new();
    let mut inside: BTreeMap<(i64, usize), ()> = BTreeMap::new();
    let mut next = 0;
    for (k, &t) in rows.iter().enumerate() {
        let (lo, hi) = rule.bounds(t);
        while next < by_arrival.len() && events[by_arrival[next]].1 <= t {
            let i = by_arrival[next];
            let ts = events[i].0;
            if ts >= hi {
                waiting.insert((ts, i), ());
            } else if ts >= lo {
                add(&mut state, ts, events[i].2);
                inside.insert((ts, i), ());
            }
            next += 1;
        }
        while let Some((&(ts, i), _)) = waiting.first_key_value() {
            if ts >= hi {
                break;
            }
            waiting.pop_first();
            if ts >= lo {
                add(&mut state, ts, events[i].2);
                inside.insert((ts, i), ());
            }
        }
        while let Some((&(ts, i), _)) = inside.first_key_value() {
            if ts >= lo {
                break;
            }
            inside.pop_first();
            retract(&mut state, ts, events[i].2);
        }
        emit(k, state.result(agg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64) -> Finite {
        Finite::new(v).unwrap()
    }

    #[test]
    fn a_state_read_back_answers_as_the_state_written() {
        let values = [0.1, 0.2, 1e16, -1e16, 0.3, 0.1, -2.5];
        let mut states: Vec<(Agg, WindowState)> = Vec::new();
        for agg in Agg::ALL {
            let mut s = WindowState::new(agg);
            for (i, &v) in values.iter().enumerate() {
                s.add(i as i64 - 3, f(v));
            }
            s.add_key(b"k");
            states.push((agg, s));
        }
        for agg in [Agg::Min, Agg::Max] {
            let mut s = WindowState::new_tile(agg);
            for &v in &values {
                s.add(0, f(v));
            }
            states.push((agg, s));
            states.push((agg, WindowState::new_tile(agg)));
        }
        // The exact sum, correctly rounded (Python's math.fsum gives -1.8;
        // adding left to right gives -2.1): it survives the round trip.
        assert_eq!(states[1].1.result(Agg::Sum), WindowValue::Value(Some(-1.8)));
        for (agg, s) in &states {
            let mut bytes = Vec::new();
            s.encode(&mut bytes);
            let mut r = super::super::bytes::Reader::new(&bytes);
            let back = WindowState::decode(&mut r).expect("decodes");
            assert_eq!(r.remaining(), 0, "{agg:?}");
            assert_eq!(&back, s, "{agg:?}");
            assert_eq!(back.result(*agg), s.result(*agg), "{agg:?}");
            let mut again = Vec::new();
            back.encode(&mut again);
            assert_eq!(again, bytes, "{agg:?}: the same bytes");
            // Every truncation is refused, never a panic.
            for cut in 0..bytes.len() {
                let mut r = super::super::bytes::Reader::new(&bytes[..cut]);
                assert_eq!(WindowState::decode(&mut r), None, "{agg:?} cut at {cut}");
            }
        }
        // A non-finite number is not a state.
        let mut bad = Vec::new();
        WindowState::Ordered(BTreeMap::from([(f(1.0), 1)])).encode(&mut bad);
        bad[9..17].copy_from_slice(&f64::NAN.to_bits().to_le_bytes());
        assert_eq!(
            WindowState::decode(&mut super::super::bytes::Reader::new(&bad)),
            None
        );
    }

    /// [`sweep`] over (time, finite f64) events.
    fn sweep_f(
        rule: &WindowRule,
        agg: Agg,
        events: &[(i64, f64)],
        rows: &[i64],
    ) -> Vec<WindowValue> {
        let events: Vec<(i64, Finite)> = events.iter().map(|&(t, v)| (t, f(v))).collect();
        let (add, retract) = (WindowState::add, WindowState::retract);
        let mut out = Vec::new();
        sweep(rule, agg, &events, rows, add, retract, |_, r| out.push(r));
        out
    }

    /// [`sweep_extreme`] over (time, finite f64) events.
    fn sweep_extreme_f(
        rule: &WindowRule,
        agg: Agg,
        events: &[(i64, f64)],
        rows: &[i64],
    ) -> Vec<WindowValue> {
        let events: Vec<(i64, Finite)> = events.iter().map(|&(t, v)| (t, f(v))).collect();
        let mut out = Vec::new();
        sweep_extreme(rule, agg, &events, rows, |_, r| out.push(r));
        out
    }

    /// [`sweep_known`] over (time, arrival, finite f64) events.
    fn sweep_known_f(
        rule: &WindowRule,
        agg: Agg,
        events: &[(i64, i64, f64)],
        rows: &[i64],
    ) -> Vec<WindowValue> {
        let events: Vec<(i64, i64, Finite)> =
            events.iter().map(|&(t, a, v)| (t, a, f(v))).collect();
        let (add, retract) = (WindowState::add, WindowState::retract);
        let mut out = Vec::new();
        sweep_known(rule, agg, &events, rows, add, retract, |_, r| out.push(r));
        out
    }

    /// The window of each row, from scratch: the reference for the sweep.
    fn scratch(rule: &WindowRule, agg: Agg, events: &[(i64, f64)], t: i64) -> WindowValue {
        let (lo, hi) = rule.bounds(t);
        let mut s = WindowState::new(agg);
        for &(ts, v) in events {
            if lo <= ts && ts < hi {
                s.add(ts, f(v));
            }
        }
        s.result(agg)
    }

    #[test]
    fn rules_and_their_errors() {
        let sliding = WindowRule::new(10, None, None).unwrap();
        assert_eq!(sliding.bounds(25), (15, 25));
        let saw = WindowRule::new(10, Some(5), None).unwrap();
        assert_eq!(saw.mode, Mode::Sawtooth);
        // floor_5(27 − 10) = 15.
        assert_eq!(saw.bounds(27), (15, 27));
        let hopping = WindowRule::new(10, Some(5), Some("hopping")).unwrap();
        // floor_5(27) = 25: [15, 25).
        assert_eq!(hopping.bounds(27), (15, 25));
        // Before the epoch: floor_5(-3) = -5, floor_5(-13) = -15.
        assert_eq!(hopping.bounds(-3), (-15, -5));
        assert_eq!(saw.bounds(-3), (-15, -3));
        assert_eq!(floor_to(-10, 5), -10);
        assert_eq!(floor_to(i64::MIN + 1, 10), i64::MIN);
        assert_eq!(
            WindowRule::new(0, None, None).unwrap_err(),
            "length must be positive, got 0"
        );
        assert_eq!(
            WindowRule::new(10, Some(3), None).unwrap_err(),
            "hop 3 does not divide length 10"
        );
        assert_eq!(
            WindowRule::new(10, Some(-5), None).unwrap_err(),
            "hop must be positive, got -5"
        );
        assert_eq!(
            WindowRule::new(10, None, Some("hopping")).unwrap_err(),
            "mode 'hopping' needs a hop (the 4th argument)"
        );
        assert_eq!(
            WindowRule::new(10, Some(5), Some("tumbling")).unwrap_err(),
            "mode must be 'sliding', 'sawtooth' or 'hopping', got 'tumbling'"
        );
        assert_eq!(
            WindowRule::new(10, None, Some("sliding")).unwrap(),
            WindowRule::new(10, None, None).unwrap()
        );
        assert_eq!(
            WindowRule::new(10, Some(5), Some("sliding")).unwrap_err(),
            "mode 'sliding' takes no hop (pass NULL)"
        );
        assert_eq!(saw.reach(), 15);
    }

    #[test]
    fn rules_in_words() {
        let ns = TimeUnit::Time {
            per_second: 1_000_000_000,
        };
        let hour = 3_600 * 1_000_000_000;
        let r = WindowRule::new(24 * hour, None, None).unwrap();
        assert_eq!(
            r.describe(ns),
            "the events of the 24 hours before t (t excluded)"
        );
        let r = WindowRule::new(hour, Some(hour / 12), None).unwrap();
        assert_eq!(
            r.describe(ns),
            "the events from 1 hour before t, rounded down to a whole 5 minutes, up to t (t excluded)"
        );
        assert_eq!(
            TimeUnit::Time { per_second: 1000 }.words(1500),
            "1.5 seconds"
        );
        assert_eq!(TimeUnit::Days.words(1), "1 day");
        assert_eq!(TimeUnit::Integer.words(7), "7");
    }

    #[test]
    fn results_of_small_windows() {
        let rule = WindowRule::new(10, None, None).unwrap();
        // Two events at 10 (a tie), one at 15, one at 20.
        let events = [(10, 1.0), (10, 4.0), (15, -2.5), (20, 0.5)];
        let at = |agg, t| scratch(&rule, agg, &events, t);
        use WindowValue::{Count, Value};
        // t = 10: the events at 10 are not in their own window.
        assert_eq!(at(Agg::Count, 10), Count(0));
        assert_eq!(at(Agg::Mean, 10), Value(None));
        // t = 20: [10, 20) holds 1, 4, −2.5.
        assert_eq!(at(Agg::Count, 20), Count(3));
        assert_eq!(at(Agg::Sum, 20), Value(Some(2.5)));
        assert_eq!(at(Agg::Mean, 20), Value(Some(2.5 / 3.0)));
        assert_eq!(at(Agg::Min, 20), Value(Some(-2.5)));
        assert_eq!(at(Agg::Max, 20), Value(Some(4.0)));
        // Last: the latest event is at 15.
        assert_eq!(at(Agg::Last, 20), Value(Some(-2.5)));
        // Ties at the latest instant: the greatest value.
        assert_eq!(at(Agg::Last, 15), Value(Some(4.0)));
        // Var of {1, 4, −2.5}: Σx²/n − mean² = 93/12 − 25/36 = 127/18.
        assert_eq!(at(Agg::Var, 20), Value(Some(127.0 / 18.0)));
        assert_eq!(at(Agg::Stddev, 20), Value(Some((127.0f64 / 18.0).sqrt())));
        assert_eq!(at(Agg::DistinctCount, 20), Count(3));
        // t = 21: [11, 21) holds −2.5 and 0.5.
        assert_eq!(at(Agg::Sum, 21), Value(Some(-2.0)));
    }

    #[test]
    fn tiles_keep_the_extreme_of_what_they_were_given() {
        let values = [3.5, -0.0, 7.25, 0.0, -2.0, 7.25];
        for agg in [Agg::Min, Agg::Max] {
            let (mut a, mut b) = (WindowState::new_tile(agg), WindowState::new_tile(agg));
            let mut all = WindowState::new(agg);
            assert_eq!(a.result(agg), WindowValue::Value(None));
            for (i, v) in values.iter().enumerate() {
                let tile = if i % 2 == 0 { &mut a } else { &mut b };
                tile.add(i as i64, f(*v));
                all.add(i as i64, f(*v));
            }
            a.merge(&b);
            assert_eq!(a.result(agg), all.result(agg), "{agg:?}");
            assert_eq!(a.len(), 6);
        }
        let mut max = WindowState::new_tile(Agg::Max);
        max.add(0, f(-1.0));
        assert_eq!(max.result(Agg::Max), WindowValue::Value(Some(-1.0)));
        let mut min = WindowState::new_tile(Agg::Min);
        min.merge(&WindowState::new_tile(Agg::Min));
        assert!(min.is_empty());
        min.add(0, f(-0.0));
        min.add(1, f(4.0));
        // -0.0 is stored as 0.0 (Finite), as in the ordered map.
        assert_eq!(min.result(Agg::Min), WindowValue::Value(Some(0.0)));
    }

    #[test]
    fn retraction_is_exact() {
        // DataFusion's sliding sum retracts 1e16 from [1e16, 1, 1] and gets
        // 0.0; the exact state gives 2.0.
        let rule = WindowRule::new(10, None, None).unwrap();
        let events = [(0, 1e16), (5, 1.0), (6, 1.0)];
        let rows = [7, 12];
        let out = sweep_f(&rule, Agg::Sum, &events, &rows);
        assert_eq!(
            out,
            [
                WindowValue::Value(Some(1e16 + 2.0)),
                WindowValue::Value(Some(2.0))
            ]
        );
    }

    #[test]
    fn the_sweep_equals_windows_from_scratch() {
        // A deterministic pseudo-random walk: bursts, ties, wide magnitudes.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut events = Vec::new();
        let mut t = -50i64;
        for _ in 0..400 {
            t += (next() % 4) as i64;
            let scale = [1e-3, 1.0, 1e8, 1e16][(next() % 4) as usize];
            let v = ((next() % 2001) as f64 - 1000.0) * scale;
            events.push((t, v));
        }
        let rows: Vec<i64> = (-60..t + 30).step_by(3).collect();
        for rule in [
            WindowRule::new(20, None, None).unwrap(),
            WindowRule::new(20, Some(5), None).unwrap(),
            WindowRule::new(20, Some(5), Some("hopping")).unwrap(),
            WindowRule::new(1, None, None).unwrap(),
        ] {
            for agg in Agg::ALL {
                let swept = sweep_f(&rule, agg, &events, &rows);
                // Min and max by the queue: the same values.
                if matches!(agg, Agg::Min | Agg::Max) {
                    assert_eq!(sweep_extreme_f(&rule, agg, &events, &rows), swept);
                }
                for (i, &r) in rows.iter().enumerate() {
                    let expected = scratch(&rule, agg, &events, r);
                    let same = match (swept[i], expected) {
                        (WindowValue::Value(Some(a)), WindowValue::Value(Some(b))) => {
                            a.to_bits() == b.to_bits()
                        }
                        (a, b) => a == b,
                    };
                    assert!(
                        same,
                        "{agg:?} {rule:?} at {r}: {:?} vs {expected:?}",
                        swept[i]
                    );
                }
            }
        }
    }

    #[test]
    fn distinct_values_past_the_listed_sixteen() {
        // 40 keys over 25 distinct strings, then 0.0, -0.0 (one number),
        // 1.5 twice and the 8 bytes of 1.5 as a key (a key, not a number).
        let words: Vec<String> = (0..40).map(|i| format!("k{}", i % 25)).collect();
        let bits = 1.5f64.to_bits().to_le_bytes();
        let items = words
            .iter()
            .map(|w| Item::Key(w.as_bytes()))
            .chain([f(0.0), f(-0.0), f(1.5), f(1.5)].map(Item::Number))
            .chain([Item::Key(&bits[..])]);
        assert_eq!(aggregate_distinct(items), WindowValue::Count(25 + 2 + 1));
        // Under sixteen: the list alone.
        let few = ["a", "b", "a", "c", "b"].map(|w| Item::Key(w.as_bytes()));
        assert_eq!(aggregate_distinct(few.into_iter()), WindowValue::Count(3));
        assert_eq!(
            aggregate_distinct(std::iter::empty()),
            WindowValue::Count(0)
        );
        // Exactly sixteen, then a seventeenth that repeats one of them and
        // one that does not.
        let sixteen: Vec<String> = (0..16).map(|i| format!("w{i}")).collect();
        let items = sixteen
            .iter()
            .chain([&sixteen[3], &"w16".to_string()])
            .map(|w| w.clone().into_bytes())
            .collect::<Vec<_>>();
        let n = aggregate_distinct(items.iter().map(|w| Item::Key(w)));
        assert_eq!(n, WindowValue::Count(17));
    }

    #[test]
    fn distinct_keys() {
        let mut s = WindowState::new(Agg::DistinctCount);
        s.add(1, f(0.0));
        s.add(2, f(-0.0));
        s.add_key(b"abc");
        assert_eq!(s.result(Agg::DistinctCount), WindowValue::Count(2));
        s.retract(1, f(0.0));
        assert_eq!(s.result(Agg::DistinctCount), WindowValue::Count(2));
        s.retract(2, f(0.0));
        s.retract_key(b"abc");
        assert_eq!(s.result(Agg::DistinctCount), WindowValue::Count(0));
        assert!(s.is_empty());
    }

    #[test]
    fn knowledge_time_hides_what_had_not_arrived() {
        let rule = WindowRule::new(10, None, None).unwrap();
        // (time, arrival, value): the event at 5 arrives late, at 12.
        let events = [(1, 1, 1.0), (5, 12, 10.0), (8, 8, 100.0)];
        let rows = [6, 9, 12, 16];
        let out = sweep_known_f(&rule, Agg::Sum, &events, &rows);
        use WindowValue::Value;
        // t = 6: [-4, 6) holds 1 and (not yet arrived) 5 → 1.
        // t = 9: 1, 8 → 101. t = 12: [2, 12) holds 5 (arrived at 12) and 8 → 110.
        // t = 16: [6, 16) holds 8 → 100.
        assert_eq!(
            out,
            [
                Value(Some(1.0)),
                Value(Some(101.0)),
                Value(Some(110.0)),
                Value(Some(100.0))
            ]
        );
        // With every event known at its time, the same as the plain sweep.
        let known: Vec<(i64, i64, f64)> = events.iter().map(|&(t, _, v)| (t, t, v)).collect();
        let plain: Vec<(i64, f64)> = {
            let mut p: Vec<(i64, f64)> = events.iter().map(|&(t, _, v)| (t, v)).collect();
            p.sort_by(|a, b| a.partial_cmp(b).unwrap());
            p
        };
        let a = sweep_known_f(&rule, Agg::Sum, &known, &rows);
        let b = sweep_f(&rule, Agg::Sum, &plain, &rows);
        assert_eq!(a, b);
    }

    #[test]
    fn plain_sums_hand_over_to_partials_at_the_first_rounding() {
        // Sums and means whose additions are exact throughout, become
        // inexact at the first, a middle or the last step, overflow, or
        // are signed zeros: the one-pass result is the state's, bit for bit.
        let cases: [&[f64]; 9] = [
            &[1.0, 2.0, 3.0, 4.0],
            &[0.1, 0.2, 0.3],
            &[1e16, 1.0, 1.0, -1e16],
            &[3.0, 5.0, 1e16, 1.0, -1e16, 1.0],
            &[7.0, 8.0, 9.0, 2f64.powi(-60)],
            &[1e308, 1e308, -1e308],
            &[-0.0, -0.0],
            &[0.0, -0.0],
            &[-0.0],
        ];
        for values in cases {
            let mut state = WindowState::new(Agg::Sum);
            for (i, &v) in values.iter().enumerate() {
                state.add(i as i64, f(v));
            }
            for agg in [Agg::Sum, Agg::Mean] {
                let items = values
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| (i as i64, Item::Number(f(v))));
                let (WindowValue::Value(Some(got)), WindowValue::Value(Some(expected))) =
                    (aggregate(agg, items), state.result(agg))
                else {
                    panic!("{agg:?} of {values:?}: no value");
                };
                assert_eq!(got.to_bits(), expected.to_bits(), "{agg:?} of {values:?}");
            }
        }
        // The exact results, worked out by hand.
        let sum =
            |values: &[f64]| aggregate(Agg::Sum, values.iter().map(|&v| (0, Item::Number(f(v)))));
        assert_eq!(sum(&[1e16, 1.0, 1.0, -1e16]), WindowValue::Value(Some(2.0)));
        assert_eq!(
            sum(&[3.0, 5.0, 1e16, 1.0, -1e16, 1.0]),
            WindowValue::Value(Some(10.0))
        );
        // A running total past f64's range: the one quiet NaN.
        let WindowValue::Value(Some(nan)) = sum(&[1e308, 1e308, -1e308]) else {
            unreachable!()
        };
        assert_eq!(nan.to_bits(), f64::NAN.to_bits());
        // A window holds −0.0 as 0.0 (Finite): the sum of two is +0.0.
        let WindowValue::Value(Some(z)) = sum(&[-0.0, -0.0]) else {
            unreachable!()
        };
        assert_eq!(z.to_bits(), 0);
    }

    #[test]
    fn one_pass_aggregates_equal_the_window_state() {
        // Values with repeats, −0.0 and 0.0, huge and tiny magnitudes; sizes
        // across the distinct table's growth (64 on the stack, then more).
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for n in [0usize, 1, 2, 7, 31, 32, 33, 64, 65, 200] {
            let events: Vec<(i64, Finite)> = (0..n)
                .map(|i| {
                    let v = match next() % 6 {
                        0 => -0.0,
                        1 => 0.0,
                        2 => 1e16,
                        3 => -1e-300,
                        _ => (next() % 50) as f64 - 25.0,
                    };
                    ((next() % 10) as i64 - 5 + i as i64 / 3, f(v))
                })
                .collect();
            for agg in Agg::ALL {
                let mut state = WindowState::new(agg);
                for &(t, v) in &events {
                    state.add(t, v);
                }
                let items = events.iter().map(|&(t, v)| (t, Item::Number(v)));
                let got = match agg {
                    Agg::DistinctCount => aggregate_distinct(items.map(|(_, i)| i)),
                    _ => aggregate(agg, items),
                };
                let expected = state.result(agg);
                let same = match (got, expected) {
                    (WindowValue::Value(Some(a)), WindowValue::Value(Some(b))) => {
                        a.to_bits() == b.to_bits()
                    }
                    (a, b) => a == b,
                };
                assert!(same, "{agg:?} over {n}: {got:?} vs {expected:?}");
            }
            // Keys: strings with repeats, the empty one among them.
            let words: Vec<Vec<u8>> = (0..n)
                .map(|_| format!("w{}", next() % 40).into_bytes())
                .chain(std::iter::once(Vec::new()))
                .collect();
            let mut state = WindowState::new(Agg::DistinctCount);
            for w in &words {
                state.add_key(w);
            }
            assert_eq!(
                aggregate_distinct(words.iter().map(|w| Item::Key(w))),
                state.result(Agg::DistinctCount)
            );
        }
    }
}
