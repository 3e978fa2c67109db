//! Where an output goes, and getting it there atomically.
//!
//! Every output is first written to a temporary name beside its target —
//! `.NAME.skewless-PID-N.tmp` in the same directory (or object-store
//! prefix) — and moved into place only when complete. A failed or
//! interrupted write removes its temporary (and leaves the target as it
//! was); a temporary left by a killed process is removed by the next write
//! to the same target. The temporary's name carries no data extension, so
//! readers of the directory never pick it up.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::error::{Error, Result};

/// A place on local disk or in an object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// An absolute, normalized local path.
    Local(PathBuf),
    /// A key (prefix, for a directory) in a bucket.
    Store {
        url: ObjectStoreUrl,
        path: StorePath,
    },
}

impl Place {
    /// The place as DataFusion takes it: an absolute path or a store URL,
    /// with a trailing `/` for a directory.
    pub fn url(&self, directory: bool) -> String {
        let slash = if directory { "/" } else { "" };
        match self {
            Place::Local(p) => format!("{}{slash}", p.display()),
            Place::Store { url, path } => format!("{}{path}{slash}", url.as_str()),
        }
    }
}

/// The output of a write: a file, or a directory of files.
#[derive(Debug, Clone)]
pub struct Target {
    /// As the user wrote it.
    pub display: String,
    pub place: Place,
    pub directory: bool,
}

fn io_error(path: impl std::fmt::Display, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_string(),
        source,
    }
}

fn store_error(what: impl std::fmt::Display, e: object_store::Error) -> Error {
    Error::Data(format!("{what}: {e}"))
}

/// `path` made absolute (against the current directory) with `.` and `..`
/// resolved lexically, then with symbolic links of its existing ancestors
/// resolved, so that two spellings of one place compare equal.
pub fn normalize_local(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut lexical = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    // Resolve links in the longest existing ancestor.
    let mut existing = lexical.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => return lexical,
        }
    }
    let mut resolved = std::fs::canonicalize(&existing).unwrap_or(existing);
    for name in rest.into_iter().rev() {
        resolved.push(name);
    }
    resolved
}

impl Target {
    /// The target at `location` (a local path, `file://`, or an object
    /// store URL); `directory` when the output is a directory of files.
    pub fn parse(location: &str, directory: bool) -> Result<Self> {
        let place = match location.split_once("://") {
            Some((scheme, rest)) if !scheme.eq_ignore_ascii_case("file") => {
                let url = ListingTableUrl::parse(location)?;
                let _ = rest;
                Place::Store {
                    url: url.object_store(),
                    path: url.prefix().clone(),
                }
            }
            Some((_, path)) => Place::Local(normalize_local(Path::new(path))),
            None => Place::Local(normalize_local(Path::new(location))),
        };
        Ok(Self {
            display: location.to_string(),
            place,
            directory,
        })
    }

    /// Whether something is there already: the file, or a directory that is
    /// not empty.
    pub async fn exists(&self, ctx: &SessionContext) -> Result<bool> {
        match &self.place {
            Place::Local(path) => Ok(match std::fs::metadata(path) {
                Ok(m) if m.is_dir() => std::fs::read_dir(path)
                    .map_err(|e| io_error(path.display(), e))?
                    .next()
                    .is_some(),
                Ok(_) => true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => return Err(io_error(path.display(), e)),
            }),
            Place::Store { url, path } => {
                let store = ctx.runtime_env().object_store(url)?;
                if !self.directory {
                    return match store.head(path).await {
                        Ok(_) => Ok(true),
                        Err(object_store::Error::NotFound { .. }) => Ok(false),
                        Err(e) => Err(store_error(&self.display, e)),
                    };
                }
                let mut listing = store.list(Some(path));
                Ok(listing
                    .try_next()
                    .await
                    .map_err(|e| store_error(&self.display, e))?
                    .is_some())
            }
        }
    }

    /// Whether this target and an input location overlap: the same file,
    /// or one inside the other.
    pub fn overlaps(&self, input: &Place) -> bool {
        match (&self.place, input) {
            (Place::Local(a), Place::Local(b)) => a.starts_with(b) || b.starts_with(a),
            (Place::Store { url: ua, path: pa }, Place::Store { url: ub, path: pb }) => {
                ua == ub && {
                    let (a, b) = (pa.as_ref(), pb.as_ref());
                    a == b
                        || b.is_empty()
                        || a.is_empty()
                        || a.starts_with(&format!("{b}/"))
                        || b.starts_with(&format!("{a}/"))
                }
            }
            _ => false,
        }
    }

