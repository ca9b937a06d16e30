//! The context each kind of function receives. Its methods are the capabilities that kind
//! may use; the host checks the same rules again, so the types are a convenience, not the
//! security boundary.

macro_rules! context {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name {
            _private: (),
        }

        impl $name {
            #[doc(hidden)]
            pub fn new() -> Self {
                Self { _private: () }
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
    QueryCtx
);
context!(
    /// The context of a mutation: reads and writes in one serializable transaction.
    MutationCtx
);
context!(
    /// The context of an action: side effects allowed; the database only through other
    /// functions.
    ActionCtx
);
