//! Bulk population for the lookup benches. The real create functions run one transaction and one flush per record,
//! which would make a 10^6-record store take far too long to build; benches cannot reach the trees themselves.

use super::link::{account_key, provider_key, signin_key, user_key};
use super::{codec, db_err, Sled};
use crate::error::Result;
use crate::model::{App, Link, User};
use crate::store::{LoginToken, TokenRecord};

/// Must match the admin counter key in `user.rs` (the test below runs `verify`, which checks the counter).
const ADMINS: &[u8] = b"admins";

/// Inserts `(key, value)` pairs in key order. Plain inserts rather than `sled::Batch`: sled 0.34.7 holds a batch in
/// memory and logs it as one unit, and measured here 50k-entry batches reached 1 GB RSS at 10^5 records per tree
/// (2 GB at 10^6 even with 1k-entry batches, which were also the slowest); sorted plain inserts took 280 MB and
/// were 2.6x faster than random-order ones at 10^6.
fn load(tree: &sled::Tree, entries: impl Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<()> {
    let mut entries: Vec<_> = entries.collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (k, v) in entries {
        tree.insert(k, v).map_err(db_err)?;
    }
    Ok(())
}

/// What [`Store::bulk_load_for_bench`] writes. The caller supplies distinct ids, client ids, usernames, emails,
/// digests and upstream accounts; token owners and clients that exist; and links to providers that exist (add
/// those with [`Store::add_provider`] first).
#[doc(hidden)]
#[derive(Default)]
pub struct BenchRecords<'a> {
    pub apps: &'a [App],
    pub users: &'a [User],
    /// RC login tokens by SHA-256 digest.
    pub login_tokens: &'a [([u8; 32], LoginToken)],
    /// client_credentials access tokens by SHA-256 digest, as `put_client_token` stores them.
    pub access_tokens: &'a [([u8; 32], TokenRecord)],
    pub links: &'a [Link],
}

impl Sled {
    /// Writes records and their index entries exactly as the create functions would, with no uniqueness checks,
    /// then flushes once. For benches only.
    #[doc(hidden)]
    pub fn bulk_load_for_bench(&self, r: &BenchRecords<'_>) -> Result<()> {
        let t = &self.t;
        let (apps, users) = (r.apps, r.users);
        load(
            &t.apps,
            apps.iter().map(|a| (a.id.clone().into(), codec::encode(a))),
        )?;
        load(
            &t.apps_by_client,
            apps.iter()
                .map(|a| (a.client_id.clone().into(), a.id.clone().into())),
        )?;
        load(
            &t.users,
            users
                .iter()
                .map(|u| (u.id.clone().into(), codec::encode(u))),
        )?;
        load(
            &t.users_by_name,
            users
                .iter()
                .map(|u| (u.username.to_lowercase().into(), u.id.clone().into())),
        )?;
        load(
            &t.users_by_email,
            users.iter().flat_map(|u| {
                u.emails
                    .iter()
                    .map(|e| (e.address.clone().into(), u.id.clone().into()))
            }),
        )?;
        load(
            &t.login_tokens,
            r.login_tokens
                .iter()
                .map(|(d, tok)| (d.to_vec(), codec::encode(tok))),
        )?;
        load(
            &t.login_tokens_by_user,
            r.login_tokens.iter().map(|(d, tok)| {
                // `session.rs`'s index key: user id ‖ 0 ‖ digest.
                let mut k = Vec::with_capacity(tok.user_id.len() + 33);
                k.extend_from_slice(tok.user_id.as_bytes());
                k.push(0);
                k.extend_from_slice(d);
                (k, Vec::new())
            }),
        )?;
        load(
            &t.tokens,
            r.access_tokens
                .iter()
                .map(|(d, rec)| (d.to_vec(), codec::encode(rec))),
        )?;
        self.bulk_load_links(r.links)?;
        let admins = users.iter().filter(|u| u.is_admin()).count() as u64;
        if admins > 0 {
            let total = self.admin_count()? + admins;
            t.meta
                .insert(ADMINS, &total.to_be_bytes())
                .map_err(db_err)?;
        }
        self.flush_blocking()
    }