    /// Prepares a temporary beside the target: for a local target, creates
    /// the parent directories and the temporary itself (so that a path that
    /// cannot be written fails here, naming it), and removes temporaries
    /// that killed processes left for this target.
    pub fn temporary(&self) -> Result<Temporary> {
        let place = self.temporary_place();
        if let (Place::Local(path), Place::Local(temp)) = (&self.place, &place) {
            let parent = path.parent().unwrap_or(Path::new("/"));
            std::fs::create_dir_all(parent)
                .map_err(|e| io_error(format!("cannot write '{}'", self.display), e))?;
            sweep_stale(parent, &self.file_name());
            let created = if self.directory {
                std::fs::create_dir(temp)
            } else {
                std::fs::File::create_new(temp).map(drop)
            };
            created.map_err(|e| io_error(format!("cannot write '{}'", self.display), e))?;
        }
        Ok(Temporary::register(self.clone(), place))
    }

    /// A new temporary name beside the target, `.NAME.skewless-PID-N.tmp`,
    /// without touching the file system (a cluster's executors create it).
    pub fn temporary_place(&self) -> Place {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nonce = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            ".{}.skewless-{}-{nonce}.tmp",
            self.file_name(),
            std::process::id()
        );
        match &self.place {
            Place::Local(path) => Place::Local(path.parent().unwrap_or(Path::new("/")).join(&name)),
            Place::Store { url, path } => {
                let parent: Vec<_> = path.parts().collect();
                let parent = parent[..parent.len().saturating_sub(1)].iter().cloned();
                Place::Store {
                    url: url.clone(),
                    path: StorePath::from_iter(parent).join(name.as_str()),
                }
            }
        }
    }

    /// The last part of the target's path.
    fn file_name(&self) -> String {
        match &self.place {
            Place::Local(p) => p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "output".into()),
            Place::Store { path, .. } => path
                .filename()
                .map(str::to_string)
                .unwrap_or_else(|| "output".into()),
        }
    }
}

/// Removes `.NAME.skewless-PID-…` entries of processes that no longer run.
fn sweep_stale(dir: &Path, name: &str) {
    if !Path::new("/proc/self").exists() {
        return; // no cheap way to tell a live process here
    }
    let prefix = format!(".{name}.skewless-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file.strip_prefix(&prefix) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            remove_local(&entry.path());
            tracing::info!("removed {} left by process {pid}", entry.path().display());
        }
    }
}

fn remove_local(path: &Path) {
    let _ = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()),
    };
    // A writer's own staging files beside it (object_store's `NAME#N`).
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
        let staging = format!("{}#", name.to_string_lossy());
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&staging) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

/// A registered temporary: its id, place and (for an object store) store.
type Pending = (u64, Place, Option<Arc<dyn ObjectStore>>);

/// Temporaries not yet committed or removed, for a signal handler.
static PENDING: Mutex<Vec<Pending>> = Mutex::new(Vec::new());
static IDS: AtomicU64 = AtomicU64::new(0);

/// Removes every temporary still registered (after an interrupt, once the
/// runtime has stopped). Object-store temporaries are deleted on a small
/// runtime of their own.
pub fn remove_pending() {
    let pending = std::mem::take(&mut *PENDING.lock().expect("pending lock"));
    for (_, place, store) in pending {
        match (place, store) {
            (Place::Local(path), _) => remove_local(&path),
            (Place::Store { path, .. }, Some(store)) => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(runtime) = runtime {
                    let _ = runtime.block_on(async {
                        tokio::time::timeout(
                            std::time::Duration::from_secs(10),
                            remove_store(&store, &path),
                        )
                        .await
                    });
                }
            }
            _ => {}
        }
    }
}

async fn remove_store(store: &Arc<dyn ObjectStore>, path: &StorePath) {
    let _ = store.delete(path).await;
    let listed: Vec<_> = store
        .list(Some(path))
        .try_collect()
        .await
        .unwrap_or_default();
    for meta in listed {
        let _ = store.delete(&meta.location).await;
    }
}

/// A temporary output beside a target. Dropped without [`commit`], it is
/// removed.
///
/// [`commit`]: Temporary::commit
#[derive(Debug)]
pub struct Temporary {
    id: u64,
    pub target: Target,
    pub place: Place,
    done: bool,
    /// The final names of a directory's files (none: removed), when the
    /// writer chose them ([`Temporary::with_names`]).
    names: Option<HashMap<String, Option<String>>>,
}

impl Temporary {
    /// Takes charge of a temporary that another process named (a cluster
    /// client) and this one wrote into: removed if dropped uncommitted.
    pub fn adopt(target: Target, place: Place) -> Self {
        Self::register(target, place)
    }

    /// The final name of each file of a directory output (by its name in
    /// the temporary; `None`: not kept), instead of the stable names of
    /// DataFusion's files.
    pub fn with_names(mut self, names: HashMap<String, Option<String>>) -> Self {
        self.names = Some(names);
        self
    }

