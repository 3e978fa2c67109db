//! The compiled expressions of the serving evaluator and how they evaluate
//! one row.
//!
//! Each node mirrors the DataFusion operator it was compiled from, with the
//! same semantics: integer arithmetic wraps at the column's width (division
//! by zero is an error), floats compare in IEEE total order like Arrow's
//! kernels (NaN equals NaN and sorts above +inf; -0.0 sorts below 0.0), AND
//! and OR follow SQL's three-valued logic. skewless's own functions call the
//! kernels of `skewless_udfs`; built-in string functions call DataFusion's
//! own implementation on one value.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::Arc;

use datafusion::arrow::compute::CastOptions;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::format::DEFAULT_FORMAT_OPTIONS;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};
use skewless_udfs::row::{Key, RowArgs, RowFunction};

use super::value::{Value, from_scalar, to_scalar};

/// `f` on `x` (and `y` for power) in the float type of `x` (f32 or f64).
macro_rules! unary_math {
    ($f:expr, $x:expr, $y:expr) => {{
        let (x, y) = ($x, $y);
        match $f {
            Math::Abs => x.abs(),
            Math::Ln => x.ln(),
            Math::Log10 => x.log10(),
            Math::Sqrt => x.sqrt(),
            Math::Exp => x.exp(),
            Math::Floor => x.floor(),
            Math::Ceil => x.ceil(),
            Math::Round => x.round(),
            Math::Power => x.powf(y),
        }
    }};
}

/// `op` on two floats of one type (f32 or f64), IEEE semantics.
macro_rules! float_arith {
    ($op:expr, $x:expr, $y:expr) => {{
        let (x, y) = ($x, $y);
        match $op {
            Arith::Add => x + y,
            Arith::Sub => x - y,
            Arith::Mul => x * y,
            Arith::Div => x / y,
            Arith::Rem => x % y,
        }
    }};
}

