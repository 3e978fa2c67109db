//! What a cluster process is: its skewless version and function set, as
//! two SQL functions a client calls at connect to check the cluster
//! against itself.
//!
//! `skewless_scheduler_identity()` is registered as immutable on the
//! scheduler, so the scheduler's optimizer replaces the call with its own
//! identity when it plans the query, and as volatile on the client, so the
//! client's optimizer leaves it for the scheduler.
//! `skewless_executor_identity()` is volatile everywhere: an executor
//! evaluates it. A process without them (a stock Ballista binary) fails
//! to plan the query, which the client reports as such.
//!
//! Each answer also carries the process's gRPC message limit and, for an
//! executor, its task slots (`IDENTITY|LIMIT|SLOTS`): a client refuses a
//! plan too large for the smallest limit on its way, with an error that
//! says so, rather than leaving the job to fail somewhere on the cluster.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use sha2::Digest;

/// This process's identity: `skewless VERSION (functions DIGEST)`, the
/// digest over the sorted names of skewless's SQL functions.
///
/// `SKEWLESS_CLUSTER_IDENTITY` replaces it, to check the check: a process
/// started with another value looks like another build of skewless.
pub fn identity() -> &'static str {
    static IDENTITY: LazyLock<String> = LazyLock::new(|| {
        if let Ok(forced) = std::env::var(IDENTITY_VAR) {
            return forced;
        }
        let mut names = skewless_udfs::function_names();
        names.sort();
        let digest = sha2::Sha256::digest(names.join("\n").as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("skewless {} (functions {hex})", env!("CARGO_PKG_VERSION"))
    });
    &IDENTITY
}

/// The gRPC message limit of cluster processes and clients unless set
/// (`--grpc-max-message-size`): 1 GiB, far above Ballista's 16 MiB, so
/// that a plan with a large inlined vocabulary travels (tonic allocates a
/// message's size only when one that large comes).
pub const DEFAULT_MESSAGE_LIMIT: usize = 1 << 30;

static MESSAGE_LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_MESSAGE_LIMIT);
static SLOTS: AtomicUsize = AtomicUsize::new(0);

/// Sets this process's gRPC message limit (bytes) and task slots (an
/// executor's vcores), which its identity answers carry.
pub fn set_limits(message_limit: usize, slots: usize) {
    MESSAGE_LIMIT.store(message_limit, Ordering::Relaxed);
    SLOTS.store(slots, Ordering::Relaxed);
}

/// This process's gRPC message limit, in bytes.
pub fn message_limit() -> usize {
    MESSAGE_LIMIT.load(Ordering::Relaxed)
}

/// What an identity function answers: `IDENTITY|LIMIT|SLOTS`.
fn answer() -> String {
    format!(
        "{}|{}|{}",
        identity(),
        message_limit(),
        SLOTS.load(Ordering::Relaxed)
    )
}

/// An answer read back: identity, message limit, task slots.
pub fn parse_answer(answer: &str) -> (&str, Option<usize>, Option<usize>) {
    let mut fields = answer.rsplitn(3, '|');
    let (slots, limit, id) = (fields.next(), fields.next(), fields.next());
    match (id, limit, slots) {
        (Some(id), Some(limit), Some(slots)) => (id, limit.parse().ok(), slots.parse().ok()),
        _ => (answer, None, None),
    }
}

/// The environment variable that replaces a process's identity.
pub const IDENTITY_VAR: &str = "SKEWLESS_CLUSTER_IDENTITY";

/// The name of the function the scheduler answers.
pub const SCHEDULER: &str = "skewless_scheduler_identity";
/// The name of the function an executor answers.
pub const EXECUTOR: &str = "skewless_executor_identity";

/// Which side a process registers the functions for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Scheduler,
    Executor,
}

/// The two identity functions as `side` registers them.
pub fn functions(side: Side) -> Vec<Arc<ScalarUDF>> {
    let scheduler = if side == Side::Scheduler {
        Volatility::Immutable
    } else {
        Volatility::Volatile
    };
    vec![
        Arc::new(ScalarUDF::new_from_impl(Identity::new(
            SCHEDULER, scheduler,
        ))),
        Arc::new(ScalarUDF::new_from_impl(Identity::new(
            EXECUTOR,
            Volatility::Volatile,
        ))),
    ]
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Identity {
    name: &'static str,
    signature: Signature,
}

impl Identity {
    fn new(name: &'static str, volatility: Volatility) -> Self {
        Self {
            name,
            signature: Signature::exact(vec![], volatility),
        }
    }
}

impl ScalarUDFImpl for Identity {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(answer()))))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_answer;

    #[test]
    fn answers_read_back() {
        assert_eq!(
            parse_answer("skewless 0.1.0 (functions 0123)|1073741824|2"),
            ("skewless 0.1.0 (functions 0123)", Some(1 << 30), Some(2))
        );
        // An identity without limits (forced, or another build).
        assert_eq!(
            parse_answer("skewless 9.9.9"),
            ("skewless 9.9.9", None, None)
        );
    }
}
