//! Data locations: a file, a directory or a glob, on local disk or in object
//! storage, registered as a table.
//!
//! The file format comes from the extension (`.parquet`, `.csv`, `.json`,
//! `.ndjson`, `.jsonl`), or for a directory or prefix from the first data
//! file found under it. Hive-style directories (`key=value/`) become columns.
//! When a location cannot be read, [`diagnose`] finds the file at fault.

use std::str::FromStr;
use std::sync::Arc;

use datafusion::catalog::Session;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;

use crate::error::{Error, Result};

/// A data file format skewless reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Parquet,
    /// CSV with a header row.
    Csv,
    /// Newline-delimited JSON.
    Json,
}

impl FileKind {
    /// The kind named by a path's extension, if any (`x.parquet`, `dir/*.csv`).
    pub fn from_path(path: &str) -> Option<Self> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let (_, ext) = name.rsplit_once('.')?;
        match ext.to_ascii_lowercase().as_str() {
            "parquet" | "parq" | "pq" => Some(Self::Parquet),
            "csv" => Some(Self::Csv),
            "json" | "ndjson" | "jsonl" => Some(Self::Json),
            _ => None,
        }
    }

    /// The kind named in `STORED AS`.
    pub fn from_stored_as(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "PARQUET" => Some(Self::Parquet),
            "CSV" => Some(Self::Csv),
            "JSON" | "NDJSON" => Some(Self::Json),
            _ => None,
        }
    }

    /// The DataFusion file format, honouring the session's table options.
    pub fn format(self, state: &dyn Session) -> Arc<dyn FileFormat> {
        let options = state.table_options();
        match self {
            Self::Parquet => {
                Arc::new(ParquetFormat::default().with_options(options.parquet.clone()))
            }
            Self::Csv => Arc::new(
                CsvFormat::default()
                    .with_options(options.csv.clone())
                    .with_has_header(true),
            ),
            Self::Json => Arc::new(crate::json::format::JsonFormat::new(
                JsonFormat::default().with_options(options.json.clone()),
                "json",
            )),
        }
    }

    /// The `STORED AS` name of this kind.
    pub fn stored_as(self) -> &'static str {
        match self {
            Self::Parquet => "PARQUET",
            Self::Csv => "CSV",
            Self::Json => "JSON",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Parquet => "Parquet",
            Self::Csv => "CSV",
            Self::Json => "NDJSON",
        }
    }
}

/// `NAME=LOCATION`, as given to `--table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableArg {
    pub name: String,
    pub location: String,
}

impl FromStr for TableArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((name, location)) = s.split_once('=') else {
            return Err(format!("expected NAME=LOCATION, got '{s}'"));
        };
        let name = name.trim();
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "table name '{name}' must be letters, digits and '_', starting with a letter"
            ));
        }
        if location.is_empty() {
            return Err(format!("table '{name}' has an empty location"));
        }
        Ok(Self {
            name: name.to_string(),
            location: location.to_string(),
        })
    }
}

/// True for a location on local disk (a plain path or `file://`).
fn is_local(location: &str) -> bool {
    match location.split_once("://") {
        Some((scheme, _)) => scheme.eq_ignore_ascii_case("file"),
        None => true,
    }
}

fn has_glob(location: &str) -> bool {
    location.contains(['*', '?', '['])
}

