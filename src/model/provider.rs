//! Custom OAuth providers: the upstream identity providers users sign in with.
//!
//! Rocket.Chat describes each provider as a family of settings `Accounts_OAuth_Custom-<Name>[-suffix]`; this
//! module is the one map between those setting keys (with RC's types, defaults and enums) and the typed
//! [`Provider`] record the rest of Latchkey reads. Locoia's `custom_auth` is the provider's ordered list of
//! [`Credential`]s; the first one *is* RC's `-id`/`-secret` pair, so both APIs always agree.

use std::collections::BTreeMap;

pub use super::provider_setting::{Kind, Setting, SettingValue};
use crate::clock::Millis;
use crate::error::{Error, Field, Result};

/// Every RC setting key of a custom provider starts with this.
pub const SETTING_PREFIX: &str = "Accounts_OAuth_Custom-";
/// What a set secret reads as; writing it back leaves the secret unchanged.
pub const MASK: &str = "********";
/// Name of the credential created when RC's `-id`/`-secret` are set before any `custom_auth` exists.
pub const DEFAULT_CREDENTIAL: &str = "default";
/// RC's default `-groups_channel_map`.
pub const DEFAULT_CHANNEL_MAP: &str =
    "{\n\t\"rocket-admin\": \"admin\",\n\t\"tech-support\": \"support\"\n}";
/// The option that opts a custom provider into OpenID Connect (`-oidc`, `upstream::oidc`).
pub const OIDC_OPTION: &str = "oidc";
/// Upper bound on a normalized name, so setting keys and store keys stay short.
pub const MAX_NAME_LEN: usize = 64;

/// RC's normalization (`toLowerCase`, strip `[^a-z0-9_]`, capitalize): `"My IdP"` → `"Myidp"`.
pub fn normalize_name(raw: &str) -> String {
    let lower: String = raw
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
        .collect();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// The service key of a normalized name (`Myidp` → `myidp`): the store key, RC's `service` and Locoia's
/// connector id.
pub fn service_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// A normalized, non-empty, bounded provider name from caller input.
pub fn validate_name(raw: &str) -> Result<String> {
    let name = normalize_name(raw);
    if name.is_empty() {
        return Err(Error::invalid(Field::Name, "is required"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::invalid(
            Field::Name,
            format!("must be at most {MAX_NAME_LEN} characters"),
        ));
    }
    Ok(name)
}

macro_rules! select {
    ($(#[$m:meta])* $name:ident { $($var:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name { $($var),+ }
        impl $name {
            /// RC's allowed values, in RC's order.
            pub const VALUES: &'static [&'static str] = &[$($s),+];
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$var => $s),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$var),)+ _ => None }
            }
        }
    };
}

select!(
    /// How the client credentials reach the upstream token endpoint.
    TokenSentVia { Header = "header", Payload = "payload" }
);
select!(
    /// How the access token reaches the identity endpoint (`default`: as `-token_sent_via`).
    IdentityTokenSentVia { Default = "default", Header = "header", Payload = "payload" }
);
select!(
    /// RC's login style (`""` is RC's "Default").
    LoginStyle { Redirect = "redirect", Popup = "popup", Default = "" }
);
select!(
    /// Which local field `-merge_users` matches an upstream identity on.
    KeyField { Username = "username", Email = "email" }
);

/// One named client credential at the upstream (Locoia's `custom_auth.oauth2[]` entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub name: String,
    pub client_id: String,
    /// The client secret sealed under the master key with the provider id as associated data; `None` when
    /// the upstream issued no secret.
    pub sealed_secret: Option<Vec<u8>>,
    /// Scopes for this credential; `None` → the provider's `-scope`.
    pub scopes: Option<Vec<String>>,
}

/// A credential as a caller submits it, before its secret is sealed.
#[derive(Clone, Debug)]
pub struct CredentialInput {
    pub name: String,
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Option<Vec<String>>,
}

