//! Golden records: one fixed value per record type and the bytes today's code writes for it, checked in under
//! `golden/` so that a change to an on-disk type (or to a domain type it mirrors) that would change the bytes fails
//! here instead of in someone's data dir. `write_golden_files` (ignored) made them; it must never need to run again
//! for a released version: a new version adds files, it does not rewrite old ones.

use std::path::PathBuf;

use crate::model::provider::{
    Credential, IdentityTokenSentVia, KeyField, LoginStyle, TokenSentVia,
};
use crate::model::user::{Email, PasswordDigest, TwoFactor};
use crate::model::{App, ClientType, GrantType, Link, Provider, Role, User, UserRef};
use crate::store::codec;
use crate::store::token::{CodeRecord, FamilyRecord, GrantRecord, TokenKind, TokenRecord};
use crate::store::LoginToken;

/// 2026-01-01T00:00:00Z, so every time in the goldens is recognisable.
const T: i64 = 1_767_225_600_000;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/store/record/golden")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("golden/{name}: {e}"))
}

fn user() -> User {
    User {
        id: "GoldenUser0000001".into(),
        username: "jane.doe".into(),
        name: "Jane Doe".into(),
        emails: vec![
            Email {
                address: "jane@example.com".into(),
                verified: true,
            },
            Email {
                address: "jd@example.org".into(),
                verified: false,
            },
        ],
        roles: vec![Role::User, Role::Admin],
        active: true,
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        created_at: T,
        updated_at: T + 1,
        two_factor: Some(TwoFactor {
            totp_secret: Some(vec![0xA5; 40]),
            totp_enabled: true,
            backup_codes: vec![[1; 32], [2; 32]],
            password_digest: Some(PasswordDigest {
                phc: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$ZGlnZXN0".into(),
                for_password: [3; 32],
            }),
            last_totp_step: 58_907_520,
        }),
    }
}

/// A user who never touched 2FA and signs in only upstream.
fn user_plain() -> User {
    User {
        id: "GoldenUser0000002".into(),
        username: "upstream-only".into(),
        name: String::new(),
        emails: Vec::new(),
        roles: vec![Role::User],
        active: false,
        password_hash: None,
        created_at: -T,
        updated_at: i64::MAX,
        two_factor: None,
    }
}

fn app() -> App {
    App {
        id: "GoldenApp00000001".into(),
        name: "Golden App".into(),
        active: true,
        client_id: "GoldenClient00001".into(),
        redirect_uris: vec!["https://app.example/cb".into(), "http://127.0.0.1/cb".into()],
        client_type: ClientType::Public,
        grant_types: vec![
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
        ],
        scopes: vec!["openid".into(), "latchkey:api".into()],
        skip_consent: true,
        token_epoch: 7,
        secret_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$c2VjcmV0".into()),
        created_at: T,
        updated_at: T + 2,
        created_by: UserRef {
            id: "GoldenUser0000001".into(),
            username: "jane.doe".into(),
        },
    }
}

fn provider() -> Provider {
    let mut p = Provider::new("GoldenProvider001".into(), "Goldenidp".into(), T);
    p.enabled = true;
    p.url = "https://idp.example".into();
    p.token_sent_via = TokenSentVia::Header;
    p.identity_token_sent_via = IdentityTokenSentVia::Payload;
    p.login_style = LoginStyle::Default;
    p.key_field = KeyField::Email;
    p.username_field = "preferred_username".into();
    p.merge_users = true;
    p.map_channels = true;
    p.credentials = vec![
        Credential {
            name: "default".into(),
            client_id: "golden-upstream-client".into(),
            sealed_secret: Some(vec![0x5A; 48]),
            scopes: Some(vec!["openid".into(), "email".into()]),
        },
        Credential {
            name: "public".into(),
            client_id: "golden-public-client".into(),
            sealed_secret: None,
            scopes: None,
        },
    ];
    p.updated_at = T + 3;
    p.merge_users_with_password = true;
    p
}

