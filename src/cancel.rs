//! Stopping a statement that is running, and the process on a signal.
//!
//! Dropping a DataFusion stream stops its tasks at their next `.await`, but
//! an operator can work for a long time inside one poll (a nested-loop join
//! that matches few rows goes through all of its input there), keeping the
//! runtime's workers busy after the query was given up. [`cancellable`]
//! puts a [`CancelToken`] check between every operator and its inputs: once
//! the token is cancelled, the next batch any operator asks its input for
//! is an error, and the operator returns — the work stops within one batch
//! of the operator's input.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result, internal_err};
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::Stream;

/// Cancels the statements that hold a clone of it.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The message of a cancelled statement's error.
pub const CANCELLED: &str = "the query was cancelled";

/// `plan` with a check of `token` above each of its nodes.
pub fn cancellable(
    plan: Arc<dyn ExecutionPlan>,
    token: &CancelToken,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let wrapped = CancelExec {
            input: node,
            token: token.clone(),
        };
        Ok(Transformed::yes(Arc::new(wrapped) as Arc<dyn ExecutionPlan>))
    })
    .map(|t| t.data)
}

/// Passes its input through until its token is cancelled.
#[derive(Debug)]
struct CancelExec {
    input: Arc<dyn ExecutionPlan>,
    token: CancelToken,
}

impl DisplayAs for CancelExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CancelExec")
    }
}

impl ExecutionPlan for CancelExec {
    fn name(&self) -> &str {
        "CancelExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("CancelExec takes one child");
        }
        Ok(Arc::new(Self {
            input: children.swap_remove(0),
            token: self.token.clone(),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        Ok(Box::pin(CancelStream {
            input: self.input.execute(partition, context)?,
            token: self.token.clone(),
        }))
    }
}

struct CancelStream {
    input: SendableRecordBatchStream,
    token: CancelToken,
}

impl Stream for CancelStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.token.is_cancelled() {
            return Poll::Ready(Some(Err(DataFusionError::Execution(CANCELLED.into()))));
        }
        self.input.as_mut().poll_next(cx)
    }
}

impl RecordBatchStream for CancelStream {
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }
}

/// A termination signal received while a command ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    pub name: &'static str,
    pub number: i32,
}

/// Resolves when SIGINT (if `interrupt`) or SIGTERM arrives. The signals
/// are caught by signal-hook on a thread of their own: the runtime's workers
/// may all be busy.
pub fn on_signal(interrupt: bool) -> std::io::Result<tokio::sync::oneshot::Receiver<Signal>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut wanted = vec![SIGTERM];
    if interrupt {
        wanted.push(SIGINT);
    }
    let mut signals = signal_hook::iterator::Signals::new(&wanted)?;
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("skewless-signals".into())
        .spawn(move || {
            if let Some(number) = signals.forever().next() {
                let name = if number == SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                let _ = sender.send(Signal { name, number });
            }
        })?;
    Ok(receiver)
}
