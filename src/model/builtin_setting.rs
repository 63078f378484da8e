//! Rocket.Chat's settings for its built-in OAuth services and its OAuth Proxy, exactly as RC registers them
//! (`apps/meteor/server/settings/oauth.ts` and the OAuth group of `app/lib/server/startup/settings.ts`): each key
//! with its type and default, and where its value lives: a place on the [`Provider`](super::Provider) of a
//! catalogue preset (the preset id is RC's service name), or an RC-wide setting (the Proxy's two keys).
//!
//! RC's read-only `*_callback_url` keys are not here: Latchkey's callback is always `/_oauth/<service>`.
//! RC has no built-in Office 365 or Okta settings (both go through custom OAuth), nor are its `Meteor` keys here
//! (no preset).

use super::provider::{normalize_name, Kind, LoginStyle, Setting, SettingValue};
use super::Provider;
use crate::clock::Millis;
use crate::error::{Error, Field, Result};

/// The value a key has until it is written (RC's default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Initial {
    Bool(bool),
    Str(&'static str),
}

/// Where a built-in key's value lives on its preset's provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// A field the custom providers' settings also name: the enable switch, the first credential's client id
    /// (`Id`) or sealed secret (`Secret`), `url`, the paths, the button, …
    Field(Setting),
    /// An entry of `Provider::options` (non-secret preset settings), by the name the preset declares.
    Option(&'static str),
}

/// What a key configures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A setting of the provider that follows catalogue preset `preset` (service key = preset id).
    Provider { preset: &'static str, place: Place },
    /// An RC-wide setting (the `settings` tree).
    Global,
}

/// One RC key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuiltinSetting {
    pub key: &'static str,
    pub kind: Kind,
    pub initial: Initial,
    pub target: Target,
}

/// RC's `Accounts_OAuth_Proxy_host`: where proxied services' upstream redirects go (`<host>/oauth_redirect`).
pub const PROXY_HOST: &str = "Accounts_OAuth_Proxy_host";
/// RC's `Accounts_OAuth_Proxy_services`: the comma-separated service names whose redirects go through the proxy.
pub const PROXY_SERVICES: &str = "Accounts_OAuth_Proxy_services";

/// Apple's option names (`_iss` is the team id, `_kid` the `.p8` key's id; the services id is the client id and
/// the `.p8` key itself the sealed secret).
pub const APPLE_TEAM_ID: &str = "team_id";
pub const APPLE_KEY_ID: &str = "key_id";
/// WordPress's option names: the server type and, for a `custom` server, how the token reaches the identity path.
pub const WORDPRESS_SERVER_TYPE: &str = "server_type";
pub const WORDPRESS_IDENTITY_TOKEN_SENT_VIA: &str = "identity_token_sent_via";
/// RC's WordPress server types.
pub const WORDPRESS_SERVER_TYPES: &[&str] = &["wordpress-com", "wp-oauth-server", "custom"];

const fn field(
    key: &'static str,
    preset: &'static str,
    s: Setting,
    initial: Initial,
) -> BuiltinSetting {
    let kind = match initial {
        Initial::Bool(_) => Kind::Bool,
        Initial::Str(_) => Kind::Str,
    };
    BuiltinSetting {
        key,
        kind,
        initial,
        target: Target::Provider {
            preset,
            place: Place::Field(s),
        },
    }
}

const fn option(
    key: &'static str,
    preset: &'static str,
    name: &'static str,
    kind: Kind,
) -> BuiltinSetting {
    BuiltinSetting {
        key,
        kind,
        initial: Initial::Str(""),
        target: Target::Provider {
            preset,
            place: Place::Option(name),
        },
    }
}

const OFF: Initial = Initial::Bool(false);
const EMPTY: Initial = Initial::Str("");

/// The enable switch, `_id` and `_secret` of a service whose keys follow RC's usual pattern.
macro_rules! trio {
    ($prefix:literal, $preset:literal) => {
        [
            field($prefix, $preset, Setting::Enabled, OFF),
            field(concat!($prefix, "_id"), $preset, Setting::Id, EMPTY),
            field(concat!($prefix, "_secret"), $preset, Setting::Secret, EMPTY),
        ]
    };
}

