//! The domain error. Every layer below the wire adapters speaks this type; each dialect (`api::rc`, `api::stack`,
//! `api::locoia`, `oauth`, the pages) renders it through its own single table. The error names records, fields and
//! rules by the enums below, never by a wire name: what `clientId` or `provider_config_id` is called is each
//! dialect's business.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// That kind of record does not exist.
    #[error("{0} not found")]
    NotFound(Entity),
    /// A field failed validation; `reason` is safe to show to the caller.
    #[error("invalid {field}: {reason}")]
    Invalid { field: Field, reason: String },
    /// A uniqueness rule would break: `value` of `field` is taken.
    #[error("{field} {value} is already in use")]
    Conflict { field: Field, value: String },
    /// The action would break a rule that is not about one field (e.g. removing the last admin).
    #[error("not allowed: {0}")]
    NotAllowed(Rule),
    #[error("unauthorized")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    /// Too many attempts; retry after `retry_after_ms`.
    #[error("too many requests")]
    RateLimited {
        limit: u32,
        remaining: u32,
        reset_at_ms: i64,
        retry_after_ms: i64,
    },
    /// A bounded queue (argon2) is full: back off.
    #[error("server busy")]
    Busy,
    /// The store cannot write (a full disk, an IO error): the write is not known to be durable. A 503 in every
    /// dialect, promptly; the cause is logged where it happens.
    #[error("storage unavailable")]
    Unavailable,
    /// The store failed; the cause is logged where it happens, the caller sees an opaque 500.
    #[error("internal error")]
    Internal(String),
}

/// Declares a field-less enum together with `ALL`, its variants in order, so the dialect tables' tests can walk
/// every variant and a new one cannot be left out of them.
macro_rules! listed {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $v:ident,)* }) => {
        $(#[$m])*
        pub enum $name { $($(#[$vm])* $v,)* }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v,)*];
        }
    };
}

listed! {
    /// A kind of record that a lookup can miss.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Entity {
        App,
        User,
        /// A user's link to an upstream account.
        Link,
        /// A custom OAuth provider.
        Provider,
        /// A provider setting key (`Accounts_OAuth_Custom-*`).
        Setting,
        /// A provider's named client credential.
        Credential,
        /// The admin that owns the declared clients.
        Admin,
        /// An unused backup code of the user's.
        BackupCode,
        /// A TOTP seed waiting to be confirmed.
        TotpEnrolment,
    }
}

impl Entity {
    /// The record's name in logs and in the messages of dialects that have no word of their own.
    pub fn noun(self) -> &'static str {
        match self {
            Entity::App => "app",
            Entity::User => "user",
            Entity::Link => "link",
            Entity::Provider => "provider",
            Entity::Setting => "setting",
            Entity::Credential => "credential",
            Entity::Admin => "admin user",
            Entity::BackupCode => "backup code",
            Entity::TotpEnrolment => "pending TOTP enrolment",
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.noun())
    }
}

listed! {
    /// A field of a domain record or request, named for what it holds.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Field {
        /// The display name of an app, a user, a provider or a credential.
        Name,
        Username,
        Email,
        Password,
        Roles,
        RedirectUri,
        ClientType,
        GrantTypes,
        Scopes,
        /// An app's (or a provider credential's) OAuth client id.
        ClientId,
        /// A provider credential's client secret.
        ClientSecret,
        /// The app a request names (by id or client id).
        AppId,
        /// The user a request names (by id or username).
        UserId,
        /// A record's own id.
        Id,
        /// A login token (its digest).
        LoginToken,
        /// The upstream account id of a link.
        AccountId,
        /// The provider of a link (its service key).
        Provider,
        /// The kind of provider of a link (`custom`).
        ProviderType,
        /// The value written to a provider setting.
        SettingValue,
        /// A user's OpenID Connect claims (standard and custom).
        Claims,
        /// An app's JWS algorithm for its ID tokens.
        IdTokenSignedResponseAlg,
        /// An app's access token format (`opaque` or `jwt`).
        AccessTokenFormat,
        /// An app's post-logout redirect URIs.
        PostLogoutRedirectUris,
        /// An app's subject type (`public` or `pairwise`).
        SubjectType,
        /// The custom claims an app receives.
        ExtraClaims,
    }
}

