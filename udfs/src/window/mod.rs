//! Window aggregations (UDWFs): `window_count`, `window_sum`, `window_mean`,
//! `window_min`, `window_max`, `window_var`, `window_stddev`, `window_last`
//! and `window_distinct_count`, used as window functions over an entity's
//! events:
//!
//! ```sql
//! window_mean(dep_delay, sched_dep, INTERVAL '24 hours') OVER (PARTITION BY tailnum)
//! ```
//!
//! `window_AGG(value, ts, length [, hop [, mode]])`: the window of a row at
//! time t holds the events of its partition with `t − length ≤ ts < t`
//! (with a hop, [`crate::kernel::window::WindowRule`] says which). Each
//! partition is evaluated whole: its events are sorted by time and swept
//! ([`crate::kernel::window::sweep`]), so the result does not depend on the
//! `ORDER BY` of the window (or on its absence), and a frame clause is
//! ignored. The maths lives in [`crate::kernel::window`], which serving's
//! online state uses too.
//!
//! An event whose entity (any `PARTITION BY` value) is NULL belongs to no
//! window: [`WindowAggregate`]'s `simplify` appends the hidden arguments
//! `'<entity> ORDER BY […] frame', e1 IS NULL OR e2 IS NULL …` that the
//! evaluator reads, and drops the window's ORDER BY and frame (the marker
//! keeps them as text), so that DataFusion sorts the input by entity only.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StringArrayType,
};
use datafusion::arrow::buffer::{NullBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Date64Type, Field, FieldRef, Float64Type, Int64Type,
    TimeUnit as ArrowTimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::WindowFrame;
use datafusion::logical_expr::expr::{WindowFunction, WindowFunctionParams};
use datafusion::logical_expr::function::{
    PartitionEvaluatorArgs, WindowFunctionSimplification, WindowUDFFieldArgs,
};
use datafusion::logical_expr::{
    Documentation, Expr, PartitionEvaluator, Signature, Volatility, WindowUDF, WindowUDFImpl, lit,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Literal;

use crate::kernel::stats::Finite;
use crate::kernel::window::{
    Agg, TimeUnit, WindowRule, WindowState, WindowValue, sweep, sweep_extreme, sweep_known,
};

pub mod exec;

/// The start of the marker before the hidden entity argument (see the
/// module docs); the window's ORDER BY and frame as written follow it.
pub const ENTITY_MARKER: &str = "<entity>";

/// Every window function of this crate.
pub fn functions() -> Vec<Arc<WindowUDF>> {
    Agg::ALL
        .into_iter()
        .map(|agg| Arc::new(WindowUDF::from(WindowAggregate::new(agg))))
        .collect()
}

/// One window aggregate: `window_AGG(value, ts, length [, hop [, mode]])`.
#[derive(Debug)]
pub struct WindowAggregate {
    agg: Agg,
    signature: Signature,
    doc: Documentation,
}

impl PartialEq for WindowAggregate {
    fn eq(&self, other: &Self) -> bool {
        self.agg == other.agg
    }
}
impl Eq for WindowAggregate {}
impl std::hash::Hash for WindowAggregate {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.agg.hash(state);
    }
}

impl WindowAggregate {
    pub fn new(agg: Agg) -> Self {
        Self {
            agg,
            signature: Signature::user_defined(Volatility::Immutable),
            doc: documentation(agg),
        }
    }

    pub fn agg(&self) -> Agg {
        self.agg
    }
}

/// The arguments of a call as written, without the hidden entity ones.
fn user_arity(arg_types: &[DataType]) -> usize {
    let n = arg_types.len();
    if n >= 2 && arg_types[n - 1] == DataType::Boolean && is_string(&arg_types[n - 2]) {
        n - 2
    } else {
        n
    }
}

impl WindowUDFImpl for WindowAggregate {
    fn name(&self) -> &str {
        self.agg.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let name = self.name();
        let n = user_arity(arg_types);
        if !(3..=6).contains(&n) {
            return plan_err!(
                "{name} takes (value, ts, length [, hop [, mode [, known_at]]]), got {} argument(s)",
                n
            );
        }
        let mut types = arg_types.to_vec();
        types[0] = self.value_type(&arg_types[0])?;
        types[1] = match &arg_types[1] {
            DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => arg_types[1].clone(),
            t if t.is_integer() => DataType::Int64,
            DataType::Dictionary(_, v) if v.is_integer() => DataType::Int64,
            other => {
                return plan_err!(
                    "{name}: ts must be a timestamp, a date or an integer, got {other}"
                );
            }
        };
        for (i, arg) in ["length", "hop"].iter().enumerate().take(n - 2) {
            let t = &arg_types[2 + i];
            if !(matches!(t, DataType::Interval(_)) || t.is_integer() || t.is_null()) {
                return plan_err!(
                    "{name}: {arg} must be an INTERVAL literal (an integer for an integer ts), got {t}"
                );
            }
        }
        if n >= 5 && !is_string(&arg_types[4]) {
            return plan_err!(
                "{name}: mode must be 'sliding', 'sawtooth' or 'hopping', got a {}",
                arg_types[4]
            );
        }
        if n == 6 {
            // The arrival time is read in the unit of ts.
            let known = &arg_types[5];
            let comparable = match (&types[1], known) {
                (DataType::Int64, k) => k.is_integer(),
                (_, k) => matches!(
                    k,
                    DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
                ),
            };
            if !comparable {
                return plan_err!(
                    "{name}: known_at must be a time of the same kind as ts ({}), got {known}",
                    types[1]
                );
            }
            types[5] = types[1].clone();
        }
        Ok(types)
    }

    fn field(&self, args: WindowUDFFieldArgs) -> Result<FieldRef> {
        let t = if self.agg.is_count() {
            DataType::Int64
        } else {
            DataType::Float64
        };
        Ok(Arc::new(Field::new(args.name(), t, true)))
    }

    fn expressions(
        &self,
        args: datafusion::logical_expr::function::ExpressionArgs,
    ) -> Vec<Arc<dyn PhysicalExpr>> {
        // The columns the evaluator reads: value, ts and the entity flag.
        let exprs = args.input_exprs();
        let mut out = vec![Arc::clone(&exprs[0]), Arc::clone(&exprs[1])];
        if user_args(exprs) == 6 {
            out.push(Arc::clone(&exprs[5]));
        }
        if exprs.len() >= 2 && is_marker(&exprs[exprs.len() - 2]) {
            out.push(Arc::clone(&exprs[exprs.len() - 1]));
        }
        out
    }

    fn partition_evaluator(
        &self,
        args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        let exprs = args.input_exprs();
        let fields = args.input_fields();
        let n = user_args(exprs);
        let rule = window_rule(self.name(), fields[1].data_type(), &exprs[2..n.min(5)])?;
        Ok(Box::new(WindowEvaluator {
            agg: self.agg,
            rule,
            known: n == 6,
        }))
    }

    fn simplify(&self) -> Option<WindowFunctionSimplification> {
        Some(Box::new(|function: WindowFunction, _info| {
            let WindowFunction { fun, params } = function;
            let keyed = params.args.len() >= 2
                && matches!(
                    &params.args[params.args.len() - 2],
                    Expr::Literal(ScalarValue::Utf8(Some(m)), _) if m.starts_with(ENTITY_MARKER)
                );
            let mut params: WindowFunctionParams = params;
            if !keyed {
                let null_entity = params
                    .partition_by
                    .iter()
                    .map(|e| e.clone().is_null())
                    .reduce(Expr::or)
                    .unwrap_or_else(|| lit(false));
                // Each entity is evaluated whole and sorted by ts here, so
                // the window's ORDER BY and frame change nothing: dropping
                // them spares DataFusion a sort by time (a third of the
                // time of 10M events, bench/windows). The marker keeps them
                // as text, so that calls that differed only there stay
                // distinct expressions (DataFusion's optimizer mishandles
                // window expressions that become equal).
                let order: Vec<String> = params.order_by.iter().map(|s| s.to_string()).collect();
                let marker = format!(
                    "{ENTITY_MARKER} ORDER BY [{}] {}",
                    order.join(", "),
                    params.window_frame
                );
                params.args.push(lit(marker));
                params.args.push(null_entity);
                params.order_by.clear();
                params.window_frame = WindowFrame::new(None);
            }
            Ok(Expr::from(WindowFunction { fun, params }))
        }))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&self.doc)
    }
}

