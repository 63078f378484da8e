//! `id_token_hint`: an ID token this server issued, handed back by a relying party at the end-session endpoint
//! (RP-Initiated Logout 1.0 §2) and the authorization endpoint (OIDC Core §3.1.2.1) to say which user and session
//! it means. Accepted when its signature verifies against a key still published and its `iss` is this server's;
//! `exp` is not checked: both specs let an expired ID token hint (the relying party's session outlives its token).

use serde::Deserialize;

use crate::core::claims;
use crate::crypto::jose::SigningAlg;
use crate::model::App;
use crate::state::AppState;

/// The claims of a verified hint that say whom it names.
#[derive(Debug, Deserialize)]
pub struct IdTokenHint {
    /// The user, as `sub` of the client it was issued to ([`claims::subject`]).
    pub sub: String,
    aud: Audience,
    azp: Option<String>,
    /// The browser session the ID token was issued in.
    pub sid: Option<String>,
}

/// `aud`: one client id, or a list (OIDC Core §2).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// What is checked besides the signature.
#[derive(Deserialize)]
struct Signed {
    iss: String,
    #[serde(flatten)]
    hint: IdTokenHint,
}

impl IdTokenHint {
    /// The hint's claims when `token` is an ID token of this server (signature and `iss`; see the module doc).
    pub fn verify(s: &AppState, token: &str) -> Option<Self> {
        let signed: Signed = s.keys.load().verify(token, &SigningAlg::ALL).ok()?;
        (signed.iss == *s.issuer).then_some(signed.hint)
    }

    /// Whether `client_id` is an audience of the ID token.
    pub fn names_client(&self, client_id: &str) -> bool {
        match &self.aud {
            Audience::One(a) => a == client_id,
            Audience::Many(all) => all.iter().any(|a| a == client_id),
        }
    }

    /// The client the ID token was issued to: its only audience, else its `azp`.
    pub fn client_id(&self) -> Option<&str> {
        match &self.aud {
            Audience::One(a) => Some(a),
            Audience::Many(all) if all.len() == 1 => Some(&all[0]),
            Audience::Many(_) => self.azp.as_deref(),
        }
    }

    /// Whether the hint, issued to `app`, names the user `user_id`.
    pub fn names_user(&self, s: &AppState, app: &App, user_id: &str) -> bool {
        self.sub == claims::subject(app, user_id, &claims::pairwise_key(&s.sealer))
    }

    /// Whether the hint, issued to `app`, names this browser session: its user, and its `sid` when it has one.
    pub fn names_session(&self, s: &AppState, app: &App, user_id: &str, sid: &str) -> bool {
        self.names_user(s, app, user_id) && self.sid.as_deref().is_none_or(|hinted| hinted == sid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(claims: serde_json::Value) -> IdTokenHint {
        serde_json::from_value(claims).unwrap()
    }

    #[test]
    fn the_client_is_the_only_audience_or_the_authorized_party() {
        let one = hint(serde_json::json!({"sub": "u", "aud": "a"}));
        assert_eq!(one.client_id(), Some("a"));
        assert!(one.names_client("a") && !one.names_client("b"));
        let listed = hint(serde_json::json!({"sub": "u", "aud": ["a"]}));
        assert_eq!(listed.client_id(), Some("a"));
        let many = hint(serde_json::json!({"sub": "u", "aud": ["a", "b"], "azp": "b"}));
        assert_eq!(many.client_id(), Some("b"));
        assert!(many.names_client("a") && many.names_client("b") && !many.names_client("c"));
        let unclear = hint(serde_json::json!({"sub": "u", "aud": ["a", "b"]}));
        assert_eq!(unclear.client_id(), None);
    }
}