/// An evaluation error of one row (the evaluator adds the output's name).
pub(crate) type EvalResult<T> = std::result::Result<T, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    Distinct,
    NotDistinct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Truth {
    True,
    False,
    Unknown,
    NotTrue,
    NotFalse,
    NotUnknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Math {
    Abs,
    Ln,
    Log10,
    Sqrt,
    Exp,
    Floor,
    Ceil,
    Round,
    Power,
}

/// A built-in function called through DataFusion's implementation.
#[derive(Debug)]
pub(crate) struct Builtin {
    pub udf: Arc<ScalarUDF>,
    pub arg_fields: Vec<FieldRef>,
    pub return_field: FieldRef,
    pub config: Arc<ConfigOptions>,
}

/// Calls `$f` on each direct child of node kind `$kind` (a `&Kind` with
/// `iter`, a `&mut Kind` with `iter_mut`): one list of children for both.
macro_rules! each_child {
    ($kind:expr, $f:expr, $iter:ident) => {
        match $kind {
            Kind::Input(_) | Kind::Literal(_) | Kind::TrainingOnly(_) => {}
            Kind::Arith(_, a, b)
            | Kind::Cmp(_, a, b)
            | Kind::And(a, b)
            | Kind::Or(a, b)
            | Kind::Concat(a, b)
            | Kind::NullIf(a, b) => {
                $f(a);
                $f(b);
            }
            Kind::Not(a) | Kind::Negative(a) | Kind::IsNull(a, _) | Kind::Truth(_, a) => $f(a),
            Kind::Cast { expr, .. } => $f(expr),
            Kind::Case {
                operand,
                whens,
                otherwise,
            } => {
                for n in operand.$iter().chain(otherwise.$iter()) {
                    $f(n);
                }
                for (w, t) in whens {
                    $f(w);
                    $f(t);
                }
            }
            Kind::InList { expr, list, .. } => {
                $f(expr);
                list.$iter().for_each(|n| $f(n));
            }
            Kind::Like { expr, pattern, .. } => {
                $f(expr);
                $f(pattern);
            }
            Kind::Coalesce(args)
            | Kind::Math(_, args)
            | Kind::Ours(_, args, _)
            | Kind::Builtin(_, args) => args.$iter().for_each(|n| $f(n)),
        }
    };
}

/// A compiled expression with the Arrow type of its result.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    pub ty: DataType,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Input(usize),
    Literal(Value<'static>),
    Arith(Arith, Box<Node>, Box<Node>),
    Cmp(Cmp, Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Concat(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Negative(Box<Node>),
    IsNull(Box<Node>, bool),
    Truth(Truth, Box<Node>),
    Case {
        operand: Option<Box<Node>>,
        whens: Vec<(Node, Node)>,
        otherwise: Option<Box<Node>>,
    },
    Coalesce(Vec<Node>),
    NullIf(Box<Node>, Box<Node>),
    InList {
        expr: Box<Node>,
        list: Vec<Node>,
        negated: bool,
    },
    Like {
        expr: Box<Node>,
        pattern: Box<Node>,
        negated: bool,
        case_insensitive: bool,
        escape: Option<char>,
    },
    Cast {
        expr: Box<Node>,
        safe: bool,
    },
    Math(Math, Vec<Node>),
    /// One of skewless's functions; the watch counts what it sees outside
    /// its fitted statistics (see `skew`), when the evaluator keeps counts.
    Ours(Arc<RowFunction>, Vec<Node>, Option<super::skew::Watch>),
    Builtin(Arc<Builtin>, Vec<Node>),
    /// A training-only function (`split_of`): outputs that use it are not
    /// served.
    TrainingOnly(&'static str),
}

fn width(t: &DataType) -> u32 {
    match t {
        DataType::Int8 | DataType::UInt8 => 8,
        DataType::Int16 | DataType::UInt16 => 16,
        DataType::Int32 | DataType::UInt32 => 32,
        _ => 64,
    }
}

fn wrap_signed(v: i64, t: &DataType) -> i64 {
    match width(t) {
        8 => i64::from(v as i8),
        16 => i64::from(v as i16),
        32 => i64::from(v as i32),
        _ => v,
    }
}

fn wrap_unsigned(v: u64, t: &DataType) -> u64 {
    match width(t) {
        8 => u64::from(v as u8),
        16 => u64::from(v as u16),
        32 => u64::from(v as u32),
        _ => v,
    }
}

fn signed_range(t: &DataType) -> (i64, i64) {
    match width(t) {
        8 => (i64::from(i8::MIN), i64::from(i8::MAX)),
        16 => (i64::from(i16::MIN), i64::from(i16::MAX)),
        32 => (i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => (i64::MIN, i64::MAX),
    }
}

fn unsigned_max(t: &DataType) -> u64 {
    match width(t) {
        8 => u64::from(u8::MAX),
        16 => u64::from(u16::MAX),
        32 => u64::from(u32::MAX),
        _ => u64::MAX,
    }
}

const DIVIDE_BY_ZERO: &str = "Divide by zero error";

/// A non-NULL value of a string, integer or float as a float (for the rare
/// operands DataFusion's coercion leaves with different types).
fn as_f64(v: &Value<'_>) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::UInt(u) => Some(*u as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn arith<'a>(op: Arith, t: &DataType, a: Value<'a>, b: Value<'a>) -> EvalResult<Value<'a>> {
    Ok(match (a, b) {
        (Value::Null, _) | (_, Value::Null) => Value::Null,
        (Value::Int(x), Value::Int(y)) if t.is_signed_integer() => {
            let v = match op {
                Arith::Add => x.wrapping_add(y),
                Arith::Sub => x.wrapping_sub(y),
                Arith::Mul => x.wrapping_mul(y),
                Arith::Div | Arith::Rem => {
                    if y == 0 {
                        return Err(DIVIDE_BY_ZERO.into());
                    }
                    let (lo, hi) = signed_range(t);
                    // Arrow: checked division (MIN / -1 overflows), wrapping
                    // remainder (MIN % -1 is 0).
                    let v = if op == Arith::Div {
                        x.checked_div(y)
                    } else {
                        Some(x.wrapping_rem(y))
                    };
                    match v.filter(|v| (lo..=hi).contains(v)) {
                        Some(v) => v,
                        None => return Err(format!("Overflow happened on: {x} / {y}")),
                    }
                }
            };
            Value::Int(wrap_signed(v, t))
        }
        (Value::UInt(x), Value::UInt(y)) if t.is_unsigned_integer() => {
            let v = match op {
                Arith::Add => x.wrapping_add(y),
                Arith::Sub => x.wrapping_sub(y),
                Arith::Mul => x.wrapping_mul(y),
                Arith::Div | Arith::Rem if y == 0 => return Err(DIVIDE_BY_ZERO.into()),
                Arith::Div => x / y,
                Arith::Rem => x % y,
            };
            Value::UInt(wrap_unsigned(v, t))
        }
        (a, b) => {
            let (Some(x), Some(y)) = (as_f64(&a), as_f64(&b)) else {
                return Err(format!("cannot compute {a:?} {op:?} {b:?}"));
            };
            Value::Float(if matches!(t, DataType::Float32) {
                f64::from(float_arith!(op, x as f32, y as f32))
            } else {
                float_arith!(op, x, y)
            })
        }
    })
}

/// -0.0 as 0.0 (other values unchanged).
fn zero(f: f64) -> f64 {
    if f == 0.0 { 0.0 } else { f }
}

/// Arrow's ordering of two non-NULL values of one type: floats in IEEE
/// total order (NaN above +inf, -NaN below -inf, NaN equal to itself). With
/// `signed_zero` false, -0.0 equals 0.0, as in DataFusion's comparison
/// operators; CASE's operand form, NULLIF and IN lists of literals compare
/// floats bit for bit (-0.0 is not 0.0).
fn order(a: &Value<'_>, b: &Value<'_>, signed_zero: bool) -> Ordering {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::UInt(x), Value::UInt(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) if signed_zero => x.total_cmp(y),
        (Value::Float(x), Value::Float(y)) => zero(*x).total_cmp(&zero(*y)),
        (Value::Str(x), Value::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Int(x), Value::UInt(y)) => i128::from(*x).cmp(&i128::from(*y)),
        (Value::UInt(x), Value::Int(y)) => i128::from(*x).cmp(&i128::from(*y)),
        (x, y) => match (as_f64(x), as_f64(y)) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            _ => Ordering::Equal,
        },
    }
}

/// Equality as CASE, NULLIF and IN lists see it (floats bit for bit).
fn equal(a: &Value<'_>, b: &Value<'_>) -> Option<bool> {
    if a.is_null() || b.is_null() {
        None
    } else {
        Some(order(a, b, true) == Ordering::Equal)
    }
}

fn compare(op: Cmp, a: &Value<'_>, b: &Value<'_>) -> Value<'static> {
    match op {
        Cmp::Distinct | Cmp::NotDistinct => {
            let same = match (a.is_null(), b.is_null()) {
                (true, true) => true,
                (false, false) => order(a, b, false) == Ordering::Equal,
                _ => false,
            };
            Value::Bool(same == (op == Cmp::NotDistinct))
        }
        _ if a.is_null() || b.is_null() => Value::Null,
        _ => {
            let o = order(a, b, false);
            Value::Bool(match op {
                Cmp::Eq => o == Ordering::Equal,
                Cmp::NotEq => o != Ordering::Equal,
                Cmp::Lt => o == Ordering::Less,
                Cmp::LtEq => o != Ordering::Greater,
                Cmp::Gt => o == Ordering::Greater,
                Cmp::GtEq => o != Ordering::Less,
                Cmp::Distinct | Cmp::NotDistinct => unreachable!("handled above"),
            })
        }
    }
}

fn truth(v: &Value<'_>) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

/// Whether a vocabulary function `f` holds the key its argument `arg`
/// gives on `row`: None when the key is NULL (the output is NULL, not an
/// out-of-vocabulary bucket) or of another type.
pub(crate) fn vocabulary_holds(f: &RowFunction, arg: &Node, row: &[Value<'_>]) -> Option<bool> {
    let v = arg.eval(row).ok()?;
    let k = key(&v)?;
    Some(f.index_seen(k).1)
}

fn key<'v>(v: &'v Value<'_>) -> Option<Key<'v>> {
    match v {
        Value::Str(s) => Some(Key::Str(s)),
        Value::Int(i) => Some(Key::Int(*i)),
        Value::UInt(u) => Some(Key::UInt(*u)),
        _ => None,
    }
}

/// SQL LIKE: `%` matches any run of characters, `_` exactly one, the escape
/// character (default `\`) makes the next character literal.
pub(crate) fn like(
    text: &str,
    pattern: &str,
    escape: Option<char>,
    case_insensitive: bool,
) -> bool {
    let fold = |s: &str| -> Vec<char> {
        if case_insensitive {
            s.chars().flat_map(char::to_lowercase).collect()
        } else {
            s.chars().collect()
        }
    };
    let escape = escape.unwrap_or('\\');
    // The pattern as tokens: Some(c) a literal, None for `_`, and `%` runs.
    #[derive(Clone, Copy, PartialEq)]
    enum Tok {
        Char(char),
        One,
        Any,
    }
    let mut toks = Vec::new();
    let mut chars = fold(pattern).into_iter();
    while let Some(c) = chars.next() {
        toks.push(if c == escape {
            Tok::Char(chars.next().unwrap_or(escape))
        } else if c == '%' {
            Tok::Any
        } else if c == '_' {
            Tok::One
        } else {
            Tok::Char(c)
        });
    }
    let text = fold(text);
    // Greedy matching with one backtrack point (the last `%`).
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match toks.get(p) {
            Some(Tok::Any) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Tok::One) => {
                t += 1;
                p += 1;
            }
            Some(Tok::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    toks[p..].iter().all(|t| *t == Tok::Any)
}

/// ILIKE through Arrow's own kernel (its Unicode case folding), on one value.
fn ilike(text: &str, pattern: &str) -> EvalResult<bool> {
    use datafusion::arrow::array::{Scalar, StringArray};
    let text = StringArray::from(vec![text]);
    let pattern = Scalar::new(StringArray::from(vec![pattern]));
    let out = datafusion::arrow::compute::kernels::comparison::ilike(&text, &pattern)
        .map_err(|e| e.to_string())?;
    Ok(out.value(0))
}

/// DataFusion's CAST options (TRY_CAST is the same with `safe`).
fn cast_options(safe: bool) -> CastOptions<'static> {
    CastOptions {
        safe,
        format_options: DEFAULT_FORMAT_OPTIONS,
    }
}

/// A float truncated to an integer in `lo..=hi`, or None (NaN, out of range).
fn float_to_int(f: f64, lo: f64, hi_exclusive: f64) -> Option<f64> {
    let t = f.trunc();
    (t >= lo && t < hi_exclusive).then_some(t)
}

fn cast<'a>(v: Value<'a>, from: &DataType, to: &DataType, safe: bool) -> EvalResult<Value<'a>> {
    // The common widenings first.
    match (&v, to) {
        (Value::Null, _) => return Ok(Value::Null),
        (Value::Int(i), DataType::Float64) => return Ok(Value::Float(*i as f64)),
        (Value::Int(i), DataType::Int64) => return Ok(Value::Int(*i)),
        _ => {}
    }
    let failed = |v: &Value<'_>| -> EvalResult<Value<'a>> {
        if safe {
            Ok(Value::Null)
        } else {
            Err(format!(
                "Cast error: cannot cast {v:?} of type {from} to {to}"
            ))
        }
    };
    let numeric = |t: &DataType| t.is_integer() || t.is_floating() || *t == DataType::Boolean;
    if !(numeric(from) && numeric(to)) || *from == DataType::Float16 || *to == DataType::Float16 {
        // Strings and anything else: Arrow's cast kernel on the one value.
        let scalar = to_scalar(&v, from).map_err(|e| e.to_string())?;
        return match scalar.cast_to_with_options(to, &cast_options(safe)) {
            Ok(s) => {
                from_scalar(&s).ok_or_else(|| format!("cast to {to} gave an unsupported value {s}"))
            }
            Err(e) => Err(e.to_string()),
        };
    }
    Ok(match (v, to) {
        (Value::Bool(b), DataType::Boolean) => Value::Bool(b),
        (Value::Bool(b), t) if t.is_signed_integer() => Value::Int(i64::from(b)),
        (Value::Bool(b), t) if t.is_unsigned_integer() => Value::UInt(u64::from(b)),
        (Value::Bool(b), _) => Value::Float(if b { 1.0 } else { 0.0 }),
        (Value::Int(i), DataType::Boolean) => Value::Bool(i != 0),
        (Value::UInt(u), DataType::Boolean) => Value::Bool(u != 0),
        (Value::Float(f), DataType::Boolean) => Value::Bool(f != 0.0),
        (Value::Int(i), DataType::Float32) => Value::Float(f64::from(i as f32)),
        (Value::UInt(u), DataType::Float32) => Value::Float(f64::from(u as f32)),
        (Value::Float(f), DataType::Float32) => Value::Float(f64::from(f as f32)),
        (Value::Int(i), DataType::Float64) => Value::Float(i as f64),
        (Value::UInt(u), DataType::Float64) => Value::Float(u as f64),
        (Value::Float(f), DataType::Float64) => Value::Float(f),
        (v @ Value::Int(i), t) if t.is_signed_integer() => {
            let (lo, hi) = signed_range(t);
            if (lo..=hi).contains(&i) {
                Value::Int(i)
            } else {
                return failed(&v);
            }
        }
        (v @ Value::UInt(u), t) if t.is_signed_integer() => {
            let (_, hi) = signed_range(t);
            if u <= hi as u64 {
                Value::Int(u as i64)
            } else {
                return failed(&v);
            }
        }
        (v @ Value::Int(i), t) if t.is_unsigned_integer() => {
            if i >= 0 && (i as u64) <= unsigned_max(t) {
                Value::UInt(i as u64)
            } else {
                return failed(&v);
            }
        }
        (v @ Value::UInt(u), t) if t.is_unsigned_integer() => {
            if u <= unsigned_max(t) {
                Value::UInt(u)
            } else {
                return failed(&v);
            }
        }
        (v @ Value::Float(f), t) if t.is_signed_integer() => {
            let (lo, hi) = signed_range(t);
            // hi + 1 is exact in f64 for every width (2^7 … 2^63).
            match float_to_int(f, lo as f64, hi as f64 + 1.0) {
                Some(x) => Value::Int(x as i64),
                None => return failed(&v),
            }
        }
        (v @ Value::Float(f), t) if t.is_unsigned_integer() => {
            match float_to_int(f, 0.0, unsigned_max(t) as f64 + 1.0) {
                Some(x) => Value::UInt(x as u64),
                None => return failed(&v),
            }
        }
        (v, _) => return failed(&v),
    })
}

fn math<'a>(f: Math, t: &DataType, args: &[Value<'a>]) -> EvalResult<Value<'a>> {
    let single = matches!(t, DataType::Float32);
    let x = match args.first().and_then(as_f64) {
        Some(x) => x,
        None => return Ok(Value::Null),
    };
    // As DataFusion's sqrt does.
    if f == Math::Sqrt && x < 0.0 {
        return Err("cannot take square root of a negative number".into());
    }
    let y = args.get(1).and_then(as_f64);
    if f == Math::Power && y.is_none() {
        return Ok(Value::Null);
    }
    let y = y.unwrap_or(0.0);
    // As DataFusion's power does.
    if f == Math::Power && x == 0.0 && y < 0.0 {
        return Err("zero raised to a negative power is undefined".into());
    }
    Ok(Value::Float(if single {
        f64::from(unary_math!(f, x as f32, y as f32))
    } else {
        unary_math!(f, x, y)
    }))
}