/// Checks a whole `custom_auth` list: non-blank unique names, non-blank client ids, valid scope tokens.
pub fn validate_credentials(list: &[CredentialInput]) -> Result<()> {
    for (i, c) in list.iter().enumerate() {
        if c.name.trim().is_empty() || c.name.chars().count() > 200 {
            return Err(Error::invalid(Field::Name, "must be 1 to 200 characters"));
        }
        if list[..i].iter().any(|o| o.name == c.name) {
            return Err(Error::invalid(
                Field::Name,
                format!("duplicate credential name {:?}", c.name),
            ));
        }
        if c.client_id.trim().is_empty() || c.client_id.len() > 1024 {
            return Err(Error::invalid(Field::ClientId, "must be 1 to 1024 bytes"));
        }
        if c.client_secret.len() > 4096 {
            return Err(Error::invalid(
                Field::ClientSecret,
                "must be at most 4096 bytes",
            ));
        }
        for s in c.scopes.iter().flatten() {
            if super::app::parse_scopes(s)?.len() != 1 {
                return Err(Error::invalid(
                    Field::Scopes,
                    format!("invalid scope token {s:?}"),
                ));
            }
        }
    }
    Ok(())
}

/// A custom OAuth provider, keyed by its service key (`name` in lowercase).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provider {
    /// 17-character id: RC's service-configuration `_id` and the associated data of sealed secrets.
    pub id: String,
    /// Normalized name (`Myidp`).
    pub name: String,
    pub enabled: bool,
    pub url: String,
    pub token_path: String,
    pub token_sent_via: TokenSentVia,
    pub identity_token_sent_via: IdentityTokenSentVia,
    pub identity_path: String,
    pub authorize_path: String,
    pub scope: String,
    pub access_token_param: String,
    pub login_style: LoginStyle,
    pub button_label_text: String,
    pub button_label_color: String,
    pub button_color: String,
    pub key_field: KeyField,
    pub username_field: String,
    pub email_field: String,
    pub name_field: String,
    pub avatar_field: String,
    pub roles_claim: String,
    pub groups_claim: String,
    pub channels_admin: String,
    pub map_channels: bool,
    pub merge_roles: bool,
    pub roles_to_sync: String,
    pub merge_users: bool,
    pub merge_users_distinct_services: bool,
    pub show_button: bool,
    pub groups_channel_map: String,
    /// Locoia's `custom_auth`; the first entry is the one sign-in uses and RC's `-id`/`-secret`.
    pub credentials: Vec<Credential>,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// `-merge_users` may link an account that has a local password (off: such merges are refused, since the
    /// upstream could otherwise take over an account its owner protects with a password).
    pub merge_users_with_password: bool,
    /// The catalogue preset this provider follows (`google`, `apple`, …: its endpoints, quirks and identity
    /// mapping); `None` for a Rocket.Chat custom provider, which the `-*` settings above describe entirely.
    pub preset: Option<String>,
    /// The preset's own settings that are not secrets (Apple's team id and key id, a Microsoft tenant, …), by
    /// the name the preset declares. Secrets live sealed in `credentials`.
    pub options: BTreeMap<String, String>,
}

macro_rules! field_access {
    (str: [$($sv:ident => $sf:ident),* $(,)?]; bool: [$($bv:ident => $bf:ident),* $(,)?]) => {
        fn str_ref(&self, s: Setting) -> Option<&String> {
            match s { $(Setting::$sv => Some(&self.$sf),)* _ => None }
        }
        fn str_mut(&mut self, s: Setting) -> Option<&mut String> {
            match s { $(Setting::$sv => Some(&mut self.$sf),)* _ => None }
        }
        fn bool_ref(&self, s: Setting) -> Option<bool> {
            match s { $(Setting::$bv => Some(self.$bf),)* _ => None }
        }
        fn bool_mut(&mut self, s: Setting) -> Option<&mut bool> {
            match s { $(Setting::$bv => Some(&mut self.$bf),)* _ => None }
        }
    };
}

