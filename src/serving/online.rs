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

use datafusion::arrow::datatypes::DataType;
use skewless_udfs::kernel::window::{TimeUnit, WindowValue};

use super::compile::CompiledWindow;
use super::expr::{Kind, Node};
use super::state::{Counts, EventKey, EventValue, Limits, StateError, Stream, WindowSpec};
use super::value::Value;
use crate::error::{Error, Result};

/// Per thread, reused: an entity key being built, a stream's results, and
/// the values of an event being pushed.
type Scratch = (Vec<u8>, Vec<Option<WindowValue>>, Vec<EventValue>);

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

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

/// One stream's expressions over the event rows of one table.
struct TableNodes {
    entity: Vec<Node>,
    ts: Node,
    /// One per event value of the stream.
    values: Vec<Node>,
}

/// A window value's expression as a push evaluates it: the cast of an
/// integer to Float64 that type coercion puts around an integer column is
/// left out, since a pushed integer becomes that same f64 (`i as f64`, as
/// Arrow casts) when it is kept.
fn number_node(n: &Node) -> Node {
    match &n.kind {
        Kind::Cast { expr, .. } if n.ty == DataType::Float64 && expr.ty.is_integer() => {
            expr.as_ref().clone()
        }
        _ => n.clone(),
    }
}

struct StreamPlan {
    /// By table index: how an event of the table gives the stream its
    /// entity, time and values (None: the table's rows do not reach it).
    tables: Vec<Option<TableNodes>>,
    /// How each event value is kept, and its expression as text.
    values: Vec<(String, Keep)>,
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
    /// The table requests come from.
    request: usize,
    limits: OnlineLimits,
}

/// The limits of the online state, as given (see [`super::Evaluator::with_limits`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OnlineLimits {
    /// How late an event (or a request) may come behind its entity's newest
    /// event and still be exact: a duration for timestamp and date times, a
    /// number of units for integer times.
    pub lateness: Lateness,
    /// The most events an entity keeps per stream.
    pub max_events_per_entity: usize,
}

/// A lateness as given: a duration, or a plain number of an integer time
/// column's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lateness {
    Nanoseconds(i64),
    Units(i64),
}