impl Builtin {
    fn call<'a>(&self, args: &[Value<'_>]) -> EvalResult<Value<'a>> {
        let args = args
            .iter()
            .zip(&self.arg_fields)
            .map(|(v, f)| to_scalar(v, f.data_type()).map(ColumnarValue::Scalar))
            .collect::<datafusion::common::Result<Vec<_>>>()
            .map_err(|e| e.to_string())?;
        let out = self
            .udf
            .invoke_with_args(ScalarFunctionArgs {
                args,
                arg_fields: self.arg_fields.clone(),
                number_rows: 1,
                return_field: Arc::clone(&self.return_field),
                config_options: Arc::clone(&self.config),
            })
            .map_err(|e| e.to_string())?;
        let scalar = match out {
            ColumnarValue::Scalar(s) => s,
            ColumnarValue::Array(a) => {
                datafusion::common::ScalarValue::try_from_array(&a, 0).map_err(|e| e.to_string())?
            }
        };
        from_scalar(&scalar).ok_or_else(|| {
            format!(
                "{} returned a value of type {} that serving does not handle",
                self.udf.name(),
                scalar.data_type()
            )
        })
    }
}

impl Node {
    pub(crate) fn new(kind: Kind, ty: DataType) -> Self {
        Self { kind, ty }
    }