impl Provider {
    /// A new provider with RC's defaults.
    pub fn new(id: String, name: String, now: Millis) -> Self {
        Self {
            id,
            name,
            enabled: false,
            url: String::new(),
            token_path: "/oauth/token".into(),
            token_sent_via: TokenSentVia::Payload,
            identity_token_sent_via: IdentityTokenSentVia::Default,
            identity_path: "/me".into(),
            authorize_path: "/oauth/authorize".into(),
            scope: "openid".into(),
            access_token_param: "access_token".into(),
            login_style: LoginStyle::Popup,
            button_label_text: String::new(),
            button_label_color: "#FFFFFF".into(),
            button_color: "#1d74f5".into(),
            key_field: KeyField::Username,
            username_field: String::new(),
            email_field: String::new(),
            name_field: String::new(),
            avatar_field: String::new(),
            roles_claim: "roles".into(),
            groups_claim: "groups".into(),
            channels_admin: "rocket.cat".into(),
            map_channels: false,
            merge_roles: false,
            roles_to_sync: String::new(),
            merge_users: false,
            merge_users_distinct_services: false,
            show_button: true,
            groups_channel_map: DEFAULT_CHANNEL_MAP.into(),
            credentials: Vec::new(),
            created_at: now,
            updated_at: now,
            merge_users_with_password: false,
            preset: None,
            options: BTreeMap::new(),
        }
    }

    field_access!(
        str: [Url => url, TokenPath => token_path, IdentityPath => identity_path,
              AuthorizePath => authorize_path, Scope => scope, AccessTokenParam => access_token_param,
              ButtonLabelText => button_label_text, ButtonLabelColor => button_label_color,
              ButtonColor => button_color, UsernameField => username_field, EmailField => email_field,
              NameField => name_field, AvatarField => avatar_field, RolesClaim => roles_claim,
              GroupsClaim => groups_claim, ChannelsAdmin => channels_admin, RolesToSync => roles_to_sync,
              GroupsChannelMap => groups_channel_map];
        bool: [Enabled => enabled, MapChannels => map_channels, MergeRoles => merge_roles,
               MergeUsers => merge_users, MergeUsersDistinctServices => merge_users_distinct_services,
               ShowButton => show_button, MergeUsersWithPassword => merge_users_with_password]
    );

    /// The service key (`myidp`).
    pub fn service_key(&self) -> String {
        service_key(&self.name)
    }

    /// The client id used for sign-in (RC's `-id`): the first credential's, else empty.
    pub fn client_id(&self) -> &str {
        self.credentials
            .first()
            .map_or("", |c| c.client_id.as_str())
    }

    /// The sealed client secret used for sign-in (RC's `-secret`).
    pub fn sealed_secret(&self) -> Option<&[u8]> {
        self.credentials
            .first()
            .and_then(|c| c.sealed_secret.as_deref())
    }

    /// The scope sign-in requests: the first credential's scopes when set, else `-scope`.
    pub fn sign_in_scope(&self) -> String {
        match self.credentials.first().and_then(|c| c.scopes.as_ref()) {
            Some(s) => s.join(" "),
            None => self.scope.clone(),
        }
    }

    /// An upstream endpoint: `path` when it is an absolute URL, else `-url` followed by `path` (RC concatenates).
    pub fn endpoint(&self, path: &str) -> String {
        if path.starts_with("https://") || path.starts_with("http://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.url)
        }
    }

    /// The value RC would show for `s`; a set secret reads as [`MASK`], an unset one as `""`.
    pub fn get(&self, s: Setting) -> SettingValue {
        let st = |v: &str| SettingValue::Str(v.to_owned());
        match s {
            Setting::Secret => st(if self.sealed_secret().is_some() {
                MASK
            } else {
                ""
            }),
            Setting::Id => st(self.client_id()),
            Setting::TokenSentVia => st(self.token_sent_via.as_str()),
            Setting::IdentityTokenSentVia => st(self.identity_token_sent_via.as_str()),
            Setting::LoginStyle => st(self.login_style.as_str()),
            Setting::KeyField => st(self.key_field.as_str()),
            Setting::Oidc => {
                SettingValue::Bool(self.options.get(OIDC_OPTION).is_some_and(|v| v == "true"))
            }
            _ => match (self.bool_ref(s), self.str_ref(s)) {
                (Some(b), _) => SettingValue::Bool(b),
                (None, Some(v)) => st(v),
                (None, None) => unreachable!("every setting is a bool, a string or handled above"),
            },
        }
    }

