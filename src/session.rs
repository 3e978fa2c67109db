//! The DataFusion session skewless runs SQL in: our functions registered,
//! configuration from `DATAFUSION_*` environment variables, object stores
//! (`s3://`, `gs://`, `az://`) created on first use from the standard
//! environment variables of each cloud.

use std::sync::Arc;

use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use object_store::ObjectStore;
use url::Url;

use crate::error::Result;

/// Builds the session every skewless command runs in.
///
/// Configuration comes from DataFusion's `DATAFUSION_*` environment variables
/// (for example `DATAFUSION_EXECUTION_TARGET_PARTITIONS`), then SQL `SET`
/// statements change it for the rest of the session.
///
/// One default differs from DataFusion's: Parquet is written with zstd at
/// level 1 rather than 3 (`DATAFUSION_EXECUTION_PARQUET_COMPRESSION` or
/// `SET datafusion.execution.parquet.compression` chooses another). Writing
/// the comparison's 10M rows of features takes 9% less time for a file 3%
/// larger (BENCHMARKS.md).
pub fn new_context() -> Result<SessionContext> {
    new_context_with_config(config_from_env(true)?)
}

/// The configuration of [`new_context`]'s sessions.
pub fn config() -> Result<SessionConfig> {
    config_from_env(true)
}

/// The configuration from `DATAFUSION_*` environment variables, with
/// skewless's Parquet codec unless the environment chooses one.
pub(crate) fn config_from_env(information_schema: bool) -> Result<SessionConfig> {
    let mut config = SessionConfig::from_env()?.with_information_schema(information_schema);
    if std::env::var_os(COMPRESSION_VAR).is_none() {
        config.options_mut().execution.parquet.compression = Some(DEFAULT_COMPRESSION.into());
    }
    Ok(config)
}

const COMPRESSION_VAR: &str = "DATAFUSION_EXECUTION_PARQUET_COMPRESSION";

/// The Parquet codec skewless writes with unless told otherwise.
pub const DEFAULT_COMPRESSION: &str = "zstd(1)";

/// Like [`new_context`], with an explicit configuration.
pub fn new_context_with_config(config: SessionConfig) -> Result<SessionContext> {
    let state = state_builder(config)?.build();
    // `SELECT * FROM 'data/file.parquet'` reads a location directly.
    Ok(SessionContext::new_with_state(with_skewless(state)?).enable_url_table())
}

/// A session that reads only the tables registered on it: skewless's
/// functions and DataFusion's built-in scalar and aggregate functions, but
/// no URL tables (`FROM '/path/file'`) and no table functions. An
/// artifact's SQL is planned here ([`crate::artifact::check`]).
pub fn sealed_context() -> Result<SessionContext> {
    let state = state_builder(config_from_env(false)?)?
        .with_table_functions(Default::default())
        .build();
    Ok(SessionContext::new_with_state(with_skewless(state)?))
}

/// A query server's client session: skewless's functions and formats, the
/// configuration from the environment, no URL tables (`FROM '/path'`
/// would read any file of the server's), and DDL and SET held by a memory
/// pool of `memory` bytes (each query gets a pool of its own:
/// [`crate::query`]).
pub fn server_context(memory: usize) -> Result<SessionContext> {
    let runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::new(CloudStores::default()))
        .with_memory_pool(Arc::new(
            datafusion::execution::memory_pool::FairSpillPool::new(memory),
        ))
        .build_arc()?;
    let state = state_builder_on(config()?, runtime).build();
    Ok(SessionContext::new_with_state(with_skewless(state)?))
}

/// DataFusion's defaults over skewless's object stores.
fn state_builder(config: SessionConfig) -> Result<SessionStateBuilder> {
    let runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::new(CloudStores::default()))
        .build_arc()?;
    Ok(state_builder_on(config, runtime))
}

fn state_builder_on(
    config: SessionConfig,
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
) -> SessionStateBuilder {
    // skewless's window steps run on every entity at once, planned before
    // DataFusion's rules add a sort (skewless_udfs::window::exec).
    let rules = skewless_udfs::window::exec::with_entity_windows(
        datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules,
    );
    SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_physical_optimizer_rules(rules)
}

/// Registers skewless's functions and file formats.
fn with_skewless(
    mut state: datafusion::execution::SessionState,
) -> Result<datafusion::execution::SessionState> {
    skewless_udfs::register_all(&mut state)?;
    register_formats(&mut state)?;
    Ok(state)
}

/// NDJSON in skewless's JSON convention ([`crate::json`]) replaces
/// DataFusion's JSON format, under `json`, `ndjson` and `jsonl`.
fn register_formats(state: &mut datafusion::execution::SessionState) -> Result<()> {
    for factory in crate::json::format::JsonFormatFactory::all() {
        state.register_file_format(factory, true)?;
    }
    Ok(())
}

/// An object store registry that creates cloud stores on first use.
///
/// Local files work as in DataFusion. The first URL of a bucket
/// (`s3://bucket/…`, `gs://bucket/…`, `az://container/…`) builds a store from
/// the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP` for S3 and S3-compatible
/// servers; `GOOGLE_*` for Google Cloud Storage; `AZURE_*` for Azure.
#[derive(Debug, Default)]
pub struct CloudStores {
    stores: DefaultObjectStoreRegistry,
}

impl ObjectStoreRegistry for CloudStores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.stores.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
        self.stores.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.stores.get_store(url) {
            return Ok(store);
        }
        let store = cloud_store(url)?;
        self.stores.register_store(url, Arc::clone(&store));
        Ok(store)
    }
}

/// Builds the store for a cloud URL from the environment.
fn cloud_store(url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
    let bucket = url
        .host_str()
        .ok_or_else(|| DataFusionError::Configuration(format!("'{url}' has no bucket name")))?;
    let built: Result<Arc<dyn ObjectStore>, object_store::Error> = match url.scheme() {
        "s3" | "s3a" => object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map(|s| Arc::new(s) as _),
        "gs" | "gcs" => object_store::gcp::GoogleCloudStorageBuilder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map(|s| Arc::new(s) as _),
        "az" | "azure" | "abfs" | "abfss" | "adl" => {
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .build()
                .map(|s| Arc::new(s) as _)
        }
        other => {
            return Err(DataFusionError::Configuration(format!(
                "no object store for scheme '{other}' in '{url}': \
                 skewless reads local paths, s3://, gs:// and az://"
            )));
        }
    };
    built.map_err(|e| {
        DataFusionError::Configuration(format!(
            "cannot set up object store for '{}://{bucket}': {e}",
            url.scheme()
        ))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parquet_is_written_with_zstd_level_1_by_default() {
        if std::env::var_os(super::COMPRESSION_VAR).is_some() {
            return; // configured by whoever runs the tests
        }
        let ctx = super::new_context().unwrap();
        let state = ctx.state();
        let compression = &state.config_options().execution.parquet.compression;
        assert_eq!(compression.as_deref(), Some("zstd(1)"));
    }
}
