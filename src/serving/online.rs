//! Window features at serving: the transform's `window_*` calls, fed by
//! pushed events and read by requests.
//!
//! Calls over the same entity (PARTITION BY) and time expressions share one
//! [`Stream`] of events. An event is a row of the transform's input: each
//! stream computes from it, with the compiled expressions of the fitted
//! plan, the entity key, the time and the values its windows read, and
//! pushes them. A request is a row too: each stream computes its entity and
//! time t and answers every window at t, into the row slots after the
//! inputs that the outputs read (see `compile`).

use skewless_udfs::kernel::window::{TimeUnit, WindowValue};

use super::compile::CompiledWindow;
use super::expr::Node;
use super::state::{EventValue, Limits, StateError, Stream, WindowSpec};
use super::value::Value;
use crate::error::{Error, Result};

/// How a stream keeps one value of an event.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Keep {
    /// A number (NULL and non-finite skipped).
    Number,
    /// The bytes of an integer or a string (distinct counts).
    Key,
    /// An arrival time.
    Time,
}

struct StreamPlan {
    entity: Vec<Node>,
    ts: Node,
    values: Vec<(Node, Keep)>,
    /// The global index of each of the stream's windows.
    windows: Vec<usize>,
    stream: Stream,
}

/// The online state of a transform's window functions.
pub(crate) struct Online {
    windows: Vec<CompiledWindow>,
    streams: Vec<StreamPlan>,
    /// The slot of window 0 in a request row.
    first_slot: usize,
    limits: OnlineLimits,
}

/// The limits of the online state, as given (see [`super::Evaluator::with_limits`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OnlineLimits {
    /// How late an event (or a request) may come behind its entity's newest
    /// event and still be exact, in nanoseconds for timestamp and date
    /// times, in units for integer times.
    pub lateness: i64,
    /// The most events an entity keeps per stream.
    pub max_events_per_entity: usize,
}

impl Default for OnlineLimits {
    fn default() -> Self {
        Self {
            lateness: 0,
            max_events_per_entity: 100_000,
        }
    }
}

/// The unit of a time node's type, and how many nanoseconds one unit is.
fn unit_of(ts: &Node) -> (TimeUnit, Option<i128>) {
    match skewless_udfs::window::time_unit(&ts.ty) {
        Some((unit, nanos)) => (unit, Some(nanos)),
        None => (TimeUnit::Integer, None),
    }
}

/// A node's value as an integer time (NULL: None).
fn time_of(v: &Value<'_>) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::UInt(u) => i64::try_from(*u).ok(),
        _ => None,
    }
}

/// Appends a value to an entity key; false for NULL (no entity).
fn key_part(key: &mut Vec<u8>, v: &Value<'_>) -> bool {
    match v {
        Value::Null => return false,
        Value::Bool(b) => key.push(u8::from(*b)),
        Value::Int(i) => key.extend_from_slice(&i.to_le_bytes()),
        Value::UInt(u) => key.extend_from_slice(&u.to_le_bytes()),
        Value::Float(f) => key.extend_from_slice(&f.to_bits().to_le_bytes()),
        Value::Str(s) => {
            key.extend_from_slice(&(s.len() as u64).to_le_bytes());
            key.extend_from_slice(s.as_bytes());
        }
        Value::List(items) => {
            key.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                if !key_part(key, item) {
                    key.push(0xFF);
                }
            }
        }
    }
    true
}

