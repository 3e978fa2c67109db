//! The models a server serves: each a name, the artifact it was loaded
//! from (a file, or a directory of numbered versions), and the compiled
//! evaluator of its newest version.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::artifact::{Artifact, SigningKey};
use crate::error::{Error, Result};
use crate::serving::Evaluator;

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
}

/// A served model: its source and the version being served (swapped whole
/// on reload; a request holds the `Arc` of the version it started on).
pub struct Model {
    pub name: String,
    /// What `serve` was given: an artifact file or a directory of versions.
    pub source: PathBuf,
    current: RwLock<Arc<Version>>,
}

impl Model {
    /// The version being served now.
    pub fn current(&self) -> Arc<Version> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Loads the newest version from the source again and swaps it in;
    /// on failure the version being served stays.
    pub fn reload(&self, key: Option<&SigningKey>) -> Result<Arc<Version>> {
        let version = Arc::new(load_version(&self.name, &self.source, key)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&version);
        Ok(version)
    }
}

/// Parses `[NAME=]ARTIFACT` and loads it.
pub fn load_model(spec: &str, key: Option<&SigningKey>) -> Result<Model> {
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
    let version = load_version(&name, &source, key)?;
    Ok(Model {
        name,
        source,
        current: RwLock::new(Arc::new(version)),
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

fn load_version(name: &str, source: &Path, key: Option<&SigningKey>) -> Result<Version> {
    let started = Instant::now();
    let (file, number) = newest(source)?;
    let artifact = Artifact::load(&file, key)
        .map_err(|e| Error::Data(format!("model '{name}' ({}): {e}", file.display())))?;
    let evaluator = Evaluator::compile(&artifact)
        .map_err(|e| Error::Data(format!("model '{name}' ({}): {e}", file.display())))?;
    Ok(Version {
        number,
        checksum: artifact.checksum.clone(),
        file,
        evaluator,
        load_time: started.elapsed(),
    })
}
