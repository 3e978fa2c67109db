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

/// The format of the data at `location` (for `CREATE EXTERNAL TABLE`
/// without `STORED AS`).
pub async fn kind_of(state: &dyn Session, location: &str) -> Result<FileKind, String> {
    let url = ListingTableUrl::parse(location).map_err(|e| e.to_string())?;
    detect_kind(state, &url, location)
        .await
        .map(|(kind, _)| kind)
}

/// The format of a location and the file extension its data files carry.
async fn detect_kind(
    state: &dyn Session,
    url: &ListingTableUrl,
    location: &str,
) -> Result<(FileKind, String), String> {
    if let Some(kind) = FileKind::from_path(location.trim_end_matches('/')) {
        let ext = location
            .rsplit_once('.')
            .map(|(_, e)| format!(".{e}"))
            .unwrap_or_default();
        return Ok((kind, ext));
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
                None => found.push((ext, kind, 1, path.to_string())),
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
