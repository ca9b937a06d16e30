//! The `[auth]` section of kiln.toml: who may issue the tokens a deployment accepts.
//!
//! Mirrors Convex's `auth.config.ts` (convex 1.48, `server/authentication.d.ts`, and the
//! backend's `common::auth::AuthInfo`), so each provider there is one `[[auth.providers]]`
//! table here:
//! * OIDC `{domain, applicationID}` (`type` absent or `"oidc"`): keys from OIDC discovery
//!   at `<domain>/.well-known/openid-configuration`; RS256, ES256 or EdDSA;
//! * `{type: "customJwt", issuer, jwks, algorithm, applicationID?}`: keys from `jwks`, an
//!   http(s) URL or a `data:` URI (`kiln deploy` turns a file path into one); RS256 or
//!   ES256;
//! * Kiln's own `{type: "hs256", issuer, secret, applicationID?}`: tokens signed with a
//!   shared secret, for tests and simple setups.
//!
//! `applicationID` is spelled `application_id` in TOML; Convex's spelling is accepted too.
//! The config travels with a deploy as written and is checked there: a bad one is refused
//! with the provider and field at fault.

use std::fmt;
use std::sync::Arc;

use data_url::DataUrl;
use jsonwebtoken::Algorithm;
use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::identity::ClaimMapping;
use super::jwks::KeySet;

/// Shortest HS256 secret accepted: RFC 7518 section 3.2 asks for a key of at least the
/// hash's size, 256 bits.
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// `[auth]`: the token issuers of a deployment, as written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
}

/// One `[[auth.providers]]` table, as written: which fields a kind needs is checked by
/// [`AuthConfig::validate`], so a mistake is reported with the provider and field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// `"oidc"` (the default), `"customJwt"` or `"hs256"`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// OIDC: the issuer, where discovery starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// `customJwt` and `hs256`: the `iss` of their tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `customJwt`: an http(s) URL or a `data:` URI holding the JWKS. In kiln.toml also a
    /// file path, relative to the file, which `kiln deploy` sends as a `data:` URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<String>,
    /// `customJwt`: `"RS256"` or `"ES256"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// What tokens must name in `aud`. Required for OIDC, optional otherwise.
    #[serde(
        default,
        alias = "applicationID",
        skip_serializing_if = "Option::is_none"
    )]
    pub application_id: Option<String>,
    /// `hs256`: the shared secret, at least [`MIN_HS256_SECRET_BYTES`] bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// `hs256` in kiln.toml: the environment variable `kiln deploy` reads the secret from,
    /// so the secret need not be written in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
}

/// A secret that `Debug` and the log never show.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A provider, checked and ready to verify with.
#[derive(Debug)]
pub enum Provider {
    Oidc {
        /// The issuer, normalized ([`normalize_issuer`]).
        domain: String,
        application_id: String,
    },
    CustomJwt {
        issuer: String,
        jwks: Jwks,
        algorithm: Algorithm,
        application_id: Option<String>,
    },
    Hs256 {
        issuer: String,
        secret: Secret,
        application_id: Option<String>,
    },
}

/// Where a `customJwt` provider's keys are.
#[derive(Debug)]
pub enum Jwks {
    Url(Url),
    /// A `data:` URI, parsed at deploy.
    Inline(Arc<KeySet>),
}

