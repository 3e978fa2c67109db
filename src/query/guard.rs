//! What a query server's clients may touch: the locations the operator
//! allows (`--allow-location`), checked on the statement's text before
//! anything reads or lists a path, and the shared tables, which no client
//! writes.

use std::path::{Path, PathBuf};

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::{LogicalPlan, Statement as PlanStatement};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement;
use url::Url;

/// A refusal: the statement touches what the server does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// The locations clients may read (`CREATE EXTERNAL TABLE`) and write
/// (`COPY … TO`, `INSERT INTO` their own tables): none unless the operator
/// allows some.
#[derive(Debug, Clone, Default)]
pub struct Allowed {
    prefixes: Vec<Prefix>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Prefix {
    /// A local directory or file, absolute, with symbolic links resolved.
    Local(PathBuf),
    /// An object store URL: scheme, bucket and the path's segments.
    Remote {
        scheme: String,
        bucket: String,
        segments: Vec<String>,
    },
}

impl Allowed {
    /// The operator's `--allow-location` prefixes. A local prefix must exist.
    pub fn new(prefixes: &[String]) -> Result<Self, String> {
        let prefixes = prefixes
            .iter()
            .map(|p| {
                let parsed = Prefix::parse(p)?;
                if let Prefix::Local(path) = &parsed
                    && !path.exists()
                {
                    return Err(format!("--allow-location {p}: no such file or directory"));
                }
                Ok(parsed)
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { prefixes })
    }

    /// The prefixes as given, for messages.
    pub fn describe(&self) -> String {
        if self.prefixes.is_empty() {
            return "none (the server has no --allow-location)".into();
        }
        self.prefixes
            .iter()
            .map(|p| match p {
                Prefix::Local(path) => path.display().to_string(),
                Prefix::Remote {
                    scheme,
                    bucket,
                    segments,
                } => format!("{scheme}://{bucket}/{}", segments.join("/")),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Ok when `location` lies under an allowed prefix.
    pub fn check(&self, what: &str, location: &str) -> Result<(), Refused> {
        let refuse = |why: &str| {
            Refused(format!(
                "{what} '{location}' is refused: {why}; this server allows {}",
                self.describe()
            ))
        };
        let target = Prefix::parse(location).map_err(|e| refuse(&e))?;
        if self.prefixes.iter().any(|p| p.contains(&target)) {
            Ok(())
        } else {
            Err(refuse("it is outside the locations clients may use"))
        }
    }

    /// Checks a parsed statement's locations and options before it is
    /// planned (planning `CREATE EXTERNAL TABLE` lists its location).
    pub fn check_statement(&self, statement: &Statement) -> Result<(), Refused> {
        match statement {
            Statement::CreateExternalTable(create) => {
                check_options(create.options.iter().map(|(k, _)| k.as_str()))?;
                for location in &create.locations {
                    self.check("CREATE EXTERNAL TABLE location", location)?;
                }
                Ok(())
            }
            Statement::CopyTo(copy) => {
                check_options(copy.options.iter().map(|(k, _)| k.as_str()))?;
                self.check("COPY target", &copy.target)
            }
            _ => Ok(()),
        }
    }
}

/// Object store settings in a statement's OPTIONS would let a client send
/// the server's requests elsewhere (another endpoint, other credentials):
/// the server's own stores are used.
fn check_options<'a>(keys: impl IntoIterator<Item = &'a str>) -> Result<(), Refused> {
    for key in keys {
        let lower = key.to_ascii_lowercase();
        if ["aws.", "gcp.", "google.", "azure.", "http."]
            .iter()
            .any(|p| lower.starts_with(p))
        {
            return Err(Refused(format!(
                "option '{key}' is refused: the query server reads and writes object \
                 stores with its own settings"
            )));
        }
    }
    Ok(())
}

impl Prefix {
    /// A location read as DataFusion reads it (`ListingTableUrl::parse`):
    /// an absolute path, else a URL, else a path relative to the server's
    /// working directory.
    fn parse(location: &str) -> Result<Self, String> {
        let local = |path: &str| {
            // `..` and symbolic links resolved, as for the outputs'
            // overlap check.
            Self::Local(crate::write::target::normalize_local(Path::new(path)))
        };
        if Path::new(location).is_absolute() {
            return Ok(local(location));
        }
        let url = match Url::parse(location) {
            Ok(url) => url,
            Err(url::ParseError::RelativeUrlWithoutBase) => return Ok(local(location)),
            Err(e) => return Err(format!("not a valid location ({e})")),
        };
        if url.scheme().eq_ignore_ascii_case("file") {
            // DataFusion and skewless's writer agree on `file:///PATH` only.
            return match location.get(..8) {
                Some(p) if p.eq_ignore_ascii_case("file:///") => Ok(local(&location[7..])),
                _ => Err("write a file location as file:///ABSOLUTE/PATH or as a path".into()),
            };
        }
        // The bucket with its user part (`abfss://container@account/`).
        let bucket = match url.username() {
            "" => url.host_str().unwrap_or_default().to_string(),
            user => format!("{user}@{}", url.host_str().unwrap_or_default()),
        };
        let mut segments = Vec::new();
        for segment in url.path().split('/').filter(|s| !s.is_empty()) {
            match segment {
                "." => {}
                ".." => {
                    if segments.pop().is_none() {
                        return Err("its path climbs above the bucket".into());
                    }
                }
                s => segments.push(s.to_string()),
            }
        }
        Ok(Self::Remote {
            scheme: url.scheme().to_ascii_lowercase(),
            bucket,
            segments,
        })
    }

    fn contains(&self, other: &Prefix) -> bool {
        match (self, other) {
            (Self::Local(a), Self::Local(b)) => b.starts_with(a),
            (
                Self::Remote {
                    scheme: s1,
                    bucket: b1,
                    segments: p1,
                },
                Self::Remote {
                    scheme: s2,
                    bucket: b2,
                    segments: p2,
                },
            ) => s1 == s2 && b1 == b2 && p2.starts_with(p1),
            _ => false,
        }
    }
}

/// Refuses what a planned statement must not do in a client's session,
/// anywhere in its plan (under `EXPLAIN ANALYZE` too): a write outside the
/// allowed locations or into a shared table, a table made in the server's
/// memory, SQL-level `PREPARE`/`EXECUTE` (Flight SQL has its own), and a
/// change of the server's runtime settings.
pub fn check_plan(
    plan: &LogicalPlan,
    allowed: &Allowed,
    shared: &[Arc<dyn TableProvider>],
) -> Result<(), Refused> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::DdlStatement;
    let mut refused = None;
    let _ = plan.apply_with_subqueries(|node| {
        let verdict = match node {
            LogicalPlan::Copy(copy) => allowed.check("COPY target", &copy.output_url),
            LogicalPlan::Dml(dml) => match source_as_provider(&dml.target) {
                Ok(provider) if shared.iter().any(|s| Arc::ptr_eq(s, &provider)) => {
                    Err(Refused(format!(
                        "table '{}' is shared by the query server and read-only",
                        dml.table_name
                    )))
                }
                _ => Ok(()),
            },
            LogicalPlan::Ddl(DdlStatement::CreateExternalTable(create)) => create
                .locations
                .iter()
                .try_for_each(|l| allowed.check("CREATE EXTERNAL TABLE location", l)),
            LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(create)) => Err(Refused(format!(
                "CREATE TABLE {} is refused: a query server keeps no tables in its memory; \
                 use CREATE VIEW, or COPY … TO an allowed location and CREATE EXTERNAL TABLE",
                create.name
            ))),
            LogicalPlan::Statement(
                PlanStatement::Prepare(_)
                | PlanStatement::Execute(_)
                | PlanStatement::Deallocate(_),
            ) => Err(Refused(
                "SQL PREPARE, EXECUTE and DEALLOCATE are refused: use the client's prepared \
                 statements (Flight SQL), with $1, $2, … or ? placeholders"
                    .into(),
            )),
            LogicalPlan::Statement(PlanStatement::SetVariable(set)) => runtime(&set.variable),
            LogicalPlan::Statement(PlanStatement::ResetVariable(reset)) => runtime(&reset.variable),
            _ => Ok(()),
        };
        match verdict {
            Ok(()) => Ok(TreeNodeRecursion::Continue),
            Err(r) => {
                refused = Some(r);
                Ok(TreeNodeRecursion::Stop)
            }
        }
    });
    refused.map_or(Ok(()), Err)
}

fn runtime(variable: &str) -> Result<(), Refused> {
    if variable
        .to_ascii_lowercase()
        .starts_with("datafusion.runtime.")
    {
        return Err(Refused(format!(
            "SET and RESET of {variable} are refused: the query server sets the runtime \
             (memory limit, spill directory) for every query"
        )));
    }
    Ok(())
}

/// Tables a client session starts with: the server's shared tables.
pub fn register_shared(
    ctx: &SessionContext,
    shared: &[(String, Arc<dyn TableProvider>)],
) -> datafusion::error::Result<()> {
    for (name, provider) in shared {
        ctx.register_table(name.as_str(), Arc::clone(provider))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_prefixes_hold_their_subpaths_only() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("allowed");
        std::fs::create_dir(&base).unwrap();
        std::fs::create_dir(dir.path().join("allowed2")).unwrap();
        let allowed = Allowed::new(&[base.display().to_string()]).unwrap();
        let at = |p: &str| allowed.check("x", &format!("{}/{p}", dir.path().display()));
        assert!(at("allowed/a.parquet").is_ok());
        assert!(at("allowed/new/dir/").is_ok());
        assert!(at("allowed/*.csv").is_ok());
        assert!(at("allowed2/a.parquet").is_err());
        assert!(at("allowed/../secret.csv").is_err());
        assert!(at("allowed/./../allowed/b.csv").is_ok());
        assert!(allowed.check("x", "/etc/passwd").is_err());
        assert!(allowed.check("x", "s3://bucket/allowed").is_err());
        let message = allowed.check("COPY target", "/etc/x.csv").unwrap_err().0;
        assert!(
            message.contains("COPY target '/etc/x.csv' is refused"),
            "{message}"
        );
    }

    #[test]
    fn a_symbolic_link_out_of_a_prefix_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("allowed");
        std::fs::create_dir(&base).unwrap();
        std::os::unix::fs::symlink("/etc", base.join("etc")).unwrap();
        let allowed = Allowed::new(&[base.display().to_string()]).unwrap();
        assert!(
            allowed
                .check("x", &format!("{}/etc/passwd", base.display()))
                .is_err()
        );
    }

    #[test]
    fn object_store_prefixes_compare_segments() {
        let allowed = Allowed::new(&["s3://bucket/data".into()]).unwrap();
        assert!(allowed.check("x", "s3://bucket/data/a.parquet").is_ok());
        assert!(allowed.check("x", "s3://bucket/data/").is_ok());
        assert!(allowed.check("x", "s3://bucket/data2/a.parquet").is_err());
        assert!(allowed.check("x", "s3://other/data/a.parquet").is_err());
        assert!(allowed.check("x", "gs://bucket/data/a.parquet").is_err());
        assert!(allowed.check("x", "s3://bucket/data/../x").is_err());
        assert!(Allowed::default().check("x", "s3://bucket/data").is_err());
    }

    #[test]
    fn object_store_options_are_refused() {
        assert!(check_options(["format.has_header"]).is_ok());
        assert!(check_options(["aws.endpoint"]).is_err());
        assert!(check_options(["AWS.SECRET_ACCESS_KEY"]).is_err());
    }
}
