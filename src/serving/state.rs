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
//! Memory is bounded. An entity keeps raw (one by one) the events that a
//! request at or after `newest − lateness` can see through a window
//! without a hop (sliding, or with knowledge time), at most `cap` of them.
//! Windows with a hop (sawtooth, hopping) keep the older events they still
//! reach as tiles: one partial state per hop ([`WindowState`], merged at
//! request time), so their memory grows with hops, not events; a sawtooth
//! window's last, partial hop is completed from the raw events. Entities
//! idle for longer than any window reaches are evicted. An event older
//! than what any window can still reach is dropped, a request older than
//! `newest − lateness` is answered from what is held; both are counted
//! ([`Counts`]). A request whose window needs events the cap made the store
//! forget (or, for a sawtooth window, a split hop) fails rather than
//! serving a wrong number.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use skewless_udfs::kernel::bytes::{Put, Reader};
use skewless_udfs::kernel::stats::Finite;
use skewless_udfs::kernel::window::{
    Agg, Item, Mode, WindowRule, WindowState, WindowValue, aggregate, aggregate_distinct, floor_to,
};

/// The value of one window function's argument in one event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventValue {
    /// A finite number (every aggregate).
    Number(Finite),
    /// The bytes of a string or integer (distinct counts).
    Key(EventKey),
    /// A time in the stream's unit: an event's arrival (knowledge time).
    Time(i64),
    /// NULL or non-finite: the event holds no value for this window.
    Skip,
}

/// The bytes of a distinct-count value or of an entity: inline up to 22
/// bytes (most categories and ids, every integer), so a push allocates
/// nothing for them and an entity's lookup compares them in its map's slot
/// rather than behind a pointer.
#[derive(Clone, PartialEq, Eq)]
pub enum EventKey {
    Inline { len: u8, bytes: [u8; 22] },
    Heap(Box<[u8]>),
}

impl EventKey {
    pub fn new(key: &[u8]) -> Self {
        if key.len() <= 22 {
            let mut bytes = [0u8; 22];
            bytes[..key.len()].copy_from_slice(key);
            EventKey::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            EventKey::Heap(key.into())
        }
    }
}

impl std::ops::Deref for EventKey {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            EventKey::Inline { len, bytes } => &bytes[..usize::from(*len)],
            EventKey::Heap(b) => b,
        }
    }
}

/// Hashed as its bytes are, so that a map of keys is looked up by bytes.
impl std::hash::Hash for EventKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self[..].hash(state);
    }
}

impl std::borrow::Borrow<[u8]> for EventKey {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for EventKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({:?})", String::from_utf8_lossy(self))
    }
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
    /// The request is older than the events the store holds one by one
    /// (older ones are summed per hop), and its window ends inside a hop.
    Tiled { raw_from: i64 },
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::CapExceeded { cap } => write!(
                f,
                "the entity has more than {cap} events in its window (the per-entity cap): \
                 refusing to serve a window computed from part of them"
            ),
            StateError::Tiled { raw_from } => write!(
                f,
                "the request is older than the events the state holds one by one (from \
                 {raw_from} in the time column's unit; older ones are summed per hop), and its \
                 window ends inside a hop: refusing to serve a window computed from part of \
                 one (a larger --lateness keeps more)"
            ),
        }
    }
}

/// One entity's events, sorted by time (ties in arrival order; the kernel's
/// results do not depend on it).
///
/// By column: the times in one vector, and each value index of the events
/// in one of its own (no allocation per event but the bytes of long
/// distinct-count keys; a window reads its own column, contiguous, not
/// every value of every event).
#[derive(Debug)]
struct Entity {
    /// The raw events' times, ascending, from `head` on (those before it
    /// are gone, let go in bulk: see [`Entity::drop_front`]).
    all_times: Vec<i64>,
    /// Their values by value index (`width` columns), from `head` on.
    columns: Vec<Vec<EventValue>>,
    head: usize,
    newest: i64,
    /// Events at or before this time were forgotten because of the cap.
    forgot_through: Option<i64>,
    /// For each window with a hop (by window index; empty for the others):
    /// the state of the events of each hop (by the hop's start) that are
    /// no longer held raw.
    tiles: Vec<BTreeMap<i64, WindowState>>,
    /// Events before this time are held only in tiles (i64::MIN: none).
    raw_from: i64,
}

/// An entity without events (what a request of an unknown entity sees).
static NO_EVENTS: Entity = Entity {
    all_times: Vec::new(),
    columns: Vec::new(),
    head: 0,
    newest: i64::MIN,
    forgot_through: None,
    tiles: Vec::new(),
    raw_from: i64::MIN,
};

impl Entity {
    fn new(newest: i64, windows: usize, width: usize) -> Self {
        Self {
            all_times: Vec::new(),
            columns: (0..width).map(|_| Vec::new()).collect(),
            head: 0,
            newest,
            forgot_through: None,
            tiles: (0..windows).map(|_| BTreeMap::new()).collect(),
            raw_from: i64::MIN,
        }
    }

    /// The times of the raw events held, ascending.
    #[inline]
    fn times(&self) -> &[i64] {
        &self.all_times[self.head..]
    }