impl WindowAggregate {
    /// The type the value is computed as: Float64 for numbers; distinct
    /// counts also take strings (kept) and integers (as Int64, exactly).
    fn value_type(&self, t: &DataType) -> Result<DataType> {
        let name = self.name();
        match t {
            DataType::Dictionary(_, v) => self.value_type(v),
            DataType::Null => Ok(DataType::Float64),
            t if self.agg == Agg::DistinctCount && is_string(t) => Ok(t.clone()),
            t if self.agg == Agg::DistinctCount && t.is_integer() => Ok(DataType::Int64),
            t if t.is_numeric() => Ok(DataType::Float64),
            other if self.agg == Agg::DistinctCount => {
                plan_err!("{name}: value must be a number or a string, got {other}")
            }
            other => plan_err!(
                "{name}: value must be numeric, got {other}; cast it first, e.g. CAST(value AS DOUBLE)"
            ),
        }
    }
}

/// The number of arguments as written (without the hidden entity ones).
fn user_args(exprs: &[Arc<dyn PhysicalExpr>]) -> usize {
    if exprs.len() >= 2 && is_marker(&exprs[exprs.len() - 2]) {
        exprs.len() - 2
    } else {
        exprs.len()
    }
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_marker(e: &Arc<dyn PhysicalExpr>) -> bool {
    e.downcast_ref::<Literal>().is_some_and(
        |l| matches!(l.value(), ScalarValue::Utf8(Some(m)) if m.starts_with(ENTITY_MARKER)),
    )
}

/// The time unit of a ts column, and how many of its units a nanosecond
/// count makes (`None` for integers).
pub fn time_unit(ts: &DataType) -> Option<(TimeUnit, i128)> {
    let per_second = |u: &ArrowTimeUnit| match u {
        ArrowTimeUnit::Second => 1,
        ArrowTimeUnit::Millisecond => 1_000,
        ArrowTimeUnit::Microsecond => 1_000_000,
        ArrowTimeUnit::Nanosecond => 1_000_000_000,
    };
    match ts {
        DataType::Timestamp(u, _) => {
            let p = per_second(u);
            Some((
                TimeUnit::Time { per_second: p },
                1_000_000_000 / i128::from(p),
            ))
        }
        DataType::Date64 => Some((TimeUnit::Time { per_second: 1_000 }, 1_000_000)),
        DataType::Date32 => Some((TimeUnit::Days, 86_400 * 1_000_000_000)),
        _ => None,
    }
}

/// The rule of a call from its literal arguments (length, hop, mode) in the
/// unit of `ts`; errors name the function and the argument.
pub fn window_rule(
    name: &str,
    ts: &DataType,
    args: &[Arc<dyn PhysicalExpr>],
) -> Result<WindowRule> {
    let literals: Vec<std::result::Result<ScalarValue, String>> = args
        .iter()
        .map(|a| match a.downcast_ref::<Literal>() {
            Some(l) => Ok(l.value().clone()),
            None => Err(a.to_string()),
        })
        .collect();
    rule_of_literals(name, ts, &literals)
}

/// [`window_rule`] from the arguments (length, hop, mode) as values: `Ok`
/// a literal, `Err` the text of an argument that is not one. Serving
/// compiles the logical plan's calls with it.
pub fn rule_of_literals(
    name: &str,
    ts: &DataType,
    args: &[std::result::Result<ScalarValue, String>],
) -> Result<WindowRule> {
    let literal = |i: usize, arg: &str| -> Result<ScalarValue> {
        match &args[i] {
            Ok(v) => Ok(v.clone()),
            Err(text) => plan_err!("{name}: {arg} must be a literal, got {text}"),
        }
    };
    let length = units(name, "length", ts, &literal(0, "length")?)?;
    let hop = match args.len() {
        n if n >= 2 => match literal(1, "hop")? {
            // `NULL` for no hop, so that a mode or known_at can follow.
            v if v.is_null() => None,
            v => Some(units(name, "hop", ts, &v)?),
        },
        _ => None,
    };
    let mode = match args.len() {
        3 => match literal(2, "mode")? {
            ScalarValue::Utf8(Some(m))
            | ScalarValue::LargeUtf8(Some(m))
            | ScalarValue::Utf8View(Some(m)) => Some(m),
            other => {
                return plan_err!(
                    "{name}: mode must be 'sliding', 'sawtooth' or 'hopping', got {other}"
                );
            }
        },
        _ => None,
    };
    WindowRule::new(length, hop, mode.as_deref()).or_else(|e| {
        // Say the lengths as written rather than in the column's units.
        let e = match (time_unit(ts), hop) {
            (Some((unit, _)), Some(h))
                if e.starts_with("hop ") && e.contains("does not divide") =>
            {
                format!(
                    "hop {} does not divide length {}",
                    unit.words(h),
                    unit.words(length)
                )
            }
            _ => e,
        };
        plan_err!("{name}: {e}")
    })
}

/// A length or hop literal as written: `INTERVAL '36 hours'`, `10`.
pub fn literal_text(value: &ScalarValue) -> String {
    let time = |nanos: i128| match i64::try_from(nanos) {
        Ok(n) => TimeUnit::Time {
            per_second: 1_000_000_000,
        }
        .words(n),
        Err(_) => format!("{nanos} nanoseconds"),
    };
    let parts = match value {
        ScalarValue::IntervalMonthDayNano(Some(v)) => {
            let mut parts = Vec::new();
            if v.months != 0 {
                parts.push(format!(
                    "{} month{}",
                    v.months,
                    if v.months.abs() == 1 { "" } else { "s" }
                ));
            }
            if v.days != 0 || v.nanoseconds == 0 && v.months == 0 {
                parts.push(TimeUnit::Days.words(i64::from(v.days)));
            }
            if v.nanoseconds != 0 {
                parts.push(time(i128::from(v.nanoseconds)));
            }
            parts
        }
        ScalarValue::IntervalDayTime(Some(v)) => {
            vec![time(
                (i128::from(v.days) * 86_400_000 + i128::from(v.milliseconds)) * 1_000_000,
            )]
        }
        ScalarValue::IntervalYearMonth(Some(m)) => {
            vec![format!("{m} month{}", if m.abs() == 1 { "" } else { "s" })]
        }
        other => return other.to_string(),
    };
    format!("INTERVAL '{}'", parts.join(" "))
}

/// A length or hop literal in the units of `ts`.
fn units(name: &str, arg: &str, ts: &DataType, value: &ScalarValue) -> Result<i64> {
    let Some((unit, nanos_per_unit)) = time_unit(ts) else {
        // An integer ts takes integer lengths.
        return match value {
            v if v.data_type().is_integer() && !v.is_null() => {
                let ScalarValue::Int64(Some(n)) = v.cast_to(&DataType::Int64)? else {
                    return plan_err!("{name}: {arg} must be an integer, got {v}");
                };
                Ok(n)
            }
            v => plan_err!("{name}: {arg} must be an integer for an integer ts, got {v}"),
        };
    };
    let nanos: i128 = match value {
        ScalarValue::IntervalMonthDayNano(Some(v)) => {
            if v.months != 0 {
                return plan_err!(
                    "{name}: {arg} must not count months or years (they have no fixed length); \
                     use days (a day is 86,400 s), got {}",
                    literal_text(value)
                );
            }
            i128::from(v.days) * 86_400 * 1_000_000_000 + i128::from(v.nanoseconds)
        }
        ScalarValue::IntervalDayTime(Some(v)) => {
            (i128::from(v.days) * 86_400_000 + i128::from(v.milliseconds)) * 1_000_000
        }
        ScalarValue::IntervalYearMonth(Some(_)) => {
            return plan_err!(
                "{name}: {arg} must not count months or years (they have no fixed length); \
                 use days (a day is 86,400 s), got {}",
                literal_text(value)
            );
        }
        v if v.data_type().is_integer() => {
            return plan_err!(
                "{name}: {arg} must be an INTERVAL for a {ts} ts (e.g. INTERVAL '1 hour'), got {v}"
            );
        }
        v => return plan_err!("{name}: {arg} must be an INTERVAL, got {v}"),
    };
    if nanos <= 0 {
        return plan_err!(
            "{name}: {arg} must be positive, got {}",
            literal_text(value)
        );
    }
    if nanos % nanos_per_unit != 0 {
        return plan_err!(
            "{name}: {arg} {} is not a whole number of {} (the unit of ts, {ts})",
            literal_text(value),
            match unit {
                TimeUnit::Days => "days",
                TimeUnit::Time { per_second: 1 } => "seconds",
                TimeUnit::Time { per_second: 1_000 } => "milliseconds",
                TimeUnit::Time {
                    per_second: 1_000_000,
                } => "microseconds",
                _ => "nanoseconds",
            }
        );
    }
    i64::try_from(nanos / nanos_per_unit)
        .or_else(|_| plan_err!("{name}: {arg} {} is too long", literal_text(value)))
}

/// Evaluates one partition (one entity) at a time.
#[derive(Debug)]
struct WindowEvaluator {
    agg: Agg,
    rule: WindowRule,
    /// Whether the call has a knowledge-time argument (evaluated third).
    known: bool,
}

impl PartitionEvaluator for WindowEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let call = CallInputs {
            agg: self.agg,
            rule: self.rule,
            value: Arc::clone(&values[0]),
            ts: Times::of(&values[1])?,
            known: match self.known {
                true => Some(Times::of(&values[2])?),
                false => None,
            },
        };
        // The partition is one entity: NULL (in any PARTITION BY column)
        // means no window at all.
        let null_entity = values
            .get(2 + usize::from(self.known))
            .and_then(|f| f.as_any().downcast_ref::<BooleanArray>())
            .is_some_and(|f| !f.is_empty() && f.is_valid(0) && f.value(0));
        let mut sorted: Vec<(i64, u32)> = if null_entity {
            Vec::new()
        } else {
            (0..num_rows)
                .filter_map(|i| Some((call.ts.get(i)?, i as u32)))
                .collect()
        };
        sorted.sort_unstable();
        let mut out: Vec<Option<WindowValue>> = vec![None; num_rows];
        let mut scratch = EntityScratch::default();
        scratch.reset(&sorted);
        call.evaluate_entity(&sorted, &mut scratch, |k, r| {
            out[sorted[k].1 as usize] = Some(r)
        })?;
        Ok(if self.agg.is_count() {
            Arc::new(Int64Array::from_iter(out.into_iter().map(|r| match r {
                Some(WindowValue::Count(n)) => Some(n),
                _ => None,
            })))
        } else {
            Arc::new(Float64Array::from_iter(out.into_iter().map(|r| match r {
                Some(WindowValue::Value(v)) => v,
                _ => None,
            })))
        })
    }
}

