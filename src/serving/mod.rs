//! The serving evaluator: a fitted transform compiled for one row at a time.
//!
//! [`Evaluator::new`] plans the artifact's fitted SQL once with DataFusion
//! (against empty tables of the artifact's input schema: no training data)
//! and compiles its SELECT list into expression trees that call the same
//! kernels as batch apply. At request time there is no planning, no Arrow
//! array and no heap allocation for a numeric feature: [`Evaluator::eval`]
//! takes a typed row and fills a vector of [`Value`]s. [`Evaluator::eval_json`]
//! and [`Evaluator::eval_batch`] wrap it for JSON objects and Arrow record
//! batches.
//!
//! Serving transforms every request: the transform's WHERE is not applied,
//! and `--label` outputs (training only) are skipped, their inputs not
//! required. A missing nullable input is NULL; a missing non-nullable input,
//! or a value of the wrong type, is an error naming the column and the type
//! it expects; unknown fields are ignored.
//!
//! ```no_run
//! use skewless::serving::{Evaluator, Value};
//! let evaluator = Evaluator::load("census.json".as_ref())?;
//! // JSON in, JSON out:
//! let features = evaluator.eval_json(r#"{"age": 39, "education": "Bachelors"}"#)?;
//! // Typed rows, in the order of `evaluator.inputs()`:
//! let mut row = evaluator.empty_row();
//! row[evaluator.input_index("age").unwrap()] = Value::Int(39);
//! let mut out = Vec::new();
//! evaluator.eval(&row, &mut out)?;
//! # Ok::<(), skewless::Error>(())
//! ```

mod compile;
mod expr;
mod online;
mod request;
mod skew;
pub mod state;
mod value;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;

pub use compile::InputColumn;
pub use online::{Lateness, OnlineLimits, StreamReport};
pub use skew::SkewCount;
pub use value::{Value, write_json, write_json_string};

use crate::artifact::Artifact;
use crate::error::{Error, Result};
use compile::CompiledOutput;
use skewless_udfs::row::RowFunction;

/// What [`Evaluator::answer_instances`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum InstancesAnswer {
    /// Every row answered.
    Answered { rows: usize },
    /// Row `index` failed (nothing is answered).
    Failed { index: usize, message: String },
    /// More rows than the limit.
    TooMany { count: usize },
}

/// The first bytes of a saved window state ([`Evaluator::save_state`]).
const STATE_MAGIC: &[u8] = b"skewless-state\n\0";
/// The layout of a saved window state; a change of layout bumps it.
const STATE_FORMAT: u32 = 1;

/// An output feature: its name and Arrow type.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputColumn {
    pub name: String,
    pub data_type: DataType,
    pub nullable: bool,
}

/// A fitted transform compiled for serving. Cheap to share across threads
/// (`Send + Sync`); evaluation takes `&self`.
pub struct Evaluator {
    inputs: Vec<InputColumn>,
    /// Whether a served output reads the input of the same index.
    required: Vec<bool>,
    by_name: HashMap<String, usize, foldhash::fast::FixedState>,
    outputs: Vec<CompiledOutput>,
    columns: Vec<OutputColumn>,
    schema: SchemaRef,
    skipped: Vec<(String, String)>,
    /// The state of the window functions, if the transform has any.
    online: Option<online::Online>,
    /// Whether an event of the request table must give the input of the
    /// same index.
    event_required: Vec<bool>,
    /// Every table events may come from (the request table among them).
    tables: Vec<EventTable>,
    /// The inputs a request must give when it is also pushed as an event.
    request_and_event_required: Vec<bool>,
    /// Whether an output computes with a window's value (rather than being
    /// one): then requests are evaluated over the inputs and the windows.
    windows_in_expressions: bool,
    /// The index of the request table in `tables`.
    request: usize,
    /// With [`Evaluator::with_clock`]: by table, the time inputs of its
    /// window streams (timestamps and dates) that take the current time
    /// when a request or an event leaves them out or NULL.
    clock: Vec<Vec<usize>>,
    /// The skew counters: two per watched input (NULL, non-finite), then
    /// one per watched function ([`skew`]).
    skew: Arc<skew::Counters>,
    /// Per counter: its kind, column and output.
    skew_labels: Vec<(&'static str, String, String)>,
    /// The inputs whose NULL and non-finite values are counted (those a
    /// served output reads).
    watched: Vec<usize>,
    /// The values each watched input takes.
    watched_fits: Vec<Fit>,
    /// How to count requests over the artifact's training profile (None
    /// without a profile of the request table).
    tally: Option<Arc<crate::profile::TallyPlan>>,
}

/// A table whose rows are events: its columns and which an event must give.
#[derive(Debug, Clone)]
struct EventTable {
    name: String,
    inputs: Vec<InputColumn>,
    required: Vec<bool>,
    /// The columns an event must give, and the values each takes.
    checks: Vec<(usize, Fit)>,
}

// One evaluator serves many threads.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<Evaluator>()
};

impl std::fmt::Debug for Evaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evaluator")
            .field("inputs", &self.inputs)
            .field("outputs", &self.columns)
            .finish()
    }
}

