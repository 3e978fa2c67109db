//! Online window state: each entity's recent events, pushed one by one, and
//! the window features of a request at its time t — computed by the same
//! kernel as batch ([`skewless_udfs::kernel::window`]): a window's value is a
//! function of the events it holds, so a store fed the batch's events in
//! any arrival order answers with the batch's numbers, bit for bit.
//!
//! A [`Stream`] is the events of one entity key (the window's PARTITION BY)
//! and one time column; it serves every window function defined over them
//! (each with its own value, aggregate and rule). Entities live in shards
//! behind their own locks, so pushes and requests from many threads only
//! meet on the same shard.
//!
//! Memory is bounded: an entity keeps the events that a request at or after
//! `newest − lateness` can see (the longest window's reach before it), at
//! most `cap` of them; entities idle for longer than that are evicted. An
//! event older than what is kept is dropped, a request older than
//! `newest − lateness` is answered from what is held; both are counted
//! ([`Counters`]). A request whose window reaches events dropped by the cap
//! fails rather than serving a wrong number.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use skewless_udfs::kernel::stats::Finite;
use skewless_udfs::kernel::window::{
    Agg, Item, WindowRule, WindowValue, aggregate, aggregate_distinct,
};

/// The value of one window function's argument in one event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventValue {
    /// A finite number (every aggregate).
    Number(Finite),
    /// The bytes of a string or integer (distinct counts).
    Key(Box<[u8]>),
    /// A time in the stream's unit: an event's arrival (knowledge time).
    Time(i64),
    /// NULL or non-finite: the event holds no value for this window.
    Skip,
}

impl EventValue {
    /// A number as a window sees it: NULL and non-finite values skipped.
    pub fn number(v: Option<f64>) -> Self {
        match v.and_then(Finite::new) {
            Some(f) => EventValue::Number(f),
            None => EventValue::Skip,
        }
    }
}

/// One window function of a stream: its aggregate, its rule, and which of
/// an event's values it reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowSpec {
    pub agg: Agg,
    pub rule: WindowRule,
    pub value: usize,
    /// The event value holding the event's arrival time, for a window with
    /// knowledge time: an event counts for a request at t only if it had
    /// arrived by t (an event without an arrival time never counts).
    pub known: Option<usize>,
}

/// The limits of a stream's state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// How far before an entity's newest event a request or an event may
    /// still come and be exact (in the time column's units).
    pub lateness: i64,
    /// The most events an entity keeps.
    pub cap: usize,
}

/// What happened to pushed events and to requests (monotonic counts; see
/// [`Stream::counts`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub pushed: u64,
    /// Accepted although older than the entity's newest event.
    pub late: u64,
    /// Too old to fall in any window that can still be asked for.
    pub dropped: u64,
    /// Events of an entity or ts that is NULL: in no window.
    pub unkeyed: u64,
    /// Requests older than their entity's newest event minus the lateness.
    pub stale_requests: u64,
    /// Entities removed after being idle longer than any window reaches.
    pub evicted: u64,
    /// The most events one entity has held at once.
    pub peak: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.pushed += other.pushed;
        self.late += other.late;
        self.dropped += other.dropped;
        self.unkeyed += other.unkeyed;
        self.stale_requests += other.stale_requests;
        self.evicted += other.evicted;
        self.peak = self.peak.max(other.peak);
    }
}

/// Why a request cannot be answered exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateError {
    /// The window reaches events the per-entity cap made the store forget.
    CapExceeded { cap: usize },
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::CapExceeded { cap } => write!(
                f,
                "the entity has more than {cap} events in its window (the per-entity cap): \
                 refusing to serve a window computed from part of them"
            ),
        }
    }
}

/// One entity's events, sorted by time (ties in arrival order; the kernel's
/// results do not depend on it).
///
/// Flat: the times in one vector, the values in another, `width` per event
/// (no allocation per event but the bytes of distinct-count keys).
#[derive(Debug, Default)]
struct Entity {
    times: Vec<i64>,
    values: Vec<EventValue>,
    newest: i64,
    /// Events at or before this time were forgotten because of the cap.
    forgot_through: Option<i64>,
}