/// The times of a ts (or arrival) column as i64 in its own unit, with its
/// NULLs.
#[derive(Debug, Clone)]
pub(crate) struct Times {
    values: ScalarBuffer<i64>,
    nulls: Option<NullBuffer>,
}

impl Times {
    pub(crate) fn of(ts: &ArrayRef) -> Result<Self> {
        fn same<T: ArrowPrimitiveType<Native = i64>>(a: &ArrayRef) -> Times {
            let a = a.as_primitive::<T>();
            Times {
                values: a.values().clone(),
                nulls: a.nulls().cloned(),
            }
        }
        Ok(match ts.data_type() {
            DataType::Timestamp(ArrowTimeUnit::Second, _) => same::<TimestampSecondType>(ts),
            DataType::Timestamp(ArrowTimeUnit::Millisecond, _) => {
                same::<TimestampMillisecondType>(ts)
            }
            DataType::Timestamp(ArrowTimeUnit::Microsecond, _) => {
                same::<TimestampMicrosecondType>(ts)
            }
            DataType::Timestamp(ArrowTimeUnit::Nanosecond, _) => {
                same::<TimestampNanosecondType>(ts)
            }
            DataType::Date64 => same::<Date64Type>(ts),
            DataType::Int64 => same::<Int64Type>(ts),
            DataType::Date32 => {
                let a = ts.as_primitive::<Date32Type>();
                Times {
                    values: a.values().iter().map(|&d| i64::from(d)).collect(),
                    nulls: a.nulls().cloned(),
                }
            }
            other => return exec_err!("window functions: unexpected ts type {other}"),
        })
    }