impl Evaluator {
    /// Loads an artifact (verifying its checksum and checking its SQL, see
    /// [`Artifact::load`]) and compiles it.
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_verified(path, None)
    }

    /// Like [`Evaluator::load`], also refusing an artifact without a valid
    /// signature under `key` when one is given.
    pub fn load_verified(path: &Path, key: Option<&crate::artifact::SigningKey>) -> Result<Self> {
        Self::compile(&Artifact::load(path, key)?)
    }

    /// Checks an artifact's SQL ([`crate::artifact::check::check`]) and
    /// compiles its fitted SELECT list. Fails, naming the expression, when
    /// the transform has anything that cannot be evaluated on one row
    /// (`skewless fit` runs this check, so a fitted artifact compiles).
    pub fn new(artifact: &Artifact) -> Result<Self> {
        crate::artifact::check::check(artifact)?;
        Self::compile(artifact)
    }

    /// Compiles an artifact whose SQL was checked.
    pub(crate) fn compile(artifact: &Artifact) -> Result<Self> {
        Self::compile_for(artifact, None)
    }

    /// Loads an artifact whose requests are rows of table `requests` (a
    /// transform over several tables; see [`Evaluator::new_for`]).
    pub fn load_for(
        path: &Path,
        key: Option<&crate::artifact::SigningKey>,
        requests: Option<&str>,
    ) -> Result<Self> {
        Self::compile_for(&Artifact::load(path, key)?, requests)
    }

    /// [`Evaluator::new`] for a transform over several tables (events of
    /// some, labels of another, in a UNION): requests are rows of table
    /// `requests`, or of the one table whose rows reach the output.
    pub fn new_for(artifact: &Artifact, requests: Option<&str>) -> Result<Self> {
        crate::artifact::check::check(artifact)?;
        Self::compile_for(artifact, requests)
    }

    pub(crate) fn compile_for(artifact: &Artifact, requests: Option<&str>) -> Result<Self> {
        let compiled = compile::compile(artifact, requests)?;
        let training_only: Vec<&str> = artifact
            .outputs
            .iter()
            .filter(|o| o.training_only)
            .map(|o| o.name.as_str())
            .collect();
        let mut skipped = Vec::new();
        let mut outputs = Vec::new();
        for o in compiled.outputs {
            if let Some(function) = o.node.training_only() {
                skipped.push((o.name.clone(), format!("uses {function}")));
            } else if training_only.contains(&o.name.as_str()) {
                skipped.push((o.name.clone(), "label".to_string()));
            } else {
                outputs.push(o);
            }
        }
        let mut read = Vec::new();
        for o in &outputs {
            o.node.inputs(&mut read);
        }
        let request = compiled.request;
        let online = match compiled.windows.is_empty() {
            true => None,
            false => Some(online::Online::new(
                compiled.windows,
                compiled.inputs.len(),
                request,
                OnlineLimits::default(),
            )?),
        };
        let mut tables = Vec::with_capacity(compiled.tables.len());
        for (t, (name, inputs)) in compiled.tables.into_iter().enumerate() {
            let mut event_read = Vec::new();
            if let Some(online) = &online {
                online.inputs(t, &mut event_read, &mut read);
            }
            let required: Vec<bool> = (0..inputs.len()).map(|i| event_read.contains(&i)).collect();
            let checks = (0..inputs.len())
                .filter(|&i| required[i])
                .map(|i| (i, Fit::of(&inputs[i])))
                .collect();
            tables.push(EventTable {
                name,
                inputs,
                required,
                checks,
            });
        }
        let required: Vec<bool> = (0..compiled.inputs.len())
            .map(|i| read.contains(&i))
            .collect();
        let event_required = tables[request].required.clone();
        let request_and_event_required = required
            .iter()
            .zip(&event_required)
            .map(|(r, e)| *r || *e)
            .collect();
        let first_window = compiled.inputs.len();
        let windows_in_expressions = outputs.iter().any(|o| {
            if matches!(o.node.kind, expr::Kind::Input(_)) {
                return false;
            }
            let mut read = Vec::new();
            o.node.inputs(&mut read);
            read.iter().any(|&i| i >= first_window)
        });
        let columns: Vec<OutputColumn> = outputs
            .iter()
            .map(|o| OutputColumn {
                name: o.name.clone(),
                data_type: crate::artifact::written_type(&o.data_type),
                nullable: o.nullable,
            })
            .collect();
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|c| Field::new(&c.name, c.data_type.clone(), true))
                .collect::<Vec<_>>(),
        ));
        let (skew, skew_labels, watched) = watch(&compiled.inputs, &required, &mut outputs);
        let tally = artifact
            .profile
            .as_ref()
            .filter(|p| p.table == tables[request].name)
            .map(|p| {
                let names: Vec<String> = compiled.inputs.iter().map(|c| c.name.clone()).collect();
                let lookups: Vec<crate::profile::LookupOutput> = outputs
                    .iter()
                    .enumerate()
                    .filter_map(|(output, o)| {
                        let (input, values) = o.node.vocabulary_of_input()?;
                        Some(crate::profile::LookupOutput {
                            input,
                            output,
                            values,
                        })
                    })
                    .collect();
                Arc::new(crate::profile::TallyPlan::new(
                    p,
                    &names,
                    &artifact.checksum,
                    &lookups,
                ))
            });
        let inputs = compiled.inputs;
        Ok(Self {
            by_name: inputs
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name.clone(), i))
                .collect(),
            watched_fits: watched.iter().map(|&i| Fit::of(&inputs[i])).collect(),
            inputs,
            required,
            outputs,
            columns,
            schema,
            skipped,
            online,
            event_required,
            tables,
            request,
            windows_in_expressions,
            request_and_event_required,
            clock: Vec::new(),
            skew,
            skew_labels,
            watched,
            tally,
        })
    }

    /// The evaluator, with its window streams' time inputs (timestamps and
    /// dates, of requests and events) defaulting to the current time when
    /// left out or NULL: a live server's requests and events happen now.
    /// (Integer times have no clock: they stay as given.)
    pub fn with_clock(mut self) -> Self {
        self.clock = (0..self.tables.len())
            .map(|t| {
                let inputs = &self.tables[t].inputs;
                self.online
                    .iter()
                    .flat_map(|o| o.time_slots(t))
                    .filter(|&i| value::is_time(&inputs[i].data_type))
                    .collect()
            })
            .collect();
        self
    }

    /// The evaluator with other limits for its window state (lateness, the
    /// per-entity cap). The state starts empty.
    pub fn with_limits(mut self, limits: OnlineLimits) -> Result<Self> {
        if let Some(online) = self.online.take() {
            let first_slot = self.inputs.len();
            self.online = Some(online::Online::new(
                online.windows().to_vec(),
                first_slot,
                self.request,
                limits,
            )?);
        }
        Ok(self)
    }

    /// Whether the transform has window functions: requests are answered
    /// from the events pushed ([`Evaluator::push`]).
    pub fn has_windows(&self) -> bool {
        self.online.is_some()
    }

    /// The limits of the window state, if any.
    pub fn limits(&self) -> Option<OnlineLimits> {
        self.online.as_ref().map(online::Online::limits)
    }

    /// The tables events come from, the request table among them (the
    /// only one unless the transform reads several).
    pub fn event_tables(&self) -> Vec<&str> {
        self.tables.iter().map(|t| t.name.as_str()).collect()
    }

    /// The table requests are rows of.
    pub fn request_table(&self) -> &str {
        &self.tables[self.request].name
    }

    fn table_index(&self, table: &str) -> Result<usize> {
        self.tables
            .iter()
            .position(|t| t.name == table)
            .ok_or_else(|| {
                Error::Data(format!(
                    "the transform reads no table '{table}'; events come from: {}",
                    self.event_tables().join(", ")
                ))
            })
    }

    /// The columns of table `table` to replay its event log in order of:
    /// the time column of each window stream that reads one directly.
    pub fn replay_order(&self, table: &str) -> Result<Vec<String>> {
        let t = self.table_index(table)?;
        let mut names = Vec::new();
        for slot in self.online.iter().flat_map(|o| o.time_slots(t)) {
            let name = self.tables[t].inputs[slot].name.clone();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Whether an event must give input `index` (it is read by a window
    /// function's entity, time, value or arrival).
    pub fn is_event_input(&self, index: usize) -> bool {
        self.event_required.get(index).copied().unwrap_or(false)
    }

    /// Pushes an event: a typed row of the transform's input (as for
    /// [`Evaluator::eval`]; only the inputs of [`Evaluator::is_event_input`]
    /// are read). A transform without window functions ignores it.
    pub fn push(&self, row: &[Value<'_>]) -> Result<()> {
        self.push_row(self.request, row)
    }

    /// Pushes an event of table `table` (a typed row of its columns, in
    /// the order of [`Evaluator::table_inputs`]).
    pub fn push_to(&self, table: &str, row: &[Value<'_>]) -> Result<()> {
        self.push_row(self.table_index(table)?, row)
    }

    /// The typed event row of table `table` from the fields an event
    /// carries (by column name), for [`Evaluator::push_to`]: the columns an
    /// event must give, NULL elsewhere.
    pub fn event_from_fields<'a>(
        &self,
        table: &str,
        field: impl Fn(&str) -> Option<&'a serde_json::Value>,
    ) -> Result<Vec<Value<'a>>> {
        self.event_row(self.table_index(table)?, field)
    }

    /// The typed event row of table `t` (see [`Evaluator::event_from_fields`]).
    fn event_row<'a>(
        &self,
        t: usize,
        field: impl Fn(&str) -> Option<&'a serde_json::Value>,
    ) -> Result<Vec<Value<'a>>> {
        let columns = &self.tables[t];
        row_of(&columns.inputs, &columns.required, self.clock(t), field)
    }

    /// The inputs of table `t` that take the current time when left out
    /// ([`Evaluator::with_clock`]; none without it).
    fn clock(&self, t: usize) -> &[usize] {
        self.clock.get(t).map_or(&[], Vec::as_slice)
    }

    /// The columns of table `table`, in the order of a typed event row.
    pub fn table_inputs(&self, table: &str) -> Result<&[InputColumn]> {
        Ok(&self.tables[self.table_index(table)?].inputs)
    }

    fn push_row(&self, t: usize, row: &[Value<'_>]) -> Result<()> {
        let Some(online) = &self.online else {
            return Ok(());
        };
        let table = &self.tables[t];
        if row.len() != table.inputs.len() {
            return check_row_of(&table.inputs, row, &table.required);
        }
        for &(i, fit) in &table.checks {
            fit.check(&table.inputs[i], &row[i])?;
        }
        online.push(t, row)
    }

    /// The window state as bytes that [`Evaluator::load_state`] reads back
    /// (`serve --state`): every entity's events and per-hop tiles, the
    /// counts, and what the state belongs to (the windows, their
    /// expressions and limits), checked by a SHA-256 at the end. The same
    /// state gives the same bytes. Pushes that run meanwhile land in the
    /// snapshot or not, entity by entity; stop them first for one instant.
    pub fn save_state(&self) -> Result<Vec<u8>> {
        use sha2::Digest;
        use skewless_udfs::kernel::bytes::Put;
        let online = self.online.as_ref().ok_or_else(|| {
            Error::Usage("the transform has no window functions, so it keeps no state".into())
        })?;
        let mut out = Vec::new();
        out.extend_from_slice(STATE_MAGIC);
        out.put_u32(STATE_FORMAT);
        out.put_bytes(online.fingerprint().as_bytes());
        online.snapshot(&mut out);
        let digest = sha2::Sha256::digest(&out);
        out.extend_from_slice(&digest);
        Ok(out)
    }

    /// Whether the window state of `self` can be carried into `other`
    /// ([`Evaluator::save_state`] then [`Evaluator::load_state`]): `None`
    /// when both have the same windows and limits, else what differs first.
    pub fn state_difference(&self, other: &Evaluator) -> Option<String> {
        match (&self.online, &other.online) {
            (Some(a), Some(b)) => first_difference(&a.fingerprint(), &b.fingerprint()),
            (None, None) => None,
            _ => Some("one of the two has no window functions".to_string()),
        }
    }

    /// Reads a state [`Evaluator::save_state`] wrote into this evaluator's
    /// window state, which must be empty (nothing pushed yet). Refused,
    /// naming why, if the bytes are damaged or were saved by a transform
    /// with other windows or limits. After an error the state may hold
    /// part of the bytes: drop the evaluator.
    pub fn load_state(&self, bytes: &[u8]) -> Result<()> {
        use sha2::Digest;
        let online = self.online.as_ref().ok_or_else(|| {
            Error::Usage("the transform has no window functions, so it keeps no state".into())
        })?;
        if online
            .report()
            .iter()
            .any(|s| s.entities > 0 || s.counts.pushed > 0)
        {
            return Err(Error::Internal(
                "a state is loaded only into an evaluator that holds none".into(),
            ));
        }
        let damaged = |what: &str| Error::Data(format!("not a skewless window state: {what}"));
        if bytes.len() < STATE_MAGIC.len() + 4 + 32 || !bytes.starts_with(STATE_MAGIC) {
            return Err(damaged("it does not start as one"));
        }
        let (body, digest) = bytes.split_at(bytes.len() - 32);
        if sha2::Sha256::digest(body).as_slice() != digest {
            return Err(damaged(
                "its checksum does not match (truncated or damaged)",
            ));
        }
        let mut r = skewless_udfs::kernel::bytes::Reader::new(&body[STATE_MAGIC.len()..]);
        let format = r.u32().ok_or_else(|| damaged("no format number"))?;
        if format != STATE_FORMAT {
            return Err(Error::Data(format!(
                "the window state has format {format}; this skewless reads format {STATE_FORMAT}"
            )));
        }
        let saved = r
            .bytes()
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or_else(|| damaged("no description of its windows"))?;
        if let Some(difference) = first_difference(saved, &online.fingerprint()) {
            return Err(Error::Data(format!(
                "the window state was saved for other windows or limits than this transform's \
                 ({difference})"
            )));
        }
        online.restore(&mut r).map_err(Error::Data)?;
        if r.remaining() != 0 {
            return Err(damaged("bytes after its end"));
        }
        Ok(())
    }

    /// The skew counts so far (since this evaluator was compiled), every
    /// counter in a fixed order: for each input a served output reads, its
    /// NULL and non-finite values; for each vocabulary, the keys it does
    /// not hold; for each min-max scaler, the numbers outside its fitted
    /// min and max. Counted by [`Evaluator::eval`] (and what calls it),
    /// over every thread.
    pub fn skew_counts(&self) -> Vec<SkewCount> {
        self.skew_labels
            .iter()
            .enumerate()
            .map(|(slot, (kind, column, output))| SkewCount {
                kind,
                column: column.clone(),
                output: output.clone(),
                count: self.skew.total(slot),
            })
            .collect()
    }

    /// What the window state holds and has counted, one report per stream
    /// (window functions over the same entity and time share a stream).
    pub fn state_report(&self) -> Vec<StreamReport> {
        self.online
            .as_ref()
            .map(online::Online::report)
            .unwrap_or_default()
    }

    /// Checks a typed request row: its length, and each value that `mask`
    /// needs.
    fn check_row(&self, row: &[Value<'_>], mask: &[bool]) -> Result<()> {
        check_row_of(&self.inputs, row, mask)
    }

    /// The training-only outputs that serving skips, each with why: a
    /// `--label`, or a training-only function such as `split_of`.
    pub fn skipped(&self) -> &[(String, String)] {
        &self.skipped
    }

    /// How requests are counted over the training profile for live skew
    /// ([`crate::profile::TallyPlan::count`] on a typed row, before or
    /// after [`Evaluator::eval`]); None when the artifact has no profile.
    pub fn tally_plan(&self) -> Option<&Arc<crate::profile::TallyPlan>> {
        self.tally.as_ref()
    }

    /// For each served vocabulary output (`vocab_index`, `one_hot`) whose
    /// key reads one input that `profile` counts by value: the output, the
    /// input, and the share of the profile's rows whose key the vocabulary
    /// does not hold (they go to its out-of-vocabulary buckets), computed
    /// by the output's own key expression (e.g. `coalesce(x, '?')`) on each
    /// counted value. None when the profile lists only part of the values
    /// (beyond its cap).
    pub fn oov_shares(
        &self,
        profile: &crate::profile::Profile,
    ) -> Vec<(String, String, Option<f64>)> {
        use crate::profile::Counts;
        let mut out = Vec::new();
        for o in &self.outputs {
            o.node.visit(&mut |n| {
                let expr::Kind::Ours(f, args, _) = &n.kind else {
                    return;
                };
                if !matches!(**f, RowFunction::VocabIndex(_) | RowFunction::OneHot(_)) {
                    return;
                }
                let Some(arg) = args.first() else { return };
                let mut read = Vec::new();
                arg.inputs(&mut read);
                read.dedup();
                let [i] = read[..] else { return };
                let Some(input) = self.inputs.get(i) else {
                    return;
                };
                let Some(column) = profile.columns.iter().find(|c| c.name == input.name) else {
                    return;
                };
                let Counts::Categorical {
                    nulls,
                    values,
                    other,
                    distinct: Some(_),
                    ..
                } = &column.counts
                else {
                    return;
                };
                let share = (*other == 0).then(|| {
                    let mut row: Vec<Value<'_>> = vec![Value::Null; self.inputs.len()];
                    let mut oov = 0u64;
                    let rows = nulls + values.iter().map(|(_, c)| c).sum::<u64>();
                    let mut holds = |v: Value<'static>, n: u64, row: &mut Vec<Value<'static>>| {
                        row[i] = v;
                        if expr::vocabulary_holds(f, arg, row) == Some(false) {
                            oov += n;
                        }
                    };
                    holds(Value::Null, *nulls, &mut row);
                    for (text, n) in values {
                        let v = match &input.data_type {
                            DataType::Boolean => Value::Bool(text == "true"),
                            t if t.is_signed_integer() => {
                                text.parse().map_or(Value::Null, Value::Int)
                            }
                            t if t.is_unsigned_integer() => {
                                text.parse().map_or(Value::Null, Value::UInt)
                            }
                            _ => Value::Str(std::borrow::Cow::Owned(text.clone())),
                        };
                        holds(v, *n, &mut row);
                    }
                    skewless_udfs::kernel::profile::share(oov, rows)
                });
                out.push((o.name.clone(), input.name.clone(), share));
            });
        }
        out
    }

    /// The inputs a served output reads, in slot order, each with whether
    /// it is categorical: strings and booleans, and integers read as keys
    /// (by `vocab_index`, `one_hot`, `hash_bucket` or `feature_cross`). The
    /// columns a training profile describes ([`crate::profile`]).
    pub fn served_inputs(&self) -> Vec<(&InputColumn, bool)> {
        let mut keys = Vec::new();
        for o in &self.outputs {
            o.node.visit(&mut |n| {
                if let expr::Kind::Ours(f, args, _) = &n.kind
                    && matches!(
                        **f,
                        RowFunction::VocabIndex(_)
                            | RowFunction::OneHot(_)
                            | RowFunction::HashBucket(_)
                            | RowFunction::Cross(_)
                    )
                {
                    for a in args {
                        a.key_inputs(&mut keys);
                    }
                }
            });
        }
        self.watched
            .iter()
            .map(|&i| {
                let c = &self.inputs[i];
                let categorical = matches!(
                    c.data_type,
                    DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Boolean
                ) || (c.data_type.is_integer() && keys.contains(&i));
                (c, categorical)
            })
            .collect()
    }

    /// The input columns, in the order of a typed row. Columns that no
    /// served output reads are listed too (they may stay NULL): see
    /// [`Evaluator::is_required`].
    pub fn inputs(&self) -> &[InputColumn] {
        &self.inputs
    }

    /// Whether a served output reads input `index`.
    pub fn is_required(&self, index: usize) -> bool {
        self.required.get(index).copied().unwrap_or(false)
    }

    /// The position of an input column in a typed row.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The served outputs (training-only outputs excluded), in order.
    pub fn outputs(&self) -> &[OutputColumn] {
        &self.columns
    }

    /// Each served output with its compiled expression (inputs as `$index`),
    /// one per line: what serving computes.
    pub fn explain(&self) -> String {
        let mut text = String::new();
        for (i, c) in self.inputs.iter().enumerate() {
            text.push_str(&format!("${i} = {} ({})\n", c.name, c.data_type));
        }
        if let Some(online) = &self.online {
            text.push_str(&online.explain());
        }
        for o in &self.outputs {
            text.push_str(&format!("{} ({}) = {}\n", o.name, o.data_type, o.node));
        }
        text
    }

    /// The Arrow schema of [`Evaluator::eval_batch`]'s result.
    pub fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// A typed row of NULLs, to fill by [`Evaluator::input_index`].
    pub fn empty_row(&self) -> Vec<Value<'static>> {
        vec![Value::Null; self.inputs.len()]
    }

    /// Evaluates one typed row (one value per input, in the order of
    /// [`Evaluator::inputs`]) into `out` (cleared first; one value per
    /// output; strings are copied out, numbers need no allocation). Values
    /// are checked against the input types: a NULL where a
    /// column is not nullable, or a value of the wrong kind, is an error
    /// naming the column.
    pub fn eval(&self, row: &[Value<'_>], out: &mut Vec<Value<'static>>) -> Result<()> {
        // The row's checks (the inputs a served output reads are the
        // watched ones) and its NULL and non-finite counts, in one pass.
        if row.len() != self.inputs.len() {
            return self.check_row(row, &self.required);
        }
        for (k, (&i, fit)) in self.watched.iter().zip(&self.watched_fits).enumerate() {
            let v = &row[i];
            fit.check(&self.inputs[i], v)?;
            match v {
                Value::Null => self.skew.hit(2 * k),
                Value::Float(x) if !x.is_finite() => self.skew.hit(2 * k + 1),
                _ => {}
            }
        }
        out.clear();
        if let Some(online) = &self.online {
            // Outputs that are window values as they are: no row to extend.
            if !self.windows_in_expressions {
                let n = online.windows().len();
                if n <= 16 {
                    let mut windows: arrayvec::ArrayVec<Value<'_>, 16> = arrayvec::ArrayVec::new();
                    windows.extend((0..n).map(|_| Value::Null));
                    online.fill_windows(row, &mut windows)?;
                    let first = row.len();
                    for o in &self.outputs {
                        let v = match o.node.kind {
                            expr::Kind::Input(i) if i >= first => windows[i - first].clone(),
                            _ => o
                                .node
                                .eval(row)
                                .map_err(|e| Error::Data(format!("output '{}': {e}", o.name)))?,
                        };
                        out.push(v.into_owned());
                    }
                    return Ok(());
                }
            }
            // The inputs, then one slot per window function: on the stack
            // when they fit.
            let slots = row.len() + online.windows().len();
            if slots <= 64 {
                let mut extended: arrayvec::ArrayVec<Value<'_>, 64> = arrayvec::ArrayVec::new();
                extended.extend(row.iter().map(expr::borrow));
                while extended.len() < slots {
                    extended.push(Value::Null);
                }
                online.fill(&mut extended)?;
                return self.eval_outputs(&extended, out);
            }
            let mut extended: Vec<Value<'_>> = Vec::with_capacity(slots);
            extended.extend(row.iter().map(expr::borrow));
            extended.resize(slots, Value::Null);
            online.fill(&mut extended)?;
            return self.eval_outputs(&extended, out);
        }
        self.eval_outputs(row, out)
    }

    fn eval_outputs(&self, row: &[Value<'_>], out: &mut Vec<Value<'static>>) -> Result<()> {
        for o in &self.outputs {
            let v = o
                .node
                .eval(row)
                .map_err(|e| Error::Data(format!("output '{}': {e}", o.name)))?;
            out.push(v.into_owned());
        }
        Ok(())
    }

    /// The typed row of a JSON object: fields by input name (unknown fields
    /// ignored, missing nullable inputs NULL). Float columns also take the
    /// strings "NaN", "-NaN", "Infinity" and "-Infinity".
    pub fn row_from_json<'a>(
        &self,
        object: &'a serde_json::Map<String, serde_json::Value>,
    ) -> Result<Vec<Value<'a>>> {
        self.row_from(|c| object.get(c))
    }

    /// The typed row of a request whose fields `field` gives by input name
    /// (a column of a columnar request, a tensor of a v2 request): the same
    /// checks and conversions as [`Evaluator::row_from_json`].
    pub fn row_from_fields<'a>(
        &self,
        field: impl Fn(&str) -> Option<&'a serde_json::Value>,
    ) -> Result<Vec<Value<'a>>> {
        self.row_from(field)
    }

    /// One line of `skewless eval`'s protocol, numbered `number` (from 1),
    /// answered into `text` (cleared first) as `eval` prints it, without
    /// the newline: the features, or `{"error": "line N: …"}`. `None` for a
    /// line with nothing to answer (blank, or an event pushed); otherwise
    /// whether it failed. A byte-order mark before the first line is
    /// skipped.
    pub fn answer_line(
        &self,
        number: usize,
        line: &[u8],
        push_requests: bool,
        text: &mut String,
    ) -> Option<bool> {
        self.answer_line_tallied(number, line, push_requests, text, None)
    }

    /// [`Evaluator::answer_line`], also counting an answered request into
    /// `tally` (live skew; see [`Evaluator::tally_plan`]).
    pub fn answer_line_tallied(
        &self,
        number: usize,
        line: &[u8],
        push_requests: bool,
        text: &mut String,
        tally: Option<&mut crate::profile::Tally>,
    ) -> Option<bool> {
        text.clear();
        let line = if number == 1 {
            line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
        } else {
            line
        };
        let line = std::str::from_utf8(line)
            .map(|l| l.trim_end_matches(['\n', '\r']))
            .map_err(|e| Error::Data(format!("not UTF-8 text: {e}")));
        if line.as_ref().is_ok_and(|l| l.trim().is_empty()) {
            return None;
        }
        match line.and_then(|l| self.eval_line_tallied(l, push_requests, tally)) {
            Ok(Some(features)) => {
                text.push_str(&features);
                Some(false)
            }
            Ok(None) => None,
            Err(e) => {
                text.push_str("{\"error\":");
                write_json_string(text, &format!("line {number}: {e}"));
                text.push('}');
                Some(true)
            }
        }
    }

    /// The typed row of the fields a request carries, by input slot.
    fn row_from<'a>(
        &self,
        field: impl Fn(&str) -> Option<&'a serde_json::Value>,
    ) -> Result<Vec<Value<'a>>> {
        self.row_masked(&self.required, field)
    }

    /// The typed row of the fields a request or an event carries: the
    /// inputs of `mask`, NULL elsewhere.
    fn row_masked<'a>(
        &self,
        mask: &[bool],
        field: impl Fn(&str) -> Option<&'a serde_json::Value>,
    ) -> Result<Vec<Value<'a>>> {
        row_of(&self.inputs, mask, self.clock(self.request), field)
    }

    /// TF Serving's row form, `{"instances": [row, …]}` (at most
    /// `max_rows` rows), answered into `text` as `{"predictions": [features,
    /// …]}`, each row's features exactly the line `eval` prints for it. Rows
    /// are read as `eval` reads a line: only the fields a served output
    /// reads are kept, a key twice is an error. `None` when the body is not
    /// of that shape (then nothing is evaluated).
    pub fn answer_instances(
        &self,
        body: &[u8],
        max_rows: usize,
        text: &mut String,
        mut tally: Option<&mut crate::profile::Tally>,
    ) -> Option<InstancesAnswer> {
        use request::{Instances, InstancesSeed};
        let seed = InstancesSeed::new(self, &self.required, max_rows);
        let rows = match seed.read(body)? {
            Instances::Other => return None,
            Instances::TooMany { count } => return Some(InstancesAnswer::TooMany { count }),
            Instances::BadRow { index, message } => {
                return Some(InstancesAnswer::Failed { index, message });
            }
            Instances::Rows(rows) => rows,
        };
        text.clear();
        text.push_str("{\"predictions\":[");
        let mut out = Vec::with_capacity(self.outputs.len());
        for (i, fields) in rows.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            if let Err(e) = self.answer_into(
                fields,
                &self.required,
                false,
                &mut out,
                text,
                tally.as_deref_mut(),
            ) {
                return Some(InstancesAnswer::Failed {
                    index: i,
                    message: e.to_string(),
                });
            }
        }
        text.push_str("]}");
        Some(InstancesAnswer::Answered { rows: rows.len() })
    }

    /// Reads one JSON object of text into the values of the inputs a served
    /// output reads, by input slot. Other fields are skipped without being
    /// held in memory; a key that appears twice is an error (as in the
    /// artifact reader), so is anything after the object.
    pub fn parse_request(&self, line: &str) -> Result<Vec<Option<serde_json::Value>>> {
        match self.parse_line(line, false)? {
            request::Parsed::Request(fields) => Ok(fields),
            request::Parsed::Event { .. } => unreachable!("events are not parsed here"),
        }
    }

    fn parse_line(&self, line: &str, events: bool) -> Result<request::Parsed> {
        self.parse_masked(line, events, &self.required)
    }

    fn parse_masked(&self, line: &str, events: bool, mask: &[bool]) -> Result<request::Parsed> {
        use serde::de::DeserializeSeed;
        let mut de = serde_json::Deserializer::from_str(line);
        request::Fields {
            evaluator: self,
            mask,
            events,
        }
        .deserialize(&mut de)
        .and_then(|fields| de.end().map(|()| fields))
        .map_err(|e| {
            // One request is one line: serde's "line 1" says nothing.
            let e = e.to_string().replace(" at line 1 column ", " at column ");
            Error::Data(format!("not a JSON object: {e}"))
        })
    }

    /// Evaluates a JSON object (one line of text) into a JSON object of the
    /// outputs, in order, on one line.
    pub fn eval_json(&self, line: &str) -> Result<String> {
        let fields = self.parse_request(line)?;
        self.eval_fields(&fields)
    }

    fn eval_fields(&self, fields: &[Option<serde_json::Value>]) -> Result<String> {
        let mut text = String::new();
        self.answer_into(
            fields,
            &self.required,
            false,
            &mut Vec::new(),
            &mut text,
            None,
        )?;
        Ok(text)
    }

    /// Appends the features of a request's fields (by input slot; the
    /// inputs of `mask`) to `text` as a JSON object; with `push`, the
    /// request is then pushed as an event. On an error nothing is appended.
    /// `out` is scratch space for the outputs, reused across calls.
    fn answer_into(
        &self,
        fields: &[Option<serde_json::Value>],
        mask: &[bool],
        push: bool,
        out: &mut Vec<Value<'static>>,
        text: &mut String,
        tally: Option<&mut crate::profile::Tally>,
    ) -> Result<()> {
        let clock = self.clock(self.request);
        let row = row_of_slots(&self.inputs, mask, clock, |i, _| fields[i].as_ref())?;
        self.eval(&row, out)?;
        if let (Some(plan), Some(tally)) = (&self.tally, tally) {
            plan.count(&row, out, tally);
        }
        if push {
            self.push(&row)
                .map_err(|e| Error::Data(format!("pushing the request: {e}")))?;
        }
        self.write_json(out, text);
        Ok(())
    }

    /// One line of `skewless eval`'s protocol: `{"event": {…}}` pushes an
    /// event (the object holds the event's input columns) and gives `None`;
    /// any other object is a request, answered by its features. (A
    /// transform without window functions keeps no events: every line is a
    /// request.)
    pub fn eval_line(&self, line: &str) -> Result<Option<String>> {
        self.eval_line_pushing(line, false)
    }

    /// [`Evaluator::eval_line`]; with `push_requests`, a request is also
    /// pushed as an event once answered (a row that is scored, then
    /// becomes history: the same as batch, where every row is both).
    pub fn eval_line_pushing(&self, line: &str, push_requests: bool) -> Result<Option<String>> {
        self.eval_line_tallied(line, push_requests, None)
    }

    /// [`Evaluator::eval_line_pushing`], counting an answered request into
    /// `tally`.
    pub fn eval_line_tallied(
        &self,
        line: &str,
        push_requests: bool,
        tally: Option<&mut crate::profile::Tally>,
    ) -> Result<Option<String>> {
        let pushing = push_requests && self.online.is_some();
        let mask = if pushing {
            &self.request_and_event_required
        } else {
            &self.required
        };
        match self.parse_masked(line, self.online.is_some(), mask)? {
            request::Parsed::Request(fields) => {
                let mut text = String::new();
                self.answer_into(&fields, mask, pushing, &mut Vec::new(), &mut text, tally)?;
                Ok(Some(text))
            }
            request::Parsed::Event { table, fields } => {
                let event = |e: Error| match &table {
                    Some(t) => Error::Data(format!("event of '{t}': {e}")),
                    None => Error::Data(format!("event: {e}")),
                };
                let t = match &table {
                    Some(name) => self.table_index(name).map_err(event)?,
                    None => self.request,
                };
                let row = self.event_row(t, |name| fields.get(name)).map_err(event)?;
                self.push_row(t, &row).map_err(event)?;
                Ok(None)
            }
        }
    }

    /// Pushes every row of a record batch as an event (inputs found by
    /// name, as [`Evaluator::eval_batch`] finds them).
    pub fn push_batch(&self, batch: &RecordBatch) -> Result<()> {
        self.push_batch_of(self.request, batch)
    }

    /// Pushes every row of a record batch as an event of table `table`.
    pub fn push_batch_to(&self, table: &str, batch: &RecordBatch) -> Result<()> {
        self.push_batch_of(self.table_index(table)?, batch)
    }

    fn push_batch_of(&self, t: usize, batch: &RecordBatch) -> Result<()> {
        if self.online.is_none() {
            return Ok(());
        }
        let table = &self.tables[t];
        let columns = batch_columns_of(&table.inputs, batch, &table.required)?;
        let mut typed = Vec::with_capacity(table.inputs.len());
        for row in 0..batch.num_rows() {
            typed.clear();
            for (c, array) in table.inputs.iter().zip(&columns) {
                typed.push(match array {
                    Some(a) => array_value(c, a, row)?,
                    None => Value::Null,
                });
            }
            self.push_row(t, &typed)
                .map_err(|e| Error::Data(format!("event row {row}: {e}")))?;
        }
        Ok(())
    }

    /// Appends the outputs of one row as a JSON object.
    pub fn write_json(&self, values: &[Value<'_>], text: &mut String) {
        text.push('{');
        for (i, (c, v)) in self.columns.iter().zip(values).enumerate() {
            if i > 0 {
                text.push(',');
            }
            write_json_string(text, &c.name);
            text.push(':');
            write_json(text, v, &c.data_type);
        }
        text.push('}');
    }

    /// Evaluates every row of a record batch. Inputs are found by name;
    /// a missing nullable column is NULL throughout. A column may have
    /// another type of its family, as batch apply allows
    /// ([`crate::artifact::accepts`]): its values are taken as a cast to the
    /// fitted type gives them (an error names a value that does not fit).
    pub fn eval_batch(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let columns = batch_columns_of(&self.inputs, batch, &self.required)?;
        let mut outputs: Vec<Vec<ScalarValue>> =
            vec![Vec::with_capacity(batch.num_rows()); self.outputs.len()];
        for row in 0..batch.num_rows() {
            let mut values = Vec::with_capacity(self.outputs.len());
            let mut typed = Vec::with_capacity(self.inputs.len());
            for (c, array) in self.inputs.iter().zip(&columns) {
                typed.push(match array {
                    Some(a) => array_value(c, a, row)?,
                    None => Value::Null,
                });
            }
            self.eval(&typed, &mut values)
                .map_err(|e| Error::Data(format!("row {row}: {e}")))?;
            for ((v, o), out) in values.iter().zip(&self.columns).zip(&mut outputs) {
                out.push(value::to_scalar(v, &o.data_type)?);
            }
        }
        let arrays = outputs
            .into_iter()
            .zip(&self.columns)
            .map(|(values, c)| {
                if values.is_empty() {
                    Ok(datafusion::arrow::array::new_empty_array(&c.data_type))
                } else {
                    ScalarValue::iter_to_array(values)
                }
            })
            .collect::<datafusion::common::Result<Vec<_>>>()?;
        RecordBatch::try_new(self.output_schema(), arrays)
            .map_err(|e| Error::Internal(format!("serving output batch: {e}")))
    }
}

