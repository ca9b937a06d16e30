//! Hooks for the benchmark harness (`cargo xtask bench`): figures that no request path
//! produces. Nothing in the server calls these.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_values::Value;

use super::call::CallContext;
use super::determinism::FrozenInputs;
use super::invocation::DbAccess;
use super::{FunctionFailure, FunctionKind, LoadedModule, Runtime};

/// How long the two calls of [`Runtime::time_first_and_warm_query`] took.
#[derive(Debug, Clone, Copy)]
pub struct FirstAndWarm {
    /// A fresh instance and its first call: what every call the server makes costs.
    pub first: Duration,
    /// A second call on the same instance, which the server never makes (it gives each
    /// call a fresh instance): the cost of the call itself, without the instance.
    pub warm: Duration,
}

impl Runtime {
    /// Runs the query `function` of `module` twice on one new instance, reading one
    /// snapshot, and times both calls. Arguments are not checked against the validator.
    #[doc(hidden)]
    pub async fn time_first_and_warm_query(
        self: &Arc<Self>,
        module: &LoadedModule,
        function: &str,
        args: &Value,
    ) -> Result<FirstAndWarm, FunctionFailure> {
        let args_text = args.to_convex_json_string();
        let function = module.guest_name(function);
        let db = DbAccess::NotBegun {
            store: self.store.clone(),
            writable: false,
        };
        let started = Instant::now();
        let (outcome, _log_lines, _db) = self
            .with_instance(
                &module.pre,
                CallContext::isolated(),
                FunctionKind::Query,
                db,
                Some(FrozenInputs::now()),
                move |store, instance| {
                    Box::pin(async move {
                        let module = instance.kiln_platform_module();
                        let first = module.call_call(&mut *store, &function, &args_text).await?;
                        let first_elapsed = started.elapsed();
                        let warm_started = Instant::now();
                        let warm = module.call_call(&mut *store, &function, &args_text).await?;
                        let warm_elapsed = warm_started.elapsed();
                        Ok((first, warm, first_elapsed, warm_elapsed))
                    })
                },
            )
            .await;
        let (first, warm, first_elapsed, warm_elapsed) = outcome?;
        for returned in [first, warm] {
            if let Err(error) = returned {
                return Err(FunctionFailure::Raised {
                    message: error.message,
                    data: None,
                });
            }
        }
        Ok(FirstAndWarm {
            first: first_elapsed,
            warm: warm_elapsed,
        })
    }
}
