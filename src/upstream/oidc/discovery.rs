//! The issuer's discovery document (OpenID Connect Discovery 1.0 §3), parsed and checked: only what a relying
//! party of the code flow reads.

use serde::Deserialize;
use serde_json::Value;

/// Where the document lives for `issuer` (Discovery §4: a trailing `/` is removed before the path is appended).
pub fn url_of(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: String,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// RFC 9207: the authorization response carries `iss`, which the callback then requires.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

impl Discovery {
    /// The document in `doc`, when it is one for exactly `issuer` (byte for byte: Discovery §4.3, so that an
    /// issuer cannot speak for another) with absolute http(s) endpoints.
    pub fn parse(doc: &Value, issuer: &str) -> Result<Self, String> {
        let d = Discovery::deserialize(doc)
            .map_err(|_| "the discovery document lacks issuer, endpoints or jwks_uri".to_owned())?;
        if d.issuer != issuer {
            return Err(format!(
                "the discovery document is for issuer {:?}, not {issuer:?} (wrong issuer)",
                super::super::clip(&d.issuer, super::super::MAX_UPSTREAM_TEXT)
            ));
        }
        let endpoints = [&d.authorization_endpoint, &d.token_endpoint, &d.jwks_uri];
        for e in endpoints.into_iter().chain(d.userinfo_endpoint.as_ref()) {
            if !url::Url::parse(e).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                return Err(
                    "the discovery document has an endpoint that is not an http(s) URL".into(),
                );
            }
        }
        Ok(d)
    }

    /// Whether the issuer takes PKCE with S256.
    pub fn pkce(&self) -> bool {
        self.code_challenge_methods_supported
            .iter()
            .any(|m| m == "S256")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({"issuer": "https://idp.example", "authorization_endpoint": "https://idp.example/auth",
               "token_endpoint": "https://idp.example/token", "jwks_uri": "https://idp.example/jwks",
               "code_challenge_methods_supported": ["plain", "S256"]})
    }

    #[test]
    fn the_issuer_must_match_byte_for_byte() {
        assert_eq!(
            url_of("https://idp.example/"),
            "https://idp.example/.well-known/openid-configuration"
        );
        let d = Discovery::parse(&doc(), "https://idp.example").unwrap();
        assert!(d.pkce() && !d.authorization_response_iss_parameter_supported);
        assert!(d.userinfo_endpoint.is_none());
        let err = Discovery::parse(&doc(), "https://idp.example/").unwrap_err();
        assert!(err.contains("wrong issuer"), "{err}");
        assert!(Discovery::parse(&doc(), "https://IDP.example").is_err());
    }

    #[test]
    fn missing_or_bad_endpoints_are_refused() {
        let mut d = doc();
        d.as_object_mut().unwrap().remove("jwks_uri");
        assert!(Discovery::parse(&d, "https://idp.example")
            .unwrap_err()
            .contains("lacks"));
        let mut d = doc();
        d["token_endpoint"] = json!("javascript:alert(1)");
        assert!(Discovery::parse(&d, "https://idp.example")
            .unwrap_err()
            .contains("http(s)"));
        assert!(Discovery::parse(&json!("text"), "https://idp.example").is_err());
    }
}
