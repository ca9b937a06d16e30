//! Functions that report what the sandbox gives them, for the end-to-end tests: a
//! filtered paginated query, for the tests that look inside its cursor.

use kiln::{Error, Order, PaginationOpts, PaginationResult, QueryCtx, Value, query};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaginateWhere {
    table: String,
    index: String,
    descending: bool,
    /// Only documents whose `field` equals `equals` are returned; the others are still
    /// scanned, and the cursor may stand on one of them.
    field: String,
    equals: Value,
    pagination_opts: PaginationOpts,
}

/// One page of `table` through `index` (its whole range), filtered.
#[query]
fn paginate_where(ctx: &QueryCtx, args: PaginateWhere) -> Result<PaginationResult, Error> {
    ctx.db
        .query(&args.table)
        .with_index(&args.index, |range| range)
        .order(if args.descending {
            Order::Desc
        } else {
            Order::Asc
        })
        .filter(|f| f.eq(f.field(&args.field), f.literal(&args.equals)))
        .paginate(&args.pagination_opts)
}
