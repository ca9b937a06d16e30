//! JS exceptions in both directions: throwing host failures into JS (with Convex's `data`),
//! and describing what JS threw for the host (a deploy error or a function's error).

use javy::quickjs::{Ctx, Exception, Function, Object, Value};

use crate::bindings::kiln::platform::types::FunctionError;

/// Throws `new Error(message)` into JS, with `.data` set to the Convex JSON value `data`
/// (what convex/server turns into a ConvexError's data). Returns the error to propagate.
pub(crate) fn throw(ctx: &Ctx<'_>, message: &str, data: Option<&str>) -> rquickjs::Error {
    let build = || -> rquickjs::Result<Value<'_>> {
        let exception = Exception::from_message(ctx.clone(), message)?;
        if let Some(data) = data {
            let value = ctx.json_parse(data.to_string())?;
            exception.as_object().set("data", value)?;
        }
        Ok(exception.into_value())
    };
    match build() {
        Ok(value) => ctx.throw(value),
        Err(err) => err,
    }
}

/// The value JS threw, for an `rquickjs::Error` out of a call into JS.
pub(crate) fn caught<'js>(ctx: &Ctx<'js>, err: rquickjs::Error) -> Value<'js> {
    if let rquickjs::Error::Exception = err {
        return ctx.catch();
    }
    match Exception::from_message(ctx.clone(), &err.to_string()) {
        Ok(exception) => exception.into_value(),
        Err(_) => Value::new_undefined(ctx.clone()),
    }
}

/// One line for an error out of loading: `SyntaxError: unexpected token in expression: ')'
/// at chat/messages.js:3:14`.
pub(crate) fn describe(ctx: &Ctx<'_>, err: rquickjs::Error) -> String {
    describe_value(ctx, caught(ctx, err))
}

pub(crate) fn describe_value<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> String {
    let Some(object) = value.as_object() else {
        return format!("Uncaught {}", to_text(ctx, value));
    };
    let name: String = object.get("name").unwrap_or_else(|_| "Error".to_string());
    let message: String = object
        .get::<_, Value>("message")
        .map(|message| to_text(ctx, message))
        .unwrap_or_default();
    let stack: String = object.get("stack").unwrap_or_default();
    match first_location(&stack) {
        Some(location) => format!("{name}: {message} at {location}"),
        None => format!("{name}: {message}"),
    }
}

/// `file:line:col` of the innermost frame of a QuickJS stack (`    at f (file:3:14)` or,
/// for a syntax error, `    at file:3:14`).
fn first_location(stack: &str) -> Option<String> {
    let line = stack
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("at "))?;
    let frame = line.trim_start_matches("at ");
    let location = match (frame.rfind('('), frame.ends_with(')')) {
        (Some(open), true) => &frame[open + 1..frame.len() - 1],
        _ => frame,
    };
    (location != "native" && !location.is_empty()).then(|| location.to_string())
}

fn to_text<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> String {
    javy::val_to_string(ctx, value).unwrap_or_else(|_| "(a value that has no text)".into())
}

/// A function's failure as the host reports it: the environment's `describeError` gives
/// Convex's `Uncaught Name: message` with frames, and a ConvexError's data.
pub(crate) fn function_error<'js>(
    ctx: &Ctx<'js>,
    environment: &Object<'js>,
    reason: Value<'js>,
) -> FunctionError {
    let described = environment
        .get::<_, Function>("describeError")
        .and_then(|describe| describe.call::<_, Object>((reason.clone(),)))
        .and_then(|described| {
            Ok(FunctionError {
                message: described.get("message")?,
                data: described.get::<_, Option<String>>("data")?,
            })
        });
    described.unwrap_or_else(|_| {
        let _ = ctx.catch();
        FunctionError {
            message: describe_value(ctx, reason),
            data: None,
        }
    })
}
