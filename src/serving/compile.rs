//! From an artifact's fitted SQL to compiled expressions.
//!
//! The fitted SQL is planned once, at load, by DataFusion against empty
//! tables with the artifact's input schema: the same analyzer (type
//! coercion: the same casts) and optimizer as batch apply. The plan's SELECT
//! list is then compiled into [`Node`]s: projections are inlined into each
//! other down to the scan, whose columns become the evaluator's input slots;
//! filters are skipped (serving transforms every request). Anything that is
//! not an instance-level expression is refused here, naming it, so that a
//! transform that fits is a transform that serves.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use skewless_udfs::kernel::window::{Agg, WindowRule};
use skewless_udfs::row::RowFunction;

use super::expr::{Arith, Builtin, Cmp, Kind, Math, Node, Truth};
use super::value::{Value, from_scalar};
use crate::artifact::Artifact;
use crate::error::{Error, Result};

/// An input column of the evaluator.
#[derive(Debug, Clone, PartialEq)]
pub struct InputColumn {
    pub name: String,
    pub data_type: DataType,
    pub nullable: bool,
}

/// An output feature of the evaluator.
#[derive(Debug, Clone)]
pub(crate) struct CompiledOutput {
    pub name: String,
    pub data_type: DataType,
    pub nullable: bool,
    pub node: Node,
}

pub(crate) struct Compiled {
    /// The columns of the request table (a request is one of its rows).
    pub inputs: Vec<InputColumn>,
    pub outputs: Vec<CompiledOutput>,
    /// The window functions, in plan order: window `k` is read by outputs
    /// as row slot `inputs.len() + k`.
    pub windows: Vec<CompiledWindow>,
    /// Every table the transform reads (events may be rows of any), with
    /// its columns; `request` is the index of the request table.
    pub tables: Vec<(String, Vec<InputColumn>)>,
    pub request: usize,
}

/// A window function of the transform: its rule, and for each table whose
/// rows reach it what an event of that table gives it (entity, time, value,
/// arrival), all expressions of the event row.
#[derive(Debug, Clone)]
pub(crate) struct CompiledWindow {
    pub agg: Agg,
    pub rule: WindowRule,
    /// The call as written (without its hidden arguments).
    pub text: String,
    /// Which stream the window reads: its window step and its entity and
    /// time expressions (windows with the same key share one stream).
    pub stream_key: String,
    /// The value and arrival expressions as text (shared event values).
    pub value_key: String,
    pub known_key: Option<String>,
    /// By table index: the expressions over an event row of that table.
    pub nodes: Vec<Option<WindowNodes>>,
}

/// A window's expressions over the event rows of one table.
#[derive(Debug, Clone)]
pub(crate) struct WindowNodes {
    pub value: Node,
    pub ts: Node,
    pub known: Option<Node>,
    pub entity: Vec<Node>,
}

fn refuse(what: impl std::fmt::Display) -> Error {
    Error::Usage(format!("serving: {what}"))
}

/// Built-in functions served through DataFusion's implementation, by the
/// name DataFusion gives them (aliases such as `trim`, `length`, `substring`
/// and `pow` resolve to these).
const STRING_FUNCTIONS: &[&str] = &[
    "lower",
    "upper",
    "btrim",
    "ltrim",
    "rtrim",
    "concat",
    "concat_ws",
    "substr",
    "character_length",
    "replace",
    "split_part",
    // Introduced by DataFusion's optimizer for LIKE 'abc%' and similar.
    "starts_with",
    "ends_with",
    "contains",
    // Times (held as integers in their unit), through DataFusion's own code.
    "date_part",
    "date_trunc",
    "date_bin",
];

/// Functions that select or partition training data: outputs that use them
/// are training only, skipped at serving.
pub(crate) const TRAINING_ONLY_FUNCTIONS: &[&str] =
    &["split_of", "stratified_split_with", "sample_with"];

const MATH_FUNCTIONS: &[(&str, Math)] = &[
    ("abs", Math::Abs),
    ("ln", Math::Ln),
    ("log10", Math::Log10),
    ("sqrt", Math::Sqrt),
    ("exp", Math::Exp),
    ("floor", Math::Floor),
    ("ceil", Math::Ceil),
    ("round", Math::Round),
    ("power", Math::Power),
];

/// Where the window slots start while compiling for a table that is not
/// the request table: far above any input, so that an expression of an
/// event reading a window's result is recognised (and refused).
const NO_REQUEST_BASE: usize = 1 << 40;