    /// Value `i` of the raw events held, one per event (empty for an
    /// entity without events).
    #[inline]
    fn column(&self, i: usize) -> &[EventValue] {
        self.columns.get(i).map_or(&[], |c| &c[self.head..])
    }

    /// Lets go of the `n` oldest raw events. They are skipped, and removed
    /// together once they are as many as the events held (so each push
    /// moves about one event, not every event it keeps).
    fn drop_front(&mut self, n: usize) {
        self.head += n;
        if 2 * self.head >= self.all_times.len() {
            self.all_times.drain(..self.head);
            for c in &mut self.columns {
                c.drain(..self.head);
            }
            self.head = 0;
        }
    }
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
    /// Which windows keep tiles (a partial state per hop) for the events
    /// they reach beyond `raw_reach`: those with a hop and no knowledge time.
    tiled: Vec<bool>,
    /// Whether any window keeps tiles.
    any_tiled: bool,
    /// How far back raw events are kept: the longest reach of the windows
    /// without tiles (tiled windows read raw events only for the hops not
    /// yet tiled).
    raw_reach: i64,
    shards: Box<[Shard]>,
    hasher: foldhash::fast::FixedState,
    /// Events of a NULL entity or time (they take no shard's lock).
    unkeyed: AtomicU64,
}

/// Entities by their key bytes, and what happened to them, behind one lock
/// (so that threads on different shards share no counter).
#[derive(Debug, Default)]
struct ShardState {
    entities: HashMap<EventKey, Entity, foldhash::fast::FixedState>,
    counts: Counts,
    /// The newest time pushed or asked for in this shard; the newest over
    /// all shards is what idleness counts from (kept per shard so that
    /// threads share no clock they write).
    clock: Option<i64>,
}