    /// The input slots this expression reads.
    pub(crate) fn inputs(&self, out: &mut Vec<usize>) {
        if let Kind::Input(i) = self.kind {
            out.push(i);
        }
        self.children(&mut |n| n.inputs(out));
    }

    /// The training-only function this expression uses, if any.
    pub(crate) fn training_only(&self) -> Option<&'static str> {
        if let Kind::TrainingOnly(name) = self.kind {
            return Some(name);
        }
        let mut found = None;
        self.children(&mut |n| {
            if found.is_none() {
                found = n.training_only();
            }
        });
        found
    }

    /// The input slots this expression reads as keys: through casts,
    /// `coalesce`, string functions and nested key functions, but not
    /// through skewless's numeric functions (`bucketize(age)` reads `age`
    /// as a number).
    pub(crate) fn key_inputs(&self, out: &mut Vec<usize>) {
        match &self.kind {
            Kind::Input(i) => out.push(*i),
            Kind::Ours(f, args, _) => {
                use skewless_udfs::row::RowFunction as F;
                if matches!(
                    **f,
                    F::VocabIndex(_) | F::OneHot(_) | F::HashBucket(_) | F::Cross(_)
                ) {
                    args.iter().for_each(|a| a.key_inputs(out));
                }
            }
            _ => self.children(&mut |n| n.key_inputs(out)),
        }
    }

    /// When this node is `vocab_index(x)` or `vocab_index(coalesce(x,
    /// literal…))` of an input `x`: that input's slot and the vocabulary's
    /// values in position order as text. For a non-NULL `x`, an index below
    /// V is then the position of `x` itself (the live tally reads it
    /// instead of looking `x` up again).
    pub(crate) fn vocabulary_of_input(&self) -> Option<(usize, Vec<Option<String>>)> {
        let Kind::Ours(f, args, _) = &self.kind else {
            return None;
        };
        let input = match &args.first()?.kind {
            Kind::Input(i) => *i,
            Kind::Coalesce(c) => match c.split_first()? {
                (
                    Node {
                        kind: Kind::Input(i),
                        ..
                    },
                    rest,
                ) if rest.iter().all(|n| matches!(n.kind, Kind::Literal(_))) => *i,
                _ => return None,
            },
            _ => return None,
        };
        Some((input, f.vocabulary_texts()?))
    }

    /// Calls `f` on this node, then on each node below it.
    pub(crate) fn visit(&self, f: &mut dyn FnMut(&Node)) {
        f(self);
        self.children(&mut |n| n.visit(f));
    }

    /// Calls `f` on this node, then on each node below it, in the order
    /// [`Node::children`] lists them.
    pub(crate) fn visit_mut(&mut self, f: &mut dyn FnMut(&mut Node)) {
        f(self);
        self.children_mut(&mut |n| n.visit_mut(f));
    }

    /// Calls `f` on each direct child.
    fn children(&self, f: &mut dyn FnMut(&Node)) {
        each_child!(&self.kind, f, iter);
    }

    /// [`Node::children`], mutably.
    fn children_mut(&mut self, f: &mut dyn FnMut(&mut Node)) {
        each_child!(&mut self.kind, f, iter_mut);
    }

    /// The value of this expression on one row.
    #[inline]
    pub(crate) fn eval<'a>(&'a self, row: &'a [Value<'a>]) -> EvalResult<Value<'a>> {
        match &self.kind {
            Kind::Input(i) => Ok(borrow(&row[*i])),
            Kind::Literal(v) => Ok(borrow(v)),
            _ => self.eval_node(row),
        }
    }

    /// The other nodes, out of line: a small frame for the common ones, and
    /// the bulky ones (CASE, IN, crosses, built-ins) in functions of their own.
    #[inline(never)]
    fn eval_node<'a>(&'a self, row: &'a [Value<'a>]) -> EvalResult<Value<'a>> {
        Ok(match &self.kind {
            Kind::Input(_) | Kind::Literal(_) => unreachable!("handled by eval"),
            Kind::TrainingOnly(name) => return Err(format!("{name} is training only")),
            Kind::Arith(op, a, b) => arith(*op, &self.ty, a.eval(row)?, b.eval(row)?)?,
            Kind::Cmp(op, a, b) => compare(*op, &a.eval(row)?, &b.eval(row)?),
            Kind::And(a, b) => {
                let l = truth(&a.eval(row)?);
                if l == Some(false) {
                    return Ok(Value::Bool(false));
                }
                match (l, truth(&b.eval(row)?)) {
                    (_, Some(false)) => Value::Bool(false),
                    (Some(true), Some(true)) => Value::Bool(true),
                    _ => Value::Null,
                }
            }
            Kind::Or(a, b) => {
                let l = truth(&a.eval(row)?);
                if l == Some(true) {
                    return Ok(Value::Bool(true));
                }
                match (l, truth(&b.eval(row)?)) {
                    (_, Some(true)) => Value::Bool(true),
                    (Some(false), Some(false)) => Value::Bool(false),
                    _ => Value::Null,
                }
            }
            Kind::Concat(a, b) => match (a.eval(row)?, b.eval(row)?) {
                (Value::Str(x), Value::Str(y)) => Value::Str(Cow::Owned(format!("{x}{y}"))),
                _ => Value::Null,
            },
            Kind::Not(a) => match truth(&a.eval(row)?) {
                Some(b) => Value::Bool(!b),
                None => Value::Null,
            },
            Kind::Negative(a) => match a.eval(row)? {
                Value::Int(i) => Value::Int(wrap_signed(i.wrapping_neg(), &self.ty)),
                Value::Float(f) => Value::Float(-f),
                Value::Null => Value::Null,
                v => return Err(format!("cannot negate {v:?}")),
            },
            Kind::IsNull(a, negated) => Value::Bool(a.eval(row)?.is_null() != *negated),
            Kind::Truth(test, a) => {
                let v = truth(&a.eval(row)?);
                Value::Bool(match test {
                    Truth::True => v == Some(true),
                    Truth::False => v == Some(false),
                    Truth::Unknown => v.is_none(),
                    Truth::NotTrue => v != Some(true),
                    Truth::NotFalse => v != Some(false),
                    Truth::NotUnknown => v.is_some(),
                })
            }
            Kind::Case { .. } => return self.eval_case(row),
            Kind::Coalesce(args) => {
                for a in args {
                    let v = a.eval(row)?;
                    if !v.is_null() {
                        return Ok(v);
                    }
                }
                Value::Null
            }
            Kind::NullIf(a, b) => {
                let x = a.eval(row)?;
                if equal(&x, &b.eval(row)?) == Some(true) {
                    Value::Null
                } else {
                    x
                }
            }
            Kind::InList { .. } => return self.eval_in_list(row),
            Kind::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
                escape,
            } => match (expr.eval(row)?, pattern.eval(row)?) {
                (Value::Str(s), Value::Str(p)) if *case_insensitive => {
                    Value::Bool(ilike(&s, &p)? != *negated)
                }
                (Value::Str(s), Value::Str(p)) => {
                    Value::Bool(like(&s, &p, *escape, false) != *negated)
                }
                _ => Value::Null,
            },
            Kind::Cast { expr, safe } => cast(expr.eval(row)?, &expr.ty, &self.ty, *safe)?,
            Kind::Math(f, args) => return eval_math(*f, &self.ty, args, row),
            Kind::Ours(f, args, watch) => match f.args() {
                RowArgs::Float => {
                    let x = match args[0].fast_f64(row) {
                        Some(x) => x?,
                        None => match args[0].eval(row)? {
                            Value::Null => None,
                            v => Some(
                                as_f64(&v)
                                    .ok_or_else(|| format!("expected a number, got {v:?}"))?,
                            ),
                        },
                    };
                    match (x, &**f) {
                        (None, _) => Value::Null,
                        (Some(x), RowFunction::Bucketize(_)) => Value::Int(f.bucket(x)),
                        (Some(x), _) => {
                            if let Some(w) = watch
                                && f.out_of_range(x)
                            {
                                w.hit();
                            }
                            Value::Float(f.float(x))
                        }
                    }
                }
                RowArgs::Key => {
                    if let Some(k) = args[0].fast_key(row) {
                        return Ok(match k {
                            Some(k) if !matches!(**f, RowFunction::OneHot(_)) => index(f, k, watch),
                            None => Value::Null,
                            Some(_) => return self.eval_one_hot(row),
                        });
                    }
                    if matches!(**f, RowFunction::OneHot(_)) {
                        return self.eval_one_hot(row);
                    }
                    let v = args[0].eval(row)?;
                    let Some(k) = key(&v) else {
                        return Ok(Value::Null);
                    };
                    index(f, k, watch)
                }
                RowArgs::Keys => return cross(f, args, row),
            },
            Kind::Builtin(b, args) => return builtin(b, args, row),
        })
    }

    #[inline(never)]
    fn eval_one_hot<'a>(&'a self, row: &'a [Value<'a>]) -> EvalResult<Value<'a>> {
        let Kind::Ours(f, args, watch) = &self.kind else {
            unreachable!("called on one_hot_with")
        };
        let v = args[0].eval(row)?;
        let Some(k) = key(&v) else {
            return Ok(Value::Null);
        };
        let (len, slot) = f.one_hot(k);
        if let Some(w) = watch
            && slot + 1 == len
        {
            w.hit();
        }
        Ok(Value::List(
            (0..len)
                .map(|i| Value::Float(if i == slot { 1.0 } else { 0.0 }))
                .collect(),
        ))
    }

    /// The Float64 value of this node computed without intermediate
    /// [`Value`]s, for the shapes that feed scalers: inputs, literals,
    /// casts of them, Float64 arithmetic and math. None when the node has
    /// another shape (the caller then takes the general path); the result
    /// is the one [`Node::eval`] gives.
    fn fast_f64(&self, row: &[Value<'_>]) -> Option<EvalResult<Option<f64>>> {
        if !matches!(self.ty, DataType::Float64) {
            return None;
        }
        let leaf = |v: &Value<'_>| match v {
            Value::Null => Some(Ok(None)),
            Value::Float(f) => Some(Ok(Some(*f))),
            _ => None,
        };
        match &self.kind {
            Kind::Input(i) => leaf(&row[*i]),
            Kind::Literal(v) => leaf(v),
            Kind::Cast { expr, .. } => {
                let v = match &expr.kind {
                    Kind::Input(i) => &row[*i],
                    Kind::Literal(v) => v,
                    _ => return None,
                };
                match v {
                    Value::Null => Some(Ok(None)),
                    Value::Int(i) => Some(Ok(Some(*i as f64))),
                    Value::UInt(u) => Some(Ok(Some(*u as f64))),
                    Value::Float(f) => Some(Ok(Some(*f))),
                    _ => None,
                }
            }
            Kind::Arith(op, a, b) => {
                let x = match a.fast_f64(row)? {
                    Ok(x) => x,
                    Err(e) => return Some(Err(e)),
                };
                let y = match b.fast_f64(row)? {
                    Ok(y) => y,
                    Err(e) => return Some(Err(e)),
                };
                let (Some(x), Some(y)) = (x, y) else {
                    return Some(Ok(None));
                };
                Some(Ok(Some(float_arith!(op, x, y))))
            }
            Kind::Math(f, args) if args.len() == 1 => {
                let x = match args[0].fast_f64(row)? {
                    Ok(Some(x)) => x,
                    other => return Some(other),
                };
                Some(match math(*f, &self.ty, &[Value::Float(x)]) {
                    Ok(Value::Float(v)) => Ok(Some(v)),
                    Ok(_) => Ok(None),
                    Err(e) => Err(e),
                })
            }
            _ => None,
        }
    }

    /// The key (string or integer) of this node without intermediate
    /// [`Value`]s, for the shapes that feed vocabularies and crosses:
    /// inputs, literals, COALESCE of them, bucketize. `Some(None)` is NULL;
    /// None means another shape (the caller takes the general path).
    fn fast_key<'a>(&'a self, row: &'a [Value<'a>]) -> Option<Option<Key<'a>>> {
        match &self.kind {
            Kind::Input(i) => Some(key(&row[*i])),
            Kind::Literal(v) => Some(key(v)),
            Kind::Coalesce(args) => {
                for a in args {
                    if let Some(k) = a.fast_key(row)? {
                        return Some(Some(k));
                    }
                }
                Some(None)
            }
            Kind::Ours(f, args, _) if matches!(**f, RowFunction::Bucketize(_)) => {
                match args[0].fast_f64(row)? {
                    Ok(x) => Some(x.map(|x| Key::Int(f.bucket(x)))),
                    Err(_) => None,
                }
            }
            _ => None,
        }
    }

    #[inline(never)]
    fn eval_case<'a>(&'a self, row: &'a [Value<'a>]) -> EvalResult<Value<'a>> {
        let Kind::Case {
            operand,
            whens,
            otherwise,
        } = &self.kind
        else {
            unreachable!("called on CASE")
        };
        let base = match operand {
            Some(o) => Some(o.eval(row)?),
            None => None,
        };
        for (when, then) in whens {
            let w = when.eval(row)?;
            let hit = match &base {
                Some(b) => equal(b, &w) == Some(true),
                None => truth(&w) == Some(true),
            };
            if hit {
                return then.eval(row);
            }
        }
        match otherwise {
            Some(e) => e.eval(row),
            None => Ok(Value::Null),
        }
    }

    #[inline(never)]
    fn eval_in_list<'a>(&'a self, row: &'a [Value<'a>]) -> EvalResult<Value<'a>> {
        let Kind::InList {
            expr,
            list,
            negated,
        } = &self.kind
        else {
            unreachable!("called on IN")
        };
        let x = expr.eval(row)?;
        if x.is_null() {
            return Ok(Value::Null);
        }
        let mut saw_null = false;
        for item in list {
            match equal(&x, &item.eval(row)?) {
                Some(true) => return Ok(Value::Bool(!negated)),
                Some(false) => {}
                None => saw_null = true,
            }
        }
        Ok(if saw_null {
            Value::Null
        } else {
            Value::Bool(*negated)
        })
    }
}

