//! `skewless validate`: flags → one profile pass over the new data →
//! [`crate::validate::compare`] → the table, JSON and HTML reports.

use std::path::PathBuf;

use super::TableArgs;
use crate::artifact::Artifact;
use crate::error::{Error, Result};
use crate::profile::Profile;
use crate::validate::{Limits, Metric, SchemaProblem};

pub(super) const VALIDATE_HELP: &str = "\
Checks per column (formulas in docs/validation.md):
  distance        Jensen-Shannon divergence (log2) over the profile's slots for numbers,
                  L-infinity over the categories for categories; anomaly above --threshold
  outside         share of numbers below the training minimum or above its maximum
                  (--max-out-of-range), share of categories training did not hold (--max-unseen)
  NULLs, NaNs     anomaly when the share grows by more than --max-null-increase / --max-nan-increase
  schema          a profiled column missing, or of a type the transform does not accept

Exit codes:
  0  no anomalies
  1  user error: bad arguments, unreadable data, an artifact without a profile
  2  internal error
  3  anomalies found (unless --fail-on never)";

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The artifact written by `skewless fit` (with its training profile).
    #[arg(value_name = "ARTIFACT.json")]
    pub artifact: PathBuf,

    #[command(flatten)]
    pub tables: TableArgs,

    /// Refuse the artifact unless it is signed with the key in FILE.
    #[arg(long, value_name = "FILE", env = "SKEWLESS_VERIFY_KEY")]
    pub verify_key: Option<PathBuf>,

    /// Compare with this profile (written earlier by --profile-out) instead
    /// of the training profile: drift between two batches of new data.
    #[arg(long, value_name = "PROFILE.json")]
    pub baseline: Option<PathBuf>,

    /// Write the new data's profile (the training profile's edges; counts
    /// of profiles of other data over the same edges add up).
    #[arg(long, value_name = "PROFILE.json")]
    pub profile_out: Option<PathBuf>,

    /// Write the report as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write the report as one self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Replace existing --json, --html and --profile-out files.
    #[arg(long)]
    pub overwrite: bool,

    /// The distance above which a column is anomalous: X for every column,
    /// COLUMN=X for one. Repeatable.
    #[arg(long = "threshold", value_name = "[COLUMN=]X")]
    pub thresholds: Vec<String>,

    /// The distance: jensen_shannon or l_infinity, for every column or as
    /// COLUMN=METRIC for one (by default Jensen-Shannon for numbers,
    /// L-infinity for categories). Repeatable.
    #[arg(long = "metric", value_name = "[COLUMN=]METRIC")]
    pub metrics: Vec<String>,

    /// The largest share of numbers outside the training range.
    #[arg(long, value_name = "SHARE", default_value_t = 0.01)]
    pub max_out_of_range: f64,

    /// The largest share of values training did not hold.
    #[arg(long, value_name = "SHARE", default_value_t = 0.01)]
    pub max_unseen: f64,

    /// The most the NULL share may grow over training's.
    #[arg(long, value_name = "SHARE", default_value_t = 0.05)]
    pub max_null_increase: f64,

    /// The most the NaN share may grow over training's.
    #[arg(long, value_name = "SHARE", default_value_t = 0.05)]
    pub max_nan_increase: f64,

    /// The most the share of rows the transform's WHERE drops may change,
    /// either way.
    #[arg(long, value_name = "SHARE", default_value_t = 0.05)]
    pub max_where_change: f64,

    /// When to exit with 3: on any anomaly (default) or never.
    #[arg(long, value_enum, default_value_t)]
    pub fail_on: FailOn,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    #[default]
    Anomaly,
    Never,
}

fn limits(args: &ValidateArgs) -> Result<Limits> {
    let mut limits = Limits {
        out_of_range: share("--max-out-of-range", args.max_out_of_range)?,
        unseen: share("--max-unseen", args.max_unseen)?,
        null_increase: share("--max-null-increase", args.max_null_increase)?,
        nan_increase: share("--max-nan-increase", args.max_nan_increase)?,
        where_change: share("--max-where-change", args.max_where_change)?,
        ..Limits::default()
    };
    for t in &args.thresholds {
        let (column, value) = match t.split_once('=') {
            Some((c, v)) => (Some(c), v),
            None => (None, t.as_str()),
        };
        let x: f64 = value
            .parse()
            .map_err(|_| Error::Usage(format!("--threshold {t}: '{value}' is not a number")))?;
        let x = share("--threshold", x)?;
        match column {
            Some(c) => {
                limits.distances.insert(c.to_string(), x);
            }
            None => limits.distance = x,
        }
    }
    for m in &args.metrics {
        let (column, name) = match m.split_once('=') {
            Some((c, n)) => (Some(c), n),
            None => (None, m.as_str()),
        };
        let metric = Metric::parse(name).ok_or_else(|| {
            Error::Usage(format!(
                "--metric {m}: '{name}' is not jensen_shannon or l_infinity"
            ))
        })?;
        match column {
            Some(c) => {
                limits.metrics.insert(c.to_string(), metric);
            }
            None => limits.metric = Some(metric),
        }
    }
    Ok(limits)
}

fn share(flag: &str, x: f64) -> Result<f64> {
    if (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(Error::Usage(format!(
            "{flag} {x}: give a share between 0 and 1"
        )))
    }
}

