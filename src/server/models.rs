//! The models a server serves: each a name, the artifact it was loaded
//! from (a file, or a directory of numbered versions), and the compiled
//! evaluator of its newest version.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::artifact::{Artifact, SigningKey};
use crate::error::{Error, Result};
use crate::serving::{Evaluator, OnlineLimits};

/// One loaded version of a model.
pub struct Version {
    /// The version number: the directory's `N`, or 1 for a plain file.
    pub number: u64,
    /// The artifact's checksum (`sha256:…`), named in every response.
    pub checksum: String,
    pub file: PathBuf,
    pub evaluator: Evaluator,
    /// How long loading, verifying and compiling took.
    pub load_time: Duration,
    /// The file's modification time and size when it was read (`--poll`
    /// reloads when they change).
    pub stamp: Option<(std::time::SystemTime, u64)>,
    /// The most recent served rows counted over the training profile
    /// (None without a profile).
    pub live: Option<crate::profile::Recent>,
}

/// How a model with window functions keeps its online state.
#[derive(Debug, Clone, Default)]
pub struct WindowOptions {
    pub limits: OnlineLimits,
    /// Event logs that start the state (`eval --events`' `[TABLE=]LOCATION`).
    pub events: Vec<String>,
    /// The snapshot read at start (when it exists; the event logs are then
    /// not replayed) and written at shutdown.
    pub state: Option<PathBuf>,
}

/// A served model: its source and the version being served (swapped whole
/// on reload; a request holds the `Arc` of the version it started on).
pub struct Model {
    pub name: String,
    /// What `serve` was given: an artifact file or a directory of versions.
    pub source: PathBuf,
    current: RwLock<Arc<Version>>,
    pub windows: WindowOptions,
    /// Held shared by every push of events, and exclusively while a reload
    /// carries the window state over to the new version or the state is
    /// saved: no event lands in a version being left.
    pub pushing: RwLock<()>,
    /// The last version `--poll` tried to load.
    tried: std::sync::Mutex<Option<Seen>>,
}

impl Model {
    /// The version being served now.
    pub fn current(&self) -> Arc<Version> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Loads the newest version from the source again and swaps it in;
    /// on failure the version being served stays. A transform with window
    /// functions takes the old version's state when its windows and limits
    /// are the same (pushes wait meanwhile); otherwise its state starts
    /// again from the event logs, which the returned note says.
    pub fn reload(&self, key: Option<&SigningKey>) -> Result<(Arc<Version>, Option<String>)> {
        let version = load_version(&self.name, &self.source, key, &self.windows.limits)?;
        let swap = |version: Version| {
            let version = Arc::new(version);
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&version);
            version
        };
        if !version.evaluator.has_windows() {
            return Ok((swap(version), None));
        }
        if let Some(difference) = self
            .current()
            .evaluator
            .state_difference(&version.evaluator)
        {
            // Other windows: the old state means nothing to them.
            let replayed = replay(&self.name, &version.evaluator, &self.windows.events)?;
            let note = format!(
                "window state started again ({replayed}), since the windows differ \
                 ({difference})"
            );
            return Ok((swap(version), Some(note)));
        }
        // The same windows: the state is copied while pushes wait, so none
        // lands in the version being left.
        let _pause = self.pushing.write().unwrap_or_else(|e| e.into_inner());
        let bytes = self.current().evaluator.save_state()?;
        version.evaluator.load_state(&bytes)?;
        Ok((swap(version), Some("window state carried over".to_string())))
    }

    /// Writes the window state to the `--state` file (atomically), pushes
    /// held meanwhile; `None` when there is nothing to write.
    pub fn save_state(&self) -> Option<Result<String>> {
        let path = self.windows.state.as_ref()?;
        let _pause = self.pushing.write().unwrap_or_else(|e| e.into_inner());
        let v = self.current();
        if !v.evaluator.has_windows() {
            return None;
        }
        Some(v.evaluator.save_state().and_then(|bytes| {
            crate::write::write_file(path, &bytes, true)?;
            Ok(format!("{} bytes to {}", bytes.len(), path.display()))
        }))
    }
}

/// Starts the window state of a freshly loaded version from the event logs
/// (in a thread of its own: the replay runs its own query runtime); says
/// what it did.
fn replay(name: &str, evaluator: &Evaluator, events: &[String]) -> Result<String> {
    if events.is_empty() {
        return Ok("empty: no --events".to_string());
    }
    std::thread::scope(|s| {
        s.spawn(|| crate::cli::replay_events(evaluator, events))
            .join()
            .unwrap_or_else(|_| Err(Error::Internal("the event replay panicked".into())))
    })
    .map(|pushed| format!("{pushed} events from {}", events.join(", ")))
    .map_err(|e| Error::Data(format!("model '{name}': --events: {e}")))
}

