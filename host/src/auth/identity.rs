//! The user a request acts for: Convex's `UserIdentity` (convex 1.48,
//! `server/authentication.d.ts`; the backend's `keybroker::UserIdentity` and
//! `sync_types::UserIdentityAttributes`), built from a verified token's claims or from the
//! identity an admin acts as.
//!
//! How claims map follows Convex's backend, so an app sees the same identity on both:
//! * tokens of an OIDC provider (and Kiln's `hs256`): the OIDC profile claims become the
//!   typed fields (`given_name` → `givenName`, `picture` → `pictureUrl`, `updated_at` →
//!   RFC 3339 text, ...); the JWT and ID-token housekeeping claims (`exp`, `iat`, `nonce`,
//!   ...) are dropped; every other claim is a custom claim, as it is;
//! * tokens of a `customJwt` provider: no typed fields but subject and issuer; every claim
//!   that is not a registered JWT claim is a custom claim under its own name, and nested
//!   objects are flattened into dotted names (`{"org": {"id": 1}}` → `"org.id": 1`).
//!
//! A claim whose name or value is not a Convex value (a name starting with `$`, say) is
//! left out, never a reason to refuse the token. This module knows nothing of HTTP.

use std::collections::BTreeMap;

use kiln_values::Value;
use serde_json::{Map, Value as Json};

/// A verified user, as `ctx.auth.getUserIdentity()` returns it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserIdentity {
    /// `issuer|subject`: unique across providers.
    pub token_identifier: String,
    /// The `sub` claim.
    pub subject: String,
    /// The `iss` claim.
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
    pub updated_at: Option<String>,
    /// Every other claim, by name.
    pub custom_claims: BTreeMap<String, Value>,
}

/// How a provider's claims become an identity (see the module comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimMapping {
    /// OIDC providers and `hs256`: profile claims become typed fields.
    Profile,
    /// `customJwt` providers: claims stay custom, nested objects flattened.
    Flattened,
}

/// Registered JWT claims (RFC 7519): never custom claims.
const REGISTERED_CLAIMS: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];
/// ID-token claims (OIDC Core 2) that say how the token was issued, not who the user is.
const ID_TOKEN_CLAIMS: [&str; 7] = [
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
];
/// Clerk's factor-verification age: it grows with every refresh, so Convex drops it.
const VOLATILE_CLAIMS: [&str; 1] = ["fva"];

/// The profile claims: their field, their JWT claim name and their name in Convex's JSON
/// shape of the identity. One list drives the claim mapping, the JSON shape and the parsing
/// of an acted-as identity, so the three cannot drift.
macro_rules! profile_claims {
    ($($field:ident: $kind:ident = $claim:literal / $json:literal,)*) => {
        impl UserIdentity {
            /// Takes `value` as profile claim `claim` if it is one and has the right type;
            /// false leaves it to the custom claims.
            fn take_profile_claim(&mut self, claim: &str, value: &Json) -> bool {
                match claim {
                    $($claim => match profile_claims!(@read $kind, value) {
                        Some(value) => {
                            self.$field = Some(value);
                            true
                        }
                        None => false,
                    },)*
                    _ => false,
                }
            }

            /// Sets the typed field named `json` in Convex's JSON shape; `Ok(false)` if no
            /// typed field has that name, an error if the value has the wrong type.
            fn set_json_field(&mut self, json: &str, value: &Json) -> Result<bool, String> {
                match json {
                    $($json => {
                        self.$field = Some(profile_claims!(@read_json $kind, value).ok_or_else(
                            || format!("`{}` must be a {}", $json, profile_claims!(@name $kind)),
                        )?);
                        Ok(true)
                    })*
                    _ => Ok(false),
                }
            }

            /// The typed fields that are set, in Convex's JSON shape.
            fn profile_json(&self, out: &mut Map<String, Json>) {
                $(if let Some(value) = &self.$field {
                    out.insert($json.to_string(), Json::from(value.clone()));
                })*
            }
        }
    };
    (@read string, $value:expr) => { $value.as_str().map(str::to_string) };
    // Some providers (Cognito) send booleans as text.
    (@read bool, $value:expr) => {
        match $value {
            Json::Bool(flag) => Some(*flag),
            Json::String(text) if text == "true" => Some(true),
            Json::String(text) if text == "false" => Some(false),
            _ => None,
        }
    };
    // OIDC's `address` is an object whose `formatted` member is the whole address.
    (@read address, $value:expr) => {
        match $value {
            Json::String(text) => Some(text.clone()),
            Json::Object(parts) => parts.get("formatted").and_then(Json::as_str).map(str::to_string),
            _ => None,
        }
    };
    // Seconds since the epoch, reported as RFC 3339 text as Convex does.
    (@read timestamp, $value:expr) => {
        match $value {
            Json::String(text) => Some(text.clone()),
            Json::Number(seconds) => seconds.as_i64().and_then(rfc3339),
            _ => None,
        }
    };
    (@read_json bool, $value:expr) => { $value.as_bool() };
    (@read_json $other:ident, $value:expr) => { $value.as_str().map(str::to_string) };
    (@name bool) => { "boolean" };
    (@name $other:ident) => { "string" };
}

