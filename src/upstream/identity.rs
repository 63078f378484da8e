//! Mapping an upstream identity document to an account.
//!
//! A custom provider: the account id is the first of `sub`, `id`, `_id`, `ID`, `userid`, `user_id`;
//! username/email/name/avatar come from the provider's `-*_field` paths (dotted paths reach into nested objects),
//! else from the usual claims, and `email_verified` is the OIDC claim. A preset provider: its catalogue
//! [`Mapping`] says where each field is and which answer proves the email verified. Either way an email is
//! verified only when the upstream says so, as a boolean or as the strings `"true"`/`"false"` (Apple sends
//! strings).

use serde_json::Value;

pub use crate::core::federation::Identity;
use crate::model::catalogue::{EmailVerified, Emails, Mapper, Mapping, Picture, Upstream};

const ID_CLAIMS: [&str; 6] = ["sub", "id", "_id", "ID", "userid", "user_id"];

/// Follows `a.b.c` through nested objects (and array indexes such as `emails.0.address`).
pub fn lookup<'a>(v: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(v, |cur, key| match cur {
        Value::Object(m) => m.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// Strings as they are; numbers as their decimal text (many upstreams use numeric ids).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The text at a dotted path; an empty path is a field the upstream does not have.
fn at(v: &Value, path: &str) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    lookup(v, path).and_then(text)
}

fn field(v: &Value, configured: &str, defaults: &[&str]) -> Option<String> {
    if !configured.trim().is_empty() {
        return at(v, configured.trim());
    }
    defaults.iter().find_map(|k| v.get(*k).and_then(text))
}