/// A vocabulary's or hash bucket's index of a key, counting an unseen key.
#[inline]
fn index<'a>(f: &RowFunction, k: Key<'_>, watch: &Option<super::skew::Watch>) -> Value<'a> {
    let (i, seen) = f.index_seen(k);
    if !seen && let Some(w) = watch {
        w.hit();
    }
    i.map_or(Value::Null, Value::Int)
}

/// A value borrowing its string from `v`.
#[inline]
pub(crate) fn borrow<'a>(v: &'a Value<'_>) -> Value<'a> {
    match v {
        Value::Str(s) => Value::Str(Cow::Borrowed(s.as_ref())),
        Value::Null => Value::Null,
        Value::Bool(b) => Value::Bool(*b),
        Value::Int(i) => Value::Int(*i),
        Value::UInt(u) => Value::UInt(*u),
        Value::Float(f) => Value::Float(*f),
        Value::List(l) => Value::List(l.iter().map(borrow).collect()),
    }
}

#[inline(never)]
fn eval_math<'a>(
    f: Math,
    t: &DataType,
    args: &'a [Node],
    row: &'a [Value<'a>],
) -> EvalResult<Value<'a>> {
    let mut values: [Value<'a>; 2] = [Value::Null, Value::Null];
    for (slot, a) in values.iter_mut().zip(args) {
        *slot = a.eval(row)?;
    }
    math(f, t, &values[..args.len()])
}