const GOOGLE: [BuiltinSetting; 3] = trio!("Accounts_OAuth_Google", "google");
const GITHUB: [BuiltinSetting; 3] = trio!("Accounts_OAuth_Github", "github");
const FACEBOOK: [BuiltinSetting; 3] = trio!("Accounts_OAuth_Facebook", "facebook");
const LINKEDIN: [BuiltinSetting; 3] = trio!("Accounts_OAuth_Linkedin", "linkedin");
const TWITTER: [BuiltinSetting; 3] = trio!("Accounts_OAuth_Twitter", "twitter");
const GHE: [BuiltinSetting; 3] = trio!("Accounts_OAuth_GitHub_Enterprise", "github_enterprise");
const GITLAB: [BuiltinSetting; 3] = trio!("Accounts_OAuth_Gitlab", "gitlab");
const NEXTCLOUD: [BuiltinSetting; 3] = trio!("Accounts_OAuth_Nextcloud", "nextcloud");
const TOKENPASS: [BuiltinSetting; 3] = trio!("Accounts_OAuth_Tokenpass", "tokenpass");
const WORDPRESS: [BuiltinSetting; 3] = trio!("Accounts_OAuth_Wordpress", "wordpress");
const DRUPAL: [BuiltinSetting; 3] = trio!("Accounts_OAuth_Drupal", "drupal");
const DOLPHIN: [BuiltinSetting; 3] = trio!("Accounts_OAuth_Dolphin", "dolphin");

/// The keys that do not follow the usual pattern, in RC's registration order per section.
const OTHERS: [BuiltinSetting; 24] = [
    field("API_Drupal_URL", "drupal", Setting::Url, EMPTY),
    field("Accounts_OAuth_Apple", "apple", Setting::Enabled, OFF),
    field("Accounts_OAuth_Apple_id", "apple", Setting::Id, EMPTY),
    field(
        "Accounts_OAuth_Apple_secretKey",
        "apple",
        Setting::Secret,
        EMPTY,
    ),
    option(
        "Accounts_OAuth_Apple_iss",
        "apple",
        APPLE_TEAM_ID,
        Kind::Str,
    ),
    option("Accounts_OAuth_Apple_kid", "apple", APPLE_KEY_ID, Kind::Str),
    field(
        "API_GitHub_Enterprise_URL",
        "github_enterprise",
        Setting::Url,
        EMPTY,
    ),
    field("API_Gitlab_URL", "gitlab", Setting::Url, EMPTY),
    field(
        "Accounts_OAuth_Gitlab_identity_path",
        "gitlab",
        Setting::IdentityPath,
        Initial::Str("/api/v4/user"),
    ),
    field(
        "Accounts_OAuth_Gitlab_merge_users",
        "gitlab",
        Setting::MergeUsers,
        OFF,
    ),
    field(
        "Accounts_OAuth_Nextcloud_URL",
        "nextcloud",
        Setting::Url,
        EMPTY,
    ),
    field(
        "Accounts_OAuth_Nextcloud_button_label_text",
        "nextcloud",
        Setting::ButtonLabelText,
        Initial::Str("Nextcloud"),
    ),
    field(
        "Accounts_OAuth_Nextcloud_button_label_color",
        "nextcloud",
        Setting::ButtonLabelColor,
        Initial::Str("#ffffff"),
    ),
    field(
        "Accounts_OAuth_Nextcloud_button_color",
        "nextcloud",
        Setting::ButtonColor,
        Initial::Str("#0082c9"),
    ),
    field("API_Tokenpass_URL", "tokenpass", Setting::Url, EMPTY),
    field("API_Wordpress_URL", "wordpress", Setting::Url, EMPTY),
    option(
        "Accounts_OAuth_Wordpress_server_type",
        "wordpress",
        WORDPRESS_SERVER_TYPE,
        Kind::Select(WORDPRESS_SERVER_TYPES),
    ),
    field(
        "Accounts_OAuth_Wordpress_identity_path",
        "wordpress",
        Setting::IdentityPath,
        EMPTY,
    ),
    option(
        "Accounts_OAuth_Wordpress_identity_token_sent_via",
        "wordpress",
        WORDPRESS_IDENTITY_TOKEN_SENT_VIA,
        Kind::Str,
    ),
    field(
        "Accounts_OAuth_Wordpress_token_path",
        "wordpress",
        Setting::TokenPath,
        EMPTY,
    ),
    field(
        "Accounts_OAuth_Wordpress_authorize_path",
        "wordpress",
        Setting::AuthorizePath,
        EMPTY,
    ),
    field(
        "Accounts_OAuth_Wordpress_scope",
        "wordpress",
        Setting::Scope,
        EMPTY,
    ),
    field("Accounts_OAuth_Dolphin_URL", "dolphin", Setting::Url, EMPTY),
    BuiltinSetting {
        key: "Accounts_OAuth_Dolphin_login_style",
        kind: Kind::Select(LoginStyle::VALUES),
        initial: Initial::Str("redirect"),
        target: Target::Provider {
            preset: "dolphin",
            place: Place::Field(Setting::LoginStyle),
        },
    },
];