/// Plans the artifact's fitted SQL and compiles its SELECT list for rows of
/// the request table: `request` names it, or it is the one table whose rows
/// reach the output (with a UNION of events and labels, the WHERE that
/// keeps the labels tells).
pub(crate) fn compile(artifact: &Artifact, request: Option<&str>) -> Result<Compiled> {
    // Planned only in a sealed session over the declared inputs: the
    // artifact's SQL reads nothing else (see `artifact::check`).
    let ctx = crate::session::sealed_context()?;
    let mut tables = Vec::with_capacity(artifact.inputs.len());
    for table in &artifact.inputs {
        let provider = crate::artifact::check::empty_table(table)?;
        let columns = provider
            .schema()
            .fields()
            .iter()
            .map(|f| InputColumn {
                name: f.name().clone(),
                data_type: f.data_type().clone(),
                nullable: f.is_nullable(),
            })
            .collect();
        tables.push((table.name.clone(), columns));
        ctx.register_table(table.name.as_str(), provider)?;
    }
    let plan = futures::executor::block_on(async {
        let plan = crate::artifact::check::plan_fitted(&ctx, artifact).await?;
        Ok::<_, Error>(ctx.state().optimize(&plan)?)
    })?;
    let config = Arc::new(ctx.state().config_options().as_ref().clone());
    let mut compiler = Compiler {
        tables: tables.clone(),
        table: 0,
        slots: HashMap::new(),
        window_base: NO_REQUEST_BASE,
        config,
        windows: Vec::new(),
        window_keys: Vec::new(),
    };
    // Every table once: its events' window expressions, and whether its
    // rows reach the output.
    let mut reaching = Vec::new();
    for t in 0..tables.len() {
        compiler.enter(t, NO_REQUEST_BASE);
        if compiler.plan(&plan)?.is_some() {
            reaching.push(t);
        }
    }
    let names = |ts: &[usize]| {
        ts.iter()
            .map(|&t| tables[t].0.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let request = match request {
        Some(name) => match tables.iter().position(|(n, _)| n == name) {
            Some(t) if reaching.contains(&t) => t,
            Some(_) => {
                return Err(refuse(format!(
                    "rows of table '{name}' do not reach the transform's output (its WHERE \
                     drops them), so they cannot be requests; requests can come from: {}",
                    names(&reaching)
                )));
            }
            None => {
                return Err(refuse(format!(
                    "the transform reads no table '{name}'; it reads {}",
                    names(&(0..tables.len()).collect::<Vec<_>>())
                )));
            }
        },
        None => match reaching.as_slice() {
            [t] => *t,
            [] => return Err(refuse("no table's rows reach the transform's output")),
            several => {
                return Err(refuse(format!(
                    "rows of several tables ({}) reach the output, so which one requests come \
                     from is not known: add a WHERE that keeps one table's rows (e.g. the \
                     labels of a point-in-time union: WHERE is_label)",
                    names(several)
                )));
            }
        },
    };
    let inputs = tables[request].1.clone();
    compiler.enter(request, inputs.len());
    let nodes = compiler
        .plan(&plan)?
        .expect("the request table reaches the output");
    let outputs = plan
        .schema()
        .fields()
        .iter()
        .zip(nodes)
        .map(|(f, node)| CompiledOutput {
            name: f.name().clone(),
            data_type: f.data_type().clone(),
            nullable: f.is_nullable(),
            node,
        })
        .collect();
    Ok(Compiled {
        inputs,
        outputs,
        windows: compiler.windows,
        tables,
        request,
    })
}

struct Compiler {
    tables: Vec<(String, Vec<InputColumn>)>,
    /// The table whose rows are being compiled, and its columns' slots.
    table: usize,
    slots: HashMap<String, usize>,
    /// The row slot of window 0.
    window_base: usize,
    config: Arc<datafusion::common::config::ConfigOptions>,
    windows: Vec<CompiledWindow>,
    /// Each window's step (its address in the plan) and index in the step.
    window_keys: Vec<(usize, usize)>,
}

impl Compiler {
    /// Compiles rows of table `t` next.
    fn enter(&mut self, t: usize, window_base: usize) {
        self.table = t;
        self.window_base = window_base;
        self.slots = self.tables[t]
            .1
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
    }

    /// The output expressions of a plan node for a row of the current
    /// table, one per field of its schema; None when no row of the table
    /// comes out of the node (another table's scan, a UNION branch of
    /// another table, a WHERE that is false for it).
    fn plan(&mut self, plan: &LogicalPlan) -> Result<Option<Vec<Node>>> {
        match plan {
            LogicalPlan::TableScan(scan) if scan.table_name.table() != self.tables[self.table].0 => {
                Ok(None)
            }
            LogicalPlan::TableScan(scan) => scan
                .projected_schema
                .fields()
                .iter()
                .map(|f| match self.slots.get(f.name()) {
                    Some(i) if input_type_ok(f.data_type()) => {
                        Ok(Node::new(Kind::Input(*i), f.data_type().clone()))
                    }
                    Some(_) => Err(refuse(format!(
                        "input column '{}' has type {}; serving reads booleans, integers, \
                         Float32/Float64, strings, timestamps and dates (cast it in the transform, e.g. \
                         CAST({} AS VARCHAR))",
                        f.name(),
                        f.data_type(),
                        f.name()
                    ))),
                    None => Err(refuse(format!(
                        "column '{}' is read but not among the artifact's inputs",
                        f.name()
                    ))),
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            LogicalPlan::Projection(p) => {
                let Some(env) = self.plan(&p.input)? else {
                    return Ok(None);
                };
                let schema = p.input.schema();
                p.expr
                    .iter()
                    .map(|e| self.expr(e, &env, schema))
                    .collect::<Result<Vec<_>>>()
                    .map(Some)
            }
            // Serving transforms every request: WHERE does not apply, and
            // ORDER BY does not change a row. A WHERE that is false for
            // every row of the table (`WHERE is_label` over a UNION branch
            // with `false AS is_label`) says its rows never reach the output.
            LogicalPlan::Filter(f) => {
                let Some(env) = self.plan(&f.input)? else {
                    return Ok(None);
                };
                let keeps = match self.expr(&f.predicate, &env, f.input.schema()) {
                    Ok(p) if {
                        let mut read = Vec::new();
                        p.inputs(&mut read);
                        read.is_empty()
                    } =>
                    {
                        !matches!(p.eval(&[]), Ok(Value::Null | Value::Bool(false)))
                    }
                    _ => true,
                };
                Ok(keeps.then_some(env))
            }
            LogicalPlan::Sort(s) if s.fetch.is_none() => self.plan(&s.input),
            LogicalPlan::SubqueryAlias(s) => self.plan(&s.input),
            // A row of the table comes through the one branch that reads it.
            LogicalPlan::Union(u) => {
                let mut found = None;
                for input in &u.inputs {
                    if let Some(env) = self.plan(input)? {
                        if found.is_some() {
                            return Err(refuse(format!(
                                "rows of table '{}' come out of two branches of a UNION, so a \
                                 request or an event of it would be two rows",
                                self.tables[self.table].0
                            )));
                        }
                        found = Some(env);
                    }
                }
                Ok(found)
            }
            // Unnesting a training-only list (the copies of an oversample)
            // repeats training rows; a request stays one row.
            LogicalPlan::Unnest(u) => {
                let Some(env) = self.plan(&u.input)? else {
                    return Ok(None);
                };
                let unnested: Vec<usize> = u.list_type_columns.iter().map(|(i, _)| *i).collect();
                for i in unnested.iter().chain(&u.struct_type_columns) {
                    if env[*i].training_only().is_none() {
                        return Err(refuse(format!(
                            "the transform's plan has an UNNEST step ({}), which turns one row \
                             into many; serving allows it only over training-only values such \
                             as oversample's copies",
                            plan.display()
                        )));
                    }
                }
                Ok(Some(
                    u.dependency_indices
                        .iter()
                        .map(|i| env[*i].clone())
                        .collect(),
                ))
            }
            // Each window function reads a slot after the inputs, which the
            // online state fills for a request (see `serving::online`).
            LogicalPlan::Window(w) => {
                let Some(mut env) = self.plan(&w.input)? else {
                    return Ok(None);
                };
                let schema = w.input.schema();
                let step = w as *const _ as usize;
                for (i, (e, field)) in w
                    .window_expr
                    .iter()
                    .zip(w.schema.fields().iter().skip(schema.fields().len()))
                    .enumerate()
                {
                    let k = self.window(e, &env, schema, (step, i))?;
                    env.push(Node::new(
                        Kind::Input(self.window_base + k),
                        field.data_type().clone(),
                    ));
                }
                Ok(Some(env))
            }
            other => Err(refuse(format!(
                "the transform's plan has a {} step ({}), which needs more than one row; \
                 a served transform is a SELECT of instance-level expressions \
                 (FROM one table, WHERE allowed)",
                plan_kind(other),
                other.display()
            ))),
        }
    }

    /// A `window_*` call of a window step; anything else is refused,
    /// naming the `window_*` function to use.
    /// Returns the window's index (its row slot after the window base),
    /// registering it on first sight and its expressions for the current
    /// table.
    fn window(
        &mut self,
        e: &Expr,
        env: &[Node],
        schema: &DFSchema,
        key: (usize, usize),
    ) -> Result<usize> {
        use datafusion::logical_expr::expr::WindowFunction;
        let call = match e.clone().unalias() {
            Expr::WindowFunction(w) => *w,
            _ => return Err(refuse(window_refusal(std::slice::from_ref(e)))),
        };
        let WindowFunction { fun, params } = &call;
        let name = fun.name().to_string();
        let Some(agg) = Agg::from_name(&name) else {
            return Err(refuse(window_refusal(std::slice::from_ref(e))));
        };
        // The hidden entity arguments that `simplify` appended.
        let mut args: &[Expr] = &params.args;
        if let [
            rest @ ..,
            Expr::Literal(datafusion::common::ScalarValue::Utf8(Some(m)), _),
            _,
        ] = args
            && m.starts_with(skewless_udfs::window::ENTITY_MARKER)
        {
            args = rest;
        }
        // As written: columns without their table, lengths as INTERVALs.
        let written = |a: &Expr| match a {
            Expr::Literal(
                datafusion::common::ScalarValue::Utf8(Some(text))
                | datafusion::common::ScalarValue::Utf8View(Some(text))
                | datafusion::common::ScalarValue::LargeUtf8(Some(text)),
                _,
            ) => format!("'{text}'"),
            Expr::Literal(v, _) => skewless_udfs::window::literal_text(v),
            Expr::Column(c) => c.name.clone(),
            Expr::Cast(c) if let Expr::Column(col) = &*c.expr => col.name.clone(),
            other => other.human_display().to_string(),
        };
        let list = |exprs: &[Expr]| exprs.iter().map(written).collect::<Vec<_>>().join(", ");
        let text = format!(
            "{name}({}) OVER (PARTITION BY {})",
            list(args),
            list(&params.partition_by)
        );
        if args.len() < 3 {
            return Err(refuse(format!("{text}: too few arguments")));
        }
        let ts_type = args[1].get_type(schema)?;
        let literals: Vec<std::result::Result<_, String>> = args[2..args.len().min(5)]
            .iter()
            .map(|a| match a {
                Expr::Literal(v, _) => Ok(v.clone()),
                other => Err(other.to_string()),
            })
            .collect();
        let rule = skewless_udfs::window::rule_of_literals(&name, &ts_type, &literals)?;
        let node = |this: &mut Self, x: &Expr| this.expr(x, env, schema);
        let value = node(self, &args[0])?;
        let ts = node(self, &args[1])?;
        let known = args.get(5).map(|k| node(self, k)).transpose()?;
        let entity = params
            .partition_by
            .iter()
            .map(|p| node(self, p))
            .collect::<Result<Vec<_>>>()?;
        // An event's expressions read its own columns, not another
        // window's result.
        let columns = self.tables[self.table].1.len();
        for n in entity.iter().chain([&value, &ts]).chain(known.iter()) {
            let mut read = Vec::new();
            n.inputs(&mut read);
            if read.iter().any(|&i| i >= columns) {
                return Err(refuse(format!(
                    "{text}: a window function over another window function's result is not \
                     served"
                )));
            }
        }
        let nodes = WindowNodes {
            value,
            ts,
            known,
            entity,
        };
        let index = match self.window_keys.iter().position(|k| *k == key) {
            Some(index) => index,
            None => {
                let exprs = |list: &[Expr]| {
                    list.iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                self.window_keys.push(key);
                self.windows.push(CompiledWindow {
                    agg,
                    rule,
                    stream_key: format!(
                        "{} | {} | {}",
                        key.0,
                        exprs(&params.partition_by),
                        args[1]
                    ),
                    value_key: args[0].to_string(),
                    known_key: args.get(5).map(|k| k.to_string()),
                    text,
                    nodes: vec![None; self.tables.len()],
                });
                self.windows.len() - 1
            }
        };
        self.windows[index].nodes[self.table] = Some(nodes);
        Ok(index)
    }

    fn expr(&mut self, e: &Expr, env: &[Node], schema: &DFSchema) -> Result<Node> {
        let ty = e.get_type(schema)?;
        let boxed = |this: &mut Self, x: &Expr| -> Result<Box<Node>> {
            Ok(Box::new(this.expr(x, env, schema)?))
        };
        let kind = match e {
            Expr::Alias(a) => return self.expr(&a.expr, env, schema),
            Expr::Column(c) => {
                let i = schema.index_of_column(c)?;
                return Ok(env[i].clone());
            }
            Expr::Literal(v, _) => Kind::Literal(from_scalar(v).ok_or_else(|| {
                refuse(format!(
                    "literal {v} of type {} is not supported",
                    v.data_type()
                ))
            })?),
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (l, r) = (boxed(self, left)?, boxed(self, right)?);
                match op {
                    Operator::Plus => Kind::Arith(Arith::Add, l, r),
                    Operator::Minus => Kind::Arith(Arith::Sub, l, r),
                    Operator::Multiply => Kind::Arith(Arith::Mul, l, r),
                    Operator::Divide => Kind::Arith(Arith::Div, l, r),
                    Operator::Modulo => Kind::Arith(Arith::Rem, l, r),
                    Operator::Eq => Kind::Cmp(Cmp::Eq, l, r),
                    Operator::NotEq => Kind::Cmp(Cmp::NotEq, l, r),
                    Operator::Lt => Kind::Cmp(Cmp::Lt, l, r),
                    Operator::LtEq => Kind::Cmp(Cmp::LtEq, l, r),
                    Operator::Gt => Kind::Cmp(Cmp::Gt, l, r),
                    Operator::GtEq => Kind::Cmp(Cmp::GtEq, l, r),
                    Operator::IsDistinctFrom => Kind::Cmp(Cmp::Distinct, l, r),
                    Operator::IsNotDistinctFrom => Kind::Cmp(Cmp::NotDistinct, l, r),
                    Operator::And => Kind::And(l, r),
                    Operator::Or => Kind::Or(l, r),
                    Operator::StringConcat => Kind::Concat(l, r),
                    Operator::LikeMatch
                    | Operator::NotLikeMatch
                    | Operator::ILikeMatch
                    | Operator::NotILikeMatch => Kind::Like {
                        expr: l,
                        pattern: r,
                        negated: matches!(op, Operator::NotLikeMatch | Operator::NotILikeMatch),
                        case_insensitive: matches!(
                            op,
                            Operator::ILikeMatch | Operator::NotILikeMatch
                        ),
                        escape: None,
                    },
                    other => {
                        return Err(refuse(format!("operator {other} in {e} is not supported")));
                    }
                }
            }
            Expr::Like(l) if l.escape_char.is_some_and(|c| c != '\\') => {
                return Err(refuse(format!(
                    "{e}: ESCAPE other than '\\' is not supported (DataFusion refuses it too)"
                )));
            }
            Expr::Like(l) => Kind::Like {
                expr: boxed(self, &l.expr)?,
                pattern: boxed(self, &l.pattern)?,
                negated: l.negated,
                case_insensitive: l.case_insensitive,
                escape: l.escape_char,
            },
            Expr::Not(x) => Kind::Not(boxed(self, x)?),
            Expr::Negative(x) => Kind::Negative(boxed(self, x)?),
            Expr::IsNull(x) => Kind::IsNull(boxed(self, x)?, false),
            Expr::IsNotNull(x) => Kind::IsNull(boxed(self, x)?, true),
            Expr::IsTrue(x) => Kind::Truth(Truth::True, boxed(self, x)?),
            Expr::IsFalse(x) => Kind::Truth(Truth::False, boxed(self, x)?),
            Expr::IsUnknown(x) => Kind::Truth(Truth::Unknown, boxed(self, x)?),
            Expr::IsNotTrue(x) => Kind::Truth(Truth::NotTrue, boxed(self, x)?),
            Expr::IsNotFalse(x) => Kind::Truth(Truth::NotFalse, boxed(self, x)?),
            Expr::IsNotUnknown(x) => Kind::Truth(Truth::NotUnknown, boxed(self, x)?),
            Expr::Between(b) => {
                // As DataFusion's physical planner does: low <= x AND x <= high.
                let x = boxed(self, &b.expr)?;
                let (low, high) = (boxed(self, &b.low)?, boxed(self, &b.high)?);
                let ge = Node::new(Kind::Cmp(Cmp::GtEq, x.clone(), low), DataType::Boolean);
                let le = Node::new(Kind::Cmp(Cmp::LtEq, x, high), DataType::Boolean);
                let both = Node::new(Kind::And(Box::new(ge), Box::new(le)), DataType::Boolean);
                if b.negated {
                    Kind::Not(Box::new(both))
                } else {
                    both.kind
                }
            }
            Expr::Case(c) => coalesce_of_case(Kind::Case {
                operand: c.expr.as_ref().map(|x| boxed(self, x)).transpose()?,
                whens: c
                    .when_then_expr
                    .iter()
                    .map(|(w, t)| Ok((self.expr(w, env, schema)?, self.expr(t, env, schema)?)))
                    .collect::<Result<_>>()?,
                otherwise: c.else_expr.as_ref().map(|x| boxed(self, x)).transpose()?,
            }),
            Expr::Cast(c) => Kind::Cast {
                expr: boxed(self, &c.expr)?,
                safe: false,
            },
            Expr::TryCast(c) => Kind::Cast {
                expr: boxed(self, &c.expr)?,
                safe: true,
            },
            Expr::InList(l) => Kind::InList {
                expr: boxed(self, &l.expr)?,
                list: l
                    .list
                    .iter()
                    .map(|x| self.expr(x, env, schema))
                    .collect::<Result<_>>()?,
                negated: l.negated,
            },
            Expr::ScalarFunction(f)
                if let Some(name) = TRAINING_ONLY_FUNCTIONS
                    .iter()
                    .find(|n| **n == f.func.name()) =>
            {
                Kind::TrainingOnly(name)
            }
            Expr::ScalarFunction(f) => {
                let name = f.func.name();
                let args = f
                    .args
                    .iter()
                    .map(|x| self.expr(x, env, schema))
                    .collect::<Result<Vec<_>>>()?;
                // A function of a training-only value (`range(copies)` of an
                // oversample) is training only too, whatever the function.
                if let Some(name) = args.iter().find_map(Node::training_only) {
                    return Ok(Node::new(Kind::TrainingOnly(name), ty));
                }
                let arg_types: Vec<DataType> = args.iter().map(|n| n.ty.clone()).collect();
                let literals: Vec<_> = f
                    .args
                    .iter()
                    .map(|a| match a {
                        Expr::Literal(v, _) => Some(v),
                        _ => None,
                    })
                    .collect();
                if let Some(ours) = RowFunction::compile(name, &arg_types, &literals)? {
                    Kind::Ours(Arc::new(ours), args, None)
                } else if name == "coalesce" || name == "nvl" {
                    Kind::Coalesce(args)
                } else if name == "nullif" && args.len() == 2 {
                    let mut args = args.into_iter();
                    let a = Box::new(args.next().expect("two arguments"));
                    Kind::NullIf(a, Box::new(args.next().expect("two arguments")))
                } else if let Some((_, m)) = MATH_FUNCTIONS.iter().find(|(n, _)| *n == name)
                    && ty.is_floating()
                    && arg_types.iter().all(|t| *t == ty)
                    && (args.len() == 1 || (*m == Math::Power && args.len() == 2))
                {
                    Kind::Math(*m, args)
                } else if STRING_FUNCTIONS.contains(&name)
                    || MATH_FUNCTIONS.iter().any(|(n, _)| *n == name)
                {
                    let arg_fields = f
                        .args
                        .iter()
                        .map(|a| a.to_field(schema).map(|(_, f)| f))
                        .collect::<datafusion::common::Result<Vec<_>>>()?;
                    let (_, return_field) = e.to_field(schema)?;
                    Kind::Builtin(
                        Arc::new(Builtin {
                            udf: Arc::clone(&f.func),
                            arg_fields,
                            return_field,
                            config: Arc::clone(&self.config),
                        }),
                        args,
                    )
                } else {
                    return Err(refuse(format!(
                        "function {name} in {e} is not supported at serving; supported: \
                         skewless's functions, coalesce, nullif, {}, {}",
                        MATH_FUNCTIONS
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", "),
                        STRING_FUNCTIONS.join(", ")
                    )));
                }
            }
            other => {
                return Err(refuse(format!(
                    "{other} is not an instance-level expression; serving supports \
                     arithmetic, comparisons, AND/OR/NOT, CASE, COALESCE, NULLIF, CAST, \
                     TRY_CAST, IS [NOT] NULL, IN lists, BETWEEN, LIKE, string and math \
                     functions and skewless's functions"
                )));
            }
        };
        check_type(&ty, e)?;
        Ok(Node::new(kind, ty))
    }
}

/// The types a compiled expression may have.
fn check_type(t: &DataType, e: &Expr) -> Result<()> {
    let ok = match t {
        DataType::Null
        | DataType::Boolean
        | DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Float32
        | DataType::Float64 => true,
        t if t.is_integer() || super::value::is_time(t) => true,
        DataType::List(f) | DataType::LargeList(f) => {
            matches!(f.data_type(), DataType::Float32 | DataType::Float64)
                || f.data_type().is_integer()
                || matches!(f.data_type(), DataType::Utf8 | DataType::Null)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(refuse(format!(
            "{e} has type {t}; serving handles booleans, integers, Float32/Float64, strings \
             and lists of them"
        )))
    }
}

/// DataFusion rewrites COALESCE(a, b) as CASE WHEN a IS NOT NULL THEN a ELSE
/// b END; for an input `a` this is COALESCE again, which evaluates (and
/// feeds the fast paths) without the CASE.
fn coalesce_of_case(kind: Kind) -> Kind {
    if let Kind::Case {
        operand: None,
        whens,
        otherwise: Some(otherwise),
    } = &kind
        && let [(when, then)] = whens.as_slice()
        && let Kind::IsNull(tested, true) = &when.kind
        && let (Kind::Input(i), Kind::Input(j)) = (&tested.kind, &then.kind)
        && i == j
        && then.ty == otherwise.ty
    {
        return Kind::Coalesce(vec![then.clone(), (**otherwise).clone()]);
    }
    kind
}

/// The column types a request may hold.
fn input_type_ok(t: &DataType) -> bool {
    t.is_integer()
        || super::value::is_time(t)
        || matches!(
            t,
            DataType::Boolean
                | DataType::Float32
                | DataType::Float64
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Null
        )
}

/// Why a window step is not served, naming the window_* function to use.
fn window_refusal(exprs: &[Expr]) -> String {
    use datafusion::logical_expr::expr::WindowFunction;
    let first = exprs.iter().find_map(|e| match e.clone().unalias() {
        Expr::WindowFunction(w) => Some(*w),
        _ => None,
    });
    let Some(WindowFunction { fun, .. }) = first else {
        return "the transform's plan has a window step, which needs more than one row".into();
    };
    let name = fun.name().to_string();
    let replacement = match name.as_str() {
        "avg" | "mean" => Some("window_mean"),
        "sum" => Some("window_sum"),
        "count" => Some("window_count"),
        "min" => Some("window_min"),
        "max" => Some("window_max"),
        "var_pop" => Some("window_var"),
        "stddev_pop" => Some("window_stddev"),
        "last_value" => Some("window_last"),
        _ => None,
    };
    match replacement {
        Some(w) => format!(
            "{name}(…) OVER (…) is not served: DataFusion computes it over its frame by \
             subtracting in floating point, which no row evaluator can reproduce bit for bit; \
             use {w}(value, ts, length) OVER (PARTITION BY entity), whose window is \
             [t − length, t): the row's own instant excluded"
        ),
        None => format!(
            "{name}(…) OVER (…) needs more than one row; a served transform is a SELECT of \
             instance-level expressions (window features: the window_* functions)"
        ),
    }
}

fn plan_kind(plan: &LogicalPlan) -> &'static str {
    match plan {
        LogicalPlan::Sort(_) => "ORDER BY … LIMIT",
        LogicalPlan::Aggregate(_) => "GROUP BY / aggregate",
        LogicalPlan::Window(_) => "window function",
        LogicalPlan::Join(_) => "JOIN",
        LogicalPlan::Union(_) => "UNION",
        LogicalPlan::Limit(_) => "LIMIT",
        LogicalPlan::Distinct(_) => "DISTINCT",
        LogicalPlan::Unnest(_) => "UNNEST",
        LogicalPlan::Values(_) => "VALUES",
        LogicalPlan::EmptyRelation(_) => "empty relation",
        _ => "non-row",
    }
}