/// The columns of a batch for the inputs of `mask` among `inputs`, by
/// input slot.
fn batch_columns_of<'b>(
    inputs: &[InputColumn],
    batch: &'b RecordBatch,
    mask: &[bool],
) -> Result<Vec<Option<&'b ArrayRef>>> {
    let mut columns: Vec<Option<&ArrayRef>> = Vec::with_capacity(inputs.len());
    for (i, c) in inputs.iter().enumerate() {
        let array = batch.column_by_name(&c.name);
        match array {
            None if mask[i] && !c.nullable => {
                return Err(Error::Data(format!(
                    "column '{}' ({}, not nullable) is missing from the batch",
                    c.name, c.data_type
                )));
            }
            Some(a) if mask[i] && !crate::artifact::accepts(&c.data_type, a.data_type()) => {
                return Err(Error::Data(format!(
                    "column '{}': expected {}, got {}",
                    c.name,
                    c.data_type,
                    a.data_type()
                )));
            }
            _ => {}
        }
        columns.push(array.filter(|_| mask[i]));
    }
    Ok(columns)
}

/// The typed row of the fields a request or an event carries over
/// `columns`: the inputs of `mask`, NULL elsewhere.
fn row_of<'a>(
    columns: &[InputColumn],
    mask: &[bool],
    clock: &[usize],
    field: impl Fn(&str) -> Option<&'a serde_json::Value>,
) -> Result<Vec<Value<'a>>> {
    row_of_slots(columns, mask, clock, |_, name| field(name))
}

