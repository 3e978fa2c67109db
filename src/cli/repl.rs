//! `skewless repl`: interactive SQL over a skewless session.
//!
//! Input is read line by line until it holds a complete statement (ending
//! with `;` outside strings and comments); backslash commands work on an
//! empty input. Ctrl-C cancels a running query (or clears the input) and
//! returns to the prompt; Ctrl-D quits. History persists in the user's data
//! directory.

use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use crate::error::{Error, Result};
use crate::exec::{self, Outcome};
use crate::output::{Format, Printer, ResultSink};
use crate::script;

const PROMPT: &str = "skewless> ";
const CONTINUATION: &str = "      ..> ";

/// A backslash command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `\d`: list tables and views.
    ListTables,
    /// `\d NAME`: a table's columns.
    Describe(String),
    /// `\functions`: skewless's functions.
    Functions,
    /// `\timing`: toggle the elapsed time after results.
    Timing,
    /// `\?`: help.
    Help,
    /// `\q`: quit.
    Quit,
}

impl Command {
    /// Every command with its usage and one line of help, for `\?`.
    pub const HELP: &[(&'static str, &'static str)] = &[
        ("\\d", "list tables and views"),
        ("\\d NAME", "show the columns of table NAME"),
        ("\\functions", "list skewless's functions"),
        (
            "\\timing",
            "toggle showing the elapsed time of each statement",
        ),
        ("\\?", "show this help"),
        ("\\q", "quit (Ctrl-D also quits)"),
    ];
}

impl FromStr for Command {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().trim_end_matches(';').trim();
        let (name, arg) = match s.split_once(char::is_whitespace) {
            Some((n, a)) => (n, Some(a.trim())),
            None => (s, None),
        };
        match (name, arg) {
            ("\\d", None) => Ok(Self::ListTables),
            ("\\d", Some(table)) => Ok(Self::Describe(table.to_string())),
            ("\\functions", None) => Ok(Self::Functions),
            ("\\timing", None) => Ok(Self::Timing),
            ("\\?" | "\\h" | "\\help", None) => Ok(Self::Help),
            ("\\q" | "\\quit", None) => Ok(Self::Quit),
            _ => Err(format!("unknown command '{s}'; \\? lists the commands")),
        }
    }
}

/// Where the history lives: `$XDG_DATA_HOME/skewless/history` (or the
/// platform's data directory).
pub fn history_path() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("skewless").join("history"))
}

/// Where statements run: a session in this process, or a query server's.
#[derive(Clone)]
pub enum Backend {
    Local(SessionContext),
    Remote(Box<crate::query::client::Remote>),
}

impl Backend {
    /// Runs one statement; query rows stream into `sink`. For a remote
    /// statement, `running` receives what cancels it on the server.
    pub async fn execute(
        &self,
        sql: &str,
        sink: &mut (dyn crate::output::ResultSink + Send),
        options: exec::Options,
        running: Option<Arc<std::sync::Mutex<Option<arrow_flight::FlightInfo>>>>,
    ) -> Result<Outcome> {
        match self {
            Self::Local(ctx) => exec::execute(ctx, sql, sink, options).await,
            Self::Remote(remote) => remote.execute(sql, sink, running).await,
        }
    }
}

struct Repl {
    backend: Backend,
    options: exec::Options,
    max_rows: usize,
    timing: bool,
    interrupts: Interrupts,
}

/// Ctrl-C while a statement runs.
///
/// SIGINT is caught by signal-hook and forwarded from a plain thread: the
/// runtime's workers may all be busy inside the query, so a signal handler
/// that needs them (tokio's) would only be noticed when the query ends.
/// At the prompt the terminal is in raw mode and rustyline reads Ctrl-C as
/// a key instead. (rustyline's own `signal-hook` feature is off: with it,
/// typed input stalled in the editor.)
#[derive(Clone)]
struct Interrupts {
    notify: Arc<tokio::sync::Notify>,
}

impl Interrupts {
    fn install() -> Result<Self> {
        let notify = Arc::new(tokio::sync::Notify::new());
        let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT])
            .map_err(|e| Error::Io {
                path: "<signal handler>".into(),
                source: e,
            })?;
        let waiters = Arc::clone(&notify);
        std::thread::Builder::new()
            .name("skewless-sigint".into())
            .spawn(move || {
                for _ in signals.forever() {
                    // Wakes only a statement that is waiting now; a Ctrl-C
                    // between statements cancels nothing later.
                    waiters.notify_waiters();
                }
            })
            .map_err(|e| Error::Io {
                path: "<signal thread>".into(),
                source: e,
            })?;
        Ok(Self { notify })
    }
}