    /// Whether both are the same column (not a copy: the same buffers).
    pub(crate) fn same_as(&self, other: &Times) -> bool {
        self.values.len() == other.values.len()
            && self.values.as_ptr() == other.values.as_ptr()
            && self.nulls == other.nulls
    }

    /// The time of row `i`, `None` when NULL.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<i64> {
        match &self.nulls {
            Some(n) if n.is_null(i) => None,
            _ => Some(self.values[i]),
        }
    }
}

/// One window call's inputs over the rows of a window step: the value, the
/// time and the arrival time of each row. Both batch paths evaluate calls
/// through [`CallInputs::evaluate_entity`]: DataFusion's (one partition per
/// entity) and [`exec::EntityWindowExec`] (every entity at once).
#[derive(Debug)]
pub(crate) struct CallInputs {
    pub(crate) agg: Agg,
    pub(crate) rule: WindowRule,
    pub(crate) value: ArrayRef,
    pub(crate) ts: Times,
    pub(crate) known: Option<Times>,
}

impl CallInputs {
    /// The results of one entity's rows: `sorted` holds (time, row) of its
    /// rows with a time, ascending by time, and `scratch` was
    /// [reset](EntityScratch::reset) to it; `emit` gets (k, the result of
    /// `sorted[k]`'s row), k ascending.
    pub(crate) fn evaluate_entity(
        &self,
        sorted: &[(i64, u32)],
        scratch: &mut EntityScratch,
        emit: impl FnMut(usize, WindowValue),
    ) -> Result<()> {
        let value = &self.value;
        match value.data_type() {
            DataType::Float64 if self.known.is_none() => {
                let v = value.as_primitive::<Float64Type>();
                scratch.numbers(sorted, v);
                let (rule, agg) = (&self.rule, self.agg);
                let (events, times) = (&scratch.numbers, &scratch.times);
                if matches!(agg, Agg::Min | Agg::Max) {
                    sweep_extreme(rule, agg, events, times, emit);
                } else {
                    // Distinct counts key numbers by their bits inside the
                    // state.
                    let (add, retract) = (WindowState::add, WindowState::retract);
                    sweep(rule, agg, events, times, add, retract, emit);
                }
            }
            DataType::Float64 => {
                let v = value.as_primitive::<Float64Type>();
                self.drive(
                    sorted,
                    &scratch.times,
                    |i| v.is_valid(i).then(|| v.value(i)).and_then(Finite::new),
                    WindowState::add,
                    WindowState::retract,
                    emit,
                );
            }
            DataType::Int64 => {
                let v = value.as_primitive::<Int64Type>();
                self.drive(
                    sorted,
                    &scratch.times,
                    |i| v.is_valid(i).then(|| v.value(i)),
                    |s, _, v| s.add_key(&v.to_le_bytes()),
                    |s, _, v| s.retract_key(&v.to_le_bytes()),
                    emit,
                );
            }
            DataType::Utf8 => self.strings(sorted, &scratch.times, value.as_string::<i32>(), emit),
            DataType::LargeUtf8 => {
                self.strings(sorted, &scratch.times, value.as_string::<i64>(), emit)
            }
            DataType::Utf8View => {
                self.strings(sorted, &scratch.times, value.as_string_view(), emit)
            }
            other => return exec_err!("{}: unexpected value type {other}", self.agg.name()),
        }
        Ok(())
    }