/// [`row_of`] with the fields found by slot (and name).
fn row_of_slots<'a>(
    columns: &[InputColumn],
    mask: &[bool],
    clock: &[usize],
    field: impl Fn(usize, &str) -> Option<&'a serde_json::Value>,
) -> Result<Vec<Value<'a>>> {
    let mut row = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        if !mask[i] {
            row.push(Value::Null);
            continue;
        }
        let v = match field(i, &c.name) {
            None | Some(serde_json::Value::Null) if clock.contains(&i) => {
                Value::Int(now_in(&c.data_type))
            }
            None if c.nullable => Value::Null,
            None => {
                return Err(Error::Data(format!(
                    "column '{}' ({}, not nullable) is missing",
                    c.name, c.data_type
                )));
            }
            Some(json) => json_value(c, json)?,
        };
        row.push(v);
    }
    Ok(row)
}

/// The skew counters of an evaluator: two per input a served output reads,
/// one per watched function in the outputs (each given its [`skew::Watch`]).
#[allow(clippy::type_complexity)]
fn watch(
    inputs: &[InputColumn],
    required: &[bool],
    outputs: &mut [compile::CompiledOutput],
) -> (
    Arc<skew::Counters>,
    Vec<(&'static str, String, String)>,
    Vec<usize>,
) {
    let watched: Vec<usize> = (0..inputs.len()).filter(|&i| required[i]).collect();
    let mut labels = Vec::new();
    for &i in &watched {
        labels.push(("null", inputs[i].name.clone(), String::new()));
        labels.push(("non_finite", inputs[i].name.clone(), String::new()));
    }
    // The input columns a function's argument reads, by name.
    let column = |n: &expr::Node| {
        let mut read = Vec::new();
        n.inputs(&mut read);
        read.sort_unstable();
        read.dedup();
        let names: Vec<&str> = read
            .iter()
            .map(|&i| inputs.get(i).map_or("(window)", |c| c.name.as_str()))
            .collect();
        names.join(",")
    };
    // The counters are sized first (a watch holds them), then each watched
    // function gets its slot and its label, in the same walk.
    let mut functions = 0;
    for o in outputs.iter_mut() {
        o.node.visit_mut(&mut |n| {
            functions +=
                usize::from(matches!(&n.kind, expr::Kind::Ours(f, ..) if f.watched().is_some()));
        });
    }
    let counters = Arc::new(skew::Counters::new(labels.len() + functions));
    for o in outputs.iter_mut() {
        o.node.visit_mut(&mut |n| {
            if let expr::Kind::Ours(f, args, w) = &mut n.kind
                && let Some(kind) = f.watched()
            {
                *w = Some(skew::Watch {
                    counters: Arc::clone(&counters),
                    slot: labels.len(),
                });
                labels.push((kind, column(&args[0]), o.name.clone()));
            }
        });
    }
    (counters, labels, watched)
}

/// The first line where two descriptions of window state differ, as
/// `saved: …; here: …` (None when they are equal).
fn first_difference(saved: &str, ours: &str) -> Option<String> {
    if saved == ours {
        return None;
    }
    let (a, b) = saved
        .lines()
        .zip(ours.lines())
        .find(|(a, b)| a != b)
        .unwrap_or((saved, ours));
    Some(format!("saved: {:?}; here: {:?}", a.trim(), b.trim()))
}

/// The current time as a value of time type `t` (in its unit; whole days
/// for Date32).
fn now_in(t: &DataType) -> i64 {
    use datafusion::arrow::datatypes::TimeUnit as U;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    match t {
        DataType::Timestamp(U::Second, _) => nanos.div_euclid(1_000_000_000),
        DataType::Timestamp(U::Millisecond, _) | DataType::Date64 => nanos.div_euclid(1_000_000),
        DataType::Timestamp(U::Microsecond, _) => nanos.div_euclid(1_000),
        DataType::Date32 => nanos.div_euclid(86_400 * 1_000_000_000),
        _ => nanos,
    }
}

/// Checks a typed row of `columns`: its length, and each value `mask` needs.
fn check_row_of(columns: &[InputColumn], row: &[Value<'_>], mask: &[bool]) -> Result<()> {
    if row.len() != columns.len() {
        return Err(Error::Data(format!(
            "a row has {} values, the table has {} columns ({})",
            row.len(),
            columns.len(),
            columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    for (i, v) in row.iter().enumerate() {
        if mask[i] {
            check_value(&columns[i], v)?;
        }
    }
    Ok(())
}

fn type_error(c: &InputColumn, got: impl std::fmt::Display) -> Error {
    Error::Data(format!(
        "column '{}': expected {}, got {got}",
        c.name, c.data_type
    ))
}

/// Whether a typed value fits its input column.
fn check_value(c: &InputColumn, v: &Value<'_>) -> Result<()> {
    Fit::of(c).check(c, v)
}

/// Which typed values an input column takes, decided once per column so
/// that a row's checks compare numbers instead of matching Arrow types.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Fit {
    nullable: bool,
    boolean: bool,
    /// The integers an `Int` value may hold (an empty range: none).
    int: (i64, i64),
    /// The largest `UInt` value (None: none).
    uint: Option<u64>,
    float: FloatFit,
    text: bool,
    list: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum FloatFit {
    No,
    /// Any f64.
    F64,
    /// A Float32 column holds Float32 values exactly.
    F32,
}

impl Fit {
    fn of(c: &InputColumn) -> Fit {
        let t = &c.data_type;
        let int = match t {
            DataType::Int64 => (i64::MIN, i64::MAX),
            DataType::Date32 | DataType::Int32 => (i32::MIN.into(), i32::MAX.into()),
            t if value::is_time(t) => (i64::MIN, i64::MAX),
            DataType::Int16 => (i16::MIN.into(), i16::MAX.into()),
            DataType::Int8 => (i8::MIN.into(), i8::MAX.into()),
            _ => (1, 0),
        };
        let uint = match t {
            DataType::UInt64 => Some(u64::MAX),
            DataType::UInt32 => Some(u32::MAX.into()),
            DataType::UInt16 => Some(u16::MAX.into()),
            DataType::UInt8 => Some(u8::MAX.into()),
            _ => None,
        };
        let float = match t {
            DataType::Float64 => FloatFit::F64,
            DataType::Float32 => FloatFit::F32,
            _ => FloatFit::No,
        };
        Fit {
            nullable: c.nullable,
            boolean: *t == DataType::Boolean,
            int,
            uint,
            float,
            text: matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View),
            list: matches!(t, DataType::List(_) | DataType::LargeList(_)),
        }
    }

    #[inline]
    fn accepts(&self, v: &Value<'_>) -> bool {
        match v {
            Value::Null => self.nullable,
            Value::Bool(_) => self.boolean,
            Value::Int(i) => self.int.0 <= *i && *i <= self.int.1,
            Value::UInt(u) => self.uint.is_some_and(|m| *u <= m),
            Value::Float(f) => match self.float {
                FloatFit::No => false,
                FloatFit::F64 => true,
                FloatFit::F32 => f.is_nan() || f64::from(*f as f32) == *f,
            },
            Value::Str(_) => self.text,
            Value::List(_) => self.list,
        }
    }

    /// [`Fit::accepts`], or the error naming the column (`c`, the column
    /// `self` is of).
    #[inline]
    fn check(&self, c: &InputColumn, v: &Value<'_>) -> Result<()> {
        if self.accepts(v) {
            Ok(())
        } else {
            Err(misfit(c, v))
        }
    }
}

#[cold]
fn misfit(c: &InputColumn, v: &Value<'_>) -> Error {
    if v.is_null() {
        Error::Data(format!(
            "column '{}' ({}, not nullable) is NULL",
            c.name, c.data_type
        ))
    } else {
        type_error(c, v)
    }
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn array_value<'a>(c: &InputColumn, a: &'a ArrayRef, row: usize) -> Result<Value<'a>> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{self as t, TimeUnit};
    if a.is_null(row) {
        return Ok(Value::Null);
    }
    let v = match a.data_type() {
        DataType::Boolean => Value::Bool(a.as_boolean().value(row)),
        DataType::Int8 => Value::Int(i64::from(a.as_primitive::<t::Int8Type>().value(row))),
        DataType::Int16 => Value::Int(i64::from(a.as_primitive::<t::Int16Type>().value(row))),
        DataType::Int32 => Value::Int(i64::from(a.as_primitive::<t::Int32Type>().value(row))),
        DataType::Int64 => Value::Int(a.as_primitive::<t::Int64Type>().value(row)),
        DataType::UInt8 => Value::UInt(u64::from(a.as_primitive::<t::UInt8Type>().value(row))),
        DataType::UInt16 => Value::UInt(u64::from(a.as_primitive::<t::UInt16Type>().value(row))),
        DataType::UInt32 => Value::UInt(u64::from(a.as_primitive::<t::UInt32Type>().value(row))),
        DataType::UInt64 => Value::UInt(a.as_primitive::<t::UInt64Type>().value(row)),
        DataType::Float32 => Value::Float(f64::from(a.as_primitive::<t::Float32Type>().value(row))),
        DataType::Float64 => Value::Float(a.as_primitive::<t::Float64Type>().value(row)),
        DataType::Timestamp(unit, _) => Value::Int(match unit {
            TimeUnit::Second => a.as_primitive::<t::TimestampSecondType>().value(row),
            TimeUnit::Millisecond => a.as_primitive::<t::TimestampMillisecondType>().value(row),
            TimeUnit::Microsecond => a.as_primitive::<t::TimestampMicrosecondType>().value(row),
            TimeUnit::Nanosecond => a.as_primitive::<t::TimestampNanosecondType>().value(row),
        }),
        DataType::Date32 => Value::Int(i64::from(a.as_primitive::<t::Date32Type>().value(row))),
        DataType::Date64 => Value::Int(a.as_primitive::<t::Date64Type>().value(row)),
        DataType::Utf8 => Value::from(a.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Value::from(a.as_string::<i64>().value(row)),
        DataType::Utf8View => Value::from(a.as_string_view().value(row)),
        other => return Err(type_error(c, other)),
    };
    // Another type of the same family (see `artifact::accepts`): the value
    // as the column's type holds it, as a cast to it would give it.
    if c.data_type == *a.data_type()
        || v.is_null()
        || (is_string(&c.data_type) && is_string(a.data_type()))
    {
        return Ok(v);
    }
    let converted = value::to_scalar(&v, a.data_type())
        .and_then(|s| s.cast_to(&c.data_type))
        .ok()
        .and_then(|s| value::from_scalar(&s));
    match converted {
        Some(v) if !v.is_null() => Ok(v),
        _ => Err(type_error(
            c,
            format!("{v}, which {} cannot hold", c.data_type),
        )),
    }
}

/// The value of a JSON field for an input column.
fn json_value<'a>(c: &InputColumn, json: &'a serde_json::Value) -> Result<Value<'a>> {
    use serde_json::Value as J;
    let t = &c.data_type;
    let describe = |j: &J| match j {
        J::Bool(_) => format!("a boolean ({j})"),
        J::Number(_) => format!("a number ({j})"),
        J::String(_) => format!("a string ({j})"),
        J::Array(_) => "an array".to_string(),
        J::Object(_) => "an object".to_string(),
        J::Null => "null".to_string(),
    };
    let v = match json {
        J::Null if c.nullable => Value::Null,
        J::Null => {
            return Err(Error::Data(format!(
                "column '{}' ({}, not nullable) is null",
                c.name, c.data_type
            )));
        }
        J::Bool(b) if *t == DataType::Boolean => Value::Bool(*b),
        J::Number(n) if value::is_time(t) => match n.as_i64() {
            Some(i) if check_value(c, &Value::Int(i)).is_ok() => Value::Int(i),
            _ => return Err(type_error(c, describe(json))),
        },
        J::String(s) if value::is_time(t) => Value::Int(parse_time(c, s)?),
        J::Number(n) if t.is_signed_integer() => match n.as_i64() {
            Some(i) if ScalarValue::Int64(Some(i)).cast_to(t).is_ok() => Value::Int(i),
            _ => return Err(type_error(c, describe(json))),
        },
        J::Number(n) if t.is_unsigned_integer() => match n.as_u64() {
            Some(u) if ScalarValue::UInt64(Some(u)).cast_to(t).is_ok() => Value::UInt(u),
            _ => return Err(type_error(c, describe(json))),
        },
        J::Number(n) if t.is_floating() => {
            let f = n.as_f64().ok_or_else(|| type_error(c, describe(json)))?;
            Value::Float(if *t == DataType::Float32 {
                f64::from(f as f32)
            } else {
                f
            })
        }
        J::String(s) if t.is_floating() => {
            let f = match s.as_str() {
                "NaN" | "nan" => f64::NAN,
                "-NaN" | "-nan" => -f64::NAN,
                "Infinity" | "inf" | "+Infinity" => f64::INFINITY,
                "-Infinity" | "-inf" => f64::NEG_INFINITY,
                _ => return Err(type_error(c, describe(json))),
            };
            Value::Float(f)
        }
        J::String(s) if is_string(t) => Value::from(s.as_str()),
        other => return Err(type_error(c, describe(other))),
    };
    Ok(v)
}

/// A time column's value from RFC 3339 text, read as DataFusion's CAST
/// reads it: `2013-01-01T05:00:00` (or with a space for the T, fractions
/// of a second allowed) for a timestamp without a time zone, the same with
/// an offset (`Z`, `+02:00`) for one with a time zone, `2013-01-01` for a
/// date.
fn parse_time(c: &InputColumn, text: &str) -> Result<i64> {
    let t = &c.data_type;
    let time_part = text.find(['T', 't', ' ']).map(|i| &text[i + 1..]);
    let has_offset = time_part.is_some_and(|p| p.contains(['Z', 'z', '+', '-']));
    let wrong = |why: &str| {
        Error::Data(format!(
            "column '{}': expected {t}, got \"{text}\": {why}",
            c.name
        ))
    };
    match t {
        DataType::Timestamp(_, Some(_)) if !has_offset => {
            return Err(wrong(
                "a timestamp with a time zone needs an offset, e.g. 2013-01-01T05:00:00Z or \
                 …+02:00 (or an integer in the column's unit)",
            ));
        }
        DataType::Timestamp(_, None) if has_offset => {
            return Err(wrong(
                "the column has no time zone: give the time without an offset, as the data \
                 holds it (e.g. 2013-01-01T05:00:00)",
            ));
        }
        DataType::Date32 | DataType::Date64 if time_part.is_some() => {
            return Err(wrong("a date is written YYYY-MM-DD"));
        }
        _ => {}
    }
    let scalar = ScalarValue::Utf8(Some(text.to_string()))
        .cast_to(t)
        .map_err(|e| wrong(&crate::error::readable(&e.to_string())))?;
    match value::from_scalar(&scalar) {
        Some(Value::Int(i)) => Ok(i),
        _ => Err(wrong("not a time")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(t: DataType, nullable: bool) -> InputColumn {
        InputColumn {
            name: "c".into(),
            data_type: t,
            nullable,
        }
    }

    #[test]
    fn typed_values_must_fit_their_column() {
        let int8 = column(DataType::Int8, false);
        assert!(check_value(&int8, &Value::Int(-128)).is_ok());
        assert_eq!(
            check_value(&int8, &Value::Int(1000))
                .unwrap_err()
                .to_string(),
            "column 'c': expected Int8, got 1000"
        );
        assert_eq!(
            check_value(&int8, &Value::Null).unwrap_err().to_string(),
            "column 'c' (Int8, not nullable) is NULL"
        );
        let uint8 = column(DataType::UInt8, true);
        assert!(check_value(&uint8, &Value::UInt(300)).is_err());
        assert!(check_value(&uint8, &Value::Null).is_ok());
        let f32 = column(DataType::Float32, true);
        assert!(check_value(&f32, &Value::Float(f64::from(0.1f32))).is_ok());
        assert!(check_value(&f32, &Value::Float(f64::NAN)).is_ok());
        assert_eq!(
            check_value(&f32, &Value::Float(0.1))
                .unwrap_err()
                .to_string(),
            "column 'c': expected Float32, got 0.1"
        );
        assert_eq!(
            check_value(&column(DataType::Utf8View, true), &Value::Int(7))
                .unwrap_err()
                .to_string(),
            "column 'c': expected Utf8View, got 7"
        );
    }
}