/// Algorithms an OIDC provider's tokens may use: what Convex accepts (RS256, EdDSA) and
/// ES256.
const OIDC_ALGORITHMS: &[Algorithm] = &[Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

impl Provider {
    /// The issuer its tokens carry, normalized.
    pub fn issuer(&self) -> &str {
        match self {
            Provider::Oidc { domain, .. } => domain,
            Provider::CustomJwt { issuer, .. } | Provider::Hs256 { issuer, .. } => issuer,
        }
    }

    pub fn application_id(&self) -> Option<&str> {
        match self {
            Provider::Oidc { application_id, .. } => Some(application_id),
            Provider::CustomJwt { application_id, .. } | Provider::Hs256 { application_id, .. } => {
                application_id.as_deref()
            }
        }
    }

    /// The algorithms its tokens may be signed with: any other is refused before a key is
    /// looked at, so a token cannot pick an algorithm the provider's keys were not meant
    /// for (an HS256 token "signed" with an RSA public key, say).
    pub fn algorithms(&self) -> &[Algorithm] {
        match self {
            Provider::Oidc { .. } => OIDC_ALGORITHMS,
            Provider::CustomJwt { algorithm, .. } => std::slice::from_ref(algorithm),
            Provider::Hs256 { .. } => &[Algorithm::HS256],
        }
    }

    pub fn claim_mapping(&self) -> ClaimMapping {
        match self {
            Provider::CustomJwt { .. } => ClaimMapping::Flattened,
            Provider::Oidc { .. } | Provider::Hs256 { .. } => ClaimMapping::Profile,
        }
    }

    /// `oidc https://issuer (applicationID app)`: for messages and the deploy report.
    pub fn describe(&self) -> String {
        let kind = match self {
            Provider::Oidc { .. } => "oidc",
            Provider::CustomJwt { .. } => "customJwt",
            Provider::Hs256 { .. } => "hs256",
        };
        match self.application_id() {
            Some(id) => format!("{kind} {} (applicationID {id})", self.issuer()),
            None => format!("{kind} {} (any audience)", self.issuer()),
        }
    }
}

/// A provider table that cannot be used, with where and why.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("auth.providers[{index}] ({kind}): {message}")]
pub struct AuthConfigError {
    pub index: usize,
    pub kind: String,
    pub message: String,
}

impl AuthConfig {
    /// Checks every provider; the first that cannot be used is the error.
    pub fn validate(&self) -> Result<Vec<Provider>, AuthConfigError> {
        self.providers
            .iter()
            .enumerate()
            .map(|(index, provider)| {
                let kind = provider.kind.as_deref().unwrap_or("oidc");
                provider.validate(kind).map_err(|message| AuthConfigError {
                    index,
                    kind: kind.to_string(),
                    message,
                })
            })
            .collect()
    }
}

impl ProviderConfig {
    fn validate(&self, kind: &str) -> Result<Provider, String> {
        let application_id = match &self.application_id {
            Some(id) if id.trim().is_empty() => {
                return Err("`application_id` is empty".to_string());
            }
            other => other.clone(),
        };
        if self.secret_env.is_some() {
            return Err("`secret_env` is read by `kiln deploy` from its environment; send the secret as `secret`".to_string());
        }
        match kind {
            "oidc" => {
                self.forbid(
                    kind,
                    &[
                        ("issuer", self.issuer.is_some()),
                        ("jwks", self.jwks.is_some()),
                        ("algorithm", self.algorithm.is_some()),
                        ("secret", self.secret.is_some()),
                    ],
                )?;
                let domain = required(&self.domain, "domain")?;
                let application_id = application_id.ok_or_else(|| {
                    "`application_id` (Convex: applicationID) is missing: an OIDC provider's tokens must name it in `aud`".to_string()
                })?;
                Ok(Provider::Oidc {
                    domain: issuer_url(domain, "domain")?,
                    application_id,
                })
            }
            "customJwt" => {
                self.forbid(
                    kind,
                    &[
                        ("domain", self.domain.is_some()),
                        ("secret", self.secret.is_some()),
                    ],
                )?;
                let issuer = issuer_url(required(&self.issuer, "issuer")?, "issuer")?;
                let algorithm = match required(&self.algorithm, "algorithm")? {
                    "RS256" => Algorithm::RS256,
                    "ES256" => Algorithm::ES256,
                    other => {
                        return Err(format!(
                            "`algorithm` {other:?} is not supported: use \"RS256\" or \"ES256\""
                        ));
                    }
                };
                let jwks = jwks_location(required(&self.jwks, "jwks")?, algorithm)?;
                Ok(Provider::CustomJwt {
                    issuer,
                    jwks,
                    algorithm,
                    application_id,
                })
            }
            "hs256" => {
                self.forbid(
                    kind,
                    &[
                        ("domain", self.domain.is_some()),
                        ("jwks", self.jwks.is_some()),
                        ("algorithm", self.algorithm.is_some()),
                    ],
                )?;
                let issuer = required(&self.issuer, "issuer")?;
                let secret = self
                    .secret
                    .clone()
                    .ok_or_else(|| "`secret` is missing".to_string())?;
                if secret.0.len() < MIN_HS256_SECRET_BYTES {
                    return Err(format!(
                        "`secret` is {} bytes: an HS256 secret must be at least {MIN_HS256_SECRET_BYTES} bytes",
                        secret.0.len()
                    ));
                }
                Ok(Provider::Hs256 {
                    issuer: normalize_issuer(issuer),
                    secret,
                    application_id,
                })
            }
            other => Err(format!(
                "unknown `type` {other:?}: use \"oidc\" (or no type), \"customJwt\" or \"hs256\""
            )),
        }
    }

    /// Fields that `kind` does not take are an error: they would be silently ignored.
    fn forbid(&self, kind: &str, fields: &[(&str, bool)]) -> Result<(), String> {
        match fields.iter().find(|(_, present)| *present) {
            Some((field, _)) => Err(format!("{kind} providers take no `{field}`")),
            None => Ok(()),
        }
    }
}

fn required<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, String> {
    match value.as_deref().map(str::trim) {
        Some(value) if !value.is_empty() => Ok(value),
        Some(_) => Err(format!("`{field}` is empty")),
        None => Err(format!("`{field}` is missing")),
    }
}

/// An issuer as Convex reads one: `https://` is assumed when no scheme is given, only http
/// and https are allowed, and the result is normalized.
fn issuer_url(text: &str, field: &str) -> Result<String, String> {
    let with_scheme = if text.contains("://") {
        text.to_string()
    } else {
        format!("https://{text}")
    };
    let url = Url::parse(&with_scheme)
        .map_err(|err| format!("`{field}` {text:?} is not a URL: {err}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "`{field}` {text:?} must be an http or https URL with a host"
        ));
    }
    Ok(normalize_issuer(&with_scheme))
}

