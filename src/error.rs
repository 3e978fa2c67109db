//! The one error type of the skewless library.
//!
//! Each variant says which stage failed and names the input at fault (the
//! statement, the table, the file). [`Error::exit_code`] maps an error to the
//! CLI's documented exit codes: 1 for the user's input (SQL, data,
//! arguments), 2 for a bug in skewless or DataFusion.

use datafusion::error::DataFusionError;

/// Result alias for the skewless library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error of the skewless library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command-line argument or option is malformed.
    #[error("{0}")]
    Usage(String),

    /// A statement of a script failed.
    #[error("statement {index} (line {line}: {head}) failed: {source}")]
    Statement {
        index: usize,
        line: usize,
        head: String,
        #[source]
        source: Box<Error>,
    },

    /// A table could not be registered from its location.
    #[error("table '{name}' at '{location}': {message}")]
    Table {
        name: String,
        location: String,
        message: String,
    },

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// An error from DataFusion (planning, execution, data).
    #[error("{}", describe_datafusion(.0))]
    DataFusion(#[from] DataFusionError),

    /// A file within a location is unreadable; found while diagnosing a failure.
    #[error("{0}")]
    Data(String),

    /// A cluster process or the connection to a cluster failed.
    #[error("cluster: {0}")]
    Cluster(String),

    /// The command was stopped by a signal; unfinished outputs were removed.
    #[error("interrupted by {}: stopped, and outputs not completed were removed", .0.name)]
    Interrupted(crate::cancel::Signal),

    /// A query server refuses what its clients may not do (a location
    /// outside `--allow-location`, a write into a shared table, …).
    #[error("{0}")]
    Refused(String),

    /// A bug: something that should not happen did.
    #[error("internal error: {0}")]
    Internal(String),

    /// `skewless validate` found anomalies (exit code 3; the report says
    /// which).
    #[error("{0} anomalies found (anomalous columns and transform checks; see the report)")]
    Anomalies(usize),
}

impl Error {
    /// The process exit code for this error: 1 user error, 2 internal error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Statement { source, .. } => source.exit_code(),
            Error::DataFusion(e) if is_internal(e) => 2,
            Error::Internal(_) => 2,
            Error::Interrupted(signal) => 128 + signal.number,
            Error::Anomalies(_) => 3,
            _ => 1,
        }
    }

    /// True when this error, or the one it wraps, is the reader going away
    /// (e.g. `skewless run … | head`): not an error for a CLI.
    pub fn is_broken_pipe(&self) -> bool {
        match self {
            Error::Io { source, .. } => source.kind() == std::io::ErrorKind::BrokenPipe,
            Error::Statement { source, .. } => source.is_broken_pipe(),
            Error::DataFusion(DataFusionError::IoError(e)) => {
                e.kind() == std::io::ErrorKind::BrokenPipe
            }
            _ => false,
        }
    }
}

fn is_internal(e: &DataFusionError) -> bool {
    match e {
        DataFusionError::Internal(_) => true,
        DataFusionError::Context(_, inner) => is_internal(inner),
        DataFusionError::Shared(inner) => is_internal(inner),
        DataFusionError::Diagnostic(_, inner) => is_internal(inner),
        DataFusionError::Collection(errs) => errs.iter().any(is_internal),
        _ => false,
    }
}

/// DataFusion's message, made readable: no Rust debug forms, the useful
/// part of a failed function-signature match, a hint for a missing table.
fn describe_datafusion(e: &DataFusionError) -> String {
    if let Some(parser) = sql_error(e) {
        return format!("SQL syntax error: {}", parser_message(parser));
    }
    readable(e.to_string().trim_end())
}

/// The SQL parser's error inside `e`, if that is what failed.
fn sql_error(e: &DataFusionError) -> Option<&datafusion::sql::sqlparser::parser::ParserError> {
    match e {
        DataFusionError::SQL(p, _) => Some(p),
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            sql_error(inner)
        }
        DataFusionError::Shared(inner) => sql_error(inner),
        _ => None,
    }
}

