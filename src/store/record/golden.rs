//! Golden records: one fixed value per record type and the bytes written for it, checked in under `golden/` so
//! that a change to an on-disk type (or to a domain type it mirrors) that would change the bytes fails here
//! instead of in someone's data dir. `<type>.v2.bin` are what the code before the on-disk types wrote (the shared
//! envelope, version byte 2); `<type>.v1.bin` are the version-1 layouts of the types that have one, made from the
//! `V1` types with the same values. `write_golden_files` (ignored) made them; a new version adds files, it never
//! rewrites a released one. The real 0.1.0 bytes are checked too: every record of the 0.1.0 backup fixture.

use std::path::PathBuf;

use crate::model::oidc::SigningAlg;
use crate::model::provider::{
    Credential, IdentityTokenSentVia, KeyField, LoginStyle, TokenSentVia,
};
use crate::model::signing_key::PublicKey;
use crate::model::user::{Email, PasswordDigest, TwoFactor};
use crate::model::{App, ClientType, GrantType, Link, Provider, Role, SigningKey, User, UserRef};
use crate::store::codec::{self, Record};
use crate::store::record::provider::ProviderV2;
use crate::store::record::user::{UserV1, UserV2};
use crate::store::token::{
    CodeRecord, FamilyRecord, GrantRecord, Lineage, Subject, TokenKind, TokenRecord,
};
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
        redirect_uris: vec![
            "https://app.example/cb".into(),
            "http://127.0.0.1/cb".into(),
        ],
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
        lineage: Lineage::Family([9; 16]),
        client_id: "GoldenClient00001".into(),
        subject: Subject::User("GoldenUser0000001".into()),
        scope: "openid offline_access".into(),
        issued_at: T,
        expires_at: T + 30 * 86_400_000,
        rotated: true,
    }
}

/// A client_credentials token: no family (all zeros on disk), the client as subject (an empty owner on disk), the
/// app's epoch.
fn token_client() -> TokenRecord {
    TokenRecord {
        kind: TokenKind::Access,
        lineage: Lineage::Epoch(7),
        client_id: "GoldenClient00001".into(),
        subject: Subject::Client,
        scope: "latchkey:api".into(),
        issued_at: T,
        expires_at: T + 3_600_000,
        rotated: false,
    }
}

fn family() -> FamilyRecord {
    FamilyRecord {
        client_id: "GoldenClient00001".into(),
        subject: Subject::User("GoldenUser0000001".into()),
        revoked: true,
        created_at: T,
    }
}

/// One signing key per algorithm (each public-key layout), with recognisable bytes in place of real keys.
fn signing_keys() -> [SigningKey; 3] {
    let key = |alg, public| SigningKey {
        kid: format!("golden-kid-{}", SigningAlg::as_str(alg)),
        alg,
        private_sealed: vec![0x3C; 56],
        public,
        created_at: T,
        signs_from: T + 86_400_000,
    };
    [
        key(
            SigningAlg::Rs256,
            PublicKey::Rsa {
                n: vec![0xC1; 256],
                e: vec![1, 0, 1],
            },
        ),
        key(
            SigningAlg::Es256,
            PublicKey::Ec {
                x: vec![0xE1; 32],
                y: vec![0xE2; 32],
            },
        ),
        key(SigningAlg::EdDsa, PublicKey::Ed25519 { x: vec![0xED; 32] }),
    ]
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
        (
            "signing_key_rs256.v1.bin",
            codec::encode(&signing_keys()[0]),
        ),
        (
            "signing_key_es256.v1.bin",
            codec::encode(&signing_keys()[1]),
        ),
        (
            "signing_key_eddsa.v1.bin",
            codec::encode(&signing_keys()[2]),
        ),
    ]
}