const DOLPHIN_BUTTON: [BuiltinSetting; 3] = [
    field(
        "Accounts_OAuth_Dolphin_button_label_text",
        "dolphin",
        Setting::ButtonLabelText,
        EMPTY,
    ),
    field(
        "Accounts_OAuth_Dolphin_button_label_color",
        "dolphin",
        Setting::ButtonLabelColor,
        Initial::Str("#FFFFFF"),
    ),
    field(
        "Accounts_OAuth_Dolphin_button_color",
        "dolphin",
        Setting::ButtonColor,
        Initial::Str("#1d74f5"),
    ),
];

const PROXY: [BuiltinSetting; 2] = [
    BuiltinSetting {
        key: PROXY_HOST,
        kind: Kind::Str,
        initial: Initial::Str("https://oauth-proxy.rocket.chat"),
        target: Target::Global,
    },
    BuiltinSetting {
        key: PROXY_SERVICES,
        kind: Kind::Str,
        initial: Initial::Str(""),
        target: Target::Global,
    },
];

impl Initial {
    pub fn value(self) -> SettingValue {
        match self {
            Initial::Bool(b) => SettingValue::Bool(b),
            Initial::Str(s) => SettingValue::Str(s.to_owned()),
        }
    }
}

impl BuiltinSetting {
    /// Checks `v` against RC's type and values (a URL key as an absolute http(s) URL, as the custom `-url`)
    /// without changing anything.
    pub fn check(&self, v: &SettingValue) -> Result<()> {
        match (self.target, self.kind, v) {
            (
                Target::Provider {
                    place: Place::Field(s),
                    ..
                },
                _,
                _,
            ) => Provider::check(s, v),
            (Target::Global, _, _) if self.key == PROXY_HOST => Provider::check(Setting::Url, v),
            (_, Kind::Bool, SettingValue::Bool(_)) => Ok(()),
            (_, Kind::Bool, _) => Err(Error::invalid(Field::SettingValue, "must be a boolean")),
            (_, _, SettingValue::Bool(_)) => {
                Err(Error::invalid(Field::SettingValue, "must be a string"))
            }
            (_, Kind::Select(allowed), SettingValue::Str(x)) if !allowed.contains(&x.as_str()) => {
                Err(Error::invalid(
                    Field::SettingValue,
                    format!("must be one of {allowed:?}"),
                ))
            }
            _ => Ok(()),
        }
    }

    /// The value RC would show on the provider of this key's preset; a set secret reads as the mask.
    pub fn read(&self, p: &Provider) -> SettingValue {
        match self.target {
            Target::Provider {
                place: Place::Field(s),
                ..
            } => p.get(s),
            Target::Provider {
                place: Place::Option(name),
                ..
            } => p
                .options
                .get(name)
                .map_or_else(|| self.initial.value(), |v| SettingValue::Str(v.clone())),
            Target::Global => self.initial.value(),
        }
    }

    /// Writes a checked non-secret value to the provider of this key's preset (the secret is sealed by the
    /// caller and goes through [`Provider::set_sealed_secret`]).
    pub fn write(&self, p: &mut Provider, v: SettingValue) -> Result<()> {
        self.check(&v)?;
        match (self.target, v) {
            (
                Target::Provider {
                    place: Place::Field(s),
                    ..
                },
                v,
            ) => p.set(s, v),
            (
                Target::Provider {
                    place: Place::Option(name),
                    ..
                },
                SettingValue::Str(v),
            ) => {
                p.options.insert(name.to_owned(), v);
                Ok(())
            }
            _ => Err(Error::internal("not a string option of a provider")),
        }
    }
}

/// A new provider that follows built-in preset `preset`, with RC's defaults: service key = preset id, disabled,
/// no credentials. Its `url`, paths and scope start empty, meaning "the preset's own", except where RC's keys give
/// a default (GitLab's identity path, Nextcloud's and Dolphin's buttons, Dolphin's login style).
pub fn preset_provider(id: String, preset: &str, now: Millis) -> Provider {
    let mut p = Provider::new(id, normalize_name(preset), now);
    p.preset = Some(preset.to_owned());
    for s in [
        Setting::TokenPath,
        Setting::IdentityPath,
        Setting::AuthorizePath,
        Setting::Scope,
    ] {
        p.set(s, SettingValue::Str(String::new()))
            .expect("a string field");
    }
    for b in of_preset(preset) {
        if let Target::Provider {
            place: Place::Field(s),
            ..
        } = b.target
        {
            if !matches!(s, Setting::Id | Setting::Secret) {
                p.set(s, b.initial.value()).expect("RC's default fits");
            }
        }
    }
    p
}