impl Online {
    /// The streams of `windows`, whose results go to the row slots from
    /// `first_slot` on.
    pub(crate) fn new(
        windows: Vec<CompiledWindow>,
        first_slot: usize,
        limits: OnlineLimits,
    ) -> Result<Self> {
        let mut streams: Vec<StreamPlan> = Vec::new();
        let mut specs: Vec<Vec<WindowSpec>> = Vec::new();
        let same = |a: &[Node], b: &[Node]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_string() == y.to_string())
        };
        for (index, w) in windows.iter().enumerate() {
            let at = match streams.iter().position(|s| {
                same(&s.entity, &w.entity)
                    && same(std::slice::from_ref(&s.ts), std::slice::from_ref(&w.ts))
            }) {
                Some(at) => at,
                None => {
                    streams.push(StreamPlan {
                        entity: w.entity.clone(),
                        ts: w.ts.clone(),
                        values: Vec::new(),
                        windows: Vec::new(),
                        // Replaced below, once the stream's windows are known.
                        stream: Stream::new(
                            Vec::new(),
                            Limits {
                                lateness: 0,
                                cap: 0,
                            },
                        ),
                    });
                    specs.push(Vec::new());
                    streams.len() - 1
                }
            };
            let plan = &mut streams[at];
            let mut value_slot = |node: &Node, keep: Keep| {
                let text = node.to_string();
                match plan
                    .values
                    .iter()
                    .position(|(n, k)| *k == keep && n.to_string() == text)
                {
                    Some(i) => i,
                    None => {
                        plan.values.push((node.clone(), keep));
                        plan.values.len() - 1
                    }
                }
            };
            let keep = match &w.value.ty {
                t if t.is_floating() => Keep::Number,
                _ => Keep::Key,
            };
            let value = value_slot(&w.value, keep);
            let known = w.known.as_ref().map(|k| value_slot(k, Keep::Time));
            plan.windows.push(index);
            specs[at].push(WindowSpec {
                agg: w.agg,
                rule: w.rule,
                value,
                known,
            });
        }
        for (plan, specs) in streams.iter_mut().zip(specs) {
            plan.stream = Stream::new(specs, stream_limits(&plan.ts, limits)?);
        }
        Ok(Self {
            windows,
            streams,
            first_slot,
            limits,
        })
    }

    pub(crate) fn windows(&self) -> &[CompiledWindow] {
        &self.windows
    }

    pub(crate) fn limits(&self) -> OnlineLimits {
        self.limits
    }

    /// The input slot of each stream's time, when it is an input column.
    pub(crate) fn time_slots(&self) -> Vec<usize> {
        self.streams
            .iter()
            .filter_map(|s| match s.ts.kind {
                super::expr::Kind::Input(i) => Some(i),
                _ => None,
            })
            .collect()
    }

    /// The input slots an event must give (entity, time, values, arrival)
    /// and those a request must give (entity and time).
    pub(crate) fn inputs(&self, events: &mut Vec<usize>, requests: &mut Vec<usize>) {
        for s in &self.streams {
            for n in s.entity.iter().chain(std::iter::once(&s.ts)) {
                n.inputs(events);
                n.inputs(requests);
            }
            for (n, _) in &s.values {
                n.inputs(events);
            }
        }
    }

    fn window_error(&self, window: usize, e: impl std::fmt::Display) -> Error {
        Error::Data(format!("{}: {e}", self.windows[window].text))
    }

    /// The entity key and time of a row for one stream.
    fn locate(
        &self,
        s: &StreamPlan,
        row: &[Value<'_>],
        key: &mut Vec<u8>,
    ) -> Result<(bool, Option<i64>)> {
        key.clear();
        let mut keyed = true;
        for n in &s.entity {
            let v = n
                .eval(row)
                .map_err(|e| self.window_error(s.windows[0], e))?;
            keyed &= key_part(key, &v);
        }
        let ts =
            s.ts.eval(row)
                .map_err(|e| self.window_error(s.windows[0], e))?;
        Ok((keyed, time_of(&ts)))
    }

    /// Pushes one event (a row of the transform's input) into every stream.
    pub(crate) fn push(&self, row: &[Value<'_>]) -> Result<()> {
        let mut key = Vec::new();
        for s in &self.streams {
            let (keyed, ts) = self.locate(s, row, &mut key)?;
            let mut values = Vec::with_capacity(s.values.len());
            for (n, keep) in &s.values {
                let v = n
                    .eval(row)
                    .map_err(|e| self.window_error(s.windows[0], e))?;
                values.push(match (keep, &v) {
                    (_, Value::Null) => EventValue::Skip,
                    (Keep::Number, Value::Float(f)) => EventValue::number(Some(*f)),
                    (Keep::Number, Value::Int(i)) => EventValue::number(Some(*i as f64)),
                    (Keep::Time, v) => time_of(v).map_or(EventValue::Skip, EventValue::Time),
                    (Keep::Key, Value::Int(i)) => EventValue::Key(i.to_le_bytes().into()),
                    (Keep::Key, Value::UInt(u)) => EventValue::Key(u.to_le_bytes().into()),
                    (Keep::Key, Value::Str(text)) => EventValue::Key(text.as_bytes().into()),
                    (_, other) => {
                        return Err(self.window_error(
                            s.windows[0],
                            format!("unexpected event value {other} of type {}", n.ty),
                        ));
                    }
                });
            }
            s.stream.push(
                keyed.then_some(key.as_slice()),
                ts,
                values.into_boxed_slice(),
            );
        }
        Ok(())
    }

    /// Fills the window slots of a request row (`row` holds the inputs and
    /// room for the windows).
    pub(crate) fn fill(&self, row: &mut [Value<'_>]) -> Result<()> {
        let mut key = Vec::new();
        let mut results = Vec::new();
        for s in &self.streams {
            let (keyed, t) = self.locate(s, row, &mut key)?;
            s.stream
                .evaluate(keyed.then_some(key.as_slice()), t, &mut results)
                .map_err(|e: StateError| self.window_error(s.windows[0], e))?;
            for (w, r) in s.windows.iter().zip(&results) {
                row[self.first_slot + w] = match r {
                    Some(WindowValue::Count(n)) => Value::Int(*n),
                    Some(WindowValue::Value(Some(f))) => Value::Float(*f),
                    _ => Value::Null,
                };
            }
        }
        Ok(())
    }

    /// Each window in words, one per line (`eval --explain`).
    pub(crate) fn explain(&self) -> String {
        let mut text = String::new();
        for s in &self.streams {
            for &w in &s.windows {
                let window = &self.windows[w];
                let (unit, _) = unit_of(&window.ts);
                text.push_str(&format!(
                    "${} = {}\n    {} of {} over {}\n",
                    self.first_slot + w,
                    window.text,
                    window.agg.name().trim_start_matches("window_"),
                    window.value,
                    window.rule.describe(unit)
                ));
                if let Some(k) = &window.known {
                    text.push_str(&format!("    counting only events with {k} <= t\n"));
                }
            }
        }
        text
    }

    /// What the streams hold and have counted, for a report.
    pub(crate) fn report(&self) -> Vec<StreamReport> {
        use std::sync::atomic::Ordering::Relaxed;
        self.streams
            .iter()
            .map(|s| {
                let c = &s.stream.counters;
                StreamReport {
                    windows: s
                        .windows
                        .iter()
                        .map(|&w| self.windows[w].text.clone())
                        .collect(),
                    entities: s.stream.entities(),
                    events_held: s.stream.events_held(),
                    peak_events_per_entity: s.stream.peak_events_per_entity(),
                    bytes_per_event: s.stream.bytes_per_event(),
                    reach: {
                        let (unit, _) = unit_of(&s.ts);
                        let reach = s.stream.windows().iter().map(|w| w.rule.reach()).max();
                        unit.words(reach.unwrap_or(0))
                    },
                    pushed: c.pushed.load(Relaxed),
                    late: c.late.load(Relaxed),
                    dropped: c.dropped.load(Relaxed),
                    unkeyed: c.unkeyed.load(Relaxed),
                    stale_requests: c.stale_requests.load(Relaxed),
                    evicted: c.evicted.load(Relaxed),
                }
            })
            .collect()
    }
}

/// The counts of one stream (see [`super::state::Counters`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamReport {
    pub windows: Vec<String>,
    pub entities: usize,
    pub events_held: usize,
    /// The most events one entity held at once.
    pub peak_events_per_entity: usize,
    /// The bytes of one held event (without distinct-count keys).
    pub bytes_per_event: usize,
    /// How far back the stream's longest window reaches, in words.
    pub reach: String,
    pub pushed: u64,
    pub late: u64,
    pub dropped: u64,
    pub unkeyed: u64,
    pub stale_requests: u64,
    pub evicted: u64,
}

/// The limits of a stream in the unit of its time.
fn stream_limits(ts: &Node, limits: OnlineLimits) -> Result<Limits> {
    let (_, nanos) = unit_of(ts);
    let lateness = match nanos {
        // Whole units, rounded up: a lateness never keeps less than asked.
        Some(n) => {
            let l = i128::from(limits.lateness);
            i64::try_from((l + n - 1) / n).unwrap_or(i64::MAX)
        }
        None => limits.lateness,
    };
    if limits.max_events_per_entity == 0 {
        return Err(Error::Usage(
            "the per-entity event cap must be at least 1".into(),
        ));
    }
    Ok(Limits {
        lateness,
        cap: limits.max_events_per_entity,
    })
}