    /// Sweeps the entity's events with a value (and, with knowledge time,
    /// an arrival): [`sweep`] over them in time order, or
    /// [`sweep_known`].
    fn drive<V: Copy>(
        &self,
        sorted: &[(i64, u32)],
        rows: &[i64],
        value_of: impl Fn(usize) -> Option<V>,
        add: impl Fn(&mut WindowState, i64, V),
        retract: impl Fn(&mut WindowState, i64, V),
        emit: impl FnMut(usize, WindowValue),
    ) {
        let (rule, agg) = (&self.rule, self.agg);
        match &self.known {
            None => {
                let events: Vec<(i64, V)> = sorted
                    .iter()
                    .filter_map(|&(t, i)| Some((t, value_of(i as usize)?)))
                    .collect();
                sweep(rule, agg, &events, rows, add, retract, emit);
            }
            Some(arrival) => {
                // An event with no arrival time was never known: in no window.
                let events: Vec<(i64, i64, V)> = sorted
                    .iter()
                    .filter_map(|&(t, i)| {
                        Some((t, arrival.get(i as usize)?, value_of(i as usize)?))
                    })
                    .collect();
                sweep_known(rule, agg, &events, rows, add, retract, emit);
            }
        }
    }

    /// Distinct counts of strings: events refer to their row.
    fn strings<'a, S: StringArrayType<'a> + Copy>(
        &self,
        sorted: &[(i64, u32)],
        rows: &[i64],
        values: S,
        emit: impl FnMut(usize, WindowValue),
    ) {
        self.drive(
            sorted,
            rows,
            |i| values.is_valid(i).then_some(i),
            |s, _, i| s.add_key(values.value(i).as_bytes()),
            |s, _, i| s.retract_key(values.value(i).as_bytes()),
            emit,
        );
    }
}