/// Registers the data at `location` as table `name`.
pub async fn register_table(ctx: &SessionContext, name: &str, location: &str) -> Result<()> {
    let table_error = |message: String| Error::Table {
        name: name.to_string(),
        location: location.to_string(),
        message,
    };
    if is_local(location) && !has_glob(location) {
        let path = location.strip_prefix("file://").unwrap_or(location);
        if !std::path::Path::new(path).exists() {
            return Err(table_error("no such file or directory".into()));
        }
    }
    let state = ctx.state();
    let url = ListingTableUrl::parse(location).map_err(|e| table_error(e.to_string()))?;
    let (kind, extension) = detect_kind(&state, &url, location)
        .await
        .map_err(table_error)?;
    let format = kind.format(&state);
    let options = ListingOptions::new(Arc::clone(&format)).with_file_extension(extension.clone());
    let config = ListingTableConfig::new(url.clone()).with_listing_options(options);
    let inferred = async {
        config
            .infer_partitions_from_path(&state)
            .await?
            .infer_schema(&state)
            .await
    }
    .await;
    let config = match inferred {
        Ok(config) => config,
        Err(e) => {
            let message = match diagnose(&state, &url, &format, &extension).await {
                Some(culprit) => culprit,
                None => format!("cannot read {} data: {e}", kind.name()),
            };
            return Err(table_error(message));
        }
    };
    let table = ListingTable::try_new(config)?;
    ctx.register_table(name, Arc::new(table))?;
    tracing::info!(
        table = name,
        location,
        format = kind.name(),
        "registered table"
    );
    Ok(())
}

/// Registers `location` as table `name` with a schema given instead of
/// inferred (an artifact's declared inputs), for a session on a cluster:
/// the client reads and lists nothing, so it needs no access to the data
/// (the scheduler lists the files, the executors read them). The format
/// comes from the location's name (`dir/*.csv`, `file.ndjson`), Parquet
/// otherwise.
pub fn register_declared(
    ctx: &SessionContext,
    name: &str,
    location: &str,
    schema: datafusion::arrow::datatypes::SchemaRef,
) -> Result<()> {
    let state = ctx.state();
    let url = ListingTableUrl::parse(location).map_err(|e| Error::Table {
        name: name.to_string(),
        location: location.to_string(),
        message: e.to_string(),
    })?;
    let (kind, extension) =
        kind_by_name(location).unwrap_or((FileKind::Parquet, ".parquet".to_string()));
    let format = kind.format(&state);
    let options = ListingOptions::new(format).with_file_extension(extension);
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
    Ok(())
}

/// Refuses a directory that mixes data formats (or extensions): a table
/// over it would read only part of it. Empty or single-format locations
/// pass.
pub async fn check_one_format(state: &dyn Session, location: &str) -> Result<(), String> {
    if FileKind::from_path(location.trim_end_matches('/')).is_some() {
        return Ok(());
    }
    match kind_of(state, location).await {
        Err(e) if e.starts_with("the directory mixes") => Err(e),
        _ => Ok(()),
    }
}

/// The format of the data at `location` (for `CREATE EXTERNAL TABLE`
/// without `STORED AS`).
pub async fn kind_of(state: &dyn Session, location: &str) -> Result<FileKind, String> {
    let url = ListingTableUrl::parse(location).map_err(|e| e.to_string())?;
    detect_kind(state, &url, location)
        .await
        .map(|(kind, _)| kind)
}

/// The format and file extension a location's name says (`file.csv`,
/// `dir/*.parquet`), if it says one.
fn kind_by_name(location: &str) -> Option<(FileKind, String)> {
    let kind = FileKind::from_path(location.trim_end_matches('/'))?;
    let ext = location
        .rsplit_once('.')
        .map(|(_, e)| format!(".{e}"))
        .unwrap_or_default();
    Some((kind, ext))
}

