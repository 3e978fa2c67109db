//! `skewless fit`: a transform → its statistics in one pass → the artifact.

use std::collections::BTreeSet;
use std::time::Instant;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::LogicalPlan;

use super::{FitArgs, read_script};
use crate::artifact::{Artifact, Column, InputTable, Output, StatisticValue};
use crate::error::{Error, Result};
use crate::progress::group_digits;
use crate::script;

pub(super) async fn fit_command(args: FitArgs) -> Result<()> {
    let started = Instant::now();
    let text = read_script(&args.transform)?;
    let statements = script::split(&text);
    let [statement] = statements.as_slice() else {
        return Err(Error::Usage(format!(
            "{}: a transform holds exactly one SELECT, found {} statements",
            args.transform.display(),
            statements.len()
        )));
    };
    let inputs: Vec<(String, String)> = args
        .tables
        .tables
        .iter()
        .map(|t| (t.name.clone(), t.location.clone()))
        .collect();
    crate::write::refuse_inputs(&args.out.display().to_string(), false, &inputs)?;
    if !args.overwrite && args.out.exists() {
        return Err(Error::Usage(format!(
            "'{}' already exists; pass --overwrite to replace it",
            args.out.display()
        )));
    }
    let ctx = super::session_on(args.cluster.cluster.as_ref(), &args.tables).await?;
    let plan = ctx.state().create_logical_plan(&statement.sql).await?;
    if matches!(
        plan,
        LogicalPlan::Ddl(_)
            | LogicalPlan::Dml(_)
            | LogicalPlan::Copy(_)
            | LogicalPlan::Statement(_)
            | LogicalPlan::Explain(_)
    ) {
        return Err(Error::Usage(format!(
            "{}: a transform is one SELECT, not {}",
            args.transform.display(),
            statement.head()
        )));
    }
    let planned = plan.clone();
    let profile_plan = crate::profile::Plan {
        bins: args.profile_bins,
        cap: args.profile_cap,
        ..Default::default()
    }
    .with_settings(&args.profile)?;
    // The training profile rides along with the statistics pass when that
    // pass reads the (one) table as it is: every column the transform
    // reads of it is a candidate, the served ones are kept after compiling.
    let mut candidates = None;
    let fitting = match input_tables(&planned)?.as_slice() {
        [table]
            if profile_plan.default != crate::profile::Depth::None
                || !profile_plan.columns.is_empty() =>
        {
            let columns: Vec<(String, DataType)> = table
                .columns
                .iter()
                .map(|c| Ok((c.name.clone(), c.data_type.parse::<DataType>()?)))
                .collect::<std::result::Result<_, datafusion::arrow::error::ArrowError>>()
                .map_err(|e| Error::Internal(format!("an input type does not parse: {e}")))?;
            let (c, aggregates) =
                crate::profile::Candidates::new(&ctx, &table.name, &columns, &profile_plan)?;
            candidates = Some(c);
            let extra = crate::fit::Extra {
                table: table.name.clone(),
                aggregates,
            };
            crate::fit::fit_sharing(&ctx, plan, args.progress.enabled(), extra).await
        }
        _ => crate::fit::fit(&ctx, plan, args.progress.enabled()).await,
    };
    let fitted = match fitting {
        Ok(fitted) => fitted,
        Err(e) => return Err(crate::location::name_culprit(&ctx, &planned, e).await),
    };
    let fitted_sql = datafusion::sql::unparser::plan_to_sql(&fitted.plan)?.to_string();
    check_round_trip(&ctx, &fitted.plan, &fitted_sql, &args.transform).await?;
    let inputs = input_tables(&fitted.plan)?;
    let outputs = outputs(&fitted.plan, &args.labels)?;
    let artifact = Artifact::new(&statement.sql, fitted_sql, &fitted, inputs, outputs);
    // An artifact that fits is an artifact that loads: its own SQL check.
    crate::artifact::check::check(&artifact).map_err(|e| {
        Error::Internal(format!(
            "the fitted artifact does not pass the load check: {e}"
        ))
    })?;
    // A transform that fits is a transform that serves: compile it now. The
    // compiler also finds the outputs that use training-only functions.
    let mut artifact = artifact;
    let mut state_report = String::new();
    let mut profile_note = String::new();
    match crate::serving::Evaluator::compile(&artifact) {
        Ok(evaluator) => {
            for (name, _) in evaluator.skipped() {
                if let Some(o) = artifact.outputs.iter_mut().find(|o| &o.name == name) {
                    o.training_only = true;
                }
            }
            let columns: Vec<crate::profile::Column> = evaluator
                .served_inputs()
                .into_iter()
                .map(|(c, categorical)| crate::profile::Column {
                    name: c.name.clone(),
                    data_type: c.data_type.clone(),
                    categorical,
                })
                .collect();
            let table = evaluator.request_table();
            let filter = where_over(&fitted.plan, table)?;
            // The statistics pass's counts serve when it ran under the
            // transform's whole WHERE over the table (or under none).
            let shared = match (&fitted.extra, &candidates) {
                (Some(values), Some(c))
                    if values.filter.as_ref().map(|(p, _)| p) == filter.as_ref() =>
                {
                    c.profile(&values.batch, &columns)?.map(|mut p| {
                        p.filter = values.filter.as_ref().map(|(predicate, kept)| {
                            crate::profile::FilterProfile {
                                predicate: predicate.clone(),
                                kept: *kept,
                            }
                        });
                        p
                    })
                }
                _ => None,
            };
            let along = shared.is_some();
            artifact.profile = match shared {
                Some(profile) => Some(profile),
                None => {
                    crate::profile::profile(&ctx, table, &columns, &profile_plan, filter).await?
                }
            };
            if let Some(p) = &artifact.profile {
                profile_note = format!(
                    "training profile: {} columns of {} ({})\n",
                    p.columns.len(),
                    p.table,
                    if along {
                        "counted in the statistics pass"
                    } else {
                        "counted in a pass of its own"
                    }
                );
            }
            if evaluator.has_windows() {
                state_report = window_state(&ctx, &evaluator, &artifact).await?;
            }
        }
        Err(e) if !args.batch_only => {
            return Err(Error::Usage(format!(
                "{}: {e}\n(use --batch-only to write an artifact for batch apply only)",
                args.transform.display()
            )));
        }
        Err(_) => {}
    }
    if let Some(path) = &args.sign_key {
        artifact.sign(&crate::artifact::SigningKey::from_file(path)?);
    }
    let json = artifact.to_json();
    crate::write::write_file(&args.out, json.as_bytes(), args.overwrite)?;
    let mut text = summary(&artifact, &args, started.elapsed().as_secs_f64());
    text.push_str(&profile_note);
    text.push_str(&state_report);
    super::write_stdout(&text)
}