#[inline(never)]
fn cross<'a>(f: &RowFunction, args: &'a [Node], row: &'a [Value<'a>]) -> EvalResult<Value<'a>> {
    let n = args.len() - 1;
    if n <= 4 {
        let mut keys = [Key::Int(0); 4];
        let mut simple = true;
        for (slot, a) in keys.iter_mut().zip(&args[..n]) {
            match a.fast_key(row) {
                Some(Some(k)) => *slot = k,
                Some(None) => return Ok(Value::Null),
                None => {
                    simple = false;
                    break;
                }
            }
        }
        if simple {
            return Ok(Value::Int(f.cross(keys[..n].iter().copied())));
        }
    }
    // Crosses take few features; avoid a heap vector for up to 4.
    let mut small: [Value<'a>; 4] = [Value::Null, Value::Null, Value::Null, Value::Null];
    let mut big = Vec::new();
    let values: &mut [Value<'a>] = if n <= 4 {
        &mut small[..n]
    } else {
        big.resize(n, Value::Null);
        &mut big
    };
    // Every argument is evaluated (an error anywhere is an error, as in
    // batch), then any NULL makes the cross NULL.
    for (slot, a) in values.iter_mut().zip(&args[..n]) {
        *slot = a.eval(row)?;
    }
    if values.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    Ok(Value::Int(f.cross(values.iter().filter_map(key))))
}