impl Field {
    /// The field's name in logs and in the messages of the config file and the pages (the config's spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Username => "username",
            Field::Email => "email",
            Field::Password => "password",
            Field::Roles => "roles",
            Field::RedirectUri => "redirect_uri",
            Field::ClientType => "client_type",
            Field::GrantTypes => "grant_types",
            Field::Scopes => "scopes",
            Field::ClientId => "client_id",
            Field::ClientSecret => "client_secret",
            Field::AppId => "app_id",
            Field::UserId => "user_id",
            Field::Id => "id",
            Field::LoginToken => "login_token",
            Field::AccountId => "account_id",
            Field::Provider => "provider",
            Field::ProviderType => "provider_type",
            Field::SettingValue => "value",
            Field::Claims => "claims",
            Field::IdTokenSignedResponseAlg => "id_token_signed_response_alg",
            Field::AccessTokenFormat => "access_token_format",
            Field::PostLogoutRedirectUris => "post_logout_redirect_uris",
            Field::SubjectType => "subject_type",
            Field::ExtraClaims => "extra_claims",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

listed! {
    /// A rule that forbids an action as a whole; its text (`Display`) is safe to show to the caller.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Rule {
        /// The last admin cannot lose the admin role.
        LastAdminRole,
        /// The last admin cannot be deleted.
        LastAdminDeleted,
        /// A TOTP is already on; enrolling again would replace it.
        TotpAlreadyEnabled,
        /// A TOTP step may pass only once.
        TotpStepReplayed,
        /// Federated sign-in links by email only when the provider says the address is verified.
        MergeUnverifiedEmail,
        /// Federated sign-in never links to an administrator.
        MergeAdmin,
        /// Federated sign-in never links to a deactivated account.
        MergeDeactivated,
        /// Federated sign-in links to an account with a password only when the provider allows it.
        MergePassword,
        /// A user links one upstream account through one provider at most once (Stack's rule).
        LinkRepeated,
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::LastAdminRole => "the last admin cannot lose the admin role",
            Rule::LastAdminDeleted => "the last admin cannot be deleted",
            Rule::TotpAlreadyEnabled => "two-factor authentication is already enabled",
            Rule::TotpStepReplayed => "an already used TOTP step",
            Rule::MergeUnverifiedEmail => {
                "the provider does not say the email address is verified, so it cannot be linked to the \
                 local account with that address"
            }
            Rule::MergeAdmin => {
                "the matching local account is an administrator; administrators are never linked \
                 automatically"
            }
            Rule::MergeDeactivated => "the matching local account is deactivated",
            Rule::MergePassword => {
                "the matching local account has a password, and this provider may not link such \
                 accounts (an administrator can allow it with -merge_users_with_password)"
            }
            Rule::LinkRepeated => {
                "the user already has a link to this upstream account through this provider"
            }
        })
    }
}

impl Error {
    pub fn invalid(field: Field, reason: impl fmt::Display) -> Self {
        Error::Invalid {
            field,
            reason: reason.to_string(),
        }
    }

    pub fn internal(cause: impl fmt::Display) -> Self {
        let cause = cause.to_string();
        tracing::error!(%cause, "internal error");
        Error::Internal(cause)
    }
}

impl From<crate::crypto::HashError> for Error {
    fn from(e: crate::crypto::HashError) -> Self {
        match e {
            crate::crypto::HashError::Busy => Error::Busy,
            other => Error::internal(other),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_is_listed_once_and_named_once() {
        fn distinct(names: Vec<&str>) {
            let mut sorted = names.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), names.len(), "{names:?}");
        }
        distinct(Entity::ALL.iter().map(|e| e.noun()).collect());
        distinct(Field::ALL.iter().map(|f| f.as_str()).collect());
        let rules: Vec<String> = Rule::ALL.iter().map(Rule::to_string).collect();
        distinct(rules.iter().map(String::as_str).collect());
    }
}