/// Runs the REPL until `\q` or end of input.
pub async fn run(backend: Backend, options: exec::Options, max_rows: usize) -> Result<()> {
    let mut editor = DefaultEditor::new().map_err(readline_error)?;
    // After the editor: its own SIGINT handler stays in the chain.
    let interrupts = Interrupts::install()?;
    let history = history_path();
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // A missing history file is normal on first use.
        let _ = editor.load_history(path);
    }
    if let Backend::Remote(remote) = &backend {
        println!("connected to {} at {}", remote.server, remote.url);
        if remote.server != crate::cluster::identity::identity() {
            eprintln!(
                "note: the server runs {}, this client is {}; \\functions lists this client's",
                remote.server,
                crate::cluster::identity::identity()
            );
        }
    }
    let mut repl = Repl {
        backend,
        options,
        max_rows,
        timing: true,
        interrupts,
    };
    println!(
        "skewless {} — \\? for help, \\q to quit",
        env!("CARGO_PKG_VERSION")
    );
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            PROMPT
        } else {
            CONTINUATION
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(readline_error(e)),
        };
        if buffer.is_empty() && line.trim_start().starts_with('\\') {
            remember(&mut editor, history.as_ref(), line.trim());
            match line.parse::<Command>() {
                Ok(Command::Quit) => break,
                Ok(command) => {
                    if let Err(e) = repl.command(command).await {
                        eprintln!("error: {e}");
                    }
                    println!();
                }
                Err(e) => eprintln!("error: {e}"),
            }
            continue;
        }
        if !buffer.is_empty() {
            buffer.push('\n');
        }
        buffer.push_str(&line);
        if buffer.trim().is_empty() {
            buffer.clear();
            continue;
        }
        if !script::is_complete(&buffer) {
            continue;
        }
        let input = std::mem::take(&mut buffer);
        remember(&mut editor, history.as_ref(), input.trim());
        for statement in script::split(&input) {
            repl.statement(&statement.sql).await;
        }
    }
    Ok(())
}

fn remember(editor: &mut DefaultEditor, history: Option<&PathBuf>, entry: &str) {
    let _ = editor.add_history_entry(entry);
    if let Some(path) = history
        && let Err(e) = editor.save_history(path)
    {
        tracing::warn!("cannot save history to {}: {e}", path.display());
    }
}

fn readline_error(e: ReadlineError) -> Error {
    Error::Io {
        path: "<terminal>".into(),
        source: std::io::Error::other(e),
    }
}

impl Repl {
    /// Runs one statement; Ctrl-C cancels it. Errors are printed, not returned:
    /// the REPL goes on.
    async fn statement(&mut self, sql: &str) {
        let started = Instant::now();
        let mut printer = Printer::new(Format::Table, std::io::stdout());
        printer.timed_since = self.timing.then_some(started);
        printer.max_rows = self.max_rows;
        // The statement runs on the runtime's workers, so that this thread
        // stays free to notice Ctrl-C even while an operator is busy. Ctrl-C
        // cancels its token, which stops its operators within a batch
        // (`cancel::cancellable`), and the prompt comes back at once: it never
        // waits for the cancelled work to wind down.
        // On a query server, the statement's FlightInfo cancels it there.
        let backend = self.backend.clone();
        let sql = sql.to_string();
        let token = crate::cancel::CancelToken::new();
        let mut options = self.options.clone();
        options.cancel = Some(token.clone());
        let running = Arc::new(std::sync::Mutex::new(None));
        let slot = Arc::clone(&running);
        let interrupted = self.interrupts.notify.notified();
        let mut task = tokio::spawn(async move {
            backend
                .execute(&sql, &mut printer, options, Some(slot))
                .await
        });
        let result = tokio::select! {
            r = &mut task => Some(r.unwrap_or_else(|e| {
                Err(Error::Internal(format!("the statement's task failed: {e}")))
            })),
            _ = interrupted => {
                token.cancel();
                task.abort();
                let info = running.lock().unwrap().take();
                if let (Backend::Remote(remote), Some(info)) = (&self.backend, info) {
                    remote.cancel(info).await;
                }
                None
            }
        };
        let elapsed = started.elapsed().as_secs_f64();
        match result {
            None => {
                // Erase a progress line the cancelled task may have left.
                let clear = if self.options.progress {
                    "\r\x1b[2K"
                } else {
                    ""
                };
                eprintln!("{clear}query cancelled after {elapsed:.3} s");
            }
            Some(Err(e)) => eprintln!("error: {e}"),
            Some(Ok(outcome)) => {
                let timing = if self.timing {
                    format!(" in {elapsed:.3} s")
                } else {
                    String::new()
                };
                match outcome {
                    // The printer wrote the row count and time under the table.
                    Outcome::Rows(_) => {}
                    Outcome::Written(n) => println!("{n} rows written{timing}"),
                    Outcome::Done => println!("ok{timing}"),
                }
            }
        }
        println!();
    }