impl ShardState {
    #[inline]
    fn tick(&mut self, t: i64) {
        self.clock = Some(self.clock.map_or(t, |c| c.max(t)));
    }
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
        let tiled: Vec<bool> = windows
            .iter()
            .map(|w| w.rule.hop.is_some() && w.known.is_none())
            .collect();
        let raw_reach = windows
            .iter()
            .zip(&tiled)
            .filter(|(_, t)| !**t)
            .map(|(w, _)| w.rule.reach())
            .max()
            .unwrap_or(0);
        Self {
            windows,
            width,
            limits,
            reach,
            any_tiled: tiled.iter().any(|t| *t),
            tiled,
            raw_reach,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: foldhash::fast::FixedState::with_seed(0x5EED),
            unkeyed: AtomicU64::new(0),
        }
    }

    pub fn windows(&self) -> &[WindowSpec] {
        &self.windows
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn shard_of(&self, entity: &[u8]) -> usize {
        (self.hasher.hash_one(entity) as usize) % SHARDS
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

    /// The oldest time an entity whose newest event is at `newest` keeps
    /// raw (older events live in tiles).
    fn raw_horizon(&self, newest: i64) -> i64 {
        newest
            .saturating_sub(self.limits.lateness)
            .saturating_sub(self.raw_reach)
    }

    /// Adds an event no longer held raw to the tiles of the windows with a
    /// hop that can still reach it.
    fn fold(&self, e: &mut Entity, ts: i64, values: &[EventValue]) {
        let oldest = e.newest.saturating_sub(self.limits.lateness);
        self.fold_into(&mut e.tiles, oldest, ts, |i| &values[i]);
    }

    /// [`Stream::fold`] on an entity's tiles, for requests from `oldest` on
    /// (`value(i)`: the event's value `i`).
    fn fold_into<'v>(
        &self,
        tiles: &mut [BTreeMap<i64, WindowState>],
        oldest: i64,
        ts: i64,
        value: impl Fn(usize) -> &'v EventValue,
    ) {
        for (i, w) in self.windows.iter().enumerate() {
            let (true, Some(hop)) = (self.tiled[i], w.rule.hop) else {
                continue;
            };
            let start = floor_to(ts, hop);
            if tile_gone(&w.rule, hop, start, oldest) {
                continue;
            }
            let tile = tiles[i]
                .entry(start)
                .or_insert_with(|| WindowState::new_tile(w.agg));
            match value(w.value) {
                EventValue::Number(v) => tile.add(ts, *v),
                EventValue::Key(k) => tile.add_key(k),
                EventValue::Time(_) | EventValue::Skip => {}
            }
        }
    }

    /// Moves the raw events before `until` into tiles.
    fn tile_until(&self, e: &mut Entity, until: i64) {
        let n = e.times().partition_point(|t| *t < until);
        let oldest = e.newest.saturating_sub(self.limits.lateness);
        let any_tiled = self.any_tiled;
        if n > 0 {
            if any_tiled {
                let head = e.head;
                let Entity {
                    all_times,
                    columns,
                    tiles,
                    ..
                } = e;
                for k in head..head + n {
                    self.fold_into(tiles, oldest, all_times[k], |i| &columns[i][k]);
                }
            }
            e.drop_front(n);
        }
        e.raw_from = e.raw_from.max(until);
        if !any_tiled {
            return;
        }
        // Tiles that no request from newest − lateness on can reach.
        for (i, w) in self.windows.iter().enumerate() {
            if let (true, Some(hop)) = (self.tiled[i], w.rule.hop) {
                while e.tiles[i]
                    .first_key_value()
                    .is_some_and(|(start, _)| tile_gone(&w.rule, hop, *start, oldest))
                {
                    e.tiles[i].pop_first();
                }
            }
        }
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
        let mut values: Vec<EventValue> = values.into_iter().collect();
        self.push_values(entity, ts, &mut values);
    }

    /// [`Stream::push`] of the values in `values` (left empty): no
    /// allocation per event.
    pub fn push_values(
        &self,
        entity: Option<&[u8]>,
        ts: Option<i64>,
        values: &mut Vec<EventValue>,
    ) {
        if values.len() != self.width {
            values.resize(self.width, EventValue::Skip);
        }
        let (Some(entity), Some(ts)) = (entity, ts) else {
            values.clear();
            self.unkeyed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let index = self.shard_of(entity);
        let sweep = {
            let mut guard = self.shards[index].lock().unwrap_or_else(|e| e.into_inner());
            let shard = &mut *guard;
            shard.tick(ts);
            shard.counts.pushed += 1;
            let e = match shard.entities.get_mut(entity) {
                Some(e) => e,
                None => shard
                    .entities
                    .entry(EventKey::new(entity))
                    .or_insert_with(|| Entity::new(ts, self.windows.len(), self.width)),
            };
            if ts < self.horizon(e.newest) {
                shard.counts.dropped += 1;
                values.clear();
                return;
            }
            if ts < e.newest {
                shard.counts.late += 1;
            }
            // Late, and older than what is held raw: straight into tiles.
            if ts < e.raw_from {
                if ts >= self.raw_horizon(e.newest) {
                    // Windows without tiles would need it raw (the cap
                    // moved the raw start): they refuse to answer.
                    e.forgot_through = Some(e.forgot_through.map_or(ts, |f| f.max(ts)));
                }
                self.fold(e, ts, values);
                values.clear();
                return;
            }
            // After every event at the same time: arrival order among ties.
            let at = e.head + e.times().partition_point(|t| *t <= ts);
            // Each value moved into its column (`values` left empty).
            if at == e.all_times.len() {
                e.all_times.push(ts);
                for (c, v) in e.columns.iter_mut().zip(values.iter_mut()) {
                    c.push(std::mem::replace(v, EventValue::Skip));
                }
            } else {
                e.all_times.insert(at, ts);
                for (c, v) in e.columns.iter_mut().zip(values.iter_mut()) {
                    c.insert(at, std::mem::replace(v, EventValue::Skip));
                }
            }
            values.clear();
            if ts > e.newest {
                e.newest = ts;
                self.tile_until(e, self.raw_horizon(ts));
            }
            if e.times().len() > self.limits.cap {
                // The oldest raw events go to the tiles; windows without
                // tiles that reach them refuse to answer (CapExceeded).
                let excess = e.times().len() - self.limits.cap;
                let last_forgotten = e.times()[excess - 1];
                e.forgot_through = Some(
                    e.forgot_through
                        .map_or(last_forgotten, |f| f.max(last_forgotten)),
                );
                self.tile_until(e, last_forgotten.saturating_add(1));
            }
            shard.counts.peak = shard.counts.peak.max(e.times().len() as u64);
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
        let clock = self
            .shards
            .iter()
            .filter_map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).clock)
            .max();
        let Some(clock) = clock else { return };
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
        let mut guard = self.shards[self.shard_of(entity)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let shard = &mut *guard;
        shard.tick(t);
        let e = shard.entities.get(entity).unwrap_or(&NO_EVENTS);
        if !e.times().is_empty() && t < e.newest.saturating_sub(self.limits.lateness) {
            shard.counts.stale_requests += 1;
        }
        for (i, w) in self.windows.iter().enumerate() {
            let (lo, hi) = w.rule.bounds(t);
            if self.tiled[i] && e.raw_from > lo {
                // A sawtooth window ends at t, inside a hop: its last tile
                // must hold nothing at or after t.
                if w.rule.mode == Mode::Sawtooth && e.raw_from > hi {
                    return Err(StateError::Tiled {
                        raw_from: e.raw_from,
                    });
                }
                out.push(Some(self.tiled_value(e, i, lo, hi)));
                continue;
            }
            if e.forgot_through.is_some_and(|f| f >= lo) {
                return Err(StateError::CapExceeded {
                    cap: self.limits.cap,
                });
            }
            let times = e.times();
            let first = times.partition_point(|ts| *ts < lo);
            let end = times.partition_point(|ts| *ts < hi).max(first);
            let held = times[first..end].iter().zip(&e.column(w.value)[first..end]);
            out.push(Some(match w.known {
                None => answer(w.agg, held),
                Some(k) => answer(
                    w.agg,
                    held.zip(&e.column(k)[first..end])
                        .filter(|(_, known)| matches!(known, EventValue::Time(arrived) if *arrived <= t))
                        .map(|(event, _)| event),
                ),
            }));
        }
        Ok(())
    }

    /// A tiled window's value: its hops' tiles from `lo` (a hop's start),
    /// then the raw events from where the tiles end, up to `hi`.
    fn tiled_value(&self, e: &Entity, i: usize, lo: i64, hi: i64) -> WindowValue {
        let w = &self.windows[i];
        let tiles = e
            .tiles
            .get(i)
            .into_iter()
            .flat_map(|t| t.range(lo..).take_while(|(start, _)| **start < hi))
            .map(|(_, tile)| tile);
        let times = e.times();
        let first = times.partition_point(|ts| *ts < lo.max(e.raw_from));
        let end = times.partition_point(|ts| *ts < hi).max(first);
        let raw = items(times[first..end].iter().zip(&e.column(w.value)[first..end]));
        match w.agg {
            // A tile's extreme stands for it: no merged state to build.
            Agg::Min | Agg::Max | Agg::Last => {
                let extremes = tiles.filter_map(|tile| match (w.agg, tile) {
                    (Agg::Min, WindowState::Ordered(m)) => {
                        m.first_key_value().map(|(v, _)| (0, Item::Number(*v)))
                    }
                    (Agg::Max, WindowState::Ordered(m)) => {
                        m.last_key_value().map(|(v, _)| (0, Item::Number(*v)))
                    }
                    (Agg::Min | Agg::Max, WindowState::Extreme { value, .. }) => {
                        value.map(|v| (0, Item::Number(v)))
                    }
                    (Agg::Last, WindowState::Latest(m)) => m
                        .last_key_value()
                        .map(|((ts, v), _)| (*ts, Item::Number(*v))),
                    _ => None,
                });
                aggregate(w.agg, extremes.chain(raw))
            }
            Agg::Count => {
                let tiled: u64 = tiles.map(WindowState::len).sum();
                WindowValue::Count((tiled + raw.count() as u64) as i64)
            }
            agg => {
                let mut state = WindowState::new(agg);
                for tile in tiles {
                    state.merge(tile);
                }
                for (ts, item) in raw {
                    match item {
                        Item::Number(v) => state.add(ts, v),
                        Item::Key(k) => state.add_key(k),
                    }
                }
                state.result(agg)
            }
        }
    }

    /// The tiles held, over all entities (partial states of one hop each).
    pub fn tiles_held(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entities
                    .values()
                    .map(|e| e.tiles.iter().map(BTreeMap::len).sum::<usize>())
                    .sum::<usize>()
            })
            .sum()
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
                    .map(|e| e.times().len())
                    .sum::<usize>()
            })
            .sum()
    }

    /// The bytes one held event takes, without the bytes of its distinct
    /// keys: its time and its values.
    pub fn bytes_per_event(&self) -> usize {
        std::mem::size_of::<i64>() + self.width * std::mem::size_of::<EventValue>()
    }

    /// Appends everything the stream holds and has counted, in the binary
    /// form [`Stream::restore`] reads: shard by shard, entities in key
    /// order (the same state gives the same bytes). Each shard is read
    /// under its lock; a caller that wants one instant stops pushes first.
    pub fn snapshot(&self, out: &mut Vec<u8>) {
        out.put_u64(self.windows.len() as u64);
        out.put_u64(self.width as u64);
        out.put_u64(self.shards.len() as u64);
        out.put_u64(self.unkeyed.load(Ordering::Relaxed));
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            let c = &shard.counts;
            for n in [
                c.pushed,
                c.late,
                c.dropped,
                c.unkeyed,
                c.stale_requests,
                c.evicted,
                c.peak,
            ] {
                out.put_u64(n);
            }
            put_option(out, shard.clock);
            let mut keys: Vec<&EventKey> = shard.entities.keys().collect();
            keys.sort_unstable_by(|a, b| a[..].cmp(&b[..]));
            out.put_u64(keys.len() as u64);
            for key in keys {
                out.put_bytes(key);
                let e = &shard.entities[key];
                out.put_i64(e.newest);
                put_option(out, e.forgot_through);
                out.put_i64(e.raw_from);
                out.put_u64(e.times().len() as u64);
                for (k, t) in e.times().iter().enumerate() {
                    out.put_i64(*t);
                    for v in (0..self.width).map(|i| &e.column(i)[k]) {
                        match v {
                            EventValue::Skip => out.put_u8(0),
                            EventValue::Number(f) => {
                                out.put_u8(1);
                                out.put_f64(f.get());
                            }
                            EventValue::Key(key) => {
                                out.put_u8(2);
                                out.put_bytes(key);
                            }
                            EventValue::Time(t) => {
                                out.put_u8(3);
                                out.put_i64(*t);
                            }
                        }
                    }
                }
                for tiles in &e.tiles {
                    out.put_u64(tiles.len() as u64);
                    for (start, state) in tiles {
                        out.put_i64(*start);
                        state.encode(out);
                    }
                }
            }
        }
    }

    /// Reads back what [`Stream::snapshot`] wrote into this stream, which
    /// must be empty and have the same windows (the caller checks that
    /// the transform is the same). On an error the stream may hold part of
    /// the state: the caller drops it.
    pub fn restore(&self, r: &mut Reader<'_>) -> std::result::Result<(), String> {
        let bad = |what: &str| format!("the state is damaged or not this transform's ({what})");
        let windows = r.u64().ok_or_else(|| bad("windows"))?;
        let width = r.u64().ok_or_else(|| bad("width"))?;
        if windows != self.windows.len() as u64 || width != self.width as u64 {
            return Err(format!(
                "the state holds {windows} windows over {width} values; this stream has {} over {}",
                self.windows.len(),
                self.width
            ));
        }
        let shards = r.u64().ok_or_else(|| bad("shards"))?;
        if shards != self.shards.len() as u64 {
            return Err(bad("shard count"));
        }
        self.unkeyed
            .store(r.u64().ok_or_else(|| bad("counts"))?, Ordering::Relaxed);
        for (index, shard) in self.shards.iter().enumerate() {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            let mut n = [0u64; 7];
            for x in &mut n {
                *x = r.u64().ok_or_else(|| bad("counts"))?;
            }
            shard.counts = Counts {
                pushed: n[0],
                late: n[1],
                dropped: n[2],
                unkeyed: n[3],
                stale_requests: n[4],
                evicted: n[5],
                peak: n[6],
            };
            shard.clock = get_option(r).ok_or_else(|| bad("clock"))?;
            let entities = r.count(8).ok_or_else(|| bad("entities"))?;
            for _ in 0..entities {
                let key = EventKey::new(r.bytes().ok_or_else(|| bad("entity key"))?);
                let newest = r.i64().ok_or_else(|| bad("entity"))?;
                let mut e = Entity::new(newest, self.windows.len(), self.width);
                e.forgot_through = get_option(r).ok_or_else(|| bad("entity"))?;
                e.raw_from = r.i64().ok_or_else(|| bad("entity"))?;
                let events = r.count(8).ok_or_else(|| bad("events"))?;
                e.all_times.reserve(events);
                for c in &mut e.columns {
                    c.reserve(events);
                }
                for _ in 0..events {
                    let t = r.i64().ok_or_else(|| bad("event"))?;
                    if e.all_times.last().is_some_and(|last| *last > t) || t > newest {
                        return Err(bad("events out of order"));
                    }
                    e.all_times.push(t);
                    for i in 0..self.width {
                        let v = match r.u8() {
                            Some(0) => EventValue::Skip,
                            Some(1) => r
                                .f64()
                                .and_then(Finite::new)
                                .map(EventValue::Number)
                                .ok_or_else(|| bad("event value"))?,
                            Some(2) => EventValue::Key(EventKey::new(
                                r.bytes().ok_or_else(|| bad("event value"))?,
                            )),
                            Some(3) => EventValue::Time(r.i64().ok_or_else(|| bad("event value"))?),
                            _ => return Err(bad("event value")),
                        };
                        e.columns[i].push(v);
                    }
                }
                for tiles in &mut e.tiles {
                    let n = r.count(9).ok_or_else(|| bad("tiles"))?;
                    for _ in 0..n {
                        let start = r.i64().ok_or_else(|| bad("tile"))?;
                        let state = WindowState::decode(r).ok_or_else(|| bad("tile"))?;
                        tiles.insert(start, state);
                    }
                }
                if self.shard_of(&key) != index {
                    return Err(bad("entity in another shard"));
                }
                if shard.entities.insert(key, e).is_some() {
                    return Err(bad("an entity twice"));
                }
            }
        }
        Ok(())
    }

    /// The number of entities held.
    pub fn entities(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).entities.len())
            .sum()
    }
}