/// The state of one (entity key, time column) stream.
#[derive(Debug)]
pub struct Stream {
    windows: Vec<WindowSpec>,
    /// The values of one event (the highest value index of the windows + 1).
    width: usize,
    limits: Limits,
    /// The longest reach of the stream's windows.
    reach: i64,
    shards: Box<[Shard]>,
    hasher: foldhash::fast::FixedState,
    /// The newest time pushed or asked for anywhere: what idleness counts from.
    clock: AtomicI64,
    /// Events of a NULL entity or time (they take no shard's lock).
    unkeyed: AtomicU64,
}

/// Entities by their key bytes, and what happened to them, behind one lock
/// (so that threads on different shards share no counter).
#[derive(Debug, Default)]
struct ShardState {
    entities: HashMap<Box<[u8]>, Entity>,
    counts: Counts,
}

type Shard = Mutex<ShardState>;

const SHARDS: usize = 64;
/// Every this many pushes, one shard is swept for idle entities.
const SWEEP_EVERY: u64 = 1024;

impl Stream {
    pub fn new(windows: Vec<WindowSpec>, limits: Limits) -> Self {
        let reach = windows.iter().map(|w| w.rule.reach()).max().unwrap_or(0);
        let width = windows
            .iter()
            .flat_map(|w| std::iter::once(w.value).chain(w.known))
            .max()
            .map_or(0, |m| m + 1);
        Self {
            windows,
            width,
            limits,
            reach,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: foldhash::fast::FixedState::with_seed(0x5EED),
            clock: AtomicI64::new(i64::MIN),
            unkeyed: AtomicU64::new(0),
        }
    }

    pub fn windows(&self) -> &[WindowSpec] {
        &self.windows
    }

    fn shard_of(&self, entity: &[u8]) -> usize {
        (self.hasher.hash_one(entity) as usize) % SHARDS
    }

    /// Moves the clock forward to `t` (a read first: the common case, no
    /// move, does not take the cache line from other threads).
    #[inline]
    fn tick(&self, t: i64) {
        if t > self.clock.load(Ordering::Relaxed) {
            self.clock.fetch_max(t, Ordering::Relaxed);
        }
    }

    /// What happened so far, over all shards.
    pub fn counts(&self) -> Counts {
        let mut total = Counts {
            unkeyed: self.unkeyed.load(Ordering::Relaxed),
            ..Counts::default()
        };
        for shard in self.shards.iter() {
            total.add(&shard.lock().unwrap_or_else(|e| e.into_inner()).counts);
        }
        total.pushed += total.unkeyed;
        total
    }

    /// The oldest time an entity whose newest event is at `newest` keeps.
    fn horizon(&self, newest: i64) -> i64 {
        newest
            .saturating_sub(self.limits.lateness)
            .saturating_sub(self.reach)
    }

