//! The attributes that turn an ordinary Rust function into a Kiln function:
//! `#[query]`, `#[mutation]`, `#[action]` and `#[http_action]`.
//!
//! Each attribute leaves the function as written and registers it, by name and kind, in
//! the module's function list (through `inventory`), together with a small adapter that
//! decodes the arguments into the function's argument type and encodes its result. The
//! adapter is what `kiln::__private` calls; authors never see it.
//!
//! Accepted forms: `#[query]`, `#[query(internal)]`, `#[query(name = "default")]`,
//! `#[query(unchecked)]`, `#[query(unchecked(args))]`, `#[query(unchecked(returns))]`, in
//! any combination. The function takes the context and, optionally, one argument value:
//! `fn f(ctx: &QueryCtx) -> Result<T, E>` or `fn f(ctx: &QueryCtx, args: A) -> Result<T, E>`
//! where `A: DeserializeOwned + Validate`, `T: Serialize + Validate` and
//! `E: Into<kiln::Error>`.
//!
//! Validators: the attribute declares `A`'s validator as the function's args validator (an
//! empty object when it takes no argument value) and `T`'s as its returns validator, and
//! the host checks every call against them. `unchecked` declares neither (and needs no
//! `Validate` impls); `unchecked(args)` / `unchecked(returns)` leave out one.
//!
//! `#[derive(Validate)]` is in `validate.rs`.

mod validate;

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{DeriveInput, Expr, ExprLit, FnArg, ItemFn, Lit, Meta, ReturnType, Token};

/// Derives `kiln::Validate`: the Convex validator of the type's serde form, honouring the
/// `#[serde(...)]` attributes that change it. See the SDK's `Validate` documentation.
#[proc_macro_derive(Validate, attributes(kiln, serde))]
pub fn derive_validate(item: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(item as DeriveInput);
    match validate::derive(input) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// Declares a query: reads the database at one snapshot, may not write.
#[proc_macro_attribute]
pub fn query(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand("Query", attr, item)
}

/// Declares a mutation: reads and writes the database in one transaction.
#[proc_macro_attribute]
pub fn mutation(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand("Mutation", attr, item)
}

/// Declares an action: may have side effects, reaches the database through other functions.
#[proc_macro_attribute]
pub fn action(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand("Action", attr, item)
}

/// Declares an HTTP action served at a route: `#[http_action(method = "GET", path =
/// "/hello")]`, or `path_prefix = "/files/"` for every path under a prefix. The function
/// takes the action context and the request: `fn f(ctx: &kiln::ActionCtx, request:
/// kiln::HttpRequest) -> Result<kiln::HttpResponse, E>`.
#[proc_macro_attribute]
pub fn http_action(attr: TokenStream, item: TokenStream) -> TokenStream {
    match try_expand_http(attr, item) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// The methods a route may have (Convex's `ROUTABLE_HTTP_METHODS`).
const ROUTABLE_METHODS: [&str; 6] = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

fn try_expand_http(attr: TokenStream, item: TokenStream) -> syn::Result<proc_macro2::TokenStream> {
    let function: ItemFn = syn::parse(item)?;
    let ident = &function.sig.ident;
    let mut method = None;
    let mut path = None;
    let mut name = None;
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse(attr)?;
    for meta in &metas {
        let Meta::NameValue(nv) = meta else {
            return Err(syn::Error::new_spanned(
                meta,
                "expected method = \"GET\", path = \"/...\" or path_prefix = \"/.../\", name = \"...\"",
            ));
        };
        let Expr::Lit(ExprLit {
            lit: Lit::Str(value),
            ..
        }) = &nv.value
        else {
            return Err(syn::Error::new_spanned(&nv.value, "expected a string"));
        };
        if nv.path.is_ident("method") {
            let text = value.value();
            if !ROUTABLE_METHODS.contains(&text.as_str()) {
                return Err(syn::Error::new_spanned(
                    value,
                    format!("method must be one of {}", ROUTABLE_METHODS.join(", ")),
                ));
            }
            method = Some(text);
        } else if nv.path.is_ident("path") || nv.path.is_ident("path_prefix") {
            let prefix = nv.path.is_ident("path_prefix");
            let text = value.value();
            if !text.starts_with('/') || (prefix && !text.ends_with('/')) {
                return Err(syn::Error::new_spanned(
                    value,
                    "a path starts with /; a path_prefix also ends with /",
                ));
            }
            if path.replace((text, prefix)).is_some() {
                return Err(syn::Error::new_spanned(
                    meta,
                    "give either path or path_prefix, once",
                ));
            }
        } else if nv.path.is_ident("name") {
            name = Some(value.value());
        } else {
            return Err(syn::Error::new_spanned(
                &nv.path,
                "expected method, path, path_prefix or name",
            ));
        }
    }
    let method = method.ok_or_else(|| {
        syn::Error::new(Span::call_site(), "an HTTP action needs method = \"...\"")
    })?;
    let (path, prefix) = path.ok_or_else(|| {
        syn::Error::new(
            Span::call_site(),
            "an HTTP action needs path = \"/...\" or path_prefix = \"/.../\"",
        )
    })?;
    if function.sig.inputs.len() != 2 {
        return Err(syn::Error::new_spanned(
            &function.sig.inputs,
            format!(
                "an HTTP action takes the context and the request: \
                 fn {ident}(ctx: &kiln::ActionCtx, request: kiln::HttpRequest)"
            ),
        ));
    }
    let name = name.unwrap_or_else(|| ident.to_string().trim_start_matches("r#").to_string());
    Ok(quote! {
        #function

        ::kiln::__private::inventory::submit! {
            ::kiln::__private::Registration {
                name: #name,
                kind: ::kiln::FunctionKind::HttpAction,
                visibility: ::kiln::Visibility::Public,
                // An HTTP action takes a request and returns a response, not values.
                args: ::core::option::Option::None,
                returns: ::core::option::Option::None,
                handler: ::kiln::__private::Handler::Http {
                    route: ::kiln::__private::Route {
                        method: #method,
                        path: #path,
                        prefix: #prefix,
                    },
                    invoke: |request: ::kiln::HttpRequest| -> ::core::result::Result<::kiln::HttpResponse, ::kiln::Error> {
                        let ctx = ::kiln::ActionCtx::new();
                        #ident(&ctx, request).map_err(::core::convert::Into::into)
                    },
                },
            }
        }
    })
}

struct Options {
    internal: bool,
    name: Option<String>,
    check_args: bool,
    check_returns: bool,
}

fn parse_options(attr: TokenStream) -> syn::Result<Options> {
    let mut options = Options {
        internal: false,
        name: None,
        check_args: true,
        check_returns: true,
    };
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse(attr)?;
    for meta in metas {
        match &meta {
            Meta::Path(path) if path.is_ident("internal") => options.internal = true,
            Meta::Path(path) if path.is_ident("unchecked") => {
                options.check_args = false;
                options.check_returns = false;
            }
            Meta::List(list) if list.path.is_ident("unchecked") => {
                let sides =
                    list.parse_args_with(Punctuated::<syn::Ident, Token![,]>::parse_terminated)?;
                for side in sides {
                    match side.to_string().as_str() {
                        "args" => options.check_args = false,
                        "returns" => options.check_returns = false,
                        _ => {
                            return Err(syn::Error::new_spanned(
                                side,
                                "expected `unchecked(args)`, `unchecked(returns)` or both",
                            ));
                        }
                    }
                }
            }
            Meta::NameValue(nv) if nv.path.is_ident("name") => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => options.name = Some(s.value()),
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "`name` takes a string: name = \"default\"",
                    ));
                }
            },
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "expected `internal`, `name = \"...\"`, `unchecked`, `unchecked(args)` or \
                     `unchecked(returns)`",
                ));
            }
        }
    }
    Ok(options)
}

