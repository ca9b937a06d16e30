//! `#[derive(Validate)]`: the Convex validator of a struct or enum's serde form.
//!
//! serde's own reading of the `#[serde(...)]` attributes (`serde_derive_internals`, in its
//! deserializing view: arguments are what gets validated most) decides the shape, so the
//! validator describes exactly what serde reads and writes:
//!
//! * names: `rename`, `rename_all`, `rename_all_fields`; an `alias` adds an optional field
//!   and makes the main one optional too;
//! * a field may be absent when it has `default` (its own or the container's), is an
//!   `Option`, has `skip_serializing_if`, or is skipped one way only; `skip` drops it;
//! * `flatten` merges the fields of an object (an optional one makes them optional);
//!   flattening anything else makes the whole type `any`;
//! * `with` / `serialize_with` / `deserialize_with` make the field `any` (say what it is
//!   with `#[kiln(with = path)]`), and `from` / `try_from` / `into` use that type's validator;
//! * `transparent` and newtype structs are their field; tuple structs arrays; unit `null`;
//! * enums in each of serde's representations: external (`"Unit"`, `{"Variant": ...}`),
//!   internal (`tag`), adjacent (`tag` + `content`) and `untagged` (also per variant), as a
//!   union of the variants.
//!
//! Kiln's own field attributes: `#[kiln(id = "users")]` on an `Id` or `Option<Id>` field
//! makes it `id<users>`, and `#[kiln(with = path)]` uses `path()` (a `fn() -> Validator`).

use proc_macro2::TokenStream;
use quote::quote;
use serde_derive_internals::ast::{Container, Data, Field, Style, Variant};
use serde_derive_internals::attr::TagType;
use serde_derive_internals::{Ctxt, Derive};
use syn::{DeriveInput, Expr, ExprLit, Lit, Meta, Token, parse_quote};

pub fn derive(input: DeriveInput) -> syn::Result<TokenStream> {
    let ctxt = Ctxt::new();
    let container = Container::from_ast(&ctxt, &input, Derive::Deserialize);
    ctxt.check()?;
    let Some(container) = container else {
        return Err(syn::Error::new_spanned(&input, "cannot read this type"));
    };
    let body = container_validator(&container)?;

    let ident = &input.ident;
    let mut generics = input.generics.clone();
    for param in generics.type_params_mut() {
        param.bounds.push(parse_quote!(::kiln::Validate));
    }
    let (impl_generics, type_generics, where_clause) = generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::kiln::Validate for #ident #type_generics #where_clause {
            fn validator() -> ::kiln::Validator {
                ::kiln::__private::build_once::<Self>(|| #body)
            }
        }
    })
}

