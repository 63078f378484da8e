//! OpenID Connect claims: who a user is to an app (`sub`) and what the app may know of them (by scope, OIDC Core
//! §5.4, plus the custom claims the app is mapped). The one source for userinfo, ID tokens and JWT access tokens:
//!
//! - [`subject`]: the `sub` an app sees, public (the user id) or pairwise (per sector).
//! - [`for_scope`]: the claims a granted scope releases to one [`Audience`], never `sub` and never null.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use super::session::bearer_user;
use crate::clock::Clock;
use crate::crypto::Sealer;
use crate::model::app::SubjectType;
use crate::model::profile::StandardClaim;
use crate::model::{App, User};
use crate::store::Store;

/// The purpose [`Sealer::derive`] derives the pairwise-subject secret for ([`pairwise_key`]).
const PAIRWISE_PURPOSE: &str = "pairwise-subject";

/// The server secret pairwise subjects are salted with, derived from the master key: every node sharing the key
/// computes the same subjects, and nobody without it can link a subject to a user id.
pub fn pairwise_key(sealer: &Sealer) -> [u8; 32] {
    sealer.derive(PAIRWISE_PURPOSE)
}

/// Where claims go: each place releases a different set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// The ID token: the scope's claims when the app's `id_token_claims` is on, and its extra claims.
    IdToken,
    /// The userinfo answer: the scope's claims and the app's extra claims.
    Userinfo,
    /// A JWT access token (RFC 9068): the app's extra claims only; the scope's profile claims stay out of a token
    /// that every resource server reads.
    AccessToken,
}

/// The `sub` `app` sees for the user `user_id` (OIDC Core §8): the user id for a public app; for a pairwise app
/// base64url(SHA-256(sector ‖ 0x00 ‖ user id ‖ key)), the same for every app of the sector (the host of its
/// redirect URIs) and unlinkable across sectors. `key` is [`pairwise_key`].
pub fn subject(app: &App, user_id: &str, key: &[u8; 32]) -> String {
    match app.oidc.subject_type {
        SubjectType::Public => user_id.to_owned(),
        SubjectType::Pairwise => {
            let mut h = Sha256::new();
            h.update(app.sector().as_bytes());
            h.update([0]);
            h.update(user_id.as_bytes());
            h.update(key);
            URL_SAFE_NO_PAD.encode(h.finalize())
        }
    }
}

/// The standard claims each scope releases (OIDC Core §5.4), in the order the section lists them.
pub const SCOPE_CLAIMS: &[(&str, &[&str])] = &[
    (
        "profile",
        &[
            "name",
            "preferred_username",
            "given_name",
            "family_name",
            "middle_name",
            "nickname",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
    ),
    ("email", &["email", "email_verified"]),
    ("address", &["address"]),
    ("phone", &["phone_number", "phone_number_verified"]),
];

/// Every claim name Latchkey can release (discovery's `claims_supported`), `sub` first.
pub fn supported() -> Vec<&'static str> {
    let mut all = vec!["sub"];
    all.extend(SCOPE_CLAIMS.iter().flat_map(|(_, c)| c.iter().copied()));
    all
}

/// The claims `scope` (space-separated) releases about `user` to `audience` of `app`: the scope's standard
/// claims the user has (see [`Audience`] for where they go) and the app's `extra_claims` the user has. A claim
/// the user lacks is left out, never null. `sub` is not included: it is [`subject`].
pub fn for_scope(user: &User, scope: &str, app: &App, audience: Audience) -> Map<String, Value> {
    let mut out = Map::new();
    let standard = match audience {
        Audience::Userinfo => true,
        Audience::IdToken => app.oidc.id_token_claims,
        Audience::AccessToken => false,
    };
    if standard {
        let granted: Vec<&str> = scope.split(' ').collect();
        for (_, names) in SCOPE_CLAIMS.iter().filter(|(s, _)| granted.contains(s)) {
            for name in *names {
                if let Some(v) = standard_claim(user, name) {
                    out.insert((*name).to_owned(), v);
                }
            }
        }
    }
    for name in &app.oidc.extra_claims {
        if let Some(v) = user.profile.custom.get(name) {
            out.insert(name.clone(), v.clone());
        }
    }
    out
}