/// The format of a location and the file extension its data files carry.
async fn detect_kind(
    state: &dyn Session,
    url: &ListingTableUrl,
    location: &str,
) -> Result<(FileKind, String), String> {
    if let Some(known) = kind_by_name(location) {
        return Ok(known);
    }
    let store = state
        .runtime_env()
        .object_store(url)
        .map_err(|e| e.to_string())?;
    let mut files = url
        .list_all_files(state, store.as_ref(), "")
        .await
        .map_err(|e| e.to_string())?;
    // Every data file's extension: a directory must hold one format (and
    // one extension), or a table would silently read only part of it.
    let mut found: Vec<(String, FileKind, usize, String)> = Vec::new();
    while let Some(meta) = files.try_next().await.map_err(|e| e.to_string())? {
        let path = meta.location.as_ref();
        if let Some(kind) = FileKind::from_path(path) {
            let ext = path
                .rsplit_once('.')
                .map(|(_, e)| format!(".{e}"))
                .unwrap_or_default();
            match found.iter_mut().find(|f| f.0 == ext) {
                Some(f) => f.2 += 1,
                None => found.push((ext, kind, 1, display_path(url, &meta.location))),
            }
        }
    }
    match found.as_slice() {
        [] => Err("no Parquet, CSV or NDJSON files found there (looked for .parquet, .csv, .json, .ndjson, .jsonl)".into()),
        [(ext, kind, _, _)] => Ok((*kind, ext.clone())),
        several => {
            let listed: Vec<String> = several
                .iter()
                .map(|(ext, kind, n, example)| {
                    let noun = if *n == 1 { "file" } else { "files" };
                    format!("{n} {} {noun} ({ext}, e.g. '{example}')", kind.name())
                })
                .collect();
            Err(format!(
                "the directory mixes data files: {}; point the location at one kind, e.g. \
                 '{}/*{}'",
                listed.join(", "),
                location.trim_end_matches('/'),
                several[0].0
            ))
        }
    }
}

/// Looks for the file that makes a location unreadable: reads each file's
/// schema on its own and reports the first that fails, naming it.
pub async fn diagnose(
    state: &dyn Session,
    url: &ListingTableUrl,
    format: &Arc<dyn FileFormat>,
    extension: &str,
) -> Option<String> {
    let store = state.runtime_env().object_store(url).ok()?;
    let files: Vec<_> = url
        .list_all_files(state, store.as_ref(), extension)
        .await
        .ok()?
        .try_collect()
        .await
        .ok()?;
    for meta in files {
        if let Err(e) = format
            .infer_schema(state, &store, std::slice::from_ref(&meta))
            .await
        {
            if let Some(line) = json_line(&store, &meta, extension, None).await {
                return Some(format!(
                    "file '{}' is not readable as NDJSON: {line}",
                    display_path(url, &meta.location)
                ));
            }
            return Some(format!(
                "file '{}' is not readable as {}: {}",
                display_path(url, &meta.location),
                format.get_ext().trim_start_matches('.'),
                root_message(&e)
            ));
        }
    }
    None
}

/// A file's path as the user would write it: a local path, or a full URL.
fn display_path(url: &ListingTableUrl, path: &object_store::path::Path) -> String {
    match url.scheme() {
        "file" => format!("/{path}"),
        scheme => {
            let bucket = url.get_url().host_str().unwrap_or_default();
            format!("{scheme}://{bucket}/{path}")
        }
    }
}

/// The innermost message of a DataFusion error.
fn root_message(e: &DataFusionError) -> String {
    e.find_root().to_string()
}

/// Whether an execution error is about the data read (a file that does not
/// decode), as opposed to the SQL (a cast that fails, a division by zero).
fn is_data_error(e: &DataFusionError) -> bool {
    use arrow::error::ArrowError;
    match e {
        DataFusionError::ArrowError(a, _) => matches!(
            a.as_ref(),
            ArrowError::ParseError(_)
                | ArrowError::ParquetError(_)
                | ArrowError::JsonError(_)
                | ArrowError::CsvError(_)
                | ArrowError::IoError(_, _)
                | ArrowError::ExternalError(_)
                | ArrowError::InvalidArgumentError(_)
        ),
        DataFusionError::ParquetError(_)
        | DataFusionError::ObjectStore(_)
        | DataFusionError::IoError(_) => true,
        DataFusionError::External(inner) => !inner.to_string().contains(crate::cancel::CANCELLED),
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            is_data_error(inner)
        }
        DataFusionError::Shared(inner) => is_data_error(inner),
        _ => false,
    }
}