/// Every group of the table.
const GROUPS: [&[BuiltinSetting]; 15] = [
    &GOOGLE,
    &GITHUB,
    &FACEBOOK,
    &LINKEDIN,
    &TWITTER,
    &GHE,
    &GITLAB,
    &NEXTCLOUD,
    &TOKENPASS,
    &WORDPRESS,
    &DRUPAL,
    &DOLPHIN,
    &OTHERS,
    &DOLPHIN_BUTTON,
    &PROXY,
];

/// Every built-in key.
pub fn all() -> impl Iterator<Item = &'static BuiltinSetting> {
    GROUPS.iter().flat_map(|g| g.iter())
}

/// The built-in key `key` (RC's ids are case-sensitive).
pub fn find(key: &str) -> Option<&'static BuiltinSetting> {
    all().find(|b| b.key == key)
}

/// The keys of preset `preset`.
pub fn of_preset(preset: &str) -> impl Iterator<Item = &'static BuiltinSetting> + '_ {
    all().filter(move |b| matches!(b.target, Target::Provider { preset: p, .. } if p == preset))
}

/// Whether `preset` is one of RC's built-in services (it has keys here).
pub fn is_rc_builtin(preset: &str) -> bool {
    of_preset(preset).next().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_every_preset_has_its_switch_id_and_secret() {
        let keys: Vec<_> = all().map(|b| b.key).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), keys.len(), "duplicate key");
        let presets = [
            "google",
            "github",
            "github_enterprise",
            "gitlab",
            "facebook",
            "linkedin",
            "twitter",
            "apple",
            "nextcloud",
            "wordpress",
            "tokenpass",
            "drupal",
            "dolphin",
        ];
        for p in presets {
            for s in [Setting::Enabled, Setting::Id, Setting::Secret] {
                assert_eq!(
                    of_preset(p)
                        .filter(|b| matches!(b.target, Target::Provider { place: Place::Field(f), .. } if f == s))
                        .count(),
                    1,
                    "{p} {s:?}"
                );
            }
        }
        assert_eq!(all().filter(|b| b.target == Target::Global).count(), 2);
        assert!(!is_rc_builtin("microsoft"));
    }

    #[test]
    fn types_and_defaults_are_rcs() {
        let k = |key| find(key).unwrap();
        assert_eq!(k("Accounts_OAuth_Google").kind, Kind::Bool);
        assert_eq!(k("Accounts_OAuth_Google").initial, Initial::Bool(false));
        assert_eq!(k("Accounts_OAuth_Apple_secretKey").kind, Kind::Str);
        assert_eq!(
            k("Accounts_OAuth_Gitlab_identity_path").initial,
            Initial::Str("/api/v4/user")
        );
        assert_eq!(
            k("Accounts_OAuth_Wordpress_server_type").kind,
            Kind::Select(WORDPRESS_SERVER_TYPES)
        );
        assert_eq!(
            k(PROXY_HOST).initial,
            Initial::Str("https://oauth-proxy.rocket.chat")
        );
        assert!(find("Accounts_OAuth_google").is_none(), "case-sensitive");
        assert!(find("Accounts_OAuth_Google_callback_url").is_none());
    }

    #[test]
    fn a_preset_provider_reads_rcs_defaults_and_checks_values() {
        for b in all().filter(|b| b.target != Target::Global) {
            let Target::Provider { preset, place } = b.target else {
                unreachable!()
            };
            let p = preset_provider("id".into(), preset, 0);
            assert_eq!(p.service_key(), preset);
            assert_eq!(b.read(&p), b.initial.value(), "{}", b.key);
            if let Place::Field(s) = place {
                assert_eq!(s.kind(), b.kind, "{}", b.key);
            }
        }
        let mut p = preset_provider("id".into(), "wordpress", 0);
        let server_type = find("Accounts_OAuth_Wordpress_server_type").unwrap();
        assert!(server_type
            .write(&mut p, SettingValue::Str("nope".into()))
            .is_err());
        server_type
            .write(&mut p, SettingValue::Str("custom".into()))
            .unwrap();
        assert_eq!(p.options[WORDPRESS_SERVER_TYPE], "custom");
        let url = find("API_Wordpress_URL").unwrap();
        assert!(url.write(&mut p, SettingValue::Bool(true)).is_err());
        assert!(url
            .write(&mut p, SettingValue::Str("javascript:x".into()))
            .is_err());
        let host = find(PROXY_HOST).unwrap();
        assert!(host.check(&SettingValue::Str("not a url".into())).is_err());
        assert!(find(PROXY_SERVICES)
            .unwrap()
            .check(&SettingValue::Bool(true))
            .is_err());
    }
}