    /// The link record and the index entries `create_link` writes (`link.rs` documents the keys).
    fn bulk_load_links(&self, links: &[Link]) -> Result<()> {
        let t = &self.t;
        let id = |l: &Link| l.id.clone().into_bytes();
        let signs_in = || links.iter().filter(|l| l.allow_sign_in);
        load(&t.links, links.iter().map(|l| (id(l), codec::encode(l))))?;
        load(
            &t.links_by_user,
            links.iter().map(|l| (user_key(l), Vec::new())),
        )?;
        load(
            &t.links_by_provider,
            links.iter().map(|l| (provider_key(l), Vec::new())),
        )?;
        load(
            &t.links_by_account,
            signs_in().map(|l| (account_key(&l.provider, &l.account_id), id(l))),
        )?;
        load(
            &t.signin_by_user_provider,
            signs_in().map(|l| (signin_key(&l.user_id, &l.provider), id(l))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClientType, Provider, UserRef};
    use crate::store::sled::link::tests::link;
    use crate::store::testing::temp_store;

    #[tokio::test]
    async fn bulk_loaded_store_verifies_and_answers_lookups() {
        let (_d, s) = temp_store();
        let apps: Vec<App> = (0..300)
            .map(|i| App {
                id: format!("app{i}"),
                name: format!("app {i}"),
                active: true,
                client_id: format!("client{i}"),
                redirect_uris: vec!["https://a.example/cb".into()],
                client_type: ClientType::Confidential,
                grant_types: App::default_grants(),
                scopes: App::default_scopes(),
                skip_consent: false,
                token_epoch: 0,
                secret_hash: None,
                created_at: i,
                updated_at: i,
                created_by: UserRef::default(),
                oidc: Default::default(),
            })
            .collect();
        let users: Vec<User> = (0..300)
            .map(|i| {
                crate::store::sled::user::tests::user(
                    &format!("u{i}"),
                    &format!("Name{i}"),
                    i % 7 == 0,
                )
            })
            .collect();
        let tokens: Vec<([u8; 32], LoginToken)> = (0..300u32)
            .map(|i| {
                let tok = LoginToken {
                    user_id: format!("u{}", i % 300),
                    created_at: 0,
                    expires_at: 1,
                    amr: Vec::new(),
                };
                (crate::crypto::sha256(&i.to_be_bytes()), tok)
            })
            .collect();
        let access: Vec<([u8; 32], TokenRecord)> = (0..300u32)
            .map(|i| {
                let rec = TokenRecord {
                    kind: crate::store::TokenKind::Access,
                    lineage: crate::store::Lineage::Epoch(0),
                    client_id: format!("client{}", i % 300),
                    subject: crate::store::Subject::Client,
                    scope: "openid".into(),
                    issued_at: 0,
                    expires_at: 100,
                    rotated: false,
                    sibling: None,
                };
                (crate::crypto::sha256(format!("access{i}").as_bytes()), rec)
            })
            .collect();
        // Each user has a sign-in link to `myidp`; every third one also a connected-accounts-only link.
        let links: Vec<Link> = (0..300)
            .flat_map(|i| {
                let user = format!("u{i}");
                let mut v = vec![link(
                    &format!("l{i}"),
                    &user,
                    "myidp",
                    &format!("acct{i}"),
                    true,
                )];
                if i % 3 == 0 {
                    v.push(link(
                        &format!("c{i}"),
                        &user,
                        "myidp",
                        &format!("c-acct{i}"),
                        false,
                    ));
                }
                v
            })
            .collect();
        s.add_provider(&Provider::new("p-myidp".into(), "Myidp".into(), 1))
            .await
            .unwrap();
        s.bulk_load_for_bench(&BenchRecords {
            apps: &apps,
            users: &users,
            login_tokens: &tokens,
            access_tokens: &access,
            links: &links,
        })
        .unwrap();
        s.verify().unwrap();
        assert_eq!(s.admin_count().unwrap(), 43);
        assert_eq!(
            s.app_by_client_id("client42").await.unwrap().unwrap().id,
            "app42"
        );
        assert_eq!(
            s.user_by_username("NAME42").await.unwrap().unwrap().id,
            "u42"
        );
        assert_eq!(
            s.user_by_email("name42@example.com")
                .await
                .unwrap()
                .unwrap()
                .id,
            "u42"
        );
        let d = crate::crypto::sha256(&42u32.to_be_bytes());
        assert_eq!(s.login_token(&d).await.unwrap().unwrap().user_id, "u42");
        let d = crate::crypto::sha256(b"access42");
        assert_eq!(
            s.active_token(&d, 0).await.unwrap().unwrap().client_id,
            "client42"
        );
        assert_eq!(
            s.sign_in_link("myidp", "acct42").await.unwrap().unwrap().id,
            "l42"
        );
        let ids: Vec<String> = s
            .links_of_user("u42")
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.id)
            .collect();
        assert_eq!(ids, ["c42", "l42"]);
        assert_eq!(
            s.sign_in_link_of_user("u42", "myidp")
                .await
                .unwrap()
                .unwrap()
                .id,
            "l42"
        );
        // Population works like the create functions: the real delete path removes what was loaded.
        assert_eq!(s.sweep_login_tokens(1).unwrap(), 300);
        s.verify().unwrap();
    }
}
