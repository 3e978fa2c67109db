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

    /// A bug: something that should not happen did.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The process exit code for this error: 1 user error, 2 internal error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Statement { source, .. } => source.exit_code(),
            Error::DataFusion(e) if is_internal(e) => 2,
            Error::Internal(_) => 2,
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

/// DataFusion's message, without trailing blank lines.
fn describe_datafusion(e: &DataFusionError) -> String {
    e.to_string().trim_end().to_string()
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
}