fn parser_message(e: &datafusion::sql::sqlparser::parser::ParserError) -> String {
    use datafusion::sql::sqlparser::parser::ParserError;
    match e {
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => m.clone(),
        ParserError::RecursionLimitExceeded => "the statement is nested too deeply".into(),
    }
}

/// Rewrites the DataFusion messages users meet most into plain text.
pub(crate) fn readable(message: &str) -> String {
    if let Some(task) = cluster_task_error(message) {
        return task;
    }
    let mut text = unwrap_debug_strings(message);
    // A function's own coercion check said what is wrong: keep only that.
    if let Some(at) = text.rfind("coercion failed with: ") {
        let inner = &text[at + "coercion failed with: ".len()..];
        let inner = strip_prefixes(inner);
        let end = inner.find(". No function matches").unwrap_or(inner.len());
        return inner[..end].trim_end_matches('.').to_string();
    }
    // No signature matched: the call as typed and what is accepted.
    const NO_MATCH: &str = "No function matches the given name and argument types '";
    if let Some(at) = text.find(NO_MATCH) {
        let rest = &text[at + NO_MATCH.len()..];
        let call = rest.split('\'').next().unwrap_or_default().to_string();
        let candidates: Vec<&str> = rest
            .split_once("Candidate functions:")
            .map(|(_, c)| c.lines().map(str::trim).filter(|l| !l.is_empty()).collect())
            .unwrap_or_default();
        let name = call.split('(').next().unwrap_or_default();
        let mut out = format!("no form of {name} takes ({}):", call_args(&call));
        if candidates.is_empty() {
            out.push_str(" cast the arguments");
        } else {
            out.push_str(&format!(
                " it takes {}; cast the arguments",
                candidates.join(", ")
            ));
        }
        return out;
    }
    // A table that is not registered: say how to register it.
    if let Some(at) = text.find("table 'datafusion.public.") {
        let rest = &text[at + "table 'datafusion.public.".len()..];
        if let Some(name) = rest.strip_suffix("' not found") {
            let name = name.to_string();
            text = format!(
                "table '{name}' not found: register it with --table {name}=LOCATION \
                 (or CREATE EXTERNAL TABLE {name} … LOCATION '…')"
            );
        }
    }
    // A plain planning error: the message is the function's own.
    match text.strip_prefix("Error during planning: ") {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

/// The arguments of `f(T1, T2)` as `T1, T2`.
fn call_args(call: &str) -> &str {
    call.split_once('(')
        .map(|(_, a)| a.strip_suffix(')').unwrap_or(a))
        .unwrap_or_default()
}

/// Drops DataFusion's stacked "Error during planning: " style prefixes.
fn strip_prefixes(mut s: &str) -> &str {
    const PREFIXES: &[&str] = &[
        "Error during planning: ",
        "Execution error: ",
        "Internal error: ",
        "Optimizer rule 'type_coercion' failed\ncaused by\n",
    ];
    loop {
        let before = s;
        for p in PREFIXES {
            s = s.strip_prefix(p).unwrap_or(s);
        }
        if s == before {
            return s;
        }
    }
}

/// A task that failed on a cluster: Ballista reports the executor's error
/// in its Rust debug form (`... Task failed due to runtime execution error:
/// DataFusionError(Shared(External(Usage("text"))))`); the innermost text,
/// made readable in turn.
fn cluster_task_error(message: &str) -> Option<String> {
    const TASK: &str = "Task failed due to runtime execution error: ";
    let (_, debug) = message.split_once(TASK)?;
    let start = debug.find("(\"")? + 2;
    let (text, _) = debug_string(&debug[start..]);
    Some(format!("a task failed on the cluster: {}", readable(&text)))
}

/// The text of a Rust debug string whose opening quote is just before
/// `body`, and the byte at which its closing quote is.
fn debug_string(body: &str) -> (String, usize) {
    let mut chars = body.char_indices();
    let mut text = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, 'n')) => text.push('\n'),
                Some((_, 't')) => text.push('\t'),
                Some((_, other)) => text.push(other),
                None => {}
            },
            '"' => return (text, i),
            c => text.push(c),
        }
    }
    (text, body.len())
}