/// `error` of a statement over `plan`, naming the input file at fault
/// when it is about one ([`culprit`]).
pub async fn name_culprit(
    ctx: &SessionContext,
    plan: &datafusion::logical_expr::LogicalPlan,
    error: Error,
) -> Error {
    match culprit(ctx, plan, &error).await {
        Some(found) => Error::Data(found),
        None => error,
    }
}

/// After a statement over `plan` failed with a data error: the file at
/// fault, found by reading each input file on its own, with the error as
/// reading it alone gives it (line numbers then count from the file's
/// start: the line of a CSV file, 1 for its header; the line of an NDJSON
/// file). `None` when no single file fails.
pub async fn culprit(
    ctx: &SessionContext,
    plan: &datafusion::logical_expr::LogicalPlan,
    error: &Error,
) -> Option<String> {
    let Error::DataFusion(e) = error else {
        return None;
    };
    if !is_data_error(e) {
        return None;
    }
    let mut tables = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        use datafusion::common::tree_node::TreeNodeRecursion;
        if let datafusion::logical_expr::LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = datafusion::datasource::source_as_provider(&scan.source)
        {
            listing_tables(provider, &mut tables);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    for table in tables {
        if let Some(found) = bad_file(ctx, &table).await {
            return Some(found);
        }
    }
    None
}

/// The listing tables behind a provider (through views).
fn listing_tables(
    provider: Arc<dyn datafusion::catalog::TableProvider>,
    out: &mut Vec<Arc<ListingTable>>,
) {
    let any: &dyn std::any::Any = provider.as_ref();
    if any.is::<ListingTable>() {
        let listing: Arc<dyn std::any::Any + Send + Sync> = provider;
        if let Ok(listing) = listing.downcast::<ListingTable>() {
            out.push(listing);
        }
    } else if let Some(plan) = provider.get_logical_plan() {
        let _ = plan.apply_with_subqueries(|node| {
            use datafusion::common::tree_node::TreeNodeRecursion;
            if let datafusion::logical_expr::LogicalPlan::TableScan(scan) = node
                && let Ok(p) = datafusion::datasource::source_as_provider(&scan.source)
            {
                listing_tables(p, out);
            }
            Ok(TreeNodeRecursion::Continue)
        });
    }
}

/// Reads each file of `table` alone, in path order; the first that fails.
async fn bad_file(ctx: &SessionContext, table: &ListingTable) -> Option<String> {
    let state = ctx.state();
    let options = table.options().clone();
    let partition_cols: Vec<&str> = options
        .table_partition_cols
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    let file_schema = Arc::new(arrow::datatypes::Schema::new(
        datafusion::catalog::TableProvider::schema(table)
            .fields()
            .iter()
            .filter(|f| !partition_cols.contains(&f.name().as_str()))
            .cloned()
            .collect::<Vec<_>>(),
    ));
    let mut single = ctx.state();
    single
        .config_mut()
        .options_mut()
        .execution
        .target_partitions = 1;
    single
        .config_mut()
        .options_mut()
        .optimizer
        .repartition_file_scans = false;
    let single = SessionContext::new_with_state(single);
    for url in table.table_paths() {
        let store = state.runtime_env().object_store(url).ok()?;
        let mut files: Vec<_> = url
            .list_all_files(&state, store.as_ref(), &options.file_extension)
            .await
            .ok()?
            .try_collect()
            .await
            .ok()?;
        files.sort_by(|a, b| a.location.cmp(&b.location));
        for meta in files {
            let path = display_path(url, &meta.location);
            let file_url = match url.scheme() {
                "file" => format!("file:///{}", meta.location),
                _ => path.clone(),
            };
            let Ok(file_url) = ListingTableUrl::parse(&file_url) else {
                continue;
            };
            let config = ListingTableConfig::new(file_url)
                .with_listing_options(options.clone().with_table_partition_cols(vec![]))
                .with_schema(Arc::clone(&file_schema));
            let Ok(provider) = ListingTable::try_new(config) else {
                continue;
            };
            let Ok(df) = single.read_table(Arc::new(provider)) else {
                continue;
            };
            let failure = async {
                let mut stream = df.execute_stream().await?;
                while let Some(batch) = futures::StreamExt::next(&mut stream).await {
                    batch?;
                }
                Ok::<(), DataFusionError>(())
            }
            .await;
            if let Err(e) = failure {
                let csv = options.format.downcast_ref::<CsvFormat>().is_some();
                let message = describe_in_file(&e, csv);
                let message =
                    match json_line(&store, &meta, &options.file_extension, Some(&file_schema))
                        .await
                    {
                        Some(line) => line,
                        None => message,
                    };
                return Some(format!("file '{path}': {message}"));
            }
        }
    }
    None
}

/// An error of reading one file, with a CSV line number made the file's:
/// arrow counts records from 0 (the header, when there is one, is record
/// 0), a file's lines count from 1, with or without a header.
fn describe_in_file(e: &DataFusionError, csv: bool) -> String {
    let message = e.find_root().to_string();
    let message = message
        .strip_prefix("Arrow error: ")
        .unwrap_or(&message)
        .to_string();
    if !csv {
        return message;
    }
    match message.split_once(" at line ") {
        Some((head, rest)) => {
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            match digits.parse::<u64>() {
                Ok(n) => format!("{head} at line {}{}", n + 1, &rest[digits.len()..]),
                Err(_) => message,
            }
        }
        None => message,
    }
}

/// For an NDJSON file: the first line that is not a JSON object, or that
/// does not decode into the table's schema, with its number.
async fn json_line(
    store: &Arc<dyn object_store::ObjectStore>,
    meta: &object_store::ObjectMeta,
    extension: &str,
    schema: Option<&arrow::datatypes::SchemaRef>,
) -> Option<String> {
    use object_store::ObjectStoreExt;
    let ext = extension.trim_start_matches('.');
    if !crate::json::format::EXTENSIONS.contains(&ext) {
        return None;
    }
    let bytes = store.get(&meta.location).await.ok()?.bytes().await.ok()?;
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let number = i + 1;
        if let Err(e) = serde_json::from_slice::<serde_json::Value>(line) {
            let e = e.to_string().replace(" at line 1 column ", " at column ");
            return Some(format!("line {number} is not valid JSON: {e}"));
        }
        let Some(schema) = schema else {
            continue;
        };
        let decoded = arrow::json::ReaderBuilder::new(Arc::clone(schema))
            .build(std::io::Cursor::new(line))
            .and_then(|reader| reader.collect::<std::result::Result<Vec<_>, _>>());
        if let Err(e) = decoded {
            return Some(format!("line {number}: {e}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_extensions() {
        assert_eq!(FileKind::from_path("a/b.parquet"), Some(FileKind::Parquet));
        assert_eq!(FileKind::from_path("s3://b/x/*.CSV"), Some(FileKind::Csv));
        assert_eq!(FileKind::from_path("x.ndjson"), Some(FileKind::Json));
        assert_eq!(FileKind::from_path("x.jsonl"), Some(FileKind::Json));
        assert_eq!(FileKind::from_path("data/dir"), None);
        assert_eq!(FileKind::from_path("data.v2/dir"), None);
    }

    #[test]
    fn table_args() {
        let t: TableArg = "census=examples/data/adult/adult.parquet".parse().unwrap();
        assert_eq!(t.name, "census");
        assert_eq!(t.location, "examples/data/adult/adult.parquet");
        let t: TableArg = "q=s3://b/k=v/x.parquet".parse().unwrap();
        assert_eq!(t.location, "s3://b/k=v/x.parquet");
        assert!("no_equals".parse::<TableArg>().is_err());
        assert!("9x=a.csv".parse::<TableArg>().is_err());
        assert!("x=".parse::<TableArg>().is_err());
    }
}