/// How issuers are compared (as Convex does): an issuer without a scheme gets `https://`
/// (some providers leave it out of `iss`), and a trailing `/` does not count (Auth0's
/// tokens have one, its docs do not).
pub fn normalize_issuer(issuer: &str) -> String {
    let with_scheme = if issuer.starts_with("https://") || issuer.starts_with("http://") {
        issuer.to_string()
    } else {
        format!("https://{issuer}")
    };
    with_scheme.trim_end_matches('/').to_string()
}

fn jwks_location(text: &str, algorithm: Algorithm) -> Result<Jwks, String> {
    if text.starts_with("data:") {
        let url = DataUrl::process(text)
            .map_err(|err| format!("`jwks` is not a valid data: URI: {err:?}"))?;
        let (body, _) = url
            .decode_to_vec()
            .map_err(|err| format!("`jwks` data: URI does not decode: {err:?}"))?;
        let keys = KeySet::parse(&body).map_err(|err| format!("`jwks`: {err}"))?;
        if !keys.has_key_for(algorithm) {
            return Err(format!("`jwks` holds no key for {algorithm:?}"));
        }
        return Ok(Jwks::Inline(Arc::new(keys)));
    }
    let url = Url::parse(text).map_err(|_| {
        format!("`jwks` {text:?} must be an https URL or a data: URI (in kiln.toml also a file path, which `kiln deploy` reads)")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`jwks` {text:?} must be an https URL or a data: URI"
        ));
    }
    Ok(Jwks::Url(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(toml_text: &str) -> ProviderConfig {
        toml::from_str(toml_text).unwrap()
    }

    fn error(toml_text: &str) -> String {
        AuthConfig {
            providers: vec![provider(toml_text)],
        }
        .validate()
        .unwrap_err()
        .to_string()
    }

    #[test]
    fn convex_shapes_and_spellings_are_read() {
        let config: AuthConfig = serde_json::from_value(serde_json::json!({
            "providers": [
                {"domain": "auth.example.com/", "applicationID": "app"},
                {"type": "customJwt", "issuer": "https://issuer.example", "jwks": "https://issuer.example/jwks.json", "algorithm": "RS256"},
            ]
        }))
        .unwrap();
        let providers = config.validate().unwrap();
        assert_eq!(providers[0].issuer(), "https://auth.example.com");
        assert_eq!(providers[0].application_id(), Some("app"));
        assert_eq!(providers[1].algorithms(), [Algorithm::RS256]);
        assert_eq!(
            providers[1].describe(),
            "customJwt https://issuer.example (any audience)"
        );

        let hs = provider(
            "type = \"hs256\"\nissuer = \"kiln\"\nsecret = \"0123456789abcdef0123456789abcdef\"\napplication_id = \"x\"",
        );
        let hs = AuthConfig {
            providers: vec![hs],
        }
        .validate()
        .unwrap();
        assert_eq!(hs[0].issuer(), "https://kiln");
        assert_eq!(hs[0].algorithms(), [Algorithm::HS256]);
    }

    #[test]
    fn bad_providers_name_the_provider_and_field() {
        assert_eq!(
            error("domain = \"https://a.example\""),
            "auth.providers[0] (oidc): `application_id` (Convex: applicationID) is missing: an OIDC provider's tokens must name it in `aud`"
        );
        assert_eq!(
            error("domain = \"ftp://a.example\"\napplication_id = \"a\""),
            "auth.providers[0] (oidc): `domain` \"ftp://a.example\" must be an http or https URL with a host"
        );
        assert_eq!(
            error(
                "type = \"customJwt\"\nissuer = \"https://i\"\njwks = \"https://i/j\"\nalgorithm = \"HS256\""
            ),
            "auth.providers[0] (customJwt): `algorithm` \"HS256\" is not supported: use \"RS256\" or \"ES256\""
        );
        assert!(
            error("type = \"customJwt\"\nissuer = \"https://i\"\njwks = \"keys/jwks.json\"\nalgorithm = \"RS256\"")
                .contains("`jwks` \"keys/jwks.json\" must be an https URL or a data: URI")
        );
        assert_eq!(
            error(
                "type = \"customJwt\"\nissuer = \"https://i\"\njwks = \"data:application/json,{}\"\nalgorithm = \"RS256\""
            ),
            "auth.providers[0] (customJwt): `jwks`: a JWKS must be an object with a `keys` array"
        );
        assert_eq!(
            error("type = \"hs256\"\nissuer = \"i\"\nsecret = \"short\""),
            "auth.providers[0] (hs256): `secret` is 5 bytes: an HS256 secret must be at least 32 bytes"
        );
        assert_eq!(
            error(
                "type = \"oidc\"\ndomain = \"https://a\"\napplication_id = \"a\"\nissuer = \"https://a\""
            ),
            "auth.providers[0] (oidc): oidc providers take no `issuer`"
        );
        assert_eq!(
            error("type = \"saml\""),
            "auth.providers[0] (saml): unknown `type` \"saml\": use \"oidc\" (or no type), \"customJwt\" or \"hs256\""
        );
        // An unknown field is refused when the file is read, naming it.
        let err = toml::from_str::<ProviderConfig>("domian = \"x\"").unwrap_err();
        assert!(err.to_string().contains("domian"), "{err}");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let config = provider(
            "type = \"hs256\"\nissuer = \"i\"\nsecret = \"do-not-print-me-0123456789abcdef\"",
        );
        assert!(!format!("{config:?}").contains("do-not-print-me"));
    }

    #[test]
    fn issuers_compare_as_convex_compares_them() {
        assert_eq!(normalize_issuer("https://a.example/"), "https://a.example");
        assert_eq!(normalize_issuer("a.example"), "https://a.example");
        assert_eq!(
            normalize_issuer("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080"
        );
    }
}