/// The online state that serving the transform's window functions takes,
/// measured by replaying the training data into it.
async fn window_state(
    ctx: &datafusion::prelude::SessionContext,
    evaluator: &crate::serving::Evaluator,
    artifact: &Artifact,
) -> Result<String> {
    use std::fmt::Write as _;
    let started = std::time::Instant::now();
    let tables: Vec<(String, String)> = artifact
        .inputs
        .iter()
        .map(|t| (t.name.clone(), t.name.clone()))
        .collect();
    let rows = super::eval::push_tables(ctx, evaluator, &tables).await?;
    let mut text = format!(
        "window state (serving), measured by replaying the {} training rows in {:.2} s:\n",
        group_digits(rows),
        started.elapsed().as_secs_f64()
    );
    for s in evaluator.state_report() {
        let per_entity = s.counts.peak as usize * s.bytes_per_event;
        let _ = writeln!(
            text,
            "  {} window(s) reaching {} back, {}:\n    at most {} events per entity \
             (≈ {} bytes; {} per event, plus distinct-count keys), {} entities with \
             events in reach at the end, {} per-hop tiles (windows with a hop keep \
             their older events as one partial state per hop)",
            s.windows.len(),
            s.reach,
            s.windows
                .iter()
                .map(|w| w.split(" OVER ").next().unwrap_or(w))
                .collect::<Vec<_>>()
                .join(", "),
            group_digits(s.counts.peak as usize),
            group_digits(per_entity),
            s.bytes_per_event,
            group_digits(s.entities),
            group_digits(s.tiles_held),
        );
    }
    Ok(text)
}