profile_claims! {
    name: string = "name" / "name",
    given_name: string = "given_name" / "givenName",
    family_name: string = "family_name" / "familyName",
    nickname: string = "nickname" / "nickname",
    preferred_username: string = "preferred_username" / "preferredUsername",
    profile_url: string = "profile" / "profileUrl",
    picture_url: string = "picture" / "pictureUrl",
    website_url: string = "website" / "websiteUrl",
    email: string = "email" / "email",
    email_verified: bool = "email_verified" / "emailVerified",
    gender: string = "gender" / "gender",
    birthday: string = "birthdate" / "birthday",
    timezone: string = "zoneinfo" / "timezone",
    language: string = "locale" / "language",
    phone_number: string = "phone_number" / "phoneNumber",
    phone_number_verified: bool = "phone_number_verified" / "phoneNumberVerified",
    address: address = "address" / "address",
    updated_at: timestamp = "updated_at" / "updatedAt",
}

/// `2024-01-02T03:04:05+00:00`: chrono's `to_rfc3339`, which Convex's backend uses.
fn rfc3339(seconds: i64) -> Option<String> {
    let time = time::OffsetDateTime::from_unix_timestamp(seconds).ok()?;
    let text = time
        .format(&time::format_description::well_known::Rfc3339)
        .ok()?;
    Some(match text.strip_suffix('Z') {
        Some(utc) => format!("{utc}+00:00"),
        None => text,
    })
}

impl UserIdentity {
    fn new(issuer: &str, subject: &str) -> Self {
        Self {
            token_identifier: format!("{issuer}|{subject}"),
            subject: subject.to_string(),
            issuer: issuer.to_string(),
            ..Self::default()
        }
    }

    /// The identity in a verified token's claims. `iss` and `sub` must be strings (the
    /// verifier has checked).
    pub fn from_claims(claims: &Map<String, Json>, mapping: ClaimMapping) -> Self {
        let text = |name: &str| claims.get(name).and_then(Json::as_str).unwrap_or_default();
        let mut identity = Self::new(text("iss"), text("sub"));
        for (claim, value) in claims {
            let claim = claim.as_str();
            if REGISTERED_CLAIMS.contains(&claim) || VOLATILE_CLAIMS.contains(&claim) {
                continue;
            }
            match mapping {
                ClaimMapping::Profile => {
                    if ID_TOKEN_CLAIMS.contains(&claim) || identity.take_profile_claim(claim, value)
                    {
                        continue;
                    }
                    identity.add_custom_claim(claim.to_string(), value.clone());
                }
                ClaimMapping::Flattened => identity.add_flattened_claim(claim.to_string(), value),
            }
        }
        identity
    }

    /// Convex's `customJwt` mapping: nested objects become dotted names.
    fn add_flattened_claim(&mut self, name: String, value: &Json) {
        match value {
            Json::Object(fields) => {
                for (field, value) in fields {
                    self.add_flattened_claim(format!("{name}.{field}"), value);
                }
            }
            other => self.add_custom_claim(name, other.clone()),
        }
    }

