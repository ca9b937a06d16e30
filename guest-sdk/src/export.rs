//! The SDK's implementation of the `kiln:platform/module` export: lists the registered
//! functions and dispatches calls to them.

use std::sync::Once;

use kiln_values::Value;

use crate::__private::{Handler, Registration, registrations};
use crate::bindings::exports::kiln::platform::module::Guest;
use crate::bindings::kiln::platform::types::{
    FunctionError, FunctionKind as WitKind, FunctionSpec, HttpRequest, HttpResponse, HttpRoute,
    Visibility as WitVisibility,
};
use crate::{Error, FunctionKind, Visibility};

struct Module;

impl Guest for Module {
    fn functions() -> Vec<FunctionSpec> {
        registrations()
            .map(|registration| FunctionSpec {
                name: registration.name.to_string(),
                kind: match registration.kind {
                    FunctionKind::Query => WitKind::Query,
                    FunctionKind::Mutation => WitKind::Mutation,
                    FunctionKind::Action => WitKind::Action,
                    FunctionKind::HttpAction => WitKind::HttpAction,
                },
                visibility: match registration.visibility {
                    Visibility::Public => WitVisibility::Public,
                    Visibility::Internal => WitVisibility::Internal,
                },
                args: registration.args.map(|build| build().to_json_string()),
                returns: registration.returns.map(|build| build().to_json_string()),
                route: match &registration.handler {
                    Handler::Http { route, .. } => Some(HttpRoute {
                        method: route.method.to_string(),
                        path: route.path.to_string(),
                        prefix: route.prefix,
                    }),
                    Handler::Call(_) => None,
                },
            })
            .collect()
    }

    fn call(name: String, args: String) -> Result<String, FunctionError> {
        install_panic_hook();
        let Handler::Call(invoke) = &find(&name)?.handler else {
            return Err(to_wit_error(Error::new(format!(
                "`{name}` is an HTTP action: call it through its route"
            ))));
        };
        let args = Value::from_convex_json_str(&args)
            .map_err(|err| to_wit_error(Error::new(format!("invalid arguments: {err}"))))?;
        invoke(args).map_err(to_wit_error)
    }

    fn call_http(name: String, request: HttpRequest) -> Result<HttpResponse, FunctionError> {
        install_panic_hook();
        let Handler::Http { invoke, .. } = &find(&name)?.handler else {
            return Err(to_wit_error(Error::new(format!(
                "`{name}` is not an HTTP action"
            ))));
        };
        invoke(request.into()).map(Into::into).map_err(to_wit_error)
    }
}

fn find(name: &str) -> Result<&'static Registration, FunctionError> {
    registrations()
        .find(|registration| registration.name == name)
        .ok_or_else(|| {
            to_wit_error(Error::new(format!(
                "no function named `{name}` in this module"
            )))
        })
}

fn to_wit_error(error: Error) -> FunctionError {
    FunctionError {
        message: error.message().to_string(),
        data: error.data().map(Value::to_convex_json_string),
    }
}

/// A panic aborts the instance (wasm has no unwinding here); log its message first so the
/// caller sees why, not only that the guest trapped.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            crate::log::error(format!("panicked: {info}"))
        }));
    });
}

crate::bindings::export!(Module with_types_in crate::bindings);