/// A window's events as the kernel reads them: (time, value), NULLs and
/// arrival times left out.
#[inline]
fn items<'a>(
    held: impl Iterator<Item = (&'a i64, &'a EventValue)>,
) -> impl Iterator<Item = (i64, Item<'a>)> {
    held.filter_map(|(ts, value)| match value {
        EventValue::Number(v) => Some((*ts, Item::Number(*v))),
        EventValue::Key(k) => Some((*ts, Item::Key(k))),
        EventValue::Time(_) | EventValue::Skip => None,
    })
}

/// The value of window aggregate `agg` over the events it holds.
#[inline]
fn answer<'a>(
    agg: Agg,
    held: impl Iterator<Item = (&'a i64, &'a EventValue)> + Clone,
) -> WindowValue {
    match agg {
        Agg::DistinctCount => match inline_distinct(held.clone().map(|(_, value)| value)) {
            Some(count) => count,
            None => aggregate_distinct(items(held).map(|(_, item)| item)),
        },
        agg => aggregate(agg, items(held)),
    }
}

/// The words of a key held inline: its 22 bytes (zeros after its length)
/// and its length, read at fixed offsets, so that two inline keys are equal
/// exactly when their words are.
#[inline]
fn inline_words(key: &EventKey) -> Option<[u64; 3]> {
    match key {
        EventKey::Inline { len, bytes } => {
            let mut last = [0u8; 8];
            last[..6].copy_from_slice(&bytes[16..22]);
            last[7] = *len;
            Some([
                u64::from_le_bytes(bytes[..8].try_into().unwrap()),
                u64::from_le_bytes(bytes[8..16].try_into().unwrap()),
                u64::from_le_bytes(last),
            ])
        }
        EventKey::Heap(_) => None,
    }
}