    /// Pushes the event of `entity` (None: a NULL entity) at `ts` (None: a
    /// NULL time) with one value per value index of the windows (missing
    /// ones are NULL, extra ones ignored).
    pub fn push(
        &self,
        entity: Option<&[u8]>,
        ts: Option<i64>,
        values: impl IntoIterator<Item = EventValue>,
    ) {
        let (Some(entity), Some(ts)) = (entity, ts) else {
            self.unkeyed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.tick(ts);
        let index = self.shard_of(entity);
        let sweep = {
            let mut guard = self.shards[index].lock().unwrap_or_else(|e| e.into_inner());
            let shard = &mut *guard;
            shard.counts.pushed += 1;
            let e = match shard.entities.get_mut(entity) {
                Some(e) => e,
                None => shard
                    .entities
                    .entry(entity.into())
                    .or_insert_with(|| Entity {
                        newest: ts,
                        ..Entity::default()
                    }),
            };
            if ts < self.horizon(e.newest) {
                shard.counts.dropped += 1;
                return;
            }
            if ts < e.newest {
                shard.counts.late += 1;
            }
            // After every event at the same time: arrival order among ties.
            let w = self.width;
            let at = e.times.partition_point(|t| *t <= ts);
            let values = values
                .into_iter()
                .chain(std::iter::repeat_with(|| EventValue::Skip))
                .take(w);
            if at == e.times.len() {
                e.times.push(ts);
                e.values.extend(values);
            } else {
                e.times.insert(at, ts);
                for (k, v) in values.enumerate() {
                    e.values.insert(at * w + k, v);
                }
            }
            if ts > e.newest {
                e.newest = ts;
                let horizon = self.horizon(ts);
                let keep = e.times.partition_point(|t| *t < horizon);
                e.times.drain(..keep);
                e.values.drain(..keep * w);
            }
            if e.times.len() > self.limits.cap {
                let excess = e.times.len() - self.limits.cap;
                let last_forgotten = e.times[excess - 1];
                e.forgot_through = Some(
                    e.forgot_through
                        .map_or(last_forgotten, |f| f.max(last_forgotten)),
                );
                e.times.drain(..excess);
                e.values.drain(..excess * w);
            }
            shard.counts.peak = shard.counts.peak.max(e.times.len() as u64);
            // Every so many pushes into a shard, it is swept.
            shard.counts.pushed.is_multiple_of(SWEEP_EVERY)
        };
        if sweep {
            self.sweep(index);
        }
    }

    /// Removes the entities of one shard idle for longer than the state
    /// reaches: no request at or after the clock minus the lateness can see
    /// their events, so removing them changes no answer.
    fn sweep(&self, shard: usize) {
        let clock = self.clock.load(Ordering::Relaxed);
        let mut shard = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
        let before = shard.entities.len();
        let horizon = self.horizon(clock);
        shard.entities.retain(|_, e| e.newest >= horizon);
        let evicted = (before - shard.entities.len()) as u64;
        shard.counts.evicted += evicted;
    }

    /// The window values of a request of `entity` at `t`, one per window of
    /// the stream, into `out`. A NULL entity or time gets `None`s.
    pub fn evaluate(
        &self,
        entity: Option<&[u8]>,
        t: Option<i64>,
        out: &mut Vec<Option<WindowValue>>,
    ) -> Result<(), StateError> {
        out.clear();
        let (Some(entity), Some(t)) = (entity, t) else {
            out.extend(self.windows.iter().map(|_| None));
            return Ok(());
        };
        self.tick(t);
        let mut guard = self.shards[self.shard_of(entity)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let shard = &mut *guard;
        let empty = Entity::default();
        let e = shard.entities.get(entity).unwrap_or(&empty);
        if !e.times.is_empty() && t < e.newest.saturating_sub(self.limits.lateness) {
            shard.counts.stale_requests += 1;
        }
        for w in &self.windows {
            let (lo, hi) = w.rule.bounds(t);
            if e.forgot_through.is_some_and(|f| f >= lo) {
                return Err(StateError::CapExceeded {
                    cap: self.limits.cap,
                });
            }
            let first = e.times.partition_point(|ts| *ts < lo);
            let end = e.times.partition_point(|ts| *ts < hi).max(first);
            let width = self.width;
            let events = e.times[first..end]
                .iter()
                .zip(e.values[first * width..end * width].chunks_exact(width))
                .filter(|(_, values)| match w.known {
                    Some(k) => matches!(values[k], EventValue::Time(arrived) if arrived <= t),
                    None => true,
                })
                .filter_map(|(ts, values)| match &values[w.value] {
                    EventValue::Number(v) => Some((*ts, Item::Number(*v))),
                    EventValue::Key(k) => Some((*ts, Item::Key(k))),
                    EventValue::Time(_) | EventValue::Skip => None,
                });
            out.push(Some(match w.agg {
                Agg::DistinctCount => aggregate_distinct(events.map(|(_, item)| item)),
                agg => aggregate(agg, events),
            }));
        }
        Ok(())
    }

    /// The events held, over all entities (for `fit`'s size report and tests).
    pub fn events_held(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entities
                    .values()
                    .map(|e| e.times.len())
                    .sum::<usize>()
            })
            .sum()
    }

    /// The most events one entity has held at once.
    pub fn peak_events_per_entity(&self) -> usize {
        self.counts().peak as usize
    }

    /// The bytes one held event takes, without the bytes of its distinct
    /// keys: its time and its values.
    pub fn bytes_per_event(&self) -> usize {
        std::mem::size_of::<i64>() + self.width * std::mem::size_of::<EventValue>()
    }

    /// The number of entities held.
    pub fn entities(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).entities.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skewless_udfs::kernel::window::{WindowState, sweep};

    fn rule(length: i64, hop: Option<i64>, mode: Option<&str>) -> WindowRule {
        WindowRule::new(length, hop, mode).unwrap()
    }