/// The transform's WHERE over the rows of `table`, as SQL: the predicates
/// of the filters stacked right on its scan, AND-ed (None without one, or
/// when the table is scanned more than once).
fn where_over(plan: &LogicalPlan, table: &str) -> Result<Option<String>> {
    let mut scans = 0;
    let mut predicates = Vec::new();
    plan.apply(|node| {
        match node {
            LogicalPlan::TableScan(scan) if scan.table_name.table() == table => scans += 1,
            LogicalPlan::Filter(f) => {
                let mut input = f.input.as_ref();
                while let LogicalPlan::Filter(below) = input {
                    input = below.input.as_ref();
                }
                if matches!(input, LogicalPlan::TableScan(scan) if scan.table_name.table() == table)
                {
                    predicates.push(f.predicate.clone());
                }
            }
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if scans != 1 {
        return Ok(None);
    }
    let Some(predicate) = datafusion::logical_expr::utils::conjunction(predicates) else {
        return Ok(None);
    };
    Ok(Some(
        datafusion::sql::unparser::expr_to_sql(&predicate)?.to_string(),
    ))
}

/// Plans the fitted SQL back and checks it gives the fitted plan's columns:
/// DataFusion's SQL writer does not cover every plan shape, and an artifact
/// whose SQL means something else must not be written.
async fn check_round_trip(
    ctx: &datafusion::prelude::SessionContext,
    plan: &LogicalPlan,
    fitted_sql: &str,
    transform: &std::path::Path,
) -> Result<()> {
    let fields = |p: &LogicalPlan| -> Vec<(String, DataType)> {
        p.schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect()
    };
    let problem = match ctx.state().create_logical_plan(fitted_sql).await {
        Ok(back) if fields(&back) == fields(plan) => return Ok(()),
        Ok(back) => format!(
            "it gives the columns {:?} instead of {:?}",
            fields(&back),
            fields(plan)
        ),
        Err(e) => e.to_string(),
    };
    Err(Error::Usage(format!(
        "{}: the fitted transform cannot be written back as SQL that plans the same ({problem}). \
         DataFusion's SQL writer does not cover this query's shape. Known case: UNNEST next to \
         other computed columns; compute them in a subquery and write SELECT a, b, \
         unnest(range(copies)) AS copy FROM (SELECT …) with nothing else around the UNNEST.",
        transform.display()
    )))
}

/// Every table the plan scans, with the columns the transform reads from it
/// (in the table's order) and their types.
fn input_tables(plan: &LogicalPlan) -> Result<Vec<InputTable>> {
    let mut read: BTreeSet<String> = BTreeSet::new();
    plan.apply(|node| {
        for expr in node.expressions() {
            read.extend(expr.column_refs().into_iter().map(|c| c.name.clone()));
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    let mut tables: Vec<InputTable> = Vec::new();
    plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let name = scan.table_name.to_string();
            if !tables.iter().any(|t| t.name == name) {
                tables.push(InputTable {
                    name,
                    columns: scan
                        .source
                        .schema()
                        .fields()
                        .iter()
                        .filter(|f| read.contains(f.name()))
                        .map(|f| Column {
                            name: f.name().clone(),
                            data_type: crate::artifact::type_name(f.data_type()),
                            nullable: f.is_nullable(),
                        })
                        .collect(),
                });
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(tables)
}

/// The output columns, with the input columns each reads.
fn outputs(plan: &LogicalPlan, labels: &[String]) -> Result<Vec<Output>> {
    // The SELECT list: the first projection from the top (under ORDER BY/LIMIT).
    let mut projection = None;
    plan.apply(|node| {
        if let LogicalPlan::Projection(p) = node {
            projection = Some(p.expr.clone());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    let fields = plan.schema().fields();
    for label in labels {
        if !fields.iter().any(|f| f.name() == label) {
            return Err(Error::Usage(format!(
                "--label {label}: the transform has no output column '{label}' (outputs: {})",
                fields
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let reads: BTreeSet<String> = projection
                .as_ref()
                .filter(|exprs| exprs.len() == fields.len())
                .map(|exprs| {
                    exprs[i]
                        .column_refs()
                        .into_iter()
                        .map(|c| c.name.clone())
                        .collect()
                })
                .unwrap_or_default();
            Output {
                name: f.name().clone(),
                data_type: crate::artifact::type_name(f.data_type()),
                nullable: f.is_nullable(),
                reads: reads.into_iter().collect(),
                training_only: labels.contains(f.name()),
            }
        })
        .collect())
}

/// What `fit` prints: the outputs and the statistics learned.
fn summary(artifact: &Artifact, args: &FitArgs, seconds: f64) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    let rows = artifact
        .rows_seen
        .iter()
        .map(|r| group_digits(*r as usize))
        .collect::<Vec<_>>()
        .join(" + ");
    let _ = writeln!(
        text,
        "fitted {} on {} rows in {seconds:.2} s → {}",
        args.transform.display(),
        if rows.is_empty() { "0".into() } else { rows },
        args.out.display()
    );
    text.push_str("outputs:\n");
    for o in &artifact.outputs {
        let label = if args.labels.contains(&o.name) {
            "  (label, training only)"
        } else if o.training_only {
            "  (training only)"
        } else {
            ""
        };
        let _ = writeln!(text, "  {:<28} {}{label}", o.name, o.data_type);
    }
    if !artifact.statistics.is_empty() {
        text.push_str("statistics:\n");
    }
    for s in &artifact.statistics {
        let f = |v: &Option<f64>| v.map_or("none".to_string(), |v| v.to_string());
        let what = match &s.value {
            StatisticValue::MinMax { min, max, .. } => format!("min {}, max {}", f(min), f(max)),
            StatisticValue::Moments { mean, stddev, .. } => {
                format!("mean {}, stddev {}", f(mean), f(stddev))
            }
            StatisticValue::Robust {
                median, q25, q75, ..
            } => {
                format!("median {}, q25 {}, q75 {}", f(median), f(q25), f(q75))
            }
            StatisticValue::Vocabulary { values, .. } => {
                format!("vocabulary of {} values", values.len())
            }
            StatisticValue::Quantiles { boundaries } => {
                format!("{} boundaries", boundaries.len())
            }
            StatisticValue::MostFrequent { value } => format!("most frequent {value}"),
            StatisticValue::Strata { strata, counts, .. } => {
                let listed: Vec<String> = strata
                    .iter()
                    .zip(counts)
                    .take(5)
                    .map(|(s, n)| format!("'{s}' {n}"))
                    .collect();
                let more = if strata.len() > 5 { ", …" } else { "" };
                format!("{} strata ({}{more})", strata.len(), listed.join(", "))
            }
        };
        let _ = writeln!(
            text,
            "  {} of {}: {what}",
            s.functions.join(", "),
            s.argument
        );
    }
    text
}