/// Buffers for one entity's rows, shared by the calls over them and
/// reused from entity to entity.
#[derive(Debug, Default)]
pub(crate) struct EntityScratch {
    /// The times of the rows, ascending.
    times: Vec<i64>,
    /// (time, finite value) of the rows with one, of the Float64 column
    /// `numbers_of` (its values' address and length): calls over the same
    /// column read it once.
    numbers: Vec<(i64, Finite)>,
    numbers_of: Option<(usize, usize)>,
}

impl EntityScratch {
    /// Ready for the rows `sorted` (time, row), ascending by time.
    pub(crate) fn reset(&mut self, sorted: &[(i64, u32)]) {
        self.times.clear();
        self.times.extend(sorted.iter().map(|&(t, _)| t));
        self.numbers_of = None;
    }

    /// The events of `sorted` with a finite value in `v`.
    fn numbers(&mut self, sorted: &[(i64, u32)], v: &Float64Array) {
        let of = (v.values().as_ptr() as usize, v.len());
        if self.numbers_of == Some(of) {
            return;
        }
        self.numbers.clear();
        self.numbers.extend(sorted.iter().filter_map(|&(t, i)| {
            let i = i as usize;
            Some((t, Finite::new(v.is_valid(i).then(|| v.value(i))?)?))
        }));
        self.numbers_of = Some(of);
    }
}