/// `window_distinct_count` of a window's values when every one is a key
/// held inline (categories and ids up to 22 bytes, every integer): the
/// kernel's count ([`aggregate_distinct`], which counts byte strings
/// exactly), found by comparing each key's three words with those already
/// seen: no hashing of bytes, no branch on a key's length. `None` when a
/// value is a number or a longer key: the kernel counts those.
fn inline_distinct<'a>(values: impl Iterator<Item = &'a EventValue>) -> Option<WindowValue> {
    use std::ops::ControlFlow::{Break, Continue};
    const LISTED: usize = 16;
    // The first 16 distinct keys, each with a one-word tag of its words
    // (compared first: one comparison per key seen, not three).
    let mut tags: arrayvec::ArrayVec<u64, LISTED> = arrayvec::ArrayVec::new();
    let mut listed: arrayvec::ArrayVec<[u64; 3], LISTED> = arrayvec::ArrayVec::new();
    let mut more: HashSet<[u64; 3], foldhash::fast::FixedState> = HashSet::default();
    // The iterator's own loop (`try_for_each`), not a `next()` call per value.
    let all_inline = values.into_iter().try_for_each(|value| {
        let words = match value {
            EventValue::Key(k) => match inline_words(k) {
                Some(words) => words,
                None => return Break(()),
            },
            EventValue::Number(_) => return Break(()),
            EventValue::Time(_) | EventValue::Skip => return Continue(()),
        };
        let tag = words[0] ^ words[1].rotate_left(21) ^ words[2].rotate_left(42);
        let seen = tags
            .iter()
            .zip(&listed)
            .any(|(t, w)| *t == tag && *w == words);
        if !seen {
            if listed.is_full() {
                more.insert(words);
            } else {
                tags.push(tag);
                listed.push(words);
            }
        }
        Continue(())
    });
    match all_inline {
        Continue(()) => Some(WindowValue::Count((listed.len() + more.len()) as i64)),
        Break(()) => None,
    }
}

