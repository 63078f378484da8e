//! Golden records: one fixed value per record type and the bytes written for it, checked in under `golden/` so
//! that a change to an on-disk type (or to a domain type it mirrors) that would change the bytes fails here
//! instead of in someone's data dir. `<type>.v2.bin` are what the code before the on-disk types wrote (the shared
//! envelope, version byte 2); `<type>.v1.bin` are the version-1 layouts of the types that have one, made from the
//! `V1` types with the same values; `<type>.v3.bin` are the layouts of version 3: the sign-in's context (login
//! tokens, codes, families), the OpenID Connect fields (users' profiles, apps' settings) and a provider's catalogue
//! preset and options; their `.v2.bin` still decode, with the new fields defaulted; `token_*.v3.bin` are the
//! compact token layout (a refresh token with its sibling), and the tokens' `.v2.bin` read to the same values (a
//! refresh token with no sibling). `write_golden_files` (ignored) made them; a new version adds files, it
//! never rewrites a released one. The real 0.1.0 bytes are checked too: every record of the 0.1.0 backup fixture.

use std::path::PathBuf;

use crate::model::app::{AccessTokenFormat, OidcSettings, SubjectType};
use crate::model::oidc::{Amr, SigningAlg};
use crate::model::provider::{
    Credential, IdentityTokenSentVia, KeyField, LoginStyle, SettingValue, TokenSentVia,
};
use crate::model::signing_key::PublicKey;
use crate::model::user::{Email, PasswordDigest, Profile, TwoFactor};
use crate::model::{App, ClientType, GrantType, Link, Provider, Role, SigningKey, User, UserRef};
use crate::store::codec::{self, Record};
use crate::store::record::app::AppV1;
use crate::store::record::provider::ProviderV3;
use crate::store::record::revoked_jti::RevokedJti;
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
        profile: Profile::parse(&serde_json::json!({
            "given_name": "Jane", "family_name": "Doe", "picture": "https://img.example/jane.png",
            "birthdate": "1990-04-01", "locale": "fr-FR", "phone_number": "+33123456789",
            "phone_number_verified": true, "address": {"locality": "Lyon", "country": "FR"},
            "department": "Ops", "groups": ["a", "b"], "level": 3,
        }))
        .unwrap(),
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
        profile: Default::default(),
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
        oidc: OidcSettings {
            id_token_signed_response_alg: SigningAlg::Es256,
            access_token_format: AccessTokenFormat::Jwt,
            post_logout_redirect_uris: vec!["https://app.example/bye".into()],
            subject_type: SubjectType::Pairwise,
            id_token_claims: false,
            extra_claims: vec!["department".into(), "level".into()],
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
    p.preset = Some("gitlab".into());
    p.options = [("tenant".to_owned(), "golden-tenant".to_owned())].into();
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
        amr: vec![Amr::Pwd, Amr::Otp],
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
            nonce: Some("n-0S6_WzA2Mj".into()),
            amr: vec![Amr::Fed],
            sid: Some("c2lkLWdvbGRlbi0wMQ".into()),
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
        sibling: Some([8; 32]),
    }
}

/// A client_credentials token: no family (all zeros on disk before version 3), the client as subject (an empty owner on disk), the
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
        sibling: None,
    }
}

fn family() -> FamilyRecord {
    FamilyRecord {
        client_id: "GoldenClient00001".into(),
        subject: Subject::User("GoldenUser0000001".into()),
        revoked: true,
        created_at: T,
        auth_time: Some(T - 5),
        amr: vec![Amr::Pwd, Amr::Otp],
        sid: Some("c2lkLWdvbGRlbi0wMQ".into()),
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

fn setting() -> SettingValue {
    SettingValue::Str("google, github".into())
}

fn revoked_jti() -> RevokedJti {
    RevokedJti {
        client_id: "golden-client".into(),
        expires_at: T + 3_600_000,
    }
}

/// Every golden of today's version: file name and the bytes encoding its value gives.
fn current() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("user.v3.bin", codec::encode(&user())),
        ("user_plain.v3.bin", codec::encode(&user_plain())),
        ("app.v3.bin", codec::encode(&app())),
        ("provider.v3.bin", codec::encode(&provider())),
        ("link.v2.bin", codec::encode(&link())),
        ("login_token.v3.bin", codec::encode(&login_token())),
        ("code.v3.bin", codec::encode(&code())),
        ("token_refresh.v3.bin", codec::encode(&token_refresh())),
        ("token_client.v3.bin", codec::encode(&token_client())),
        ("family.v3.bin", codec::encode(&family())),
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
        ("revoked_jti.v1.bin", codec::encode(&revoked_jti())),
        ("setting.v1.bin", codec::encode(&setting())),
    ]
}

/// The goldens of the types that have had a version 3: their version-2 layouts, with the same values but the
/// fields version 3 added (a user's profile, an app's OIDC settings).
fn version_2() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("user.v2.bin", codec::encode_as(2, &UserV2::from(user()))),
        (
            "user_plain.v2.bin",
            codec::encode_as(2, &UserV2::from(user_plain())),
        ),
        ("app.v2.bin", codec::encode_as(2, &AppV1::from(app()))),
        ("provider.v2.bin", provider_v2()),
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
    codec::encode_as(1, &ProviderV3::from(provider()).base.base)
}

/// `provider()` as version 2 wrote it: no preset, no options.
fn provider_v2() -> Vec<u8> {
    codec::encode_as(2, &ProviderV3::from(provider()).base)
}