    /// The final name of a file of the temporary directory.
    fn final_name(&self, name: &str) -> Option<String> {
        match &self.names {
            Some(names) => names.get(name).cloned().flatten(),
            None => Some(Self::stable_name(name)),
        }
    }

    fn register(target: Target, place: Place) -> Self {
        let id = IDS.fetch_add(1, Ordering::Relaxed);
        PENDING
            .lock()
            .expect("pending lock")
            .push((id, place.clone(), None));
        Self {
            id,
            target,
            place,
            done: false,
            names: None,
        }
    }

    /// Records the store of an object-store temporary (for removal on an
    /// interrupt).
    pub fn set_store(&self, store: Arc<dyn ObjectStore>) {
        for entry in PENDING.lock().expect("pending lock").iter_mut() {
            if entry.0 == self.id {
                entry.2 = Some(Arc::clone(&store));
            }
        }
    }

    /// The URL DataFusion writes to (a trailing `/` for a directory).
    pub fn url(&self) -> String {
        self.place.url(self.target.directory)
    }

    fn unregister(&mut self) {
        self.done = true;
        PENDING
            .lock()
            .expect("pending lock")
            .retain(|(id, _, _)| *id != self.id);
    }

    /// Gives the files of a directory output stable names: DataFusion names
    /// them by a random write id (`ID_N.ext`, or `ID.ext` under hive
    /// directories); they become `part-0000N.ext`.
    fn stable_name(name: &str) -> String {
        // The write id has no dots; the extension may (`csv.gz`).
        let (stem, ext) = name.split_once('.').unwrap_or((name, ""));
        let index = stem
            .rsplit_once('_')
            .and_then(|(_, n)| n.parse::<u64>().ok())
            .unwrap_or(0);
        if ext.is_empty() {
            format!("part-{index:05}")
        } else {
            format!("part-{index:05}.{ext}")
        }
    }

    /// Moves the complete output into place. With `overwrite`, an existing
    /// target is replaced (a directory is swapped out and removed after);
    /// without it, an existing target is an error and is left alone.
    pub async fn commit(self, ctx: &SessionContext, overwrite: bool) -> Result<()> {
        self.commit_in(&ctx.runtime_env(), overwrite).await
    }

    /// [`Temporary::commit`] with the object stores of `runtime`.
    pub async fn commit_in(mut self, runtime: &RuntimeEnv, overwrite: bool) -> Result<()> {
        let result = match (&self.place, &self.target.place) {
            (Place::Local(temp), Place::Local(target)) => {
                self.move_local(temp.clone(), target.clone(), overwrite)
            }
            (Place::Store { url, path: temp }, Place::Store { path: target, .. }) => {
                let store = runtime.object_store(url)?;
                self.commit_store(&store, temp, target, overwrite).await
            }
            _ => Err(Error::Internal(
                "temporary and target in different places".into(),
            )),
        };
        if result.is_ok() {
            self.unregister();
        }
        result
    }

    /// [`Temporary::commit`] for a local target, without a session.
    pub fn commit_local(mut self, overwrite: bool) -> Result<()> {
        let (Place::Local(temp), Place::Local(target)) = (&self.place, &self.target.place) else {
            return Err(Error::Internal("commit_local of a remote output".into()));
        };
        let result = self.move_local(temp.clone(), target.clone(), overwrite);
        if result.is_ok() {
            self.unregister();
        }
        result
    }

