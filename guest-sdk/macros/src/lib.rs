//! The attributes that turn an ordinary Rust function into a Kiln function:
//! `#[query]`, `#[mutation]` and `#[action]`.
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
                invoke: |args: ::kiln::Value| -> ::core::result::Result<::kiln::Value, ::kiln::Error> {
                    let ctx = ::kiln::#context::new();
                    let result = { #call };
                    ::kiln::__private::encode_result(result)
                },
            }
        }
    })
}