/// One standard claim of the user's, or `None` when they lack it.
fn standard_claim(user: &User, name: &str) -> Option<Value> {
    let p = &user.profile;
    let v = match name {
        "name" => Some(user.name.clone()).filter(|n| !n.is_empty())?.into(),
        "preferred_username" => user.username.clone().into(),
        "updated_at" => (user.updated_at / 1000).into(),
        "email" => user.emails.first()?.address.clone().into(),
        "email_verified" => user.emails.first()?.verified.into(),
        "address" if !p.address.is_empty() => {
            let members = p.address.iter();
            Value::Object(
                members
                    .map(|(k, v)| (k.clone(), v.as_str().into()))
                    .collect(),
            )
        }
        "phone_number_verified" => {
            p.standard.get(&StandardClaim::PhoneNumber)?;
            p.phone_number_verified?.into()
        }
        other => p
            .standard
            .get(&StandardClaim::parse(other)?)?
            .clone()
            .into(),
    };
    Some(v)
}

/// What a live access token shows at userinfo.
pub enum Userinfo {
    /// `sub` and the claims of the token's scope.
    Claims(Map<String, Value>),
    /// The token is live but was not granted `openid` (OIDC Core §5.3: userinfo serves OpenID Connect requests).
    NoOpenid,
}

/// Userinfo for an access token: `None` when it is not a live access token of an active user and existing app.
pub async fn userinfo(
    store: &Store,
    clock: &Clock,
    pairwise_key: &[u8; 32],
    token: &str,
) -> Option<Userinfo> {
    let (user, rec) = bearer_user(store, clock, token).await?;
    let app = store.app_by_client_id(&rec.client_id).await.ok()??;
    if !rec.scope.split(' ').any(|s| s == "openid") {
        return Some(Userinfo::NoOpenid);
    }
    let mut claims = for_scope(&user, &rec.scope, &app, Audience::Userinfo);
    claims.insert("sub".into(), subject(&app, &user.id, pairwise_key).into());
    Some(Userinfo::Claims(claims))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::app::OidcSettings;
    use crate::model::profile::Profile;
    use crate::model::user::Email;
    use proptest::prelude::*;
    use serde_json::json;

    fn user() -> User {
        User {
            id: "u1".into(),
            username: "jane".into(),
            name: "Jane Doe".into(),
            emails: vec![Email {
                address: "jane@example.com".into(),
                verified: true,
            }],
            roles: vec![],
            active: true,
            password_hash: None,
            created_at: 0,
            updated_at: 1_700_000_000_000,
            two_factor: None,
            profile: Profile::parse(&json!({
                "given_name": "Jane", "locale": "fr-FR", "phone_number": "+33123456789",
                "phone_number_verified": false, "address": {"country": "FR"},
                "department": "Ops", "level": 3,
            }))
            .unwrap(),
        }
    }

    fn app(uris: &[&str], oidc: OidcSettings) -> App {
        App {
            id: "a".into(),
            name: "A".into(),
            active: true,
            client_id: "c".into(),
            redirect_uris: uris.iter().map(|u| (*u).to_owned()).collect(),
            client_type: crate::model::ClientType::Public,
            grant_types: App::default_grants(),
            scopes: App::default_scopes(),
            skip_consent: false,
            token_epoch: 0,
            secret_hash: None,
            created_at: 0,
            updated_at: 0,
            created_by: Default::default(),
            oidc,
        }
    }

    fn plain() -> App {
        app(&["https://rp.example/cb"], OidcSettings::default())
    }

    #[test]
    fn each_scope_releases_its_claims() {
        let (u, a) = (user(), plain());
        let c = |scope| Value::Object(for_scope(&u, scope, &a, Audience::Userinfo));
        assert_eq!(c("openid"), json!({}));
        assert_eq!(
            c("openid profile"),
            json!({"name": "Jane Doe", "preferred_username": "jane", "given_name": "Jane",
                   "locale": "fr-FR", "updated_at": 1_700_000_000})
        );
        assert_eq!(
            c("openid email"),
            json!({"email": "jane@example.com", "email_verified": true})
        );
        assert_eq!(c("openid address"), json!({"address": {"country": "FR"}}));
        assert_eq!(
            c("openid phone"),
            json!({"phone_number": "+33123456789", "phone_number_verified": false})
        );
    }

    /// A federated user can lack a name and an email: the claims are left out, not sent as null.
    #[test]
    fn claims_the_user_lacks_are_omitted() {
        let u = User {
            name: String::new(),
            emails: vec![],
            profile: Profile::default(),
            ..user()
        };
        let c = for_scope(
            &u,
            "openid profile email address phone",
            &plain(),
            Audience::Userinfo,
        );
        assert_eq!(
            Value::Object(c),
            json!({"preferred_username": "jane", "updated_at": 1_700_000_000})
        );
    }

    #[test]
    fn extra_claims_go_everywhere_and_scope_claims_where_the_app_says() {
        let u = user();
        let oidc = OidcSettings {
            extra_claims: vec!["department".into(), "missing".into()],
            id_token_claims: false,
            ..OidcSettings::default()
        };
        let a = app(&["https://rp.example/cb"], oidc);
        let c = |aud| Value::Object(for_scope(&u, "openid email", &a, aud));
        assert_eq!(
            c(Audience::Userinfo),
            json!({"email": "jane@example.com", "email_verified": true, "department": "Ops"})
        );
        assert_eq!(c(Audience::IdToken), json!({"department": "Ops"}));
        assert_eq!(c(Audience::AccessToken), json!({"department": "Ops"}));
        let on = app(&["https://rp.example/cb"], OidcSettings::default());
        assert_eq!(
            Value::Object(for_scope(&u, "openid email", &on, Audience::IdToken)),
            json!({"email": "jane@example.com", "email_verified": true})
        );
    }

    fn pairwise(uris: &[&str]) -> App {
        let oidc = OidcSettings {
            subject_type: SubjectType::Pairwise,
            ..OidcSettings::default()
        };
        app(uris, oidc)
    }

    #[test]
    fn public_subjects_are_the_user_id() {
        assert_eq!(subject(&plain(), "u1", &[1; 32]), "u1");
    }

    proptest! {
        /// Pairwise subjects are stable per sector and key, differ across sectors, users and keys, and never
        /// reveal the user id.
        #[test]
        fn pairwise_subjects_are_per_sector(
            a in "[a-z]{1,10}", b in "[a-z]{1,10}", id in "[A-Za-z0-9]{17}", other in "[A-Za-z0-9]{17}",
        ) {
            let key = [9; 32];
            let app_a = pairwise(&[&format!("https://{a}.example/cb")]);
            let app_a2 = pairwise(&[&format!("https://{a}.example/other"), &format!("https://{a}.example/x")]);
            let app_b = pairwise(&[&format!("https://{b}.example/cb")]);
            let s = subject(&app_a, &id, &key);
            prop_assert_eq!(&s, &subject(&app_a2, &id, &key));
            prop_assert_eq!(s.len(), 43);
            prop_assert!(!s.contains(&id));
            prop_assert_ne!(&s, &subject(&app_a, &id, &[8; 32]));
            if a != b {
                prop_assert_ne!(&s, &subject(&app_b, &id, &key));
            }
            if id != other {
                prop_assert_ne!(&s, &subject(&app_a, &other, &key));
            }
        }
    }

    #[test]
    fn every_supported_claim_is_named_once() {
        let all = supported();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len());
        for c in StandardClaim::ALL {
            assert!(all.contains(&c.as_str()), "{c:?}");
        }
    }
}
