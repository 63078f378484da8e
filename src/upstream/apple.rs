//! Sign in with Apple's turns in the engine (docs/oidc.md#sign-in-with-apple). The rest of Apple is the OpenID
//! Connect path with a fixed issuer (`oidc::resolve`) and the callback's form_post route.
//!
//! Apple takes no client secret of its own: the client authenticates with an ES256 JWT that it signs with its
//! `.p8` key ([`client_secret`]). The JWT lives [`LIFETIME_SECS`] and is kept per provider in
//! `AppState::apple_client_secrets` (a sharded map: no global lock) until it is near its end or what it was built
//! from changes. On its first consent only, Apple posts the user's name in the `user` JSON ([`name_of_user`]).

use serde_json::{json, Value};

use crate::crypto::jose::{Signer, SigningAlg};
use crate::crypto::{ct_eq, sha256};
use crate::model::builtin_setting::{APPLE_KEY_ID, APPLE_TEAM_ID};
use crate::model::catalogue::ClientAuth;
use crate::model::Provider;
use crate::state::AppState;

/// How long a client-secret JWT is valid. Apple allows six months; a short life makes a leaked one soon useless
/// and costs one ECDSA signature per provider every few minutes.
pub const LIFETIME_SECS: i64 = 10 * 60;
/// A kept JWT is rebuilt when less than this is left, so that none expires on its way to Apple.
pub const RENEW_BEFORE_SECS: i64 = 2 * 60;
/// The client secret's `aud`: Apple's, also when the provider's `url` places Apple elsewhere (tests).
pub const AUDIENCE: &str = "https://appleid.apple.com";

/// The `client_secret` to send for client authentication `auth`: the stored secret as it is, or for Apple the
/// JWT built from it (the stored secret is then the `.p8` key). The error is worded for the sign-in error page.
pub(super) fn token_secret(
    s: &AppState,
    p: &Provider,
    auth: ClientAuth,
    stored: String,
) -> Result<String, String> {
    match auth {
        ClientAuth::AppleJwt => client_secret(s, p, &stored),
        ClientAuth::Basic | ClientAuth::Post => Ok(stored),
    }
}

/// Apple's client secret for `p`, whose `.p8` key (PKCS#8 PEM) is `key_pem`: the kept JWT while it has more
/// than [`RENEW_BEFORE_SECS`] to live and was built from the same settings, else a new one.
pub(super) fn client_secret(s: &AppState, p: &Provider, key_pem: &str) -> Result<String, String> {
    let setting = |name: &str, what: &str| match p.options.get(name).map(|v| v.trim()) {
        Some(v) if !v.is_empty() => Ok(v.to_owned()),
        _ => Err(format!("{} has no {what}", p.name)),
    };
    let team = setting(APPLE_TEAM_ID, "team id (Accounts_OAuth_Apple_iss)")?;
    let kid = setting(APPLE_KEY_ID, "key id (Accounts_OAuth_Apple_kid)")?;
    let services_id = p.client_id();
    if services_id.is_empty() {
        return Err(format!(
            "{} has no services id (Accounts_OAuth_Apple_id)",
            p.name
        ));
    }
    let built_from = sha256([services_id, &team, &kid, key_pem].join("\n").as_bytes());
    let now = s.clock.now_ms() / 1000;
    let service = p.service_key();
    if let Some(kept) = s.apple_client_secrets.get(&service) {
        let (digest, exp, jwt) = kept.value();
        if ct_eq(digest, &built_from) && exp - now > RENEW_BEFORE_SECS {
            return Ok(jwt.clone());
        }
    }
    let bad_key = || {
        format!(
            "{}'s private key (Accounts_OAuth_Apple_secretKey) is not a .p8 key (an ES256 key in PKCS#8 PEM)",
            p.name
        )
    };
    let der = pem_der(key_pem).ok_or_else(bad_key)?;
    let signer = Signer::new(kid, SigningAlg::Es256, &der).map_err(|_| bad_key())?;
    let exp = now + LIFETIME_SECS;
    let jwt = signer.sign(
        "JWT",
        &json!({"iss": team, "iat": now, "exp": exp, "aud": AUDIENCE, "sub": services_id}),
    );
    s.apple_client_secrets
        .insert(service, (built_from, exp, jwt.clone()));
    Ok(jwt)
}

/// The DER inside a PEM `PRIVATE KEY` block (what Apple's `.p8` download is); whitespace anywhere is ignored,
/// since a key pasted into a settings field often loses or gains line breaks.
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN PRIVATE KEY-----")?
        .strip_suffix("-----END PRIVATE KEY-----")?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// Adds the name of the posted `user` JSON ([`name_of_user`]) to the ID token's claims `doc` as `name`.
pub(super) fn add_posted_name(doc: &mut Value, user: Option<&String>) {
    if let (Value::Object(claims), Some(name)) = (doc, user.and_then(|u| name_of_user(u))) {
        claims.entry("name").or_insert(Value::String(name));
    }
}

/// The name in the `user` JSON Apple posts on first consent (`{"name": {"firstName", "lastName"}, "email"}`),
/// as one display name. Only the name is read: the JSON is not signed (it passes through the browser), so the
/// email that counts is the ID token's.
pub(super) fn name_of_user(user: &str) -> Option<String> {
    let v: Value = serde_json::from_str(user).ok()?;
    let part = |k: &str| {
        v.get("name")?
            .get(k)?
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let name = [part("firstName"), part("lastName")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_first_and_last_name_and_nothing_else() {
        let user = r#"{"name": {"firstName": "Jane", "lastName": "Appleseed"}, "email": "j@privaterelay.appleid.com"}"#;
        assert_eq!(name_of_user(user).as_deref(), Some("Jane Appleseed"));
        assert_eq!(
            name_of_user(r#"{"name": {"firstName": " Jane "}}"#).as_deref(),
            Some("Jane")
        );
        for none in [
            r#"{"email": "j@example.com"}"#,
            r#"{"name": {"firstName": ""}}"#,
            "not json",
        ] {
            assert_eq!(name_of_user(none), None, "{none}");
        }
        let user = user.to_owned();
        let mut claims = json!({"sub": "s"});
        add_posted_name(&mut claims, Some(&user));
        assert_eq!(claims["name"], "Jane Appleseed");
        add_posted_name(&mut claims, None);
        assert_eq!(
            claims["name"], "Jane Appleseed",
            "nothing posted, nothing changed"
        );
    }

    #[test]
    fn a_p8_key_is_a_pem_private_key_block() {
        let der = crate::crypto::jose::generate(SigningAlg::Es256);
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n{}\n-----END PRIVATE KEY-----\n",
            &b64[..64],
            &b64[64..]
        );
        assert_eq!(pem_der(&pem), Some(der.clone()));
        let flat = format!("-----BEGIN PRIVATE KEY-----{b64}-----END PRIVATE KEY-----");
        assert_eq!(pem_der(&flat), Some(der));
        assert_eq!(
            pem_der("-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----"),
            None
        );
        assert_eq!(pem_der("secret"), None);
    }
}