/// `user()` as version 1 wrote it: no `last_totp_step`.
fn user_v1() -> Vec<u8> {
    let u = UserV2::from(user());
    codec::encode_as(
        1,
        &UserV1 {
            id: u.id,
            username: u.username,
            name: u.name,
            emails: u.emails,
            roles: u.roles,
            active: u.active,
            password_hash: u.password_hash,
            created_at: u.created_at,
            updated_at: u.updated_at,
            two_factor: u.two_factor.map(|t| t.base),
        },
    )
}

/// `provider()` as version 1 wrote it: no `merge_users_with_password`.
fn provider_v1() -> Vec<u8> {
    codec::encode_as(1, &ProviderV2::from(provider()).base)
}

/// Every version-1 golden: file name and its bytes.
fn version_1() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("user.v1.bin", user_v1()),
        ("provider.v1.bin", provider_v1()),
    ]
}

#[test]
#[ignore = "writes the golden files; run once per new record version, never for a released one"]
fn write_golden_files() {
    for (name, bytes) in current().into_iter().chain(version_1()) {
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
    fn check<T: Record + PartialEq + std::fmt::Debug>(name: &str, want: T) {
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
    let [rs, es, ed] = signing_keys();
    check("signing_key_rs256.v1.bin", rs);
    check("signing_key_es256.v1.bin", es);
    check("signing_key_eddsa.v1.bin", ed);
}

#[test]
fn version_1_goldens_decode_with_the_new_fields_defaulted() {
    let mut u = user();
    u.two_factor.as_mut().unwrap().last_totp_step = 0;
    assert_eq!(codec::decode::<User>(&read("user.v1.bin")).unwrap(), u);
    let mut p = provider();
    p.merge_users_with_password = false;
    assert_eq!(
        codec::decode::<Provider>(&read("provider.v1.bin")).unwrap(),
        p
    );
    for (name, bytes) in version_1() {
        assert_eq!(bytes, read(name), "{name}");
    }
}

/// Every record 0.1.0 wrote (its backup fixture, `tests/fixtures/v0.1.0`) decodes, and re-encoding it writes
/// today's version with the same bytes, plus, where a type gained a field at the end of its layout (a provider, a
/// user's second-factor state), that field's default: one 0 byte.
#[test]
fn every_record_0_1_0_wrote_decodes_and_upgrades_byte_for_byte() {
    use base64::Engine as _;
    fn check<T: Record + PartialEq + std::fmt::Debug>(old: &[u8], grew: impl Fn(&T) -> bool) {
        let value: T = codec::decode(old).unwrap();
        let now = codec::encode(&value);
        assert_eq!((old[0], now[0]), (1, T::VERSION));
        let mut want = old[1..].to_vec();
        if grew(&value) {
            want.push(0);
        }
        assert_eq!(now[1..], want[..], "{value:?}");
        assert_eq!(codec::decode::<T>(&now).unwrap(), value);
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v0.1.0/backup.jsonl");
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        let (Some(tree), Some(value)) = (line["tree"].as_str(), line["value"].as_str()) else {
            continue;
        };
        let old = base64::engine::general_purpose::STANDARD
            .decode(value)
            .unwrap();
        match tree {
            "apps" => check::<App>(&old, |_| false),
            "users" => check::<User>(&old, |u| u.two_factor.is_some()),
            "providers" => check::<Provider>(&old, |_| true),
            "links" => check::<Link>(&old, |_| false),
            "login_tokens" => check::<LoginToken>(&old, |_| false),
            "codes" => check::<CodeRecord>(&old, |_| false),
            "tokens" => check::<TokenRecord>(&old, |_| false),
            "families" => check::<FamilyRecord>(&old, |_| false),
            _ => continue,
        }
        *seen.entry(tree.to_owned()).or_default() += 1;
    }
    let seen: Vec<_> = seen.iter().map(|(t, n)| (t.as_str(), *n)).collect();
    assert_eq!(
        seen,
        [
            ("apps", 2),
            ("codes", 1),
            ("families", 1),
            ("links", 1),
            ("login_tokens", 3),
            ("providers", 1),
            ("tokens", 3),
            ("users", 3)
        ]
    );
}
