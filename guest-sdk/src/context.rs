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