impl Default for OnlineLimits {
    fn default() -> Self {
        Self {
            lateness: Lateness::Nanoseconds(0),
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

/// `f` of a node's value in `row`: an input (most entity, time and value
/// expressions of a stream) is read in place, anything else evaluated.
#[inline]
fn with_value<'a, T>(
    n: &'a Node,
    row: &'a [Value<'a>],
    f: impl FnOnce(&Value<'_>) -> T,
) -> super::expr::EvalResult<T> {
    match &n.kind {
        Kind::Input(i) => Ok(f(&row[*i])),
        _ => n.eval(row).map(|v| f(&v)),
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
    /// `first_slot` on in a request (a row of table `request`).
    pub(crate) fn new(
        windows: Vec<CompiledWindow>,
        first_slot: usize,
        request: usize,
        limits: OnlineLimits,
    ) -> Result<Self> {
        let tables = windows.first().map_or(0, |w| w.nodes.len());
        let mut streams: Vec<StreamPlan> = Vec::new();
        let mut keys: Vec<&str> = Vec::new();
        let mut specs: Vec<Vec<WindowSpec>> = Vec::new();
        for (index, w) in windows.iter().enumerate() {
            let at = match keys.iter().position(|k| *k == w.stream_key) {
                Some(at) => at,
                None => {
                    keys.push(&w.stream_key);
                    streams.push(StreamPlan {
                        tables: (0..tables).map(|_| None).collect(),
                        values: Vec::new(),
                        windows: Vec::new(),
                        // Replaced below, once the stream's windows are known.
                        stream: Stream::new(
                            Vec::new(),
                            Limits {
                                lateness: 0,
                                cap: 1,
                            },
                        ),
                    });
                    specs.push(Vec::new());
                    streams.len() - 1
                }
            };
            let plan = &mut streams[at];
            // The value's kind is the same in every table (a UNION's
            // branches share their types).
            let value_type = w.nodes.iter().flatten().map(|n| n.value.ty.clone()).next();
            let keep = match value_type {
                Some(t) if t.is_floating() || t.is_null() => Keep::Number,
                _ => Keep::Key,
            };
            let mut slot_of = |text: &str, keep: Keep| match plan
                .values
                .iter()
                .position(|(t, k)| *k == keep && t == text)
            {
                Some(i) => (i, false),
                None => {
                    plan.values.push((text.to_string(), keep));
                    (plan.values.len() - 1, true)
                }
            };
            let (value, new_value) = slot_of(&w.value_key, keep);
            let known = w.known_key.as_deref().map(|k| slot_of(k, Keep::Time));
            for (t, nodes) in w.nodes.iter().enumerate() {
                let Some(nodes) = nodes else { continue };
                let table = plan.tables[t].get_or_insert_with(|| TableNodes {
                    entity: nodes.entity.clone(),
                    ts: nodes.ts.clone(),
                    values: Vec::new(),
                });
                if new_value {
                    table.values.push(match keep {
                        Keep::Number => number_node(&nodes.value),
                        _ => nodes.value.clone(),
                    });
                }
                if let (Some((_, true)), Some(k)) = (known, &nodes.known) {
                    table.values.push(k.clone());
                }
            }
            plan.windows.push(index);
            specs[at].push(WindowSpec {
                agg: w.agg,
                rule: w.rule,
                value,
                known: known.map(|(i, _)| i),
            });
        }
        for (plan, specs) in streams.iter_mut().zip(specs) {
            let ts = plan
                .tables
                .iter()
                .flatten()
                .map(|t| &t.ts)
                .next()
                .expect("a stream has a table");
            plan.stream = Stream::new(specs, stream_limits(ts, limits)?);
        }
        Ok(Self {
            windows,
            streams,
            first_slot,
            request,
            limits,
        })
    }

    pub(crate) fn windows(&self) -> &[CompiledWindow] {
        &self.windows
    }

    pub(crate) fn limits(&self) -> OnlineLimits {
        self.limits
    }

    /// The input slot of each stream's time in the rows of table `t`, when
    /// it is an input column.
    pub(crate) fn time_slots(&self, t: usize) -> Vec<usize> {
        self.streams
            .iter()
            .filter_map(|s| match s.tables[t].as_ref()?.ts.kind {
                super::expr::Kind::Input(i) => Some(i),
                _ => None,
            })
            .collect()
    }

    /// The input slots of table `t` that an event must give (entity, time,
    /// values, arrival), and, for the request table, those a request must
    /// give (entity and time).
    pub(crate) fn inputs(&self, t: usize, events: &mut Vec<usize>, requests: &mut Vec<usize>) {
        for s in &self.streams {
            let Some(nodes) = &s.tables[t] else { continue };
            for n in nodes.entity.iter().chain(std::iter::once(&nodes.ts)) {
                n.inputs(events);
                if t == self.request {
                    n.inputs(requests);
                }
            }
            for n in &nodes.values {
                n.inputs(events);
            }
        }
    }

    fn window_error(&self, window: usize, e: impl std::fmt::Display) -> Error {
        Error::Data(format!("{}: {e}", self.windows[window].text))
    }

    /// The entity key and time of a row for one stream.
    fn locate<'a>(
        &self,
        s: &StreamPlan,
        nodes: &'a TableNodes,
        row: &'a [Value<'a>],
        key: &mut Vec<u8>,
    ) -> Result<(bool, Option<i64>)> {
        key.clear();
        let mut keyed = true;
        for n in &nodes.entity {
            keyed &= with_value(n, row, |v| key_part(key, v))
                .map_err(|e| self.window_error(s.windows[0], e))?;
        }
        let ts =
            with_value(&nodes.ts, row, time_of).map_err(|e| self.window_error(s.windows[0], e))?;
        Ok((keyed, ts))
    }

    /// Pushes one event, a row of table `t`, into every stream it reaches.
    pub(crate) fn push(&self, t: usize, row: &[Value<'_>]) -> Result<()> {
        SCRATCH.with_borrow_mut(|(key, _, values)| self.push_with(t, row, key, values))
    }

    fn push_with(
        &self,
        t: usize,
        row: &[Value<'_>],
        key: &mut Vec<u8>,
        values: &mut Vec<EventValue>,
    ) -> Result<()> {
        for s in &self.streams {
            let Some(nodes) = &s.tables[t] else { continue };
            let (keyed, ts) = self.locate(s, nodes, row, key)?;
            values.clear();
            for (n, (_, keep)) in nodes.values.iter().zip(&s.values) {
                let value = with_value(n, row, |v| match (keep, v) {
                    (_, Value::Null) => Ok(EventValue::Skip),
                    (Keep::Number, Value::Float(f)) => Ok(EventValue::number(Some(*f))),
                    (Keep::Number, Value::Int(i)) => Ok(EventValue::number(Some(*i as f64))),
                    (Keep::Number, Value::UInt(u)) => Ok(EventValue::number(Some(*u as f64))),
                    (Keep::Time, v) => Ok(time_of(v).map_or(EventValue::Skip, EventValue::Time)),
                    (Keep::Key, Value::Int(i)) => {
                        Ok(EventValue::Key(EventKey::new(&i.to_le_bytes())))
                    }
                    (Keep::Key, Value::UInt(u)) => {
                        Ok(EventValue::Key(EventKey::new(&u.to_le_bytes())))
                    }
                    (Keep::Key, Value::Str(text)) => {
                        Ok(EventValue::Key(EventKey::new(text.as_bytes())))
                    }
                    (_, other) => Err(format!("unexpected event value {other} of type {}", n.ty)),
                });
                values.push(
                    value
                        .and_then(|v| v)
                        .map_err(|e| self.window_error(s.windows[0], e))?,
                );
            }
            s.stream
                .push_values(keyed.then_some(key.as_slice()), ts, values);
        }
        Ok(())
    }

    /// Fills the window slots of a request row (`row` holds the inputs of
    /// the request table and room for the windows).
    pub(crate) fn fill(&self, row: &mut [Value<'_>]) -> Result<()> {
        let (inputs, windows) = row.split_at_mut(self.first_slot);
        self.fill_windows(inputs, windows)
    }

    /// The window values of a request (`inputs`: a row of the request
    /// table) into `windows`, one per window function.
    pub(crate) fn fill_windows(
        &self,
        inputs: &[Value<'_>],
        windows: &mut [Value<'_>],
    ) -> Result<()> {
        SCRATCH.with_borrow_mut(|(key, results, _)| self.fill_with(inputs, windows, key, results))
    }

    fn fill_with(
        &self,
        row: &[Value<'_>],
        windows: &mut [Value<'_>],
        key: &mut Vec<u8>,
        results: &mut Vec<Option<WindowValue>>,
    ) -> Result<()> {
        for s in &self.streams {
            let Some(nodes) = &s.tables[self.request] else {
                continue;
            };
            let (keyed, t) = self.locate(s, nodes, row, key)?;
            s.stream
                .evaluate(keyed.then_some(key.as_slice()), t, results)
                .map_err(|e: StateError| self.window_error(s.windows[0], e))?;
            for (w, r) in s.windows.iter().zip(results.iter()) {
                windows[*w] = match r {
                    Some(WindowValue::Count(n)) => Value::Int(*n),
                    Some(WindowValue::Value(Some(f))) => Value::Float(*f),
                    _ => Value::Null,
                };
            }
        }
        Ok(())
    }

    /// Each window in words, one per line (`eval --explain`), its
    /// expressions as the request table's rows give them.
    pub(crate) fn explain(&self) -> String {
        let mut text = String::new();
        for s in &self.streams {
            let ts = s.tables.iter().flatten().map(|t| &t.ts).next();
            let (unit, _) = ts.map_or((TimeUnit::Integer, None), unit_of);
            for &w in &s.windows {
                let window = &self.windows[w];
                text.push_str(&format!(
                    "${} = {}\n    {} over {}\n",
                    self.first_slot + w,
                    window.text,
                    window.agg.name().trim_start_matches("window_"),
                    window.rule.describe(unit)
                ));
                if let Some(k) = &window.known_key {
                    text.push_str(&format!("    counting only events with {k} <= t\n"));
                }
            }
        }
        text
    }

    /// What a saved state must match to be read back: every stream's
    /// windows, expressions and limits, as text.
    pub(crate) fn fingerprint(&self) -> String {
        let mut text = self.explain();
        for s in &self.streams {
            text.push_str(&format!(
                "stream of windows {:?}, values {:?}, limits {:?}\n",
                s.windows,
                s.values,
                s.stream.limits()
            ));
            for t in s.tables.iter().flatten() {
                let entity: Vec<String> = t.entity.iter().map(ToString::to_string).collect();
                let values: Vec<String> = t.values.iter().map(ToString::to_string).collect();
                text.push_str(&format!(
                    "  entity ({}) ts {} values ({})\n",
                    entity.join(", "),
                    t.ts,
                    values.join(", ")
                ));
            }
        }
        text
    }

    /// Appends every stream's state ([`Stream::snapshot`]).
    pub(crate) fn snapshot(&self, out: &mut Vec<u8>) {
        use skewless_udfs::kernel::bytes::Put;
        out.put_u64(self.streams.len() as u64);
        for s in &self.streams {
            s.stream.snapshot(out);
        }
    }

    /// Reads back what [`Online::snapshot`] wrote into these (empty) streams.
    pub(crate) fn restore(
        &self,
        r: &mut skewless_udfs::kernel::bytes::Reader<'_>,
    ) -> std::result::Result<(), String> {
        if r.u64() != Some(self.streams.len() as u64) {
            return Err(format!(
                "the state is damaged or holds another number of streams than the transform's {}",
                self.streams.len()
            ));
        }
        for s in &self.streams {
            s.stream.restore(r)?;
        }
        Ok(())
    }

    /// What the streams hold and have counted, for a report.
    pub(crate) fn report(&self) -> Vec<StreamReport> {
        self.streams
            .iter()
            .map(|s| StreamReport {
                windows: s
                    .windows
                    .iter()
                    .map(|&w| self.windows[w].text.clone())
                    .collect(),
                entities: s.stream.entities(),
                events_held: s.stream.events_held(),
                tiles_held: s.stream.tiles_held(),
                bytes_per_event: s.stream.bytes_per_event(),
                reach: {
                    let ts = s.tables.iter().flatten().map(|t| &t.ts).next();
                    let (unit, _) = ts.map_or((TimeUnit::Integer, None), unit_of);
                    let reach = s.stream.windows().iter().map(|w| w.rule.reach()).max();
                    unit.words(reach.unwrap_or(0))
                },
                counts: s.stream.counts(),
            })
            .collect()
    }
}

/// What one stream holds and has counted.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamReport {
    pub windows: Vec<String>,
    pub entities: usize,
    pub events_held: usize,
    /// Partial states of one hop each (windows with a hop keep their older
    /// events so).
    pub tiles_held: usize,
    /// The bytes of one held event (without distinct-count keys).
    pub bytes_per_event: usize,
    /// How far back the stream's longest window reaches, in words.
    pub reach: String,
    /// What happened to events and requests (`peak`: the most events one
    /// entity held at once).
    pub counts: Counts,
}

/// The limits of a stream in the unit of its time.
fn stream_limits(ts: &Node, limits: OnlineLimits) -> Result<Limits> {
    let (_, nanos) = unit_of(ts);
    let lateness = match (nanos, limits.lateness) {
        (_, Lateness::Nanoseconds(0) | Lateness::Units(0)) => 0,
        // Whole units, rounded up: a lateness never keeps less than asked.
        (Some(n), Lateness::Nanoseconds(l)) => {
            let l = i128::from(l);
            i64::try_from((l + n - 1) / n).unwrap_or(i64::MAX)
        }
        (None, Lateness::Units(l)) => l,
        (Some(_), Lateness::Units(l)) => {
            return Err(Error::Usage(format!(
                "--lateness {l}: the window's time ({}) is a timestamp or a date: give a \
                 duration, e.g. {l}s or {l}m",
                ts.ty
            )));
        }
        (None, Lateness::Nanoseconds(_)) => {
            return Err(Error::Usage(format!(
                "--lateness: the window's time is an integer ({}): give a plain number of \
                 its units",
                ts.ty
            )));
        }
    };
    if lateness < 0 {
        return Err(Error::Usage("--lateness must not be negative".into()));
    }
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