/// `ParserError("text")` and similar Rust debug forms, as their text.
fn unwrap_debug_strings(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    const FORMS: &[&str] = &["ParserError(\"", "TokenizerError(\""];
    while let Some((at, form)) = FORMS
        .iter()
        .filter_map(|f| rest.find(f).map(|at| (at, *f)))
        .min_by_key(|(at, _)| *at)
    {
        out.push_str(&rest[..at]);
        let body = &rest[at + form.len()..];
        // The debug string ends at the first unescaped quote.
        let (text, end) = debug_string(body);
        out.push_str(&text);
        rest = body[end..].strip_prefix("\")").unwrap_or(&body[end..]);
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_say_whose_fault_it_is() {
        let plan = Error::from(DataFusionError::Plan("no such column".into()));
        assert_eq!(plan.exit_code(), 1);
        let internal = Error::from(DataFusionError::Internal("bug".into()));
        assert_eq!(internal.exit_code(), 2);
        let wrapped = Error::Statement {
            index: 2,
            line: 7,
            head: "SELECT 1".into(),
            source: Box::new(internal),
        };
        assert_eq!(wrapped.exit_code(), 2);
        assert_eq!(Error::Usage("bad".into()).exit_code(), 1);
    }

    #[test]
    fn cluster_task_errors_are_their_innermost_text() {
        let job = "Execution error: Job 038JJ2CVDE000 failed: Job failed due to stage 1 failed: \
                   Task failed due to runtime execution error: DataFusionError(Shared(External(\
                   DataFusionError(External(Usage(\"'/tmp/f/' already exists; pass \\\"--overwrite\\\" \
                   to replace it\"))))))";
        assert_eq!(
            readable(job),
            "a task failed on the cluster: '/tmp/f/' already exists; pass \"--overwrite\" to \
             replace it"
        );
    }

    #[test]
    fn messages_are_readable() {
        assert_eq!(
            readable(
                "SQL error: ParserError(\"Expected: an SQL statement, found: SELEC at Line: 1, Column: 1\")"
            ),
            "SQL error: Expected: an SQL statement, found: SELEC at Line: 1, Column: 1"
        );
        assert_eq!(
            readable(
                "Error during planning: Execution error: Function 'z_score' user-defined coercion failed \
                 with: Error during planning: z_score: x must be numeric, got Utf8. No function matches the \
                 given name and argument types 'z_score(Utf8)'. You might need to add explicit type casts.\n\t\
                 Candidate functions:\n\tz_score(UserDefined)"
            ),
            "z_score: x must be numeric, got Utf8"
        );
        assert_eq!(
            readable(
                "Error during planning: Internal error: Function 'sum' failed to match any signature, \
                 errors: Error during planning: Function 'sum' requires Decimal, but received String.\n\
                 This issue was likely caused by a bug in DataFusion's code. No function matches the given \
                 name and argument types 'sum(Utf8)'. You might need to add explicit type casts.\n\t\
                 Candidate functions:\n\tsum(Decimal)\n\tsum(Int64)"
            ),
            "no form of sum takes (Utf8): it takes sum(Decimal), sum(Int64); cast the arguments"
        );
        assert_eq!(
            readable("Error during planning: table 'datafusion.public.census' not found"),
            "table 'census' not found: register it with --table census=LOCATION \
             (or CREATE EXTERNAL TABLE census … LOCATION '…')"
        );
        assert_eq!(
            readable(
                "Error during planning: window_sum: hop 7 minutes does not divide length 1 hour"
            ),
            "window_sum: hop 7 minutes does not divide length 1 hour"
        );
        let sql = Error::from(DataFusionError::SQL(
            Box::new(
                datafusion::sql::sqlparser::parser::ParserError::ParserError(
                    "Expected: ), found: EOF".into(),
                ),
            ),
            None,
        ));
        assert_eq!(sql.to_string(), "SQL syntax error: Expected: ), found: EOF");
    }
}
