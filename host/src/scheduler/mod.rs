//! The scheduler (DESIGN.md section 1; Convex's `ctx.scheduler` and cron jobs): jobs are
//! documents of the system table `_scheduled_functions` (`jobs`), written by functions
//! through `kiln:platform/scheduler` (`capabilities::scheduler`) and run by the executor
//! (`executor`): exactly once for mutations, at most once for actions.

pub mod crons;
pub mod executor;
pub mod jobs;

pub use executor::Executor;