/// `provider()` as a version before 3 reads: a custom provider without options.
fn provider_before_v3() -> Provider {
    Provider {
        preset: None,
        options: Default::default(),
        ..provider()
    }
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
    check("user.v3.bin", user());
    check("user_plain.v3.bin", user_plain());
    check("app.v3.bin", app());
    check("provider.v3.bin", provider());
    check("link.v2.bin", link());
    check("login_token.v3.bin", login_token());
    check("code.v3.bin", code());
    check("token_refresh.v3.bin", token_refresh());
    check("token_client.v3.bin", token_client());
    check(
        "token_refresh.v2.bin",
        TokenRecord {
            sibling: None,
            ..token_refresh()
        },
    );
    check("token_client.v2.bin", token_client());
    check("family.v3.bin", family());
    let [rs, es, ed] = signing_keys();
    check("signing_key_rs256.v1.bin", rs);
    check("signing_key_es256.v1.bin", es);
    check("signing_key_eddsa.v1.bin", ed);
    check("revoked_jti.v1.bin", revoked_jti());
    check("setting.v1.bin", setting());
}

/// The version-2 goldens of the types that gained the sign-in's context read with it defaulted: a session as a
/// password one, a code without nonce, methods or session id, a family without its sign-in.
#[test]
fn version_2_goldens_decode_without_the_sign_in_context() {
    let mut t = login_token();
    t.amr = vec![Amr::Pwd];
    assert_eq!(
        codec::decode::<LoginToken>(&read("login_token.v2.bin")).unwrap(),
        t
    );
    let mut c = code();
    (c.grant.nonce, c.grant.amr, c.grant.sid) = (None, Vec::new(), None);
    assert_eq!(
        codec::decode::<CodeRecord>(&read("code.v2.bin")).unwrap(),
        c
    );
    let mut f = family();
    (f.auth_time, f.amr, f.sid) = (None, Vec::new(), None);
    assert_eq!(
        codec::decode::<FamilyRecord>(&read("family.v2.bin")).unwrap(),
        f
    );
}

#[test]
fn version_2_goldens_decode_with_the_new_fields_defaulted() {
    let u = User {
        profile: Profile::default(),
        ..user()
    };
    assert_eq!(codec::decode::<User>(&read("user.v2.bin")).unwrap(), u);
    assert_eq!(
        codec::decode::<User>(&read("user_plain.v2.bin")).unwrap(),
        user_plain()
    );
    let a = App {
        oidc: OidcSettings::default(),
        ..app()
    };
    assert_eq!(codec::decode::<App>(&read("app.v2.bin")).unwrap(), a);
    assert_eq!(
        codec::decode::<Provider>(&read("provider.v2.bin")).unwrap(),
        provider_before_v3()
    );
    for (name, bytes) in version_2() {
        assert_eq!(bytes, read(name), "{name}");
    }
}

#[test]
fn version_1_goldens_decode_with_the_new_fields_defaulted() {
    let mut u = User {
        profile: Profile::default(),
        ..user()
    };
    u.two_factor.as_mut().unwrap().last_totp_step = 0;
    assert_eq!(codec::decode::<User>(&read("user.v1.bin")).unwrap(), u);
    let mut p = provider_before_v3();
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
/// today's version with the same bytes, plus, where a type gained fields at the end of its layout, their defaults'
/// bytes: a provider's flag, absent preset and empty options and a user's second-factor step (one 0 byte each), a user's empty profile (four 0
/// bytes), an app's default OIDC settings (RS256, opaque, no URIs, public, ID-token claims on, no extra claims),
/// `None`, `[]`, `None` for a code's and a family's sign-in context, `["pwd"]` for a login token's methods. A token,
/// whose layout version 3 compacted rather than extended, re-encodes no longer and reads back the same value.
#[test]
fn every_record_0_1_0_wrote_decodes_and_upgrades_byte_for_byte() {
    use base64::Engine as _;
    fn check<T: Record + PartialEq + std::fmt::Debug>(old: &[u8], grew: impl Fn(&T) -> Vec<u8>) {
        let value: T = codec::decode(old).unwrap();
        let now = codec::encode(&value);
        assert_eq!((old[0], now[0]), (1, T::VERSION));
        let mut want = old[1..].to_vec();
        want.extend(grew(&value));
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
            "apps" => check::<App>(&old, |_| vec![0, 0, 0, 0, 1, 0]),
            "users" => check::<User>(&old, |u| {
                let step = u.two_factor.as_ref().map(|_| 0);
                step.into_iter().chain([0; 4]).collect()
            }),
            "providers" => check::<Provider>(&old, |_| vec![0, 0, 0]),
            "links" => check::<Link>(&old, |_| vec![]),
            "login_tokens" => check::<LoginToken>(&old, |_| vec![1, 3, b'p', b'w', b'd']),
            "codes" => check::<CodeRecord>(&old, |_| vec![0, 0, 0]),
            "tokens" => {
                let value: TokenRecord = codec::decode(&old).unwrap();
                let now = codec::encode(&value);
                assert_eq!((old[0], now[0]), (1, 3));
                assert_eq!(codec::decode::<TokenRecord>(&now).unwrap(), value);
                assert!(now.len() <= old.len(), "{value:?}");
            }
            "families" => check::<FamilyRecord>(&old, |_| vec![0, 0, 0]),
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
