//! The context each kind of function receives. Its fields are the capabilities that kind
//! may use; the host checks the same rules again, so the types are a convenience, not the
//! security boundary.

use crate::db::{DatabaseReader, DatabaseWriter};

macro_rules! context {
    ($(#[$doc:meta])* $name:ident $({ $(#[$field_doc:meta])* $field:ident : $ty:ty })?) => {
        $(#[$doc])*
        #[derive(Debug)]
        #[non_exhaustive]
        pub struct $name {
            $($(#[$field_doc])* pub $field: $ty,)?
        }

        impl $name {
            #[doc(hidden)]
            pub fn new() -> Self {
                Self {
                    $($field: <$ty>::default(),)?
                }
            }

            /// Records one informational log line for this call (same as [`crate::log::info`]).
            pub fn log(&self, message: impl AsRef<str>) {
                crate::log::info(message);
            }
        }
    };
}

context!(
    /// The context of a query: read-only access to the database at one snapshot.
    QueryCtx {
        /// Reads at the query's snapshot.
        db: DatabaseReader
    }
);
context!(
    /// The context of a mutation: reads and writes in one serializable transaction.
    MutationCtx {
        /// Reads and writes; everything commits together when the mutation returns.
        db: DatabaseWriter
    }
);
context!(
    /// The context of an action: side effects allowed; the database only through other
    /// functions.
    ActionCtx
);

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::functions::{Callee, run};

/// `run_query`, on every context.
macro_rules! run_query {
    ($($context:ident),*) => {$(
        impl $context {
            /// Runs the query at `path` (`module:function`) with `args` and returns its
            /// result. From a query or mutation it reads this call's snapshot and writes.
            pub fn run_query<R: DeserializeOwned>(
                &self,
                path: &str,
                args: impl Serialize,
            ) -> Result<R, Error> {
                run(Callee::Query, path, args)
            }
        }
    )*};
}
run_query!(QueryCtx, MutationCtx, ActionCtx);

/// `run_mutation`, on the contexts that may call mutations.
macro_rules! run_mutation {
    ($($context:ident: $doc:literal),*) => {$(
        impl $context {
            #[doc = $doc]
            pub fn run_mutation<R: DeserializeOwned>(
                &self,
                path: &str,
                args: impl Serialize,
            ) -> Result<R, Error> {
                run(Callee::Mutation, path, args)
            }
        }
    )*};
}
run_mutation!(
    MutationCtx: "Runs the mutation at `path` inside this mutation's transaction: it sees \
        this mutation's writes and this mutation sees its writes. If it fails, its writes are \
        undone and its error returned; everything commits, or not, with this mutation.",
    ActionCtx: "Runs the mutation at `path` in a transaction of its own, committed when \
        this returns."
);

impl ActionCtx {
    /// Runs the action at `path` and returns its result.
    pub fn run_action<R: DeserializeOwned>(
        &self,
        path: &str,
        args: impl Serialize,
    ) -> Result<R, Error> {
        run(Callee::Action, path, args)
    }
}

/// `scheduler()`, on the contexts that may schedule.
macro_rules! scheduler {
    ($($context:ident: $doc:literal),*) => {$(
        impl $context {
            #[doc = $doc]
            pub fn scheduler(&self) -> crate::scheduler::Scheduler {
                crate::scheduler::Scheduler::default()
            }
        }
    )*};
}
scheduler!(
    MutationCtx: "Schedules functions to run later, as part of this mutation's transaction: \
        if the mutation fails, nothing is scheduled.",
    ActionCtx: "Schedules functions to run later; each call commits at once."
);

/// `storage()`, on every context.
macro_rules! storage {
    ($($context:ident),*) => {$(
        impl $context {
            /// Stored files: what this kind of function may do with them (see
            /// [`crate::storage`]).
            pub fn storage(&self) -> crate::storage::Storage {
                crate::storage::Storage::default()
            }
        }
    )*};
}
storage!(QueryCtx, MutationCtx, ActionCtx);
