//! Handlers: the code that runs a job of one kind, with its args decoded into a Rust type.
//!
//! Two ways to write one: an async closure or fn `(JobContext, Args) -> Result<impl
//! IntoOutcome, E>` given to [`crate::WorkerBuilder::register`], or a type implementing
//! [`Handler`] given to [`crate::WorkerBuilder::register_handler`]. Both are erased to
//! [`ErasedHandler`] so the runtime holds one map of kind → handler.
//!
//! Args that do not decode into the handler's type fail the job permanently (kind
//! `invalid_args`): no retry would decode them either.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;

use crate::JobContext;
use crate::outcome::{BoxError, IntoOutcome, KIND_INVALID_ARGS, Outcome};

/// A handler as a type, for handlers that carry state (a database pool, an HTTP client).
///
/// ```
/// use hopper_worker::{BoxError, Handler, JobContext, Outcome};
///
/// #[derive(serde::Deserialize)]
/// struct Resize { path: String, width: u32 }
///
/// struct Resizer;
///
/// impl Handler for Resizer {
///     type Args = Resize;
///     async fn handle(&self, _ctx: JobContext, args: Resize) -> Result<Outcome, BoxError> {
///         Ok(Outcome::complete_with(&format!("{} at {}px", args.path, args.width)))
///     }
/// }
/// ```
pub trait Handler: Send + Sync + 'static {
    /// The args type, decoded from the job's JSON args.
    type Args: DeserializeOwned + Send + 'static;

    /// Runs one job. `Err` is a retryable failure of kind `error`.
    fn handle(
        &self,
        ctx: JobContext,
        args: Self::Args,
    ) -> impl Future<Output = Result<Outcome, BoxError>> + Send;
}

/// A handler with its args type erased: decodes the args and runs to an [`Outcome`].
pub(crate) trait ErasedHandler: Send + Sync + 'static {
    fn call(&self, ctx: JobContext) -> BoxFuture<'static, Outcome>;
}

/// Decodes the job's args into `A`, or the outcome that refuses them.
fn decode_args<A: DeserializeOwned>(ctx: &JobContext) -> Result<A, Outcome> {
    ctx.args::<A>().map_err(|e| Outcome::FailPermanently {
        message: format!(
            "args of job kind `{}` do not decode into {}: {e}",
            ctx.kind(),
            std::any::type_name::<A>()
        ),
        kind: KIND_INVALID_ARGS.to_string(),
    })
}

/// A [`Handler`] type behind the erased interface.
pub(crate) struct TypeHandler<H>(pub Arc<H>);

impl<H: Handler> ErasedHandler for TypeHandler<H> {
    fn call(&self, ctx: JobContext) -> BoxFuture<'static, Outcome> {
        let args = match decode_args::<H::Args>(&ctx) {
            Ok(a) => a,
            Err(outcome) => return Box::pin(std::future::ready(outcome)),
        };
        let handler = self.0.clone();
        Box::pin(async move {
            match handler.handle(ctx, args).await {
                Ok(o) => o,
                Err(e) => Outcome::from_error(e.as_ref()),
            }
        })
    }
}

/// An async function or closure behind the erased interface.
pub(crate) struct FnHandler<F, A> {
    f: F,
    // `fn() -> A` keeps the handler Send + Sync whatever `A` is: no `A` is ever stored.
    _args: PhantomData<fn() -> A>,
}

impl<F, A> FnHandler<F, A> {
    pub(crate) fn new(f: F) -> FnHandler<F, A> {
        FnHandler {
            f,
            _args: PhantomData,
        }
    }
}

impl<F, A, Fut, O, E> ErasedHandler for FnHandler<F, A>
where
    F: Fn(JobContext, A) -> Fut + Send + Sync + 'static,
    A: DeserializeOwned + Send + 'static,
    Fut: Future<Output = Result<O, E>> + Send + 'static,
    O: IntoOutcome,
    E: Into<BoxError>,
{
    fn call(&self, ctx: JobContext) -> BoxFuture<'static, Outcome> {
        let args = match decode_args::<A>(&ctx) {
            Ok(a) => a,
            Err(outcome) => return Box::pin(std::future::ready(outcome)),
        };
        let fut = (self.f)(ctx, args);
        Box::pin(async move {
            match fut.await {
                Ok(o) => o.into_outcome(),
                Err(e) => {
                    let e: BoxError = e.into();
                    Outcome::from_error(e.as_ref())
                }
            }
        })
    }
}