    /// Checks `v` against the setting's type and enum (and `-url` against URL syntax) without changing anything.
    pub fn check(s: Setting, v: &SettingValue) -> Result<()> {
        let bad = |why: String| Err(Error::invalid(Field::SettingValue, why));
        match (s.kind(), v) {
            (Kind::Bool, SettingValue::Bool(_)) => Ok(()),
            (Kind::Bool, _) => bad("must be a boolean".into()),
            (_, SettingValue::Bool(_)) => bad("must be a string".into()),
            (Kind::Select(allowed), SettingValue::Str(x)) if !allowed.contains(&x.as_str()) => {
                bad(format!("must be one of {allowed:?}"))
            }
            (_, SettingValue::Str(x)) if s == Setting::Url && !x.is_empty() => {
                match url::Url::parse(x) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") && u.fragment().is_none() => {
                        Ok(())
                    }
                    _ => bad("must be an absolute http(s) URL without fragment".into()),
                }
            }
            _ => Ok(()),
        }
    }

    /// Sets a checked value. The secret is sealed by the caller and goes through [`Provider::set_sealed_secret`].
    pub fn set(&mut self, s: Setting, v: SettingValue) -> Result<()> {
        Self::check(s, &v)?;
        match (s, v) {
            (Setting::Secret, _) => Err(Error::internal("the secret is set sealed")),
            (Setting::Id, SettingValue::Str(x)) => {
                self.first_credential().client_id = x;
                Ok(())
            }
            (Setting::TokenSentVia, SettingValue::Str(x)) => {
                self.token_sent_via = TokenSentVia::parse(&x).expect("checked");
                Ok(())
            }
            (Setting::IdentityTokenSentVia, SettingValue::Str(x)) => {
                self.identity_token_sent_via = IdentityTokenSentVia::parse(&x).expect("checked");
                Ok(())
            }
            (Setting::LoginStyle, SettingValue::Str(x)) => {
                self.login_style = LoginStyle::parse(&x).expect("checked");
                Ok(())
            }
            (Setting::KeyField, SettingValue::Str(x)) => {
                self.key_field = KeyField::parse(&x).expect("checked");
                Ok(())
            }
            (Setting::Oidc, SettingValue::Bool(b)) => {
                match b {
                    true => self.options.insert(OIDC_OPTION.into(), "true".into()),
                    false => self.options.remove(OIDC_OPTION),
                };
                Ok(())
            }
            (s, SettingValue::Bool(b)) => {
                *self.bool_mut(s).expect("checked: a bool setting") = b;
                Ok(())
            }
            (s, SettingValue::Str(x)) => {
                *self.str_mut(s).expect("checked: a string setting") = x;
                Ok(())
            }
        }
    }

    /// Sets (or with `None` clears) the sign-in secret, already sealed under this provider's id.
    pub fn set_sealed_secret(&mut self, sealed: Option<Vec<u8>>) {
        self.first_credential().sealed_secret = sealed;
    }

    fn first_credential(&mut self) -> &mut Credential {
        if self.credentials.is_empty() {
            self.credentials.push(Credential {
                name: DEFAULT_CREDENTIAL.into(),
                client_id: String::new(),
                sealed_secret: None,
                scopes: None,
            });
        }
        &mut self.credentials[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p() -> Provider {
        Provider::new("id".into(), "Myidp".into(), 0)
    }

    #[test]
    fn rc_name_normalization() {
        assert_eq!(normalize_name("My IdP"), "Myidp");
        assert_eq!(normalize_name("  keycloak-Prod_2 "), "Keycloakprod_2");
        assert_eq!(normalize_name("_x"), "_x");
        assert_eq!(normalize_name("Ünïcode!"), "Ncode");
        assert_eq!(normalize_name("!!!"), "");
        assert_eq!(service_key("Myidp"), "myidp");
        assert!(validate_name(" - ").is_err());
        assert!(validate_name(&"a".repeat(65)).is_err());
        assert_eq!(validate_name("GitLab").unwrap(), "Gitlab");
    }

    #[test]
    fn keys_round_trip_for_every_setting() {
        for s in Setting::ALL {
            let key = s.key("Myidp");
            assert_eq!(Setting::parse_key(&key), Some(("Myidp", s)), "{key}");
        }
        assert_eq!(Setting::parse_key("Accounts_OAuth_Custom-"), None);
        assert_eq!(Setting::parse_key("Accounts_OAuth_Custom-Myidp-nope"), None);
        assert_eq!(Setting::parse_key("Accounts_OAuth_Gitlab"), None);
    }

    #[test]
    fn defaults_are_rcs() {
        let p = p();
        let s = |x| p.get(x);
        use SettingValue::{Bool, Str};
        assert_eq!(s(Setting::Enabled), Bool(false));
        assert_eq!(s(Setting::Url), Str("".into()));
        assert_eq!(s(Setting::TokenPath), Str("/oauth/token".into()));
        assert_eq!(s(Setting::TokenSentVia), Str("payload".into()));
        assert_eq!(s(Setting::IdentityTokenSentVia), Str("default".into()));
        assert_eq!(s(Setting::LoginStyle), Str("popup".into()));
        assert_eq!(s(Setting::KeyField), Str("username".into()));
        assert_eq!(s(Setting::ButtonColor), Str("#1d74f5".into()));
        assert_eq!(s(Setting::ShowButton), Bool(true));
        assert_eq!(
            s(Setting::GroupsChannelMap),
            Str(DEFAULT_CHANNEL_MAP.into())
        );
        assert_eq!(s(Setting::Id), Str("".into()));
        assert_eq!(s(Setting::Secret), Str("".into()));
    }

    #[test]
    fn types_and_enums_are_enforced() {
        let mut p = p();
        use SettingValue::{Bool, Str};
        assert!(p.set(Setting::Enabled, Str("true".into())).is_err());
        assert!(p.set(Setting::Url, Bool(true)).is_err());
        assert!(p.set(Setting::TokenSentVia, Str("query".into())).is_err());
        assert!(p.set(Setting::LoginStyle, Str("".into())).is_ok());
        assert_eq!(p.login_style, LoginStyle::Default);
        assert!(p
            .set(Setting::Url, Str("javascript:alert(1)".into()))
            .is_err());
        assert!(p
            .set(Setting::Url, Str("https://idp.example".into()))
            .is_ok());
        assert!(p.set(Setting::Secret, Str("x".into())).is_err());
        p.set(Setting::Id, Str("client".into())).unwrap();
        assert_eq!(p.credentials[0].name, DEFAULT_CREDENTIAL);
        p.set_sealed_secret(Some(vec![1, 2, 3]));
        assert_eq!(p.get(Setting::Secret), Str(MASK.into()));
        assert_eq!(p.client_id(), "client");
    }

    #[test]
    fn endpoints_join_or_pass_absolute_urls() {
        let mut p = p();
        p.url = "https://idp.example".into();
        assert_eq!(
            p.endpoint(&p.token_path.clone()),
            "https://idp.example/oauth/token"
        );
        assert_eq!(
            p.endpoint("https://other.example/tok"),
            "https://other.example/tok"
        );
    }

    #[test]
    fn credential_validation() {
        let c = |name: &str, id: &str, scopes: Option<Vec<&str>>| CredentialInput {
            name: name.into(),
            client_id: id.into(),
            client_secret: "s".into(),
            scopes: scopes.map(|v| v.into_iter().map(str::to_owned).collect()),
        };
        assert!(
            validate_credentials(&[c("a", "x", None), c("b", "y", Some(vec!["read"]))]).is_ok()
        );
        assert!(validate_credentials(&[c("a", "x", None), c("a", "y", None)]).is_err());
        assert!(validate_credentials(&[c(" ", "x", None)]).is_err());
        assert!(validate_credentials(&[c("a", "", None)]).is_err());
        assert!(validate_credentials(&[c("a", "x", Some(vec!["two words"]))]).is_err());
    }

    proptest! {
        #[test]
        fn normalization_is_idempotent_and_keys_are_lowercase(raw in "\\PC{0,30}") {
            let n = normalize_name(&raw);
            prop_assert_eq!(normalize_name(&n), n.clone());
            prop_assert!(service_key(&n).bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            prop_assert!(!n.contains('-'));
        }
    }
}