    /// Keeps a custom claim if it is a Convex value under a valid field name.
    fn add_custom_claim(&mut self, name: String, value: Json) {
        if let Err(err) = kiln_values::check_field_name(&name, true) {
            tracing::debug!(claim = %name, "custom claim left out: {err}");
            return;
        }
        match Value::from_plain_json_with_limits(value, &Default::default()) {
            Ok(value) => {
                self.custom_claims.insert(name, value);
            }
            Err(err) => tracing::debug!(claim = %name, "custom claim left out: {err}"),
        }
    }

    /// The identity an admin request acts as: the JSON `ConvexHttpClient.setAdminAuth(key,
    /// identity)` sends (Convex's `UserIdentityAttributes`), with `issuer` and `subject`, or
    /// a `tokenIdentifier` of the form `issuer|subject`. Other fields are custom claims.
    pub fn from_acting_as(json: Json) -> Result<Self, String> {
        let Json::Object(fields) = json else {
            return Err("the identity to act as must be a JSON object".to_string());
        };
        let text = |name: &str| -> Result<Option<String>, String> {
            match fields.get(name) {
                None | Some(Json::Null) => Ok(None),
                Some(Json::String(text)) => Ok(Some(text.clone())),
                Some(_) => Err(format!("`{name}` must be a string")),
            }
        };
        let token_identifier = text("tokenIdentifier")?;
        let (issuer, subject) = match (text("issuer")?, text("subject")?) {
            (Some(issuer), Some(subject)) => (issuer, subject),
            (issuer, subject) => {
                let split = token_identifier
                    .as_deref()
                    .and_then(|identifier| identifier.split_once('|'));
                let Some((from_issuer, from_subject)) = split else {
                    return Err(
                        "the identity to act as needs `issuer` and `subject`, or a `tokenIdentifier` of the form issuer|subject".to_string(),
                    );
                };
                (
                    issuer.unwrap_or_else(|| from_issuer.to_string()),
                    subject.unwrap_or_else(|| from_subject.to_string()),
                )
            }
        };
        let mut identity = Self::new(&issuer, &subject);
        if let Some(token_identifier) = token_identifier {
            identity.token_identifier = token_identifier;
        }
        for (name, value) in &fields {
            if matches!(name.as_str(), "tokenIdentifier" | "issuer" | "subject") || value.is_null()
            {
                continue;
            }
            if !identity.set_json_field(name, value)? {
                identity.add_custom_claim(name.clone(), value.clone());
            }
        }
        Ok(identity)
    }

    /// The custom claims as one object.
    pub fn custom_claims_value(&self) -> Value {
        Value::Object(self.custom_claims.clone())
    }