#[inline(never)]
fn builtin<'a>(b: &Builtin, args: &'a [Node], row: &'a [Value<'a>]) -> EvalResult<Value<'a>> {
    let values = args
        .iter()
        .map(|a| a.eval(row))
        .collect::<EvalResult<Vec<_>>>()?;
    b.call(&values)
}

/// A compact rendering of a compiled expression (`skewless eval --explain`).
impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |f: &mut std::fmt::Formatter<'_>, name: &str, args: &[Node]| {
            write!(f, "{name}(")?;
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    write!(f, ", ")?;
                }
                write!(f, "{a}")?;
            }
            write!(f, ")")
        };
        match &self.kind {
            Kind::Input(i) => write!(f, "${i}"),
            Kind::Literal(v) => write!(f, "{v:?}"),
            Kind::Arith(op, a, b) => write!(f, "({a} {op:?} {b})"),
            Kind::Cmp(op, a, b) => write!(f, "({a} {op:?} {b})"),
            Kind::And(a, b) => write!(f, "({a} AND {b})"),
            Kind::Or(a, b) => write!(f, "({a} OR {b})"),
            Kind::Concat(a, b) => write!(f, "({a} || {b})"),
            Kind::Not(a) => write!(f, "NOT {a}"),
            Kind::Negative(a) => write!(f, "-{a}"),
            Kind::IsNull(a, negated) => {
                write!(f, "({a} IS {}NULL)", if *negated { "NOT " } else { "" })
            }
            Kind::Truth(t, a) => write!(f, "({a} IS {t:?})"),
            Kind::Case {
                operand,
                whens,
                otherwise,
            } => {
                write!(f, "CASE")?;
                if let Some(o) = operand {
                    write!(f, " {o}")?;
                }
                for (w, t) in whens {
                    write!(f, " WHEN {w} THEN {t}")?;
                }
                if let Some(e) = otherwise {
                    write!(f, " ELSE {e}")?;
                }
                write!(f, " END")
            }
            Kind::Coalesce(args) => list(f, "coalesce", args),
            Kind::NullIf(a, b) => write!(f, "nullif({a}, {b})"),
            Kind::InList {
                expr,
                list: items,
                negated,
            } => {
                write!(f, "({expr} {}IN ", if *negated { "NOT " } else { "" })?;
                list(f, "", items)?;
                write!(f, ")")
            }
            Kind::Like { expr, pattern, .. } => write!(f, "({expr} LIKE {pattern})"),
            Kind::Cast { expr, safe } => {
                write!(
                    f,
                    "{}({expr} AS {})",
                    if *safe { "TRY_CAST" } else { "CAST" },
                    self.ty
                )
            }
            Kind::Math(m, args) => list(f, &format!("{m:?}").to_lowercase(), args),
            Kind::Ours(func, args, _) => list(f, func.name(), args),
            Kind::Builtin(b, args) => list(f, b.udf.name(), args),
            Kind::TrainingOnly(name) => write!(f, "{name}(…)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        assert!(like("Bachelors", "Bach%", None, false));
        assert!(like("Bachelors", "%lor_", None, false));
        assert!(!like("Bachelors", "%lor", None, false));
        assert!(like("a%b", "a\\%b", None, false));
        assert!(!like("axb", "a\\%b", None, false));
        assert!(like("", "%", None, false));
        assert!(!like("", "_", None, false));
        assert!(like("Ünïcödé", "_nïc%", None, false));
        assert!(like("HELLO", "h%o", None, true));
        assert!(like("aaa", "%a%a%a%", None, false));
        assert!(!like("aa", "%a%a%a%", None, false));
    }

    #[test]
    fn integer_arithmetic_wraps_at_the_width() {
        let v = arith(
            Arith::Add,
            &DataType::Int32,
            Value::Int(i64::from(i32::MAX)),
            Value::Int(1),
        );
        assert!(v.unwrap().same(&Value::Int(i64::from(i32::MIN))));
        assert_eq!(
            arith(Arith::Div, &DataType::Int64, Value::Int(1), Value::Int(0)).unwrap_err(),
            DIVIDE_BY_ZERO
        );
        let f = arith(
            Arith::Div,
            &DataType::Float64,
            Value::Float(1.0),
            Value::Float(0.0),
        );
        assert!(f.unwrap().same(&Value::Float(f64::INFINITY)));
    }

    #[test]
    fn edge_cases_follow_datafusion() {
        // Arrow's remainder wraps: MIN % -1 is 0; MIN / -1 overflows.
        let min = Value::Int(i64::MIN);
        assert!(
            arith(Arith::Rem, &DataType::Int64, min.clone(), Value::Int(-1))
                .unwrap()
                .same(&Value::Int(0))
        );
        assert!(arith(Arith::Div, &DataType::Int64, min, Value::Int(-1)).is_err());
        // DataFusion's power refuses 0 to a negative power; sqrt of a negative.
        let t = DataType::Float64;
        assert_eq!(
            math(Math::Power, &t, &[Value::Float(0.0), Value::Float(-1.0)]).unwrap_err(),
            "zero raised to a negative power is undefined"
        );
        assert!(math(Math::Sqrt, &t, &[Value::Float(-1.0)]).is_err());
        assert!(
            math(Math::Sqrt, &t, &[Value::Float(-0.0)])
                .unwrap()
                .same(&Value::Float(-0.0))
        );
        // ILIKE folds case as Arrow's kernel does (final sigma, long s).
        assert!(ilike("ς", "Σ").unwrap());
        assert!(ilike("ſ", "s").unwrap());
        assert!(ilike("Zürich", "zÜ%").unwrap());
        assert!(!ilike("abc", "b%").unwrap());
    }

    #[test]
    fn casts_between_numbers() {
        let c = |v, from: DataType, to: DataType, safe| cast(v, &from, &to, safe);
        assert!(
            c(
                Value::Float(-2.7),
                DataType::Float64,
                DataType::Int64,
                false
            )
            .unwrap()
            .same(&Value::Int(-2))
        );
        assert!(
            c(
                Value::Float(1e300),
                DataType::Float64,
                DataType::Int64,
                true
            )
            .unwrap()
            .is_null()
        );
        assert!(
            c(
                Value::Float(f64::NAN),
                DataType::Float64,
                DataType::Int32,
                false
            )
            .is_err()
        );
        assert!(
            c(Value::Int(300), DataType::Int64, DataType::Int8, true)
                .unwrap()
                .is_null()
        );
        assert!(
            c(
                Value::Int(16_777_217),
                DataType::Int64,
                DataType::Float32,
                false
            )
            .unwrap()
            .same(&Value::Float(16_777_216.0))
        );
    }
}
