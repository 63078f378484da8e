//! Sign in with Apple: OpenID Connect with Apple's own turns (README.md#provider-presets). The client secret is an
//! ES256 JWT signed with the `.p8` key (`upstream::apple`), the authorization response is posted back
//! (`response_mode=form_post`), the identity is the ID token alone (Apple has no userinfo endpoint), its
//! `email_verified` may be the string `"true"`, and the name arrives once, in the posted `user` JSON, which the
//! callback adds to the claims as `name`.

use super::{
    ClientAuth, EmailVerified, IdentityAuth, Issuer, Mapping, Picture, Preset, Protocol,
    ResponseMode,
};
use crate::model::builtin_setting::{APPLE_KEY_ID, APPLE_TEAM_ID};

pub(super) const APPLE: Preset = Preset {
    id: "apple",
    display_name: "Apple",
    stack_type: Some("apple"),
    protocol: Protocol::Oidc(Issuer {
        issuer: "https://appleid.apple.com",
        jwks: "https://appleid.apple.com/auth/keys",
        response_mode: ResponseMode::FormPost,
    }),
    authorize: "https://appleid.apple.com/auth/authorize",
    token: "https://appleid.apple.com/auth/token",
    // No identity endpoint: the ID token is the identity.
    identity: "",
    emails: None,
    scopes: "name email",
    // Apple documents no PKCE; the nonce binds its ID token to the sign-in.
    pkce: false,
    client_auth: ClientAuth::AppleJwt,
    identity_auth: IdentityAuth::Bearer,
    identity_headers: &[],
    mapping: Mapping {
        root: "",
        id: "sub",
        email: "email",
        email_verified: EmailVerified::Claim("email_verified"),
        name: &["name"],
        username: "",
        picture: Picture::None,
    },
    options: &[(APPLE_TEAM_ID, ""), (APPLE_KEY_ID, "")],
};
