//! Who called: [`get_user_identity`], also as `ctx.auth().get_user_identity()` on every
//! context (Convex's `ctx.auth.getUserIdentity()`).
//!
//! ```
//! use kiln::{query, QueryCtx, Error};
//!
//! #[query]
//! fn my_email(ctx: &QueryCtx) -> Result<Option<String>, Error> {
//!     let Some(user) = ctx.auth().get_user_identity() else {
//!         return Err(Error::new("not signed in"));
//!     };
//!     Ok(user.email)
//! }
//! ```

use std::collections::BTreeMap;

use kiln_values::Value;

use crate::bindings::kiln::platform::auth as wit;
use crate::{ActionCtx, MutationCtx, QueryCtx};

/// The caller's verified identity. The profile fields follow the OpenID Connect standard
/// claims and are set when the token had them; a `customJwt` provider's claims (as in
/// Convex) all stay in [`custom_claims`](Self::custom_claims) under their JWT names.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct UserIdentity {
    /// `issuer|subject`: unique across providers. Key your users by it.
    pub token_identifier: String,
    /// The user's id at the provider (`sub`).
    pub subject: String,
    /// The provider (`iss`).
    pub issuer: String,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub nickname: Option<String>,
    pub preferred_username: Option<String>,
    pub profile_url: Option<String>,
    pub picture_url: Option<String>,
    pub website_url: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub gender: Option<String>,
    pub birthday: Option<String>,
    pub timezone: Option<String>,
    pub language: Option<String>,
    pub phone_number: Option<String>,
    pub phone_number_verified: Option<bool>,
    pub address: Option<String>,
    /// RFC 3339 text.
    pub updated_at: Option<String>,
    /// Every other claim: an object (empty when there are none). Read one with
    /// [`crate::from_value`] or [`UserIdentity::claim`].
    pub custom_claims: Value,
}

/// The caller's identity, or `None` for a request without one.
pub fn get_user_identity() -> Option<UserIdentity> {
    wit::get_user_identity().map(UserIdentity::from_wit)
}

/// `ctx.auth()`: the caller's identity.
#[derive(Debug, Clone, Copy)]
pub struct Auth {
    _private: (),
}

impl Auth {
    /// The caller's identity, or `None` for a request without one.
    pub fn get_user_identity(&self) -> Option<UserIdentity> {
        get_user_identity()
    }
}

macro_rules! auth_accessor {
    ($($ctx:ident),*) => {$(
        impl $ctx {
            /// Who called (Convex's `ctx.auth`).
            pub fn auth(&self) -> Auth {
                Auth { _private: () }
            }
        }
    )*};
}

auth_accessor!(QueryCtx, MutationCtx, ActionCtx);

impl UserIdentity {
    fn from_wit(identity: wit::UserIdentity) -> Self {
        // The host sends an object; anything else would be a host bug, read as no claims.
        let custom_claims = Value::from_convex_json_str(&identity.custom_claims)
            .ok()
            .filter(|claims| claims.as_object().is_some())
            .unwrap_or_else(|| Value::Object(BTreeMap::new()));
        Self {
            token_identifier: identity.token_identifier,
            subject: identity.subject,
            issuer: identity.issuer,
            name: identity.name,
            given_name: identity.given_name,
            family_name: identity.family_name,
            nickname: identity.nickname,
            preferred_username: identity.preferred_username,
            profile_url: identity.profile_url,
            picture_url: identity.picture_url,
            website_url: identity.website_url,
            email: identity.email,
            email_verified: identity.email_verified,
            gender: identity.gender,
            birthday: identity.birthday,
            timezone: identity.timezone,
            language: identity.language,
            phone_number: identity.phone_number,
            phone_number_verified: identity.phone_number_verified,
            address: identity.address,
            updated_at: identity.updated_at,
            custom_claims,
        }
    }

    /// The custom claim `name`, if the token had it.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.custom_claims.as_object()?.get(name)
    }

    /// The identity in Convex's JSON shape, as JavaScript's `getUserIdentity()` returns it:
    /// `tokenIdentifier`, `issuer`, `subject`, the profile fields that are set in camelCase
    /// (`givenName`, `emailVerified`, ...), and the custom claims beside them.
    pub fn to_value(&self) -> Value {
        let mut fields = self.custom_claims.as_object().cloned().unwrap_or_default();
        let mut set = |name: &str, value: Value| {
            fields.insert(name.to_string(), value);
        };
        set(
            "tokenIdentifier",
            Value::from(self.token_identifier.as_str()),
        );
        set("issuer", Value::from(self.issuer.as_str()));
        set("subject", Value::from(self.subject.as_str()));
        let texts = [
            ("name", &self.name),
            ("givenName", &self.given_name),
            ("familyName", &self.family_name),
            ("nickname", &self.nickname),
            ("preferredUsername", &self.preferred_username),
            ("profileUrl", &self.profile_url),
            ("pictureUrl", &self.picture_url),
            ("websiteUrl", &self.website_url),
            ("email", &self.email),
            ("gender", &self.gender),
            ("birthday", &self.birthday),
            ("timezone", &self.timezone),
            ("language", &self.language),
            ("phoneNumber", &self.phone_number),
            ("address", &self.address),
            ("updatedAt", &self.updated_at),
        ];
        for (name, value) in texts {
            if let Some(value) = value {
                set(name, Value::from(value.as_str()));
            }
        }
        for (name, value) in [
            ("emailVerified", self.email_verified),
            ("phoneNumberVerified", self.phone_number_verified),
        ] {
            if let Some(value) = value {
                set(name, Value::Boolean(value));
            }
        }
        Value::Object(fields)
    }
}

/// Serializes as [`UserIdentity::to_value`]: return an identity from a function and the
/// caller gets Convex's shape.
impl serde::Serialize for UserIdentity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_reads_the_wit_record_and_writes_convex_json() {
        let identity = UserIdentity::from_wit(wit::UserIdentity {
            token_identifier: "https://i|u".into(),
            subject: "u".into(),
            issuer: "https://i".into(),
            name: None,
            given_name: Some("Ada".into()),
            family_name: None,
            nickname: None,
            preferred_username: None,
            profile_url: None,
            picture_url: None,
            website_url: None,
            email: None,
            email_verified: Some(true),
            gender: None,
            birthday: None,
            timezone: None,
            language: None,
            phone_number: None,
            phone_number_verified: None,
            address: None,
            updated_at: None,
            custom_claims: r#"{"team":"blue","n":{"$integer":"AQAAAAAAAAA="}}"#.into(),
        });
        assert_eq!(identity.claim("team"), Some(&Value::from("blue")));
        assert_eq!(identity.claim("n"), Some(&Value::Int64(1)));
        assert_eq!(
            kiln_values::to_value(&identity).unwrap().to_convex_json(),
            serde_json::json!({
                "tokenIdentifier": "https://i|u", "issuer": "https://i", "subject": "u",
                "givenName": "Ada", "emailVerified": true,
                "team": "blue", "n": {"$integer": "AQAAAAAAAAA="},
            })
        );
    }
}
