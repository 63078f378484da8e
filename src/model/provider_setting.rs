//! The settings of a custom provider as Rocket.Chat declares them: each key suffix of
//! `Accounts_OAuth_Custom-<Name>[-suffix]` with its type, default and allowed values.

use super::provider::{IdentityTokenSentVia, KeyField, LoginStyle, TokenSentVia, SETTING_PREFIX};

/// The type of a setting's value, as RC declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Str,
    /// A string out of a fixed list.
    Select(&'static [&'static str]),
    /// RC's `code` type: JSON text, stored verbatim.
    Code,
}

/// One setting of a provider, named by its key suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    Enabled,
    Url,
    TokenPath,
    TokenSentVia,
    IdentityTokenSentVia,
    IdentityPath,
    AuthorizePath,
    Scope,
    AccessTokenParam,
    Id,
    Secret,
    LoginStyle,
    ButtonLabelText,
    ButtonLabelColor,
    ButtonColor,
    KeyField,
    UsernameField,
    EmailField,
    NameField,
    AvatarField,
    RolesClaim,
    GroupsClaim,
    ChannelsAdmin,
    MapChannels,
    MergeRoles,
    RolesToSync,
    MergeUsers,
    MergeUsersDistinctServices,
    ShowButton,
    GroupsChannelMap,
    /// Latchkey's own, not RC's: lets `-merge_users` link accounts that have a local password.
    MergeUsersWithPassword,
    /// Latchkey's own: the provider's `-url` is an OpenID Connect issuer, and sign-in validates its ID tokens
    /// (`upstream::oidc`). Stored as the option `oidc`.
    Oidc,
}

impl Setting {
    /// Every setting in RC's registration order, then Latchkey's own.
    pub const ALL: [Setting; 32] = [
        Self::Enabled,
        Self::Url,
        Self::TokenPath,
        Self::TokenSentVia,
        Self::IdentityTokenSentVia,
        Self::IdentityPath,
        Self::AuthorizePath,
        Self::Scope,
        Self::AccessTokenParam,
        Self::Id,
        Self::Secret,
        Self::LoginStyle,
        Self::ButtonLabelText,
        Self::ButtonLabelColor,
        Self::ButtonColor,
        Self::KeyField,
        Self::UsernameField,
        Self::EmailField,
        Self::NameField,
        Self::AvatarField,
        Self::RolesClaim,
        Self::GroupsClaim,
        Self::ChannelsAdmin,
        Self::MapChannels,
        Self::MergeRoles,
        Self::RolesToSync,
        Self::MergeUsers,
        Self::MergeUsersDistinctServices,
        Self::ShowButton,
        Self::GroupsChannelMap,
        Self::MergeUsersWithPassword,
        Self::Oidc,
    ];

    /// The key suffix after `Accounts_OAuth_Custom-<Name>` (empty for the enable switch).
    pub fn suffix(self) -> &'static str {
        match self {
            Self::Enabled => "",
            Self::Url => "-url",
            Self::TokenPath => "-token_path",
            Self::TokenSentVia => "-token_sent_via",
            Self::IdentityTokenSentVia => "-identity_token_sent_via",
            Self::IdentityPath => "-identity_path",
            Self::AuthorizePath => "-authorize_path",
            Self::Scope => "-scope",
            Self::AccessTokenParam => "-access_token_param",
            Self::Id => "-id",
            Self::Secret => "-secret",
            Self::LoginStyle => "-login_style",
            Self::ButtonLabelText => "-button_label_text",
            Self::ButtonLabelColor => "-button_label_color",
            Self::ButtonColor => "-button_color",
            Self::KeyField => "-key_field",
            Self::UsernameField => "-username_field",
            Self::EmailField => "-email_field",
            Self::NameField => "-name_field",
            Self::AvatarField => "-avatar_field",
            Self::RolesClaim => "-roles_claim",
            Self::GroupsClaim => "-groups_claim",
            Self::ChannelsAdmin => "-channels_admin",
            Self::MapChannels => "-map_channels",
            Self::MergeRoles => "-merge_roles",
            Self::RolesToSync => "-roles_to_sync",
            Self::MergeUsers => "-merge_users",
            Self::MergeUsersDistinctServices => "-merge_users_distinct_services",
            Self::ShowButton => "-show_button",
            Self::GroupsChannelMap => "-groups_channel_map",
            Self::MergeUsersWithPassword => "-merge_users_with_password",
            Self::Oidc => "-oidc",
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Self::Enabled
            | Self::MapChannels
            | Self::MergeRoles
            | Self::MergeUsers
            | Self::MergeUsersDistinctServices
            | Self::ShowButton
            | Self::MergeUsersWithPassword
            | Self::Oidc => Kind::Bool,
            Self::TokenSentVia => Kind::Select(TokenSentVia::VALUES),
            Self::IdentityTokenSentVia => Kind::Select(IdentityTokenSentVia::VALUES),
            Self::LoginStyle => Kind::Select(LoginStyle::VALUES),
            Self::KeyField => Kind::Select(KeyField::VALUES),
            Self::GroupsChannelMap => Kind::Code,
            _ => Kind::Str,
        }
    }

    /// Whether reads mask the value.
    pub fn is_secret(self) -> bool {
        self == Self::Secret
    }

    /// The full RC key of this setting for provider `name`.
    pub fn key(self, name: &str) -> String {
        format!("{SETTING_PREFIX}{name}{}", self.suffix())
    }

    /// Splits an RC key into the provider name and the setting; `None` for keys that are not provider settings.
    /// Names never contain `-` (normalization strips it), so the first `-` after the prefix starts the suffix.
    pub fn parse_key(key: &str) -> Option<(&str, Setting)> {
        let rest = key.strip_prefix(SETTING_PREFIX)?;
        let (name, suffix) = match rest.find('-') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if name.is_empty() {
            return None;
        }
        Self::ALL
            .into_iter()
            .find(|s| s.suffix() == suffix)
            .map(|s| (name, s))
    }
}

/// A setting's value as RC types it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettingValue {
    Bool(bool),
    Str(String),
}