pub(super) async fn validate_command(args: ValidateArgs) -> Result<()> {
    let limits = limits(&args)?;
    let key = args
        .verify_key
        .as_deref()
        .map(crate::artifact::SigningKey::from_file)
        .transpose()?;
    let artifact = Artifact::load(&args.artifact, key.as_ref())?;
    let training = artifact.profile.clone().ok_or_else(|| {
        Error::Usage(format!(
            "{}: the artifact has no training profile (fitted before skewless wrote profiles, \
             or with --profile none): fit it again",
            args.artifact.display()
        ))
    })?;
    let (baseline, against) = match &args.baseline {
        Some(path) => (read_profile(path, &training)?, "baseline"),
        None => (training, "training"),
    };
    for column in limits.distances.keys().chain(limits.metrics.keys()) {
        if !baseline.columns.iter().any(|c| &c.name == column) {
            let names: Vec<&str> = baseline.columns.iter().map(|c| c.name.as_str()).collect();
            return Err(Error::Usage(format!(
                "--threshold/--metric {column}=…: the profile has no column '{column}' \
                 (columns: {})",
                names.join(", ")
            )));
        }
    }
    for target in [&args.json, &args.html, &args.profile_out]
        .into_iter()
        .flatten()
    {
        if !args.overwrite && target.exists() {
            return Err(Error::Usage(format!(
                "'{}' already exists; pass --overwrite to replace it",
                target.display()
            )));
        }
    }
    let table = &baseline.table;
    if !args.tables.tables.iter().any(|t| &t.name == table) {
        return Err(Error::Usage(format!(
            "the profile describes table '{table}': give its new data with --table \
             {table}=LOCATION"
        )));
    }
    let ctx = super::session_with_tables(&args.tables).await?;
    let schema = schema_problems(&ctx, &artifact, &baseline).await?;
    let skip: Vec<String> = schema.iter().map(|p| p.column.clone()).collect();
    let new = crate::profile::count_new(&ctx, table, &baseline, &skip).await?;
    // Transform-aware: out-of-vocabulary shares by each vocabulary
    // output's own key expression (training-only transforms have none).
    // (Artifact::load checked the artifact: compile it, no second check.)
    let vocabularies = match crate::serving::Evaluator::compile(&artifact) {
        Ok(evaluator) => crate::validate::vocabulary_checks(
            &evaluator.oov_shares(&baseline),
            &evaluator.oov_shares(&new),
            &limits,
        ),
        Err(_) => Vec::new(),
    };
    let report = crate::validate::compare(
        &artifact.checksum,
        &baseline,
        against,
        &new,
        &schema,
        vocabularies,
        &limits,
    );
    if let Some(path) = &args.profile_out {
        let mut out = new.clone();
        cap(&mut out);
        let mut text = serde_json::to_string_pretty(&out).expect("profiles serialize");
        text.push('\n');
        crate::write::write_file(path, text.as_bytes(), args.overwrite)?;
    }
    if let Some(path) = &args.json {
        crate::write::write_file(path, report.to_json().as_bytes(), args.overwrite)?;
    }
    if let Some(path) = &args.html {
        let page = crate::validate::html::page(&report);
        crate::write::write_file(path, page.as_bytes(), args.overwrite)?;
    }
    super::write_stdout(&crate::validate::table(&report))?;
    match (report.anomalies, args.fail_on) {
        (0, _) | (_, FailOn::Never) => Ok(()),
        (n, FailOn::Anomaly) => Err(Error::Anomalies(n)),
    }
}

/// A profile file, which must describe the training profile's columns
/// over the same edges.
fn read_profile(path: &PathBuf, training: &Profile) -> Result<Profile> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    let profile: Profile = serde_json::from_str(&text)
        .map_err(|e| Error::Data(format!("{}: not a skewless profile: {e}", path.display())))?;
    for c in &training.columns {
        let Some(theirs) = profile.columns.iter().find(|p| p.name == c.name) else {
            return Err(Error::Data(format!(
                "{}: the baseline has no column '{}' of the training profile",
                path.display(),
                c.name
            )));
        };
        let edges = |counts: &crate::profile::Counts| match counts {
            crate::profile::Counts::Numeric { edges, .. } => Some(edges.clone()),
            _ => None,
        };
        if edges(&c.counts) != edges(&theirs.counts) {
            return Err(Error::Data(format!(
                "{}: column '{}' is profiled over other edges than the artifact's (write \
                 baselines with validate --profile-out of this artifact)",
                path.display(),
                c.name
            )));
        }
    }
    Ok(profile)
}

/// Caps the categorical columns of a profile at its cap (values beyond it
/// summed), as `fit` writes them.
fn cap(profile: &mut Profile) {
    for c in &mut profile.columns {
        if let crate::profile::Counts::Categorical { values, other, .. } = &mut c.counts {
            let cap = usize::try_from(profile.cap).unwrap_or(usize::MAX);
            if values.len() > cap {
                *other += values[cap..].iter().map(|(_, n)| n).sum::<u64>();
                values.truncate(cap);
            }
        }
    }
}

/// The profiled columns the new data lacks or holds with a type the
/// transform does not accept.
async fn schema_problems(
    ctx: &datafusion::prelude::SessionContext,
    artifact: &Artifact,
    profile: &Profile,
) -> Result<Vec<SchemaProblem>> {
    let table = ctx.table(&profile.table).await?;
    let schema = table.schema().inner();
    let mut problems = Vec::new();
    for c in &profile.columns {
        let fitted = artifact
            .inputs
            .iter()
            .filter(|t| t.name == profile.table)
            .flat_map(|t| &t.columns)
            .find(|col| col.name == c.name)
            .map_or(c.data_type.as_str(), |col| col.data_type.as_str());
        match schema.field_with_name(&c.name).ok().map(|f| f.data_type()) {
            None => problems.push(SchemaProblem {
                column: c.name.clone(),
                message: format!("missing (fitted as {fitted})"),
            }),
            Some(t) if !crate::profile::comparable(fitted, t) => problems.push(SchemaProblem {
                column: c.name.clone(),
                message: format!("type {t}, fitted as {fitted}"),
            }),
            Some(_) => {}
        }
    }
    Ok(problems)
}