    async fn command(&mut self, command: Command) -> Result<()> {
        let mut out = std::io::stdout().lock();
        let io = |source| Error::Io {
            path: "<stdout>".into(),
            source,
        };
        match (command, &self.backend) {
            (Command::ListTables, Backend::Remote(remote)) => {
                let rows = remote.tables().await?;
                print_strings(&mut out, &["name", "type"], &rows)?;
            }
            (Command::Describe(name), Backend::Remote(remote)) => {
                let schema = remote.describe(&name).await?;
                print_columns(&mut out, &schema)?;
            }
            (Command::ListTables, Backend::Local(ctx)) => {
                let mut rows = Vec::new();
                for catalog_name in ctx.catalog_names() {
                    let Some(catalog) = ctx.catalog(&catalog_name) else {
                        continue;
                    };
                    for schema_name in catalog.schema_names() {
                        if schema_name == "information_schema" {
                            continue;
                        }
                        let Some(schema) = catalog.schema(&schema_name) else {
                            continue;
                        };
                        let mut names = schema.table_names();
                        names.sort();
                        for name in names {
                            let kind = match schema.table(&name).await? {
                                Some(t) => format!("{:?}", t.table_type()).to_lowercase(),
                                None => continue,
                            };
                            rows.push([name, kind]);
                        }
                    }
                }
                print_strings(&mut out, &["name", "type"], &rows)?;
            }
            (Command::Describe(name), Backend::Local(ctx)) => {
                let table = ctx.table_provider(name.as_str()).await?;
                print_columns(&mut out, &table.schema())?;
            }
            (Command::Functions, _) => super::write_functions(&mut out).map_err(io)?,
            (Command::Timing, _) => {
                self.timing = !self.timing;
                let state = if self.timing { "on" } else { "off" };
                writeln!(out, "timing is {state}").map_err(io)?;
            }
            (Command::Help, _) => {
                for (usage, help) in Command::HELP {
                    writeln!(out, "  {usage:<12} {help}").map_err(io)?;
                }
                writeln!(
                    out,
                    "  SQL statements end with ';' and may span lines; Ctrl-C cancels a running query."
                )
                .map_err(io)?;
            }
            (Command::Quit, _) => {}
        }
        Ok(())
    }
}

/// Prints a table's columns: name, type, nullable.
fn print_columns(out: &mut dyn Write, schema: &Schema) -> Result<()> {
    let rows: Vec<[String; 3]> = schema
        .fields()
        .iter()
        .map(|f| {
            [
                f.name().clone(),
                f.data_type().to_string(),
                if f.is_nullable() { "YES" } else { "NO" }.to_string(),
            ]
        })
        .collect();
    print_strings(out, &["column", "type", "nullable"], &rows)
}

/// Prints rows of strings as an aligned table.
fn print_strings<const N: usize>(
    out: &mut dyn Write,
    header: &[&str; N],
    rows: &[[String; N]],
) -> Result<()> {
    let schema = Arc::new(Schema::new(
        header
            .iter()
            .map(|h| Field::new(*h, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ));
    let columns = (0..N)
        .map(|i| Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r[i]))) as _)
        .collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)
        .map_err(|e| Error::DataFusion(e.into()))?;
    let mut printer = Printer::new(Format::Table, out);
    printer.max_rows = 0;
    printer.begin(&schema)?;
    printer.batch(&batch)?;
    printer.end(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!("\\d".parse(), Ok(Command::ListTables));
        assert_eq!(
            " \\d  census ".parse(),
            Ok(Command::Describe("census".into()))
        );
        assert_eq!("\\functions".parse(), Ok(Command::Functions));
        assert_eq!("\\timing".parse(), Ok(Command::Timing));
        assert_eq!("\\?".parse(), Ok(Command::Help));
        assert_eq!("\\q".parse(), Ok(Command::Quit));
        assert!("\\x".parse::<Command>().is_err());
        assert!("\\q now".parse::<Command>().is_err());
    }

    #[test]
    fn help_lists_every_command() {
        for (usage, _) in Command::HELP {
            let usage = usage.replace("NAME", "t");
            assert!(usage.parse::<Command>().is_ok(), "{usage}");
        }
    }
}