    /// Convex's JSON shape of the identity (what `getUserIdentity()` resolves to): the
    /// typed fields in camelCase, the custom claims beside them (a typed field wins over a
    /// custom claim of the same name).
    pub fn to_json(&self) -> Json {
        let mut out = Map::new();
        for (name, value) in &self.custom_claims {
            out.insert(name.clone(), value.to_export_json());
        }
        out.insert(
            "tokenIdentifier".into(),
            Json::from(self.token_identifier.clone()),
        );
        out.insert("issuer".into(), Json::from(self.issuer.clone()));
        out.insert("subject".into(), Json::from(self.subject.clone()));
        self.profile_json(&mut out);
        Json::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(json: Json) -> Map<String, Json> {
        match json {
            Json::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn oidc_profile_claims_become_typed_fields() {
        let identity = UserIdentity::from_claims(
            &claims(json!({
                "iss": "https://auth.example", "sub": "u1", "aud": "app", "exp": 1, "iat": 0,
                "nonce": "n", "fva": [1, 2], "jti": "x",
                "name": "Ada Lovelace", "given_name": "Ada", "email": "ada@example.com",
                "email_verified": "true", "picture": "https://pic", "locale": "en",
                "zoneinfo": "Europe/London", "birthdate": "1815-12-10",
                "address": {"formatted": "12 St James's Square"},
                "updated_at": 1_700_000_000,
                "phone_number_verified": false,
                "org": {"id": 7}, "roles": ["admin"],
                "$bad": 1,
            })),
            ClaimMapping::Profile,
        );
        assert_eq!(identity.token_identifier, "https://auth.example|u1");
        assert_eq!(identity.given_name.as_deref(), Some("Ada"));
        assert_eq!(identity.email_verified, Some(true));
        assert_eq!(identity.phone_number_verified, Some(false));
        assert_eq!(identity.picture_url.as_deref(), Some("https://pic"));
        assert_eq!(identity.language.as_deref(), Some("en"));
        assert_eq!(identity.timezone.as_deref(), Some("Europe/London"));
        assert_eq!(identity.birthday.as_deref(), Some("1815-12-10"));
        assert_eq!(identity.address.as_deref(), Some("12 St James's Square"));
        assert_eq!(
            identity.updated_at.as_deref(),
            Some("2023-11-14T22:13:20+00:00")
        );
        // Only the claims that are neither housekeeping nor profile stay custom, as they
        // are; a name that is no Convex field name is left out.
        assert_eq!(
            identity.custom_claims.keys().collect::<Vec<_>>(),
            ["org", "roles"]
        );
        assert_eq!(
            identity.to_json(),
            json!({
                "tokenIdentifier": "https://auth.example|u1",
                "issuer": "https://auth.example", "subject": "u1",
                "name": "Ada Lovelace", "givenName": "Ada", "email": "ada@example.com",
                "emailVerified": true, "pictureUrl": "https://pic", "language": "en",
                "timezone": "Europe/London", "birthday": "1815-12-10",
                "address": "12 St James's Square", "updatedAt": "2023-11-14T22:13:20+00:00",
                "phoneNumberVerified": false,
                "org": {"id": 7.0}, "roles": ["admin"],
            })
        );
    }

    #[test]
    fn a_profile_claim_of_the_wrong_type_stays_custom() {
        let identity = UserIdentity::from_claims(
            &claims(json!({"iss": "i", "sub": "s", "email": 5})),
            ClaimMapping::Profile,
        );
        assert_eq!(identity.email, None);
        assert_eq!(identity.custom_claims["email"], Value::Float64(5.0));
    }

    #[test]
    fn custom_jwt_claims_stay_custom_and_flatten() {
        let identity = UserIdentity::from_claims(
            &claims(json!({
                "iss": "https://issuer", "sub": "u2", "exp": 1, "nbf": 0,
                "email": "a@b", "given_name": "Ada", "org": {"id": "o1", "plan": {"tier": 2}},
            })),
            ClaimMapping::Flattened,
        );
        assert_eq!(identity.email, None);
        assert_eq!(
            identity.to_json(),
            json!({
                "tokenIdentifier": "https://issuer|u2", "issuer": "https://issuer",
                "subject": "u2", "email": "a@b", "given_name": "Ada",
                "org.id": "o1", "org.plan.tier": 2.0,
            })
        );
    }

    #[test]
    fn an_acted_as_identity_reads_convex_json() {
        let identity = UserIdentity::from_acting_as(json!({
            "subject": "u3", "issuer": "https://dash", "name": "Bo", "emailVerified": true,
            "team": "blue",
        }))
        .unwrap();
        assert_eq!(identity.token_identifier, "https://dash|u3");
        assert_eq!(identity.name.as_deref(), Some("Bo"));
        assert_eq!(identity.email_verified, Some(true));
        assert_eq!(identity.custom_claims["team"], Value::from("blue"));

        let identity =
            UserIdentity::from_acting_as(json!({"tokenIdentifier": "https://x|u4"})).unwrap();
        assert_eq!(
            (identity.issuer.as_str(), identity.subject.as_str()),
            ("https://x", "u4")
        );

        let err = UserIdentity::from_acting_as(json!({"name": "x"})).unwrap_err();
        assert!(err.contains("needs `issuer` and `subject`"), "{err}");
        let err = UserIdentity::from_acting_as(
            json!({"subject": "s", "issuer": "i", "emailVerified": "yes"}),
        )
        .unwrap_err();
        assert_eq!(err, "`emailVerified` must be a boolean");
    }
}
