//! `ctx.auth.getUserIdentity()` and `ctx.meta`: who called, and what is running.

use std::cell::RefCell;

use serde_json::{Map, Value, json};

use super::{OpError, OpResult};
use crate::bindings::kiln::platform::auth;

thread_local! {
    static CURRENT: RefCell<String> = const { RefCell::new(String::new()) };
}

pub(super) fn begin_call(path: &str) {
    CURRENT.with(|current| *current.borrow_mut() = path.to_string());
}

/// `null`, or Convex's `UserIdentity`: camelCase profile fields, custom claims flattened in.
pub(super) fn user_identity() -> OpResult {
    let Some(identity) = auth::get_user_identity() else {
        return Ok("null".into());
    };
    let mut object: Map<String, Value> = serde_json::from_str(&identity.custom_claims)
        .map_err(|err| OpError::new(format!("cannot read the identity's claims: {err}")))?;
    let mut set = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            object.insert(name.to_string(), value);
        }
    };
    set("tokenIdentifier", Some(identity.token_identifier.into()));
    set("subject", Some(identity.subject.into()));
    set("issuer", Some(identity.issuer.into()));
    for (name, value) in [
        ("name", identity.name),
        ("givenName", identity.given_name),
        ("familyName", identity.family_name),
        ("nickname", identity.nickname),
        ("preferredUsername", identity.preferred_username),
        ("profileUrl", identity.profile_url),
        ("pictureUrl", identity.picture_url),
        ("websiteUrl", identity.website_url),
        ("email", identity.email),
        ("gender", identity.gender),
        ("birthday", identity.birthday),
        ("timezone", identity.timezone),
        ("language", identity.language),
        ("phoneNumber", identity.phone_number),
        ("address", identity.address),
        ("updatedAt", identity.updated_at),
    ] {
        set(name, value.map(Value::from));
    }
    set("emailVerified", identity.email_verified.map(Value::from));
    set(
        "phoneNumberVerified",
        identity.phone_number_verified.map(Value::from),
    );
    Ok(Value::Object(object).to_string())
}

/// `{name, componentPath}`: the running function's path, `module` alone for a default export.
pub(super) fn function_metadata() -> OpResult {
    let path = CURRENT.with(|current| current.borrow().clone());
    let name = path.strip_suffix(":default").unwrap_or(&path).to_string();
    Ok(json!({ "name": name, "componentPath": "" }).to_string())
}

pub(super) fn deployment_metadata() -> OpResult {
    Ok(json!({ "name": "kiln", "region": null, "class": "s16" }).to_string())
}

pub(super) fn request_metadata() -> OpResult {
    Ok(json!({
        "ip": null,
        "userAgent": null,
        "requestId": "",
        "scheduledFunctionId": null,
        "authToken": null,
    })
    .to_string())
}
