//! `kiln:platform/auth`: the caller's identity (Convex's `ctx.auth.getUserIdentity()`).
//! Every kind may ask; the identity was verified by the API layer (`crate::auth`) before
//! the call began, so this only hands it over.

use crate::auth::UserIdentity;
use crate::runtime::InvocationState;
use crate::runtime::bindings::kiln::platform::auth::{Host, UserIdentity as WitIdentity};

impl Host for InvocationState {
    async fn get_user_identity(&mut self) -> Option<WitIdentity> {
        self.identity.as_deref().map(to_wit)
    }
}

fn to_wit(identity: &UserIdentity) -> WitIdentity {
    WitIdentity {
        token_identifier: identity.token_identifier.clone(),
        subject: identity.subject.clone(),
        issuer: identity.issuer.clone(),
        name: identity.name.clone(),
        given_name: identity.given_name.clone(),
        family_name: identity.family_name.clone(),
        nickname: identity.nickname.clone(),
        preferred_username: identity.preferred_username.clone(),
        profile_url: identity.profile_url.clone(),
        picture_url: identity.picture_url.clone(),
        website_url: identity.website_url.clone(),
        email: identity.email.clone(),
        email_verified: identity.email_verified,
        gender: identity.gender.clone(),
        birthday: identity.birthday.clone(),
        timezone: identity.timezone.clone(),
        language: identity.language.clone(),
        phone_number: identity.phone_number.clone(),
        phone_number_verified: identity.phone_number_verified,
        address: identity.address.clone(),
        updated_at: identity.updated_at.clone(),
        custom_claims: identity.custom_claims_value().to_convex_json_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::Value;

    #[test]
    fn the_identity_crosses_as_the_wit_record() {
        let mut identity = UserIdentity {
            token_identifier: "https://i|s".into(),
            subject: "s".into(),
            issuer: "https://i".into(),
            email_verified: Some(true),
            ..Default::default()
        };
        identity.custom_claims.insert("n".into(), Value::Int64(7));
        let wit = to_wit(&identity);
        assert_eq!(wit.token_identifier, "https://i|s");
        assert_eq!(wit.email_verified, Some(true));
        assert_eq!(wit.name, None);
        // Convex JSON: an int64 keeps its type.
        assert_eq!(wit.custom_claims, r#"{"n":{"$integer":"BwAAAAAAAAA="}}"#);
    }
}
