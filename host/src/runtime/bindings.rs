//! Host bindings of the `kiln:platform` WIT world (`wit/`).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "kiln:platform/function-module",
    imports: { default: async },
    exports: { default: async },
    with: {
        "kiln:platform/db.cursor": crate::capabilities::db::QueryCursor,
        "kiln:platform/http.response-body": crate::capabilities::http::ResponseBody,
    },
});
