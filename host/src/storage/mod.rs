//! File storage (issue 14, in progress): bytes on disk under the data directory
//! (`files`), records in the system table `_storage`.

pub mod files;
pub mod records;
pub mod tokens;