fn container_validator(container: &Container) -> syn::Result<TokenStream> {
    let attrs = &container.attrs;
    if let Some(ty) = attrs
        .type_from()
        .or(attrs.type_try_from())
        .or(attrs.type_into())
    {
        return Ok(quote!(<#ty as ::kiln::Validate>::validator()));
    }
    let container_default = !attrs.default().is_none();
    match &container.data {
        Data::Struct(style, fields) => {
            if attrs.transparent() {
                let field = fields
                    .iter()
                    .find(|field| !field.attrs.skip_deserializing())
                    .ok_or_else(|| {
                        syn::Error::new_spanned(container.original, "no field to be transparent to")
                    })?;
                return field_validator(field);
            }
            struct_validator(*style, fields, container_default, None)
        }
        Data::Enum(variants) => {
            let members = variants
                .iter()
                .filter(|variant| !variant.attrs.skip_deserializing())
                .map(|variant| variant_validator(attrs.tag(), variant))
                .collect::<syn::Result<Vec<_>>>()?;
            Ok(quote!(::kiln::Validator::union([#(#members),*])))
        }
    }
}

/// The validator of a struct body (or a struct-like variant's), with `tag` as an extra
/// required field `name: literal` when internally tagged.
fn struct_validator(
    style: Style,
    fields: &[Field],
    container_default: bool,
    tag: Option<(&str, &str)>,
) -> syn::Result<TokenStream> {
    let fields: Vec<&Field> = fields
        .iter()
        .filter(|field| !(field.attrs.skip_deserializing() && field.attrs.skip_serializing()))
        .collect();
    match style {
        Style::Unit => Ok(match tag {
            Some(tag) => object(&[], container_default, Some(tag))?,
            None => quote!(::kiln::Validator::Null),
        }),
        Style::Newtype => field_validator(fields[0]),
        Style::Tuple => {
            let elements = fields
                .iter()
                .map(|field| field_validator(field))
                .collect::<syn::Result<Vec<_>>>()?;
            Ok(quote!(::kiln::Validator::array(::kiln::Validator::union([#(#elements),*]))))
        }
        Style::Struct => object(&fields, container_default, tag),
    }
}

/// An object validator of named fields, flattening where asked.
fn object(
    fields: &[&Field],
    container_default: bool,
    tag: Option<(&str, &str)>,
) -> syn::Result<TokenStream> {
    let mut inserts = Vec::new();
    if let Some((name, value)) = tag {
        inserts.push(quote! {
            fields.insert(
                #name.to_string(),
                ::kiln::FieldValidator::required(::kiln::__private::string_literal(#value)),
            );
        });
    }
    for field in fields {
        let ty = field.ty;
        let validator = field_validator(field)?;
        if field.attrs.flatten() {
            inserts.push(quote! {
                open |= !::kiln::__private::flatten_into(&mut fields, #validator);
            });
            continue;
        }
        let attrs = &field.attrs;
        let aliases: Vec<&String> = attrs
            .aliases()
            .iter()
            .filter(|alias| *alias != attrs.name().deserialize_name())
            .collect();
        let absent = container_default
            || !attrs.default().is_none()
            || attrs.skip_serializing_if().is_some()
            || attrs.skip_serializing()
            || attrs.skip_deserializing()
            || !aliases.is_empty();
        let name = attrs.name().deserialize_name();
        let alias_inserts = aliases.iter().map(|alias| {
            quote! {
                fields.insert(
                    #alias.to_string(),
                    ::kiln::FieldValidator::optional(#validator),
                );
            }
        });
        inserts.push(quote! {
            let optional = #absent || <#ty as ::kiln::Validate>::MAY_BE_ABSENT;
            fields.insert(
                #name.to_string(),
                ::kiln::FieldValidator { validator: #validator, optional },
            );
            #(#alias_inserts)*
        });
    }
    Ok(quote! {{
        let mut fields = ::std::collections::BTreeMap::<
            ::std::string::String,
            ::kiln::FieldValidator,
        >::new();
        #[allow(unused_mut)]
        let mut open = false;
        #(#inserts)*
        if open {
            ::kiln::Validator::Any
        } else {
            ::kiln::Validator::Object(fields)
        }
    }})
}

fn variant_validator(tag: &TagType, variant: &Variant) -> syn::Result<TokenStream> {
    let name = variant.attrs.name().deserialize_name();
    // `#[serde(other)]` takes any variant name.
    let name_validator = if variant.attrs.other() {
        quote!(::kiln::Validator::String)
    } else {
        quote!(::kiln::__private::string_literal(#name))
    };
    let content = || struct_validator(variant.style, &variant.fields, false, None);
    if variant.attrs.untagged() {
        return content();
    }
    Ok(match tag {
        TagType::External => match variant.style {
            Style::Unit => name_validator,
            _ => {
                let content = content()?;
                quote!(::kiln::Validator::object([(
                    #name,
                    ::kiln::FieldValidator::required(#content),
                )]))
            }
        },
        TagType::Internal { tag } => match variant.style {
            Style::Struct | Style::Unit => {
                let fields: Vec<&Field> = variant.fields.iter().collect();
                let body = object(&fields, false, None)?;
                quote!(::kiln::__private::with_tag(#body, #tag, #name_validator))
            }
            // A newtype's content must be an object (serde checks); the tag joins its
            // fields.
            _ => {
                let content = content()?;
                quote!(::kiln::__private::with_tag(#content, #tag, #name_validator))
            }
        },
        TagType::Adjacent { tag, content: key } => match variant.style {
            Style::Unit => quote!(::kiln::Validator::object([(
                #tag,
                ::kiln::FieldValidator::required(#name_validator),
            )])),
            _ => {
                let content = content()?;
                quote!(::kiln::Validator::object([
                    (#tag, ::kiln::FieldValidator::required(#name_validator)),
                    (#key, ::kiln::FieldValidator::required(#content)),
                ]))
            }
        },
        TagType::None => content()?,
    })
}

/// A field's validator: `#[kiln(...)]` if given, `any` for a field serde (de)serializes
/// with a function, else its type's.
fn field_validator(field: &Field) -> syn::Result<TokenStream> {
    let ty = field.ty;
    let mut chosen: Option<TokenStream> = None;
    for attr in &field.original.attrs {
        if !attr.path().is_ident("kiln") {
            continue;
        }
        let metas =
            attr.parse_args_with(syn::punctuated::Punctuated::<Meta, Token![,]>::parse_terminated)?;
        for meta in metas {
            let validator = match &meta {
                Meta::NameValue(nv) if nv.path.is_ident("id") => {
                    let Expr::Lit(ExprLit {
                        lit: Lit::Str(table),
                        ..
                    }) = &nv.value
                    else {
                        return Err(syn::Error::new_spanned(
                            &nv.value,
                            "`id` takes the table's name: #[kiln(id = \"users\")]",
                        ));
                    };
                    quote!(::kiln::__private::id_of::<#ty>(#table))
                }
                Meta::NameValue(nv) if nv.path.is_ident("with") => {
                    let path = &nv.value;
                    quote!(#path())
                }
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "expected `id = \"table\"` or `with = path_to_fn`",
                    ));
                }
            };
            if chosen.replace(validator).is_some() {
                return Err(syn::Error::new_spanned(
                    meta,
                    "a field takes one of `#[kiln(id = ...)]` and `#[kiln(with = ...)]`",
                ));
            }
        }
    }
    if let Some(validator) = chosen {
        return Ok(validator);
    }
    if field.attrs.serialize_with().is_some() || field.attrs.deserialize_with().is_some() {
        return Ok(quote!(::kiln::Validator::Any));
    }
    Ok(quote!(<#ty as ::kiln::Validate>::validator()))
}