    fn move_local(&self, temp: PathBuf, target: PathBuf, overwrite: bool) -> Result<()> {
        let display = &self.target.display;
        if self.target.directory {
            self.rename_files(&temp)?;
        }
        let existing = std::fs::symlink_metadata(&target).ok();
        let io = |e| io_error(format!("cannot move the output into '{display}'"), e);
        match existing {
            None => std::fs::rename(&temp, &target).map_err(io),
            Some(m) if !self.target.directory && !m.is_dir() => {
                if !overwrite {
                    return Err(exists_error(display));
                }
                std::fs::rename(&temp, &target).map_err(io)
            }
            Some(m) if self.target.directory && m.is_dir() => {
                let empty = std::fs::read_dir(&target)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false);
                if !empty && !overwrite {
                    return Err(exists_error(display));
                }
                // Swap: the old directory aside, the new one in, the old removed.
                let old = temp.with_extension("old");
                std::fs::rename(&target, &old).map_err(io)?;
                if let Err(e) = std::fs::rename(&temp, &target) {
                    let _ = std::fs::rename(&old, &target);
                    return Err(io(e));
                }
                let _ = std::fs::remove_dir_all(&old);
                Ok(())
            }
            Some(m) => Err(Error::Usage(format!(
                "'{display}' is a {}, but the output is a {}",
                if m.is_dir() { "directory" } else { "file" },
                if self.target.directory {
                    "directory"
                } else {
                    "file"
                }
            ))),
        }
    }

    async fn commit_store(
        &self,
        store: &Arc<dyn ObjectStore>,
        temp: &StorePath,
        target: &StorePath,
        overwrite: bool,
    ) -> Result<()> {
        let display = &self.target.display;
        let error = |e| store_error(format!("cannot move the output into '{display}'"), e);
        if !self.target.directory {
            if !overwrite && self.target.exists_in(store).await? {
                return Err(exists_error(display));
            }
            store.copy(temp, target).await.map_err(error)?;
            let _ = store.delete(temp).await;
            return Ok(());
        }
        let old: Vec<_> = store
            .list(Some(target))
            .try_collect()
            .await
            .map_err(error)?;
        if !old.is_empty() && !overwrite {
            return Err(exists_error(display));
        }
        let new: Vec<_> = store.list(Some(temp)).try_collect().await.map_err(error)?;
        let mut written = Vec::with_capacity(new.len());
        for meta in &new {
            let parts: Vec<_> = meta
                .location
                .prefix_match(temp)
                .into_iter()
                .flatten()
                .collect();
            let mut to = Some(target.clone());
            for (i, part) in parts.iter().enumerate() {
                let part = part.as_ref();
                to = if i + 1 == parts.len() {
                    self.final_name(part)
                        .and_then(|n| to.map(|t| t.join(n.as_str())))
                } else {
                    to.map(|t| t.join(part))
                };
            }
            let Some(to) = to else {
                continue;
            };
            store.copy(&meta.location, &to).await.map_err(error)?;
            written.push(to);
        }
        for meta in old {
            if !written.contains(&meta.location) {
                let _ = store.delete(&meta.location).await;
            }
        }
        for meta in new {
            let _ = store.delete(&meta.location).await;
        }
        Ok(())
    }
}

impl Target {
    async fn exists_in(&self, store: &Arc<dyn ObjectStore>) -> Result<bool> {
        let Place::Store { path, .. } = &self.place else {
            return Ok(false);
        };
        match store.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_error(&self.display, e)),
        }
    }
}

pub(crate) fn exists_error(display: &str) -> Error {
    Error::Usage(format!(
        "'{display}' already exists; pass --overwrite to replace it"
    ))
}

impl Temporary {
    /// Gives the files of a local output directory their final names
    /// ([`Temporary::final_name`]), removing those not kept.
    fn rename_files(&self, dir: &Path) -> Result<()> {
        for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir.display(), e))? {
            let entry = entry.map_err(|e| io_error(dir.display(), e))?;
            let path = entry.path();
            if path.is_dir() {
                self.rename_files(&path)?;
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            match self.final_name(&name) {
                Some(stable) if stable == name => {}
                Some(stable) => std::fs::rename(&path, dir.join(&stable))
                    .map_err(|e| io_error(path.display(), e))?,
                None => std::fs::remove_file(&path).map_err(|e| io_error(path.display(), e))?,
            }
        }
        Ok(())
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        match &self.place {
            Place::Local(path) => {
                remove_local(path);
                self.unregister();
            }
            Place::Store { .. } => {
                // Deleted by the runtime if there is one; otherwise left
                // registered for `remove_pending`.
                let store = PENDING
                    .lock()
                    .expect("pending lock")
                    .iter()
                    .find(|e| e.0 == self.id)
                    .and_then(|e| e.2.clone());
                if let (Some(store), Ok(handle), Place::Store { path, .. }) = (
                    store,
                    tokio::runtime::Handle::try_current(),
                    self.place.clone(),
                ) {
                    handle.spawn(async move { remove_store(&store, &path).await });
                    self.unregister();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_names() {
        assert_eq!(
            Temporary::stable_name("aB3xY9_0.parquet"),
            "part-00000.parquet"
        );
        assert_eq!(Temporary::stable_name("aB3xY9_12.csv"), "part-00012.csv");
        assert_eq!(
            Temporary::stable_name("aB3xY9.parquet"),
            "part-00000.parquet"
        );
        assert_eq!(
            Temporary::stable_name("aB3xY9_3.csv.gz"),
            "part-00003.csv.gz"
        );
    }

    #[test]
    fn overlaps() {
        let t = |p: &str, dir| Target::parse(p, dir).unwrap();
        let local = |p: &str| Place::Local(normalize_local(Path::new(p)));
        assert!(t("/data/a.parquet", false).overlaps(&local("/data/a.parquet")));
        assert!(t("/data/out/", true).overlaps(&local("/data/out/x.parquet")));
        assert!(t("/data/t/x.parquet", false).overlaps(&local("/data/t")));
        assert!(!t("/data/b.parquet", false).overlaps(&local("/data/a.parquet")));
        assert!(!t("/data/ab", true).overlaps(&local("/data/a")));
        assert!(t("/data/./x/../a.csv", false).overlaps(&local("/data/a.csv")));
    }
}