/// Starts a loaded model's window state: from the `--state` file when it
/// exists, else from the event logs. Says what it did (None: no windows).
pub fn bootstrap(model: &Model) -> Result<Option<String>> {
    let v = model.current();
    if !v.evaluator.has_windows() {
        return Ok(None);
    }
    if let Some(path) = &model.windows.state
        && path.exists()
    {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        v.evaluator.load_state(&bytes).map_err(|e| {
            Error::Data(format!(
                "model '{}': --state {}: {e} (move the file away to start from --events)",
                model.name,
                path.display()
            ))
        })?;
        let held: usize = v
            .evaluator
            .state_report()
            .iter()
            .map(|s| s.events_held)
            .sum();
        let ignored = match model.windows.events.is_empty() {
            true => String::new(),
            false => "; --events not replayed".to_string(),
        };
        return Ok(Some(format!(
            "window state read from {} ({held} events held{ignored})",
            path.display()
        )));
    }
    replay(&model.name, &v.evaluator, &model.windows.events)
        .map(|what| Some(format!("window state: {what}")))
}

/// Parses `[NAME=]ARTIFACT` and loads it (its window state is started by
/// [`bootstrap`]).
pub fn load_model(spec: &str, key: Option<&SigningKey>, windows: WindowOptions) -> Result<Model> {
    let (name, source) = match spec.split_once('=') {
        Some((name, path)) if valid_name(name) => (name.to_string(), PathBuf::from(path)),
        Some((name, _)) if !Path::new(spec).exists() => {
            return Err(Error::Usage(format!(
                "{spec}: model name '{name}' may hold only letters, digits, '_', '-' and '.'"
            )));
        }
        _ => {
            let path = PathBuf::from(spec);
            let stem = if path.is_dir() {
                path.file_name()
            } else {
                path.file_stem()
            };
            let name = stem.and_then(|s| s.to_str()).unwrap_or("").to_string();
            if !valid_name(&name) {
                return Err(Error::Usage(format!(
                    "{spec}: cannot name the model after the path; give it as NAME={spec}"
                )));
            }
            (name, path)
        }
    };
    let version = load_version(&name, &source, key, &windows.limits)?;
    Ok(Model {
        name,
        source,
        current: RwLock::new(Arc::new(version)),
        windows,
        pushing: RwLock::new(()),
        tried: std::sync::Mutex::new(None),
    })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The artifact file and version number of a source: the file itself
/// (version 1), or the one `.json` file in the highest-numbered
/// subdirectory of a directory.
pub fn newest(source: &Path) -> Result<(PathBuf, u64)> {
    let io = |source_err| Error::Io {
        path: source.display().to_string(),
        source: source_err,
    };
    if !source.is_dir() {
        std::fs::metadata(source).map_err(io)?;
        return Ok((source.to_path_buf(), 1));
    }
    let mut best: Option<(u64, PathBuf)> = None;
    for entry in std::fs::read_dir(source).map_err(io)? {
        let entry = entry.map_err(io)?;
        let Some(n) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        if entry.path().is_dir() && best.as_ref().is_none_or(|(b, _)| n > *b) {
            best = Some((n, entry.path()));
        }
    }
    let (n, dir) = best.ok_or_else(|| {
        Error::Usage(format!(
            "{}: a directory of model versions holds numbered directories (1/, 2/, …), \
             each with one artifact .json; found none",
            source.display()
        ))
    })?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    match files.as_slice() {
        [one] => Ok((one.clone(), n)),
        [] => Err(Error::Usage(format!(
            "{}: version {n} holds no artifact .json",
            dir.display()
        ))),
        many => Err(Error::Usage(format!(
            "{}: version {n} holds {} .json files ({}); it must hold one artifact",
            dir.display(),
            many.len(),
            many.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// A file's modification time and size.
fn stamp(file: &Path) -> Option<(std::time::SystemTime, u64)> {
    let m = std::fs::metadata(file).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// What `--poll` saw of a source: its newest file, number and stamp.
type Seen = (PathBuf, u64, Option<(std::time::SystemTime, u64)>);

impl Model {
    /// Whether the source has a version other than the one served (a
    /// higher number, or the same file changed) that was not tried yet
    /// (`--poll`: a version that failed to load is tried again only once
    /// it changes).
    pub fn changed(&self) -> bool {
        let Ok((file, number)) = newest(&self.source) else {
            return false;
        };
        let seen: Seen = (file.clone(), number, stamp(&file));
        let v = self.current();
        if (v.file.clone(), v.number, v.stamp) == seen {
            return false;
        }
        let mut tried = self.tried.lock().unwrap_or_else(|e| e.into_inner());
        if tried.as_ref() == Some(&seen) {
            return false;
        }
        *tried = Some(seen);
        true
    }
}

fn load_version(
    name: &str,
    source: &Path,
    key: Option<&SigningKey>,
    limits: &OnlineLimits,
) -> Result<Version> {
    let started = Instant::now();
    let (file, number) = newest(source)?;
    let stamp = stamp(&file);
    let artifact = Artifact::load(&file, key)
        .map_err(|e| Error::Data(format!("model '{name}' ({}): {e}", file.display())))?;
    let evaluator = Evaluator::compile(&artifact)
        .and_then(|e| match e.has_windows() {
            true => e.with_limits(*limits).map(Evaluator::with_clock),
            false => Ok(e),
        })
        .map_err(|e| Error::Data(format!("model '{name}' ({}): {e}", file.display())))?;
    let live = evaluator
        .tally_plan()
        .map(|plan| crate::profile::Recent::new(std::sync::Arc::clone(plan)));
    Ok(Version {
        number,
        checksum: artifact.checksum.clone(),
        file,
        evaluator,
        load_time: started.elapsed(),
        stamp,
        live,
    })
}