/// A verification flag as OIDC sends it (`true`) or as Apple does (`"true"`); anything else is not verified.
fn is_true(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Maps the identity document `doc` (and the emails endpoint's answer, when the preset has one), or says what
/// is missing.
pub fn map(doc: &Value, up: &Upstream, emails: Option<&Value>) -> Result<Identity, String> {
    match &up.mapper {
        Mapper::Custom {
            username,
            email,
            name,
            avatar,
        } => custom(doc, username, email, name, avatar),
        Mapper::Preset(m) => preset(doc, m, emails.zip(up.emails.as_ref().map(|(_, e)| *e))),
    }
}

fn custom(
    v: &Value,
    username: &str,
    email: &str,
    name: &str,
    avatar: &str,
) -> Result<Identity, String> {
    if !v.is_object() {
        return Err("the identity response is not a JSON object".into());
    }
    let account_id = ID_CLAIMS
        .iter()
        .find_map(|k| v.get(*k).and_then(text))
        .ok_or_else(|| {
            format!(
                "the identity has no account id (none of {})",
                ID_CLAIMS.join(", ")
            )
        })?;
    Ok(Identity {
        account_id,
        username: field(v, username, &["preferred_username", "username"]),
        email: field(v, email, &["email"]),
        email_verified: is_true(v.get("email_verified")),
        name: field(v, name, &["name"]),
        avatar: field(v, avatar, &["picture", "avatar_url"]),
    })
}

fn preset(doc: &Value, m: &Mapping, emails: Option<(&Value, &Emails)>) -> Result<Identity, String> {
    let v = if m.root.is_empty() {
        doc
    } else {
        lookup(doc, m.root).ok_or_else(|| format!("the identity response has no {:?}", m.root))?
    };
    if !v.is_object() {
        return Err("the identity response is not a JSON object".into());
    }
    let account_id =
        at(v, m.id).ok_or_else(|| format!("the identity has no account id ({})", m.id))?;
    let listed = emails
        .map(|(list, shape)| listed_emails(list, shape))
        .unwrap_or_default();
    let email = at(v, m.email).or_else(|| {
        let primary = |need_verified: bool| {
            listed
                .iter()
                .find(|e| e.primary && (e.verified || !need_verified))
        };
        primary(true)
            .or_else(|| primary(false))
            .map(|e| e.address.clone())
    });
    let email_verified = match m.email_verified {
        EmailVerified::Never => false,
        EmailVerified::Claim(c) => is_true(lookup(v, c)),
        EmailVerified::Documented => email.is_some(),
        EmailVerified::EmailsEndpoint => email.as_deref().is_some_and(|addr| {
            listed
                .iter()
                .any(|e| e.verified && e.address.eq_ignore_ascii_case(addr))
        }),
    };
    let avatar = match m.picture {
        Picture::None => None,
        Picture::Path(p) => at(v, p),
        Picture::Discord => at(v, "avatar")
            .map(|hash| format!("https://cdn.discordapp.com/avatars/{account_id}/{hash}.png")),
    };
    Ok(Identity {
        username: at(v, m.username),
        email,
        email_verified,
        name: m.name.iter().find_map(|p| at(v, p)),
        avatar,
        account_id,
    })
}

/// One address of an emails endpoint's answer.
struct Listed {
    address: String,
    primary: bool,
    verified: bool,
}

fn listed_emails(answer: &Value, shape: &Emails) -> Vec<Listed> {
    let list = if shape.list.is_empty() {
        Some(answer)
    } else {
        lookup(answer, shape.list)
    };
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some(Listed {
                address: at(e, shape.address)?,
                primary: is_true(e.get(shape.primary)),
                verified: is_true(e.get(shape.verified)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::catalogue::{self, resolve};
    use crate::model::Provider;
    use proptest::prelude::*;
    use serde_json::json;

    fn provider() -> Provider {
        let mut p = Provider::new("p1".into(), "Idp".into(), 0);
        p.url = "https://idp.example".into();
        p
    }

    /// A custom provider's mapping.
    fn map(doc: &Value, p: &Provider) -> Result<Identity, String> {
        super::map(doc, &resolve(p).unwrap(), None)
    }

    #[test]
    fn id_claims_in_order_and_numbers_as_text() {
        let p = provider();
        assert_eq!(
            map(&json!({"id": 42, "sub": "s"}), &p).unwrap().account_id,
            "s"
        );
        assert_eq!(map(&json!({"ID": 42}), &p).unwrap().account_id, "42");
        assert_eq!(
            map(&json!({"user_id": "auth0|1"}), &p).unwrap().account_id,
            "auth0|1"
        );
        assert!(map(&json!({"name": "x"}), &p)
            .unwrap_err()
            .contains("no account id"));
        assert!(map(&json!("text"), &p).is_err());
    }

    #[test]
    fn configured_dotted_paths_win_over_defaults() {
        let mut p = provider();
        let doc = json!({"sub": "1", "preferred_username": "def", "profile": {"login": "jane", "mails": [{"v": "j@x.io"}]}});
        assert_eq!(map(&doc, &p).unwrap().username.as_deref(), Some("def"));
        p.username_field = "profile.login".into();
        p.email_field = "profile.mails.0.v".into();
        let id = map(&doc, &p).unwrap();
        assert_eq!(id.username.as_deref(), Some("jane"));
        assert_eq!(id.email.as_deref(), Some("j@x.io"));
    }

    #[test]
    fn email_verified_is_a_boolean_or_apples_string_and_false_otherwise() {
        let p = provider();
        let verified = |doc: Value| map(&doc, &p).unwrap().email_verified;
        assert!(verified(json!({"sub": "1", "email_verified": true})));
        assert!(verified(json!({"sub": "1", "email_verified": "true"})));
        assert!(!verified(json!({"sub": "1", "email_verified": false})));
        assert!(!verified(json!({"sub": "1", "email_verified": "false"})));
        assert!(!verified(json!({"sub": "1", "email_verified": 1})));
        assert!(!verified(json!({"sub": "1", "email_verified": "yes"})));
        assert!(!verified(json!({"sub": "1"})));
    }

    /// Identity `id` through preset `id`: its documented identity answer, and its emails answer when it has one.
    fn preset_map(id: &str, doc: Value, emails: Option<Value>) -> Identity {
        let mut p = Provider::new("p1".into(), "P".into(), 0);
        p.preset = Some(id.into());
        p.url = "https://upstream.example".into();
        super::map(&doc, &resolve(&p).unwrap(), emails.as_ref()).unwrap()
    }

    fn ident(
        id: &str,
        user: Option<&str>,
        email: Option<&str>,
        verified: bool,
        name: Option<&str>,
        pic: Option<&str>,
    ) -> Identity {
        let s = |v: Option<&str>| v.map(str::to_owned);
        Identity {
            account_id: id.into(),
            username: s(user),
            email: s(email),
            email_verified: verified,
            name: s(name),
            avatar: s(pic),
        }
    }

    /// Every entry against its upstream's documented answer.
    #[test]
    fn every_preset_maps_its_upstreams_documented_answer() {
        let userinfo = json!({"sub": "1077", "name": "Jane Doe", "preferred_username": "jane", "nickname": "jdoe",
            "email": "jane@example.com", "email_verified": true, "picture": "https://pic.example/j.png"});
        let github_user = json!({"login": "octocat", "id": 583231, "name": "The Octocat", "email": null,
            "avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4"});
        let github_emails = json!([
            {"email": "old@example.com", "primary": false, "verified": true, "visibility": null},
            {"email": "octocat@github.com", "primary": true, "verified": true, "visibility": "public"}]);
        let cases: Vec<(&str, Value, Option<Value>, Identity)> = vec![
            ("google", userinfo.clone(), None,
             ident("1077", Some("jane"), Some("jane@example.com"), true, Some("Jane Doe"), Some("https://pic.example/j.png"))),
            ("github", github_user.clone(), Some(github_emails.clone()),
             ident("583231", Some("octocat"), Some("octocat@github.com"), true, Some("The Octocat"),
                   Some("https://avatars.githubusercontent.com/u/583231?v=4"))),
            ("github_enterprise", github_user, Some(github_emails),
             ident("583231", Some("octocat"), Some("octocat@github.com"), true, Some("The Octocat"),
                   Some("https://avatars.githubusercontent.com/u/583231?v=4"))),
            ("microsoft", json!({"id": "87d349ed-44d7-43e1-9a83-5f2406dee5bd", "displayName": "Adele Vance",
                "mail": "AdeleV@contoso.com", "userPrincipalName": "AdeleV@contoso.com"}), None,
             ident("87d349ed-44d7-43e1-9a83-5f2406dee5bd", None, Some("AdeleV@contoso.com"), false,
                   Some("Adele Vance"), None)),
            ("spotify", json!({"id": "wizzler", "display_name": "JM Wizzler", "email": "email@example.com",
                "images": [{"url": "https://i.scdn.co/image/x", "height": 300, "width": 300}]}), None,
             ident("wizzler", None, Some("email@example.com"), false, Some("JM Wizzler"), Some("https://i.scdn.co/image/x"))),
            ("facebook", json!({"id": "10158", "name": "Jane Doe", "email": "jane@example.com",
                "picture": {"data": {"height": 50, "is_silhouette": false, "url": "https://fb.example/p.jpg", "width": 50}}}), None,
             ident("10158", None, Some("jane@example.com"), false, Some("Jane Doe"), Some("https://fb.example/p.jpg"))),
            ("discord", json!({"id": "80351110224678912", "username": "nelly", "global_name": "Nelly",
                "avatar": "8342729096ea3675442027381ff50dfe", "verified": true, "email": "nelly@discord.com"}), None,
             ident("80351110224678912", Some("nelly"), Some("nelly@discord.com"), true, Some("Nelly"),
                   Some("https://cdn.discordapp.com/avatars/80351110224678912/8342729096ea3675442027381ff50dfe.png"))),
            // Apple: the ID token's claims (flags as strings), the name added from the first consent's `user`.
            ("apple", json!({"iss": "https://appleid.apple.com", "sub": "001234.abcd.0102", "email":
                "x1y2@privaterelay.appleid.com", "email_verified": "true", "is_private_email": "true",
                "name": "Jane Appleseed"}), None,
             ident("001234.abcd.0102", None, Some("x1y2@privaterelay.appleid.com"), true, Some("Jane Appleseed"),
                   None)),
            ("gitlab", userinfo.clone(), None,
             ident("1077", Some("jdoe"), Some("jane@example.com"), true, Some("Jane Doe"), Some("https://pic.example/j.png"))),
            ("bitbucket", json!({"account_id": "557058:c0b72ad0", "uuid": "{d301aafa}", "username": "evzijst",
                "display_name": "Erik van Zijst", "links": {"avatar": {"href": "https://bb.example/a.png"}}}),
             Some(json!({"values": [{"email": "erik@example.com", "is_primary": true, "is_confirmed": false, "type": "email"}]})),
             ident("557058:c0b72ad0", Some("evzijst"), Some("erik@example.com"), false, Some("Erik van Zijst"),
                   Some("https://bb.example/a.png"))),
            ("linkedin", userinfo.clone(), None,
             ident("1077", None, Some("jane@example.com"), true, Some("Jane Doe"), Some("https://pic.example/j.png"))),
            ("x", json!({"data": {"id": "2244994945", "name": "X Dev", "username": "XDevelopers",
                "profile_image_url": "https://pbs.twimg.com/p.jpg"}}), None,
             ident("2244994945", Some("XDevelopers"), None, false, Some("X Dev"), Some("https://pbs.twimg.com/p.jpg"))),
            ("twitch", json!({"data": [{"id": "141981764", "login": "twitchdev", "display_name": "TwitchDev",
                "email": "dev@twitch.tv", "profile_image_url": "https://static-cdn.jtvnw.net/p.png"}]}), None,
             ident("141981764", Some("twitchdev"), Some("dev@twitch.tv"), true, Some("TwitchDev"),
                   Some("https://static-cdn.jtvnw.net/p.png"))),
            ("nextcloud", json!({"ocs": {"meta": {"status": "ok", "statuscode": 200},
                "data": {"id": "admin", "displayname": "Admin", "email": "admin@cloud.example", "enabled": true}}}), None,
             ident("admin", Some("admin"), Some("admin@cloud.example"), false, Some("Admin"), None)),
            ("wordpress", json!({"ID": 1234, "display_name": "Jane", "username": "janewp", "email": "jane@wp.example",
                "email_verified": true, "avatar_URL": "https://gravatar.example/a"}), None,
             ident("1234", Some("janewp"), Some("jane@wp.example"), true, Some("Jane"), Some("https://gravatar.example/a"))),
            ("tokenpass", json!({"id": "d5ea8b6e", "name": "Token User", "username": "tokenuser",
                "email": "t@tokenly.example"}), None,
             ident("d5ea8b6e", Some("tokenuser"), Some("t@tokenly.example"), false, Some("Token User"), None)),
            ("drupal", userinfo, None,
             ident("1077", Some("jane"), Some("jane@example.com"), true, Some("Jane Doe"), Some("https://pic.example/j.png"))),
            ("dolphin", json!({"ID": "42", "NickName": "dolly", "Email": "dolly@dolphin.example"}), None,
             ident("42", Some("dolly"), Some("dolly@dolphin.example"), false, Some("dolly"), None)),
            ("twitter", json!({"id": 783214, "id_str": "783214", "name": "Twitter", "screen_name": "twitter",
                "email": "t@twitter.example", "profile_image_url_https": "https://pbs.twimg.com/p.png"}), None,
             ident("783214", Some("twitter"), Some("t@twitter.example"), false, Some("Twitter"),
                   Some("https://pbs.twimg.com/p.png"))),
        ];
        let covered: Vec<&str> = cases.iter().map(|c| c.0).collect();
        for p in catalogue::all() {
            assert!(covered.contains(&p.id), "no mapping test for {}", p.id);
        }
        for (id, doc, emails, want) in cases {
            assert_eq!(preset_map(id, doc, emails), want, "{id}");
        }
    }

    #[test]
    fn emails_endpoint_vouches_only_for_a_listed_verified_address() {
        let user = |email: Value| json!({"id": 1, "login": "o", "email": email});
        let list = json!([{"email": "pub@example.com", "primary": false, "verified": false},
                          {"email": "main@example.com", "primary": true, "verified": true}]);
        let public = preset_map("github", user(json!("pub@example.com")), Some(list.clone()));
        assert_eq!(
            (public.email.as_deref(), public.email_verified),
            (Some("pub@example.com"), false)
        );
        let main = preset_map("github", user(json!("Main@Example.com")), Some(list));
        assert!(main.email_verified);
        let none = preset_map("github", user(Value::Null), Some(json!([])));
        assert_eq!((none.email, none.email_verified), (None, false));
    }

    #[test]
    fn a_preset_identity_without_its_id_or_root_is_refused() {
        let mut p = Provider::new("p1".into(), "P".into(), 0);
        p.preset = Some("x".into());
        let up = resolve(&p).unwrap();
        assert!(super::map(&json!({"data": {"name": "n"}}), &up, None)
            .unwrap_err()
            .contains("no account id (id)"));
        assert!(super::map(&json!({"errors": []}), &up, None)
            .unwrap_err()
            .contains("no \"data\""));
    }

    proptest! {
        #[test]
        fn lookup_finds_what_was_nested(keys in proptest::collection::vec("[a-z]{1,6}", 1..5), leaf in "[a-z0-9]{1,10}") {
            let mut v = Value::String(leaf.clone());
            for k in keys.iter().rev() {
                v = json!({ k.clone(): v });
            }
            prop_assert_eq!(lookup(&v, &keys.join(".")), Some(&Value::String(leaf)));
        }
    }
}
