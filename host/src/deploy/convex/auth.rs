//! A Convex app's `auth.config.js` (`export default { providers: [...] }`, evaluated with
//! the deployment's environment variables) as Kiln's [`AuthConfig`].

use serde::Deserialize;

use crate::auth::AuthConfig;
use crate::auth::providers::ProviderConfig;

/// One provider as Convex accepts it: OIDC `{domain, applicationID}` or
/// `{type: "customJwt", issuer, jwks, algorithm, applicationID?}`. Other properties are
/// allowed and ignored, as in Convex.
#[derive(Deserialize)]
struct ConvexProvider {
    #[serde(rename = "type")]
    kind: Option<String>,
    domain: Option<String>,
    issuer: Option<String>,
    jwks: Option<String>,
    algorithm: Option<String>,
    #[serde(rename = "applicationID")]
    application_id: Option<String>,
    /// A common misspelling, refused by name as Convex does.
    #[serde(rename = "applicationId")]
    misspelled_application_id: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ConvexAuthConfig {
    providers: Vec<ConvexProvider>,
}

/// Reads the evaluated default export. A provider Kiln cannot use is reported by
/// [`AuthConfig::validate`] at deploy, naming it.
pub fn from_convex_json(json: &str) -> Result<AuthConfig, String> {
    let config: ConvexAuthConfig = serde_json::from_str(json).map_err(|err| {
        format!("auth config file must include a list of provider credentials: {err}")
    })?;
    let mut providers = Vec::with_capacity(config.providers.len());
    for (index, provider) in config.providers.into_iter().enumerate() {
        if provider.misspelled_application_id.is_some() {
            return Err(format!(
                "auth config file must include a list of provider credentials: provider at index {index} must have applicationID property spelled lowercase 'application', capital I, capital D"
            ));
        }
        let kind = match provider.kind.as_deref() {
            None | Some("oidc") => None,
            Some("customJwt") => Some("customJwt".to_string()),
            Some(other) => {
                return Err(format!(
                    "auth config file: provider at index {index} has unknown type {other:?} (use \"customJwt\", or no type for OIDC)"
                ));
            }
        };
        providers.push(ProviderConfig {
            kind,
            domain: provider.domain,
            issuer: provider.issuer,
            jwks: provider.jwks,
            algorithm: provider.algorithm,
            application_id: provider.application_id,
            ..ProviderConfig::default()
        });
    }
    Ok(AuthConfig { providers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_provider_shapes_carry_over() {
        let config = from_convex_json(
            r#"{"providers":[{"domain":"https://issuer.example","applicationID":"app"},
            {"type":"customJwt","issuer":"https://jwt.example","jwks":"https://jwt.example/jwks",
             "algorithm":"RS256","extra":1}]}"#,
        )
        .unwrap();
        assert_eq!(config.providers.len(), 2);
        assert_eq!(config.providers[0].kind, None);
        assert_eq!(config.providers[0].application_id.as_deref(), Some("app"));
        assert_eq!(config.providers[1].kind.as_deref(), Some("customJwt"));
        assert_eq!(config.providers[1].algorithm.as_deref(), Some("RS256"));
    }

    #[test]
    fn a_misspelled_application_id_is_named() {
        let err = from_convex_json(
            r#"{"providers":[{"domain":"https://a.example","applicationId":"x"}]}"#,
        )
        .unwrap_err();
        assert!(err.contains("applicationID"), "{err}");
    }
}