/// Whether the tile of the hop starting at `start` (a multiple of `hop`,
/// or i64::MIN) is out of reach of every request from `oldest` on: the
/// same as `start < floor_to(rule.bounds(oldest).0, hop)`, without the
/// divisions. The tile holds events before `start + hop`; the earliest
/// window start of a request from `oldest` on is `oldest − length` rounded
/// down to a hop (sawtooth), or `oldest` rounded down minus the length
/// (hopping; the hop divides the length), so the tile is gone exactly when
/// `start + hop + length ≤ oldest`.
#[inline]
fn tile_gone(rule: &WindowRule, hop: i64, start: i64, oldest: i64) -> bool {
    if start == i64::MIN {
        // A start that saturated: no multiple of the hop.
        return start < floor_to(rule.bounds(oldest).0, hop);
    }
    i128::from(start) + i128::from(hop) + i128::from(rule.length) <= i128::from(oldest)
}

fn put_option(out: &mut Vec<u8>, v: Option<i64>) {
    match v {
        Some(t) => {
            out.put_u8(1);
            out.put_i64(t);
        }
        None => out.put_u8(0),
    }
}

/// An option [`put_option`] wrote (the outer None: not one).
fn get_option(r: &mut Reader<'_>) -> Option<Option<i64>> {
    match r.u8()? {
        0 => Some(None),
        1 => r.i64().map(Some),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skewless_udfs::kernel::window::{WindowState, sweep};

    fn rule(length: i64, hop: Option<i64>, mode: Option<&str>) -> WindowRule {
        WindowRule::new(length, hop, mode).unwrap()
    }

    /// A window over the event's only value.
    fn spec(agg: Agg, rule: WindowRule) -> WindowSpec {
        WindowSpec {
            agg,
            rule,
            value: 0,
            known: None,
        }
    }

    /// `tile_gone` says what its definition says: the tile's start is
    /// before the earliest window start a request from `oldest` on has,
    /// rounded down to a hop. Both modes, starts and times around the
    /// epoch, before it, on and beside hop edges, and at the ends of i64.
    #[test]
    fn tile_gone_is_its_definition() {
        let mut rng = Rng(0x7115);
        let edges = [
            i64::MIN,
            i64::MIN + 1,
            i64::MIN + 7,
            -1,
            0,
            1,
            i64::MAX - 3,
            i64::MAX,
        ];
        for (length, hop) in [
            (60, 20),
            (40, 10),
            (5, 5),
            (86_400, 3_600),
            (1 << 40, 1 << 20),
        ] {
            for mode in [None, Some("hopping")] {
                let r = rule(length, Some(hop), mode);
                let mut times: Vec<i64> = edges.to_vec();
                for _ in 0..400 {
                    let x = (rng.next() % 2_000) as i64 - 1_000;
                    times.push(x * hop / 4);
                    times.push(x * hop + (rng.next() % 3) as i64 - 1);
                    times.push(rng.next() as i64);
                }
                for &ts in &times {
                    let start = floor_to(ts, hop);
                    for &oldest in times.iter().step_by(7) {
                        let definition = start < floor_to(r.bounds(oldest).0, hop);
                        assert_eq!(
                            tile_gone(&r, hop, start, oldest),
                            definition,
                            "length {length}, hop {hop}, {mode:?}, start {start}, oldest {oldest}"
                        );
                    }
                }
            }
        }
    }

    /// The inline count is the kernel's: keys of every inline length (0 to
    /// 22 bytes, and keys that differ only in a trailing zero byte or in
    /// length), few and many distinct ones (past the 16 listed), NULLs
    /// skipped; numbers and longer keys are left to the kernel.
    #[test]
    fn inline_distinct_counts_as_the_kernel() {
        let mut rng = Rng(0xD157);
        for round in 0..300 {
            let kinds = 1 + (round % 40) as u64;
            let values: Vec<EventValue> = (0..(rng.next() % 60))
                .map(|_| {
                    let pick = rng.next() % kinds;
                    if pick == 0 && round % 3 == 0 {
                        return EventValue::Skip;
                    }
                    let len = (pick * 7 % 23) as usize;
                    let mut bytes: Vec<u8> = (0..len)
                        .map(|i| (pick as u8).wrapping_mul(i as u8 + 1))
                        .collect();
                    if pick.is_multiple_of(5) && len > 0 {
                        bytes[len - 1] = 0;
                    }
                    EventValue::Key(EventKey::new(&bytes))
                })
                .collect();
            let items = values.iter().filter_map(|v| match v {
                EventValue::Key(k) => Some(Item::Key(k)),
                _ => None,
            });
            let kernel = aggregate_distinct(items);
            assert_eq!(
                inline_distinct(values.iter()),
                Some(kernel),
                "round {round}"
            );
        }
        // Zeros at the end are bytes of the key: four keys, not one.
        let zeros: Vec<EventValue> = [&b""[..], b"a", b"a\0", b"a\0\0", b"a\0"]
            .iter()
            .map(|k| EventValue::Key(EventKey::new(k)))
            .collect();
        assert_eq!(inline_distinct(zeros.iter()), Some(WindowValue::Count(4)));
        let long = EventValue::Key(EventKey::new(&[7u8; 23]));
        assert_eq!(inline_distinct([&long].into_iter()), None);
        let number = EventValue::number(Some(1.5));
        assert_eq!(inline_distinct([&number].into_iter()), None);
        assert_eq!(
            inline_distinct(std::iter::empty()),
            Some(WindowValue::Count(0))
        );
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
        .map(|(agg, rule)| spec(agg, rule))
        .to_vec();
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
                let mut batch = Vec::new();
                let (add, retract) = (WindowState::add, WindowState::retract);
                sweep(&w.rule, w.agg, &mine, &rows, add, retract, |_, r| {
                    batch.push(r)
                });
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
    fn a_restored_snapshot_goes_on_as_the_stream_it_was_taken_from() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let windows = vec![
            spec(Agg::Sum, rule(30, None, None)),
            spec(Agg::Mean, rule(40, Some(10), None)),
            spec(Agg::Max, rule(60, Some(20), Some("hopping"))),
            WindowSpec {
                agg: Agg::DistinctCount,
                rule: rule(50, Some(5), None),
                value: 1,
                known: None,
            },
            WindowSpec {
                agg: Agg::Count,
                rule: rule(25, None, None),
                value: 0,
                known: Some(2),
            },
            spec(Agg::Last, rule(15, None, None)),
        ];
        let limits = Limits {
            lateness: 12,
            cap: 40,
        };
        let mut events = Vec::new();
        let mut t = -100i64;
        for _ in 0..2000 {
            t += (rng.next() % 3) as i64;
            let entity = [(rng.next() % 7) as u8];
            let ts = t - (rng.next() % 15) as i64;
            let v = match rng.next() % 9 {
                0 => EventValue::Skip,
                _ => EventValue::number(Some((rng.next() % 1000) as f64 * 0.1 - 50.0)),
            };
            let key = EventValue::Key(EventKey::new(format!("k{}", rng.next() % 9).as_bytes()));
            let arrival = EventValue::Time(ts + (rng.next() % 6) as i64);
            events.push((entity, ts, vec![v, key, arrival]));
        }
        let first = Stream::new(windows.clone(), limits);
        let (before, after) = events.split_at(1200);
        for (e, ts, v) in before {
            first.push(Some(e), Some(*ts), v.clone());
        }
        first.push(None, Some(0), vec![EventValue::Skip]);
        let mut bytes = Vec::new();
        first.snapshot(&mut bytes);
        let second = Stream::new(windows.clone(), limits);
        let mut r = Reader::new(&bytes);
        second.restore(&mut r).unwrap();
        assert_eq!(r.remaining(), 0);
        let mut again = Vec::new();
        second.snapshot(&mut again);
        assert_eq!(
            again, bytes,
            "a restored stream snapshots to the same bytes"
        );
        assert_eq!(second.counts(), first.counts());
        assert!(first.tiles_held() > 0 && first.counts().late > 0);
        for (e, ts, v) in after {
            first.push(Some(e), Some(*ts), v.clone());
            second.push(Some(e), Some(*ts), v.clone());
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut answered = 0;
        for entity in 0..7u8 {
            for at in t - 12..t + 70 {
                let x = first.evaluate(Some(&[entity]), Some(at), &mut a);
                let y = second.evaluate(Some(&[entity]), Some(at), &mut b);
                assert_eq!(x, y);
                if x.is_ok() {
                    answered += 1;
                    assert!(a.iter().zip(&b).all(|(p, q)| match (p, q) {
                        (Some(p), Some(q)) => same(p, q),
                        _ => p == q,
                    }));
                }
            }
        }
        assert!(answered > 0);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        first.snapshot(&mut x);
        second.snapshot(&mut y);
        assert_eq!(x, y);
        // Damaged or foreign bytes are refused, never a panic.
        for cut in (0..bytes.len()).step_by(61) {
            let fresh = Stream::new(windows.clone(), limits);
            assert!(
                fresh.restore(&mut Reader::new(&bytes[..cut])).is_err(),
                "cut at {cut}"
            );
        }
        let other = Stream::new(windows[..2].to_vec(), limits);
        let e = other.restore(&mut Reader::new(&bytes)).unwrap_err();
        assert!(
            e.contains("holds 6 windows over 3 values; this stream has 2 over 1"),
            "{e}"
        );
    }

    #[test]
    fn late_dropped_unkeyed_stale_and_evicted_are_counted() {
        let store = Stream::new(
            vec![spec(Agg::Count, rule(10, None, None))],
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
            vec![spec(Agg::Sum, rule(100, None, None))],
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
            vec![spec(Agg::Sum, rule(2, None, None))],
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
        let windows = vec![spec(Agg::Mean, rule(50, Some(10), None))];
        let limits = Limits {
            lateness: 0,
            cap: 1_000,
        };
        let store = Stream::new(windows.clone(), limits);
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
        let one = Stream::new(windows, limits);
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
        // The window has a hop: each entity keeps its newest event raw (no
        // lateness) and one state per hop for the rest of its reach, the
        // hops from 1940 (floor to 10 of 1999 − 50) to 1990.
        assert_eq!(store.events_held(), 32);
        assert_eq!(store.tiles_held(), 32 * 6);
    }

    #[test]
    fn windows_with_a_hop_answer_from_tiles_like_the_batch_sweep() {
        use skewless_udfs::kernel::window::sweep_known;
        let mut rng = Rng(0x1234_5678_9ABC_DEF1);
        let lateness = 12;
        // (entity, time, arrival, value): bursts, ties, times before 0,
        // arrivals up to the lateness late.
        let mut events: Vec<(u8, i64, i64, Option<f64>)> = Vec::new();
        let mut t = -300i64;
        for _ in 0..1_500 {
            t += (rng.next() % 4) as i64;
            let v = match rng.next() % 12 {
                0 => None,
                _ => Some(
                    ((rng.next() % 401) as f64 - 200.0) * [1.0, 1e15][(rng.next() % 2) as usize],
                ),
            };
            let delay = (rng.next() % (lateness as u64 + 1)) as i64;
            events.push(((rng.next() % 3) as u8, t, t + delay, v));
        }
        let windows: Vec<WindowSpec> = [
            (Agg::Mean, rule(60, Some(10), None)),
            (Agg::Var, rule(40, Some(20), Some("hopping"))),
            (Agg::Max, rule(30, Some(5), None)),
            (Agg::DistinctCount, rule(50, Some(10), None)),
            (Agg::Last, rule(30, Some(10), Some("hopping"))),
            (Agg::Sum, rule(100, Some(25), None)),
            (Agg::Count, rule(7, Some(7), None)),
        ]
        .map(|(agg, rule)| spec(agg, rule))
        .to_vec();
        for cap in [10_000, 6] {
            let store = Stream::new(windows.clone(), Limits { lateness, cap });
            // In time order: pushes at arrival, then requests at each event's
            // time (and a little after), the batch counting what had arrived.
            let mut actions: Vec<(i64, u8, usize)> = Vec::new();
            for (i, e) in events.iter().enumerate() {
                actions.push((e.2, 0, i));
                actions.push((e.1 + (i % 3) as i64, 1, i));
            }
            actions.sort();
            let mut out = Vec::new();
            let mut checked = 0;
            for (at, what, i) in actions {
                let (entity, ts, _, v) = events[i];
                if what == 0 {
                    store.push(Some(&[entity]), Some(ts), vec![EventValue::number(v)]);
                    continue;
                }
                let mine: Vec<(i64, i64, Finite)> = events
                    .iter()
                    .filter(|e| e.0 == entity)
                    .filter_map(|e| Some((e.1, e.2, Finite::new(e.3?)?)))
                    .collect();
                store.evaluate(Some(&[entity]), Some(at), &mut out).unwrap();
                for (k, w) in windows.iter().enumerate() {
                    let mut expected = None;
                    let (add, retract) = (WindowState::add, WindowState::retract);
                    sweep_known(&w.rule, w.agg, &mine, &[at], add, retract, |_, r| {
                        expected = Some(r)
                    });
                    let expected = expected.unwrap();
                    let got = out[k].unwrap();
                    assert!(
                        same(&got, &expected),
                        "cap {cap}: {w:?} at {at}: {got:?} vs {expected:?}"
                    );
                    checked += 1;
                }
            }
            assert_eq!(checked, events.len() * windows.len());
            assert_eq!(store.counts().dropped, 0);
            // Raw events are kept only for the lateness (no window without a
            // hop): the rest is one state per hop.
            assert!(store.tiles_held() > 0);
            assert!(store.counts().peak <= cap as u64);
        }
    }
}