fn documentation(agg: Agg) -> Documentation {
    let (what, value) = match agg {
        Agg::Count => ("The number of values", "numeric"),
        Agg::Sum => (
            "The sum of the values (rounded once from the exact sum)",
            "numeric",
        ),
        Agg::Mean => ("The mean of the values (from the exact sum)", "numeric"),
        Agg::Min => ("The smallest value", "numeric"),
        Agg::Max => ("The largest value", "numeric"),
        Agg::Var => (
            "The population variance of the values (divisor n, rounded once from exact sums)",
            "numeric",
        ),
        Agg::Stddev => (
            "The population standard deviation of the values (the square root of window_var)",
            "numeric",
        ),
        Agg::Last => (
            "The value of the latest event (of events at one instant, the greatest value)",
            "numeric",
        ),
        Agg::DistinctCount => ("The exact number of distinct values", "numeric or string"),
    };
    let empty = if agg.is_count() { "0" } else { "NULL" };
    let name = agg.name();
    Documentation::builder(
        crate::DOC_SECTION,
        format!(
            "{what} among the events of the row's entity (its PARTITION BY) in the window \
             before the row. The window of a row at time t holds the events \
             with t - length <= ts < t: never the row itself nor any event at the same instant. \
             With a hop h, mode 'sawtooth' (the default) starts the window at t - length rounded \
             down to a multiple of h; mode 'hopping' is the last complete window, \
             [floor_h(t) - length, floor_h(t)). NULL and non-finite values are skipped; an empty \
             window gives {empty}; a row with a NULL ts or a NULL entity gets NULL. The result \
             depends only on the events, not on their order or the partitioning; the window's \
             ORDER BY is not needed, and a frame clause is ignored."
        ),
        format!("{name}(value, ts, length[, hop[, mode[, known_at]]]) OVER (PARTITION BY entity)"),
    )
    .with_argument("value", format!("A {value} expression: the event's value."))
    .with_argument(
        "ts",
        "The event's time: a timestamp (any unit or time zone), a date, or an integer.",
    )
    .with_argument(
        "length",
        "The window's length: an INTERVAL literal without months (a day is 86,400 s), or \
         an integer for an integer ts.",
    )
    .with_argument(
        "hop",
        "Optional: a hop that divides the length, of the same kind (NULL: no hop).",
    )
    .with_argument(
        "mode",
        "Optional: with a hop 'sawtooth' (default) or 'hopping'; without, 'sliding'.",
    )
    .with_argument(
        "known_at",
        "Optional knowledge time: when each event arrived (a time of the same kind as ts). \
         An event counts for a row at t only if known_at <= t, so a training set sees what \
         serving saw; an event with a NULL known_at counts for no row.",
    )
    .with_sql_example(example(agg, name))
    .build()
}