fn link() -> Link {
    Link {
        id: "00000000-0000-4000-8000-000000000001".into(),
        user_id: "GoldenUser0000001".into(),
        provider: "goldenidp".into(),
        provider_type: "custom".into(),
        email: Some("Jane@Example.com".into()),
        allow_sign_in: true,
        allow_connected_accounts: false,
        account_id: "upstream-42".into(),
        created_at: T + 4,
        upstream: Some(vec![0x77; 64]),
    }
}

fn login_token() -> LoginToken {
    LoginToken {
        user_id: "GoldenUser0000001".into(),
        created_at: T,
        expires_at: T + 90 * 86_400_000,
    }
}

fn code() -> CodeRecord {
    CodeRecord {
        grant: GrantRecord {
            owner_id: "GoldenUser0000001".into(),
            client_id: "GoldenClient00001".into(),
            scope: "openid profile".into(),
            redirect_uri: "https://app.example/cb".into(),
            redirect_uri_sent: true,
            pkce: Some("S256:E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            auth_time: T - 5,
        },
        expires_at: T + 60_000,
        redeemed: Some([9; 16]),
    }
}

fn token_refresh() -> TokenRecord {
    TokenRecord {
        kind: TokenKind::Refresh,
        family: [9; 16],
        client_id: "GoldenClient00001".into(),
        owner_id: "GoldenUser0000001".into(),
        scope: "openid offline_access".into(),
        issued_at: T,
        expires_at: T + 30 * 86_400_000,
        rotated: true,
        epoch: None,
    }
}

/// A client_credentials token: no family (all zeros), the client as owner, the app's epoch.
fn token_client() -> TokenRecord {
    TokenRecord {
        kind: TokenKind::Access,
        family: [0; 16],
        client_id: "GoldenClient00001".into(),
        owner_id: "GoldenClient00001".into(),
        scope: "latchkey:api".into(),
        issued_at: T,
        expires_at: T + 3_600_000,
        rotated: false,
        epoch: Some(7),
    }
}

fn family() -> FamilyRecord {
    FamilyRecord {
        client_id: "GoldenClient00001".into(),
        owner_id: "GoldenUser0000001".into(),
        revoked: true,
        created_at: T,
    }
}

/// Every golden of today's version: file name and the bytes encoding its value gives.
fn current() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("user.v2.bin", codec::encode(&user())),
        ("user_plain.v2.bin", codec::encode(&user_plain())),
        ("app.v2.bin", codec::encode(&app())),
        ("provider.v2.bin", codec::encode(&provider())),
        ("link.v2.bin", codec::encode(&link())),
        ("login_token.v2.bin", codec::encode(&login_token())),
        ("code.v2.bin", codec::encode(&code())),
        ("token_refresh.v2.bin", codec::encode(&token_refresh())),
        ("token_client.v2.bin", codec::encode(&token_client())),
        ("family.v2.bin", codec::encode(&family())),
    ]
}

#[test]
#[ignore = "writes the golden files; run once per new record version, never for a released one"]
fn write_golden_files() {
    for (name, bytes) in current() {
        std::fs::write(dir().join(name), bytes).unwrap();
    }
}

#[test]
fn todays_values_encode_to_the_golden_bytes() {
    for (name, bytes) in current() {
        assert_eq!(bytes, read(name), "{name}");
    }
}

#[test]
fn golden_bytes_decode_to_todays_values() {
    fn check<T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(name: &str, want: T) {
        assert_eq!(codec::decode::<T>(&read(name)).unwrap(), want, "{name}");
    }
    check("user.v2.bin", user());
    check("user_plain.v2.bin", user_plain());
    check("app.v2.bin", app());
    check("provider.v2.bin", provider());
    check("link.v2.bin", link());
    check("login_token.v2.bin", login_token());
    check("code.v2.bin", code());
    check("token_refresh.v2.bin", token_refresh());
    check("token_client.v2.bin", token_client());
    check("family.v2.bin", family());
}