    /// A deterministic xorshift.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn same(a: &WindowValue, b: &WindowValue) -> bool {
        match (a, b) {
            (WindowValue::Value(Some(x)), WindowValue::Value(Some(y))) => {
                x.to_bits() == y.to_bits()
            }
            _ => a == b,
        }
    }

    #[test]
    fn pushed_in_any_order_the_store_answers_like_the_batch_sweep() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        // Three entities, bursts and ties, wide magnitudes, NaN and NULL
        // values, times before 0.
        let mut events: Vec<(u8, i64, Option<f64>)> = Vec::new();
        let mut t = -200i64;
        for _ in 0..600 {
            t += (rng.next() % 5) as i64;
            let entity = (rng.next() % 3) as u8;
            let v = match rng.next() % 10 {
                0 => None,
                1 => Some(f64::NAN),
                _ => Some(
                    ((rng.next() % 2001) as f64 - 1000.0)
                        * [1e-3, 1.0, 1e9, 1e16][(rng.next() % 4) as usize],
                ),
            };
            events.push((entity, t, v));
        }
        let windows: Vec<WindowSpec> = [
            (Agg::Sum, rule(30, None, None)),
            (Agg::Mean, rule(30, Some(10), None)),
            (Agg::Var, rule(60, Some(20), Some("hopping"))),
            (Agg::Min, rule(7, None, None)),
            (Agg::Last, rule(50, None, None)),
            (Agg::DistinctCount, rule(40, Some(5), None)),
            (Agg::Count, rule(1, None, None)),
        ]
        .into_iter()
        .map(|(agg, rule)| WindowSpec {
            agg,
            rule,
            value: 0,
            known: None,
        })
        .collect();
        // Arrival order: shuffled within a lateness of 25.
        let mut arrival: Vec<(i64, usize)> = (0..events.len())
            .map(|i| (events[i].1 + (rng.next() % 25) as i64, i))
            .collect();
        arrival.sort();
        let store = Stream::new(
            windows.clone(),
            Limits {
                lateness: 25,
                cap: 10_000,
            },
        );
        for &(_, i) in &arrival {
            let (e, ts, v) = events[i];
            store.push(Some(&[e]), Some(ts), vec![EventValue::number(v)]);
        }
        assert_eq!(store.counts().dropped, 0);
        assert!(store.counts().late > 0);
        // Requests at the end of the stream, every entity, at every time
        // from the newest − lateness on.
        let newest = events.iter().map(|e| e.1).max().unwrap();
        let mut out = Vec::new();
        for entity in 0..3u8 {
            let mut mine: Vec<(i64, Finite)> = events
                .iter()
                .filter(|e| e.0 == entity)
                .filter_map(|e| Some((e.1, Finite::new(e.2?)?)))
                .collect();
            mine.sort();
            let rows: Vec<i64> = (newest - 25..newest + 40).collect();
            for w in &windows {
                let batch = sweep(
                    &w.rule,
                    w.agg,
                    &mine,
                    &rows,
                    WindowState::add,
                    WindowState::retract,
                );
                let index = windows.iter().position(|x| x == w).unwrap();
                for (r, expected) in rows.iter().zip(&batch) {
                    store.evaluate(Some(&[entity]), Some(*r), &mut out).unwrap();
                    let got = out[index].unwrap();
                    assert!(
                        same(&got, expected),
                        "{w:?} at {r}: {got:?} vs {expected:?}"
                    );
                }
            }
        }
        assert_eq!(store.counts().stale_requests, 0);
    }

    #[test]
    fn late_dropped_unkeyed_stale_and_evicted_are_counted() {
        let store = Stream::new(
            vec![WindowSpec {
                agg: Agg::Count,
                rule: rule(10, None, None),
                value: 0,
                known: None,
            }],
            Limits {
                lateness: 5,
                cap: 100,
            },
        );
        let one = || vec![EventValue::number(Some(1.0))];
        store.push(Some(b"a"), Some(100), one());
        // Late but within reach + lateness (100 − 5 − 10 = 85): kept.
        store.push(Some(b"a"), Some(92), one());
        // Older than that: dropped.
        store.push(Some(b"a"), Some(84), one());
        store.push(None, Some(100), one());
        store.push(Some(b"a"), None, one());
        let c = store.counts();
        assert_eq!((c.pushed, c.late, c.dropped, c.unkeyed), (5, 1, 1, 2));
        let mut out = Vec::new();
        store.evaluate(Some(b"a"), Some(101), &mut out).unwrap();
        assert_eq!(out, [Some(WindowValue::Count(2))]);
        // A request older than newest − lateness: answered, counted.
        store.evaluate(Some(b"a"), Some(94), &mut out).unwrap();
        assert_eq!(out, [Some(WindowValue::Count(1))]);
        assert_eq!(store.counts().stale_requests, 1);
        // An unknown entity has empty windows; a NULL one none at all.
        store.evaluate(Some(b"zz"), Some(101), &mut out).unwrap();
        assert_eq!(out, [Some(WindowValue::Count(0))]);
        store.evaluate(None, Some(101), &mut out).unwrap();
        assert_eq!(out, [None]);
        // Idle entities go once the clock passes their reach.
        store.push(Some(b"b"), Some(1_000), one());
        store.sweep(store.shard_of(b"a"));
        assert_eq!(store.entities(), 1);
        assert_eq!(store.counts().evicted, 1);
    }

    #[test]
    fn the_cap_refuses_windows_it_cut() {
        let store = Stream::new(
            vec![WindowSpec {
                agg: Agg::Sum,
                rule: rule(100, None, None),
                value: 0,
                known: None,
            }],
            Limits {
                lateness: 0,
                cap: 3,
            },
        );
        for ts in 0..5 {
            store.push(Some(b"a"), Some(ts), vec![EventValue::number(Some(1.0))]);
        }
        assert_eq!(store.events_held(), 3);
        let mut out = Vec::new();
        assert_eq!(
            store.evaluate(Some(b"a"), Some(5), &mut out),
            Err(StateError::CapExceeded { cap: 3 })
        );
        // A window that starts after what was forgotten is exact.
        let store2 = Stream::new(
            vec![WindowSpec {
                agg: Agg::Sum,
                rule: rule(2, None, None),
                value: 0,
                known: None,
            }],
            Limits {
                lateness: 0,
                cap: 3,
            },
        );
        for ts in 0..5 {
            store2.push(Some(b"a"), Some(ts), vec![EventValue::number(Some(1.0))]);
        }
        store2.evaluate(Some(b"a"), Some(5), &mut out).unwrap();
        assert_eq!(out, [Some(WindowValue::Value(Some(2.0)))]);
    }

    #[test]
    fn threads_push_and_ask_at_once() {
        fn shared<T: Send + Sync>(_: &T) {}
        let spec = vec![WindowSpec {
            agg: Agg::Mean,
            rule: rule(50, Some(10), None),
            value: 0,
            known: None,
        }];
        let limits = Limits {
            lateness: 0,
            cap: 1_000,
        };
        let store = Stream::new(spec.clone(), limits);
        shared(&store);
        let value = |e: u64, ts: i64| Some(((e * 7919 + ts as u64 * 104_729) % 1000) as f64 / 7.0);
        std::thread::scope(|s| {
            for thread in 0..4u64 {
                let store = &store;
                s.spawn(move || {
                    let mut out = Vec::new();
                    for ts in 0..2_000i64 {
                        for e in (thread * 8)..(thread * 8 + 8) {
                            let key = e.to_le_bytes();
                            store.push(
                                Some(&key),
                                Some(ts),
                                vec![EventValue::number(value(e, ts))],
                            );
                            store.evaluate(Some(&key), Some(ts + 1), &mut out).unwrap();
                        }
                    }
                });
            }
        });
        // The same events pushed from one thread give the same answers.
        let one = Stream::new(spec, limits);
        for ts in 0..2_000i64 {
            for e in 0..32u64 {
                one.push(
                    Some(&e.to_le_bytes()),
                    Some(ts),
                    vec![EventValue::number(value(e, ts))],
                );
            }
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for e in 0..32u64 {
            store
                .evaluate(Some(&e.to_le_bytes()), Some(2_000), &mut a)
                .unwrap();
            one.evaluate(Some(&e.to_le_bytes()), Some(2_000), &mut b)
                .unwrap();
            assert_eq!(a, b);
        }
        assert_eq!(store.entities(), 32);
        // Each entity keeps its reach (50 + 10) of events.
        assert_eq!(store.events_held(), 32 * 61);
    }
}