fn expand(kind: &str, attr: TokenStream, item: TokenStream) -> TokenStream {
    match try_expand(kind, attr, item) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

fn try_expand(
    kind: &str,
    attr: TokenStream,
    item: TokenStream,
) -> syn::Result<proc_macro2::TokenStream> {
    let options = parse_options(attr)?;
    let function: ItemFn = syn::parse(item)?;
    let ident = &function.sig.ident;
    if function.sig.asyncness.is_some() {
        return Err(syn::Error::new_spanned(
            function.sig.asyncness,
            "Kiln functions are synchronous: host calls block the guest, not the server",
        ));
    }
    let name = options
        .name
        .unwrap_or_else(|| ident.to_string().trim_start_matches("r#").to_string());
    let kind_ident = syn::Ident::new(kind, Span::call_site());
    let context = syn::Ident::new(&format!("{kind}Ctx"), Span::call_site());
    let visibility = if options.internal {
        quote!(::kiln::Visibility::Internal)
    } else {
        quote!(::kiln::Visibility::Public)
    };
    let call = match function.sig.inputs.len() {
        1 => quote! {
            ::kiln::__private::no_args(args)?;
            #ident(&ctx)
        },
        2 => quote! {
            #ident(&ctx, ::kiln::__private::decode_args(args)?)
        },
        _ => {
            return Err(syn::Error::new_spanned(
                &function.sig.inputs,
                format!(
                    "a Kiln function takes the context and at most one argument value: \
                     fn {ident}(ctx: &kiln::{context}, args: Args)"
                ),
            ));
        }
    };

    let args_validator = match (options.check_args, function.sig.inputs.iter().nth(1)) {
        (false, _) => quote!(::core::option::Option::None),
        (true, None) => quote!(::core::option::Option::Some(
            ::kiln::__private::no_args_validator
        )),
        (true, Some(FnArg::Typed(arg))) => {
            let ty = &arg.ty;
            quote!(::core::option::Option::Some(<#ty as ::kiln::Validate>::validator))
        }
        (true, Some(receiver)) => {
            return Err(syn::Error::new_spanned(
                receiver,
                "a Kiln function is a free function",
            ));
        }
    };
    let returns_validator = match (&function.sig.output, options.check_returns) {
        (_, false) => quote!(::core::option::Option::None),
        (ReturnType::Type(_, ty), true) => quote!(::core::option::Option::Some(
            <<#ty as ::kiln::__private::FunctionResult>::Ok as ::kiln::Validate>::validator
        )),
        (ReturnType::Default, true) => {
            return Err(syn::Error::new_spanned(
                &function.sig,
                "a Kiln function returns a Result: -> Result<T, kiln::Error>",
            ));
        }
    };

    Ok(quote! {
        #function

        ::kiln::__private::inventory::submit! {
            ::kiln::__private::Registration {
                name: #name,
                kind: ::kiln::FunctionKind::#kind_ident,
                visibility: #visibility,
                args: #args_validator,
                returns: #returns_validator,
                handler: ::kiln::__private::Handler::Call(|args: ::kiln::Value| -> ::core::result::Result<::std::string::String, ::kiln::Error> {
                    let ctx = ::kiln::#context::new();
                    let result = { #call };
                    ::kiln::__private::encode_result(result)
                }),
            }
        }
    })
}