/// The documented example with its result: events at 0, 5, 8 and 12; the
/// row at 12 sees [2, 12), the events at 5 and 8.
fn example(agg: Agg, name: &str) -> String {
    let results: [&str; 4] = match agg {
        Agg::Count => ["0", "1", "2", "2"],
        Agg::Sum => ["", "1.0", "3.0", "6.0"],
        Agg::Mean => ["", "1.0", "1.5", "3.0"],
        Agg::Min => ["", "1.0", "1.0", "2.0"],
        Agg::Max => ["", "1.0", "2.0", "4.0"],
        Agg::Var => ["", "0.0", "0.25", "1.0"],
        Agg::Stddev => ["", "0.0", "0.5", "1.0"],
        Agg::Last => ["", "1.0", "2.0", "4.0"],
        Agg::DistinctCount => ["0", "1", "2", "2"],
    };
    let width = results.iter().map(|r| r.len()).max().unwrap_or(1).max(1);
    let line = format!("+----+-{}-+", "-".repeat(width));
    let mut table = format!("{line}\n| t  | {:width$} |\n{line}\n", "w");
    for (t, r) in ["0", "5", "8", "12"].iter().zip(results) {
        table.push_str(&format!("| {t:2} | {r:width$} |\n"));
    }
    table.push_str(&line);
    format!(
        "```sql
> SELECT t, {name}(x, t, 10) OVER (ORDER BY t) AS w
  FROM (VALUES (0, 1.0), (5, 2.0), (8, 4.0), (12, 8.0)) v(t, x) ORDER BY t;
{table}
```"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn documented_examples_are_true() {
        let mut wrong = Vec::new();
        for f in functions() {
            let doc = f.documentation().expect("documented");
            if let Err(e) = crate::aggregate::test_util::check_doc_example(doc).await {
                wrong.push(e);
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    }

    #[test]
    fn every_window_function_is_documented() {
        for f in functions() {
            let doc = f.documentation().unwrap();
            assert!(doc.sql_example.is_some(), "{}", f.name());
            assert_eq!(doc.arguments.as_ref().unwrap().len(), 6, "{}", f.name());
        }
    }

    #[test]
    fn user_arity_strips_the_hidden_entity() {
        use DataType::*;
        assert_eq!(user_arity(&[Float64, Int64, Int64]), 3);
        assert_eq!(user_arity(&[Float64, Int64, Int64, Utf8, Boolean]), 3);
        assert_eq!(user_arity(&[Float64, Int64, Int64, Int64, Utf8]), 5);
    }
}
