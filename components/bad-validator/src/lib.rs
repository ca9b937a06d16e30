//! Declares a validator Convex does not allow (a record whose keys are numbers): the deploy
//! must fail, naming the function.

use kiln::{Error, QueryCtx, Validate, Validator, query};
use serde::Serialize;

#[derive(Serialize)]
struct Scores;

impl Validate for Scores {
    fn validator() -> Validator {
        Validator::record(Validator::Float64, Validator::Float64)
    }
}

#[query]
fn scores(_ctx: &QueryCtx) -> Result<Scores, Error> {
    Ok(Scores)
}
