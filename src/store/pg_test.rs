//! The PostgreSQL backend against a real server, gated by `LATCHKEY_TEST_PG_URL` (scripts/pg-test-server.sh
//! starts one and prints it). Without the variable every test here returns at once. Each test store lives in a
//! fresh schema named for its temp data dir, so tests run in parallel on one database and a restart finds its
//! schema again.

use std::path::Path;

use crate::error::{Entity, Error, Field, Rule};
use crate::model::Provider;
use crate::store::sled::app::tests::app;
use crate::store::sled::link::tests::link;
use crate::store::sled::token::tests::{first_tokens, put_code};
use crate::store::sled::user::tests::user;
use crate::store::token::{Lineage, NewToken, Redeemed, Rotated, Subject, TokenKind, TokenRecord};
use crate::store::{OpenError, Store};

const URL_VAR: &str = "LATCHKEY_TEST_PG_URL";

// A PostgreSQL server of the test's own, shared with the integration tests (one file, two crates).
#[path = "../../tests/support/own_pg.rs"]
mod own_pg;

fn schema_of(dir: &Path) -> String {
    let name = dir.file_name().unwrap().to_string_lossy().to_lowercase();
    let name: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("t_{name}")
}

/// The server's URL with the search path set to the schema of `dir`.
fn url_of(base: &str, dir: &Path) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{}", schema_of(dir))
}

/// Runs `sql` on the test server's database, outside any test schema.
async fn admin_sql(sql: &str) {
    let base = std::env::var(URL_VAR).unwrap();
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(conn);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    let _ = task.await;
}

/// A fresh data dir and its empty schema; `None` when the variable is not set.
async fn fresh() -> Option<(tempfile::TempDir, String)> {
    let base = std::env::var(URL_VAR).ok()?;
    let dir = tempfile::tempdir().unwrap();
    admin_sql(&format!("CREATE SCHEMA {}", schema_of(dir.path()))).await;
    let url = url_of(&base, dir.path());
    Some((dir, url))
}

/// A PostgreSQL store in a fresh schema; `None` when `LATCHKEY_TEST_PG_URL` is not set.
pub(crate) async fn pg_store() -> Option<(tempfile::TempDir, Store)> {
    let (dir, url) = fresh().await?;
    let s = Store::connect(&url, dir.path()).await.unwrap();
    Some((dir, s))
}

/// The store of `dir` connected again (a restart).
pub(crate) async fn reopen(dir: &Path) -> Store {
    let base = std::env::var(URL_VAR).unwrap();
    Store::connect(&url_of(&base, dir), dir).await.unwrap()
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_schema_newer_than_known_is_refused_with_a_message_saying_so() {
    let Some((dir, s)) = pg_store().await else {
        return;
    };
    drop(s);
    let newer = super::pg::SCHEMA_VERSION + 1;
    admin_sql(&format!(
        "INSERT INTO {}.latchkey_schema (version) VALUES ({newer})",
        schema_of(dir.path())
    ))
    .await;
    let base = std::env::var(URL_VAR).unwrap();
    let Err(e) = Store::connect(&url_of(&base, dir.path()), dir.path()).await else {
        panic!("a newer schema was accepted");
    };
    assert!(
        matches!(e, OpenError::SchemaTooNew { found, .. } if found == newer),
        "{e}"
    );
    assert!(
        e.to_string().contains("newer than this latchkey knows"),
        "{e}"
    );
}

#[test]
fn nodes_starting_together_apply_each_migration_once() {
    multi_thread().block_on(async {
        let Some((dir, url)) = fresh().await else {
            return;
        };
        let starts: Vec<_> = (0..3)
            .map(|_| {
                let (url, dir) = (url.clone(), dir.path().to_owned());
                tokio::spawn(async move { Store::connect(&url, &dir).await.map(drop) })
            })
            .collect();
        for s in starts {
            s.await.unwrap().unwrap();
        }
        let s = reopen(dir.path()).await;
        assert!(s.list_apps().await.unwrap().is_empty());
        let schema = schema_of(dir.path());
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let n: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {schema}.latchkey_schema"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, super::pg::SCHEMA_VERSION as i64);
    });
}

/// A start whose migration the database refuses for another reason than a lost catalog race fails at once: only
/// a race is tried again. The lock table here takes a sequence number on every attempt (sequences ignore
/// rollbacks) and then violates a check (23514), so the sequence counts the attempts.
#[tokio::test]
async fn a_migration_refused_for_another_reason_than_a_race_is_not_tried_again() {
    let Some((dir, url)) = fresh().await else {
        return;
    };
    let schema = schema_of(dir.path());
    admin_sql(&format!(
        "CREATE SEQUENCE {schema}.tries;
         CREATE TABLE {schema}.latchkey_migration_lock (id integer PRIMARY KEY,
           try bigint NOT NULL DEFAULT nextval('{schema}.tries') CHECK (try < 0))"
    ))
    .await;
    let Err(e) = Store::connect(&url, dir.path()).await else {
        panic!("the migration was not refused");
    };
    assert!(e.to_string().contains("check constraint"), "{e}");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let tries: i64 = client
        .query_one(&format!("SELECT last_value FROM {schema}.tries"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(tries, 1, "attempts");
}

/// A store with user `a1` (admin), app `c1` and code 7 of theirs.
async fn with_code() -> Option<(tempfile::TempDir, Store)> {
    let (d, s) = pg_store().await?;
    s.create_user(&user("a1", "root", true)).await.unwrap();
    s.create_app(&app("a1", "c1")).await.unwrap();
    put_code(&s, 7, "c1", "a1").await;
    Some((d, s))
}

#[tokio::test]
async fn a_code_redeems_once_and_its_replay_revokes_the_family() {
    let Some((_d, s)) = with_code().await else {
        return;
    };
    let r = s.redeem_code(&[7; 32], "c2", 10, [3; 16], Some(first_tokens(1, 2)));
    assert!(matches!(r.await.unwrap(), Redeemed::OtherClient));
    let r = s.redeem_code(&[7; 32], "c1", 10, [3; 16], Some(first_tokens(1, 2)));
    assert!(matches!(r.await.unwrap(), Redeemed::Ok));
    assert_eq!(
        s.peek_code(&[7; 32]).await.unwrap().unwrap().redeemed,
        Some([3; 16])
    );
    let live = s.active_token(&[1; 32], 10).await.unwrap().unwrap();
    assert_eq!(live.subject, Subject::User("a1".into()));
    assert!(s.active_token(&[2; 32], 10).await.unwrap().is_some());
    let again = s.redeem_code(&[7; 32], "c1", 10, [4; 16], Some(first_tokens(5, 6)));
    assert!(matches!(again.await.unwrap(), Redeemed::Replayed));
    for t in [1, 2, 5, 6] {
        assert!(
            s.active_token(&[t; 32], 10).await.unwrap().is_none(),
            "token {t}"
        );
    }
    assert!(s.family(&[3; 16]).await.unwrap().unwrap().revoked);
    let unknown = s.redeem_code(&[8; 32], "c1", 10, [5; 16], None);
    assert!(matches!(unknown.await.unwrap(), Redeemed::Unknown));
    put_code(&s, 9, "c1", "a1").await;
    let late = s.redeem_code(&[9; 32], "c1", 1_000, [6; 16], None);
    assert!(matches!(late.await.unwrap(), Redeemed::Expired));
}

#[tokio::test]
async fn a_redemption_for_a_deactivated_app_fails_and_leaves_the_code_unused() {
    let Some((_d, s)) = with_code().await else {
        return;
    };
    s.update_app("a1", |a| {
        a.active = false;
        Ok(())
    })
    .await
    .unwrap();
    let r = s.redeem_code(&[7; 32], "c1", 10, [3; 16], Some(first_tokens(1, 2)));
    assert!(matches!(r.await, Err(Error::NotFound(_))));
    assert_eq!(s.peek_code(&[7; 32]).await.unwrap().unwrap().redeemed, None);
    assert!(s.family(&[3; 16]).await.unwrap().is_none());
}

#[test]
fn one_code_redeemed_by_30_concurrent_tasks_has_exactly_one_success() {
    multi_thread().block_on(async {
        let Some((_d, s)) = with_code().await else {
            return;
        };
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(30));
        let tasks: Vec<_> = (0..30u8)
            .map(|i| {
                let (s, barrier) = (s.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let tokens = first_tokens(100 + i, 200 - i);
                    s.redeem_code(&[7; 32], "c1", 10, [i; 16], Some(tokens))
                        .await
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap().unwrap() {
                Redeemed::Ok => ok += 1,
                Redeemed::Replayed => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(ok, 1);
        let family = s
            .peek_code(&[7; 32])
            .await
            .unwrap()
            .unwrap()
            .redeemed
            .unwrap();
        assert!(
            s.family(&family).await.unwrap().unwrap().revoked,
            "the replays revoked it"
        );
    });
}

#[test]
fn one_refresh_token_rotated_by_30_concurrent_tasks_has_exactly_one_success() {
    multi_thread().block_on(async {
        let Some((_d, s)) = with_code().await else {
            return;
        };
        let r = s.redeem_code(&[7; 32], "c1", 10, [3; 16], Some(first_tokens(1, 2)));
        assert!(matches!(r.await.unwrap(), Redeemed::Ok));
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(30));
        let tok = |b: u8| NewToken {
            digest: [b; 32],
            expires_at: 1_000,
        };
        let tasks: Vec<_> = (0..30u8)
            .map(|i| {
                let (s, barrier) = (s.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    s.rotate_refresh(
                        &[2; 32],
                        "c1",
                        "openid",
                        20,
                        tok(100 + i),
                        Some(tok(200 - i)),
                    )
                    .await
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap().unwrap() {
                Rotated::Ok => ok += 1,
                Rotated::Replayed => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(ok, 1);
        assert!(
            s.family(&[3; 16]).await.unwrap().unwrap().revoked,
            "reuse revoked it"
        );
    });
}

#[tokio::test]
async fn a_rotation_replaces_the_pair_and_revocation_follows_the_kind() {
    let Some((_d, s)) = with_code().await else {
        return;
    };
    let r = s.redeem_code(&[7; 32], "c1", 10, [3; 16], Some(first_tokens(1, 2)));
    assert!(matches!(r.await.unwrap(), Redeemed::Ok));
    let tok = |b: u8| NewToken {
        digest: [b; 32],
        expires_at: 1_000,
    };
    let wrong = s.rotate_refresh(&[1; 32], "c1", "openid", 20, tok(8), Some(tok(9)));
    assert!(
        matches!(wrong.await.unwrap(), Rotated::Invalid),
        "an access token"
    );
    let r = s.rotate_refresh(&[2; 32], "c1", "openid", 20, tok(3), Some(tok(4)));
    assert!(matches!(r.await.unwrap(), Rotated::Ok));
    assert!(
        s.active_token(&[1; 32], 20).await.unwrap().is_none(),
        "its sibling went"
    );
    assert!(
        s.active_token(&[2; 32], 20).await.unwrap().is_none(),
        "rotated"
    );
    assert!(s.token_record(&[2; 32]).await.unwrap().unwrap().rotated);
    assert!(s.active_token(&[3; 32], 20).await.unwrap().is_some());
    assert!(
        !s.revoke_token(&[3; 32], "c2").await.unwrap(),
        "another client's"
    );
    assert!(s.revoke_token(&[3; 32], "c1").await.unwrap());
    assert!(s.active_token(&[3; 32], 20).await.unwrap().is_none());
    assert!(s.active_token(&[4; 32], 20).await.unwrap().is_some());
    assert!(s.revoke_token(&[4; 32], "c1").await.unwrap());
    assert!(s.family(&[3; 16]).await.unwrap().unwrap().revoked);
}

#[tokio::test]
async fn a_client_token_lives_while_its_app_is_active_and_in_its_epoch() {
    let Some((_d, s)) = pg_store().await else {
        return;
    };
    s.create_app(&app("a1", "c1")).await.unwrap();
    let rec = TokenRecord {
        kind: TokenKind::Access,
        lineage: Lineage::Epoch(0),
        client_id: "c1".into(),
        subject: Subject::Client,
        scope: String::new(),
        issued_at: 1,
        expires_at: 1_000,
        rotated: false,
        sibling: None,
    };
    s.put_client_token(&[1; 32], &rec).await.unwrap();
    assert_eq!(
        s.active_token(&[1; 32], 10).await.unwrap(),
        Some(rec.clone())
    );
    let app = s.update_app("a1", |a| {
        a.token_epoch += 1;
        Ok(())
    });
    let app = app.await.unwrap();
    assert!(s.active_token(&[1; 32], 10).await.unwrap().is_none());
    assert!(s
        .active_token_of(&[1; 32], 10, &app)
        .await
        .unwrap()
        .is_none());
    s.revoke_jti("j1", "c1", 1_000).await.unwrap();
    assert!(s.jti_revoked("j1").await.unwrap());
    assert!(!s.jti_revoked("j2").await.unwrap());
}

#[test]
fn two_concurrent_demotions_of_the_last_two_admins_leave_one() {
    multi_thread().block_on(async {
        let Some((_d, s)) = pg_store().await else {
            return;
        };
        s.create_user(&user("a1", "root1", true)).await.unwrap();
        s.create_user(&user("a2", "root2", true)).await.unwrap();
        let demote = |id: &'static str| {
            let s = s.clone();
            tokio::spawn(async move {
                s.update_user(id, |u| {
                    u.roles = vec![crate::model::Role::User];
                    Ok(())
                })
                .await
            })
        };
        let (a, b) = (demote("a1"), demote("a2"));
        let results = [a.await.unwrap(), b.await.unwrap()];
        let refused = results
            .iter()
            .filter(|r| matches!(r, Err(Error::NotAllowed(Rule::LastAdminRole))))
            .count();
        assert_eq!(refused, 1, "{results:?}");
        let admins = s
            .list_users()
            .await
            .unwrap()
            .iter()
            .filter(|u| u.is_admin())
            .count();
        assert_eq!(admins, 1);
    });
}

/// A use case chosen as a deadlock's victim (40P01) runs again and succeeds: another session holds the admin
/// counter row and then waits for the user row the promotion locked first. That session waits 10 s before
/// checking for a deadlock, so PostgreSQL aborts the promotion (1 s, the default); its retry runs after the
/// other session committed.
#[test]
fn a_use_case_aborted_as_a_deadlock_victim_is_retried_and_succeeds() {
    multi_thread().block_on(async {
        let Some((d, s)) = pg_store().await else {
            return;
        };
        s.create_user(&user("a1", "root", true)).await.unwrap();
        s.create_user(&user("u1", "carol", false)).await.unwrap();
        let base = std::env::var(URL_VAR).unwrap();
        let (mut other, conn) =
            tokio_postgres::connect(&url_of(&base, d.path()), tokio_postgres::NoTls)
                .await
                .unwrap();
        let task = tokio::spawn(conn);
        let tx = other.transaction().await.unwrap();
        tx.batch_execute(
            "SET LOCAL deadlock_timeout = '10s'; UPDATE admin_count SET n = n WHERE id = 1",
        )
        .await
        .unwrap();
        let promote = tokio::spawn({
            let s = s.clone();
            async move {
                s.update_user("u1", |u| {
                    u.roles = vec![crate::model::Role::Admin];
                    Ok(())
                })
                .await
            }
        });
        // The promotion holds the user row and waits for the counter row.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        tx.execute("SELECT 1 FROM users WHERE id = 'u1' FOR UPDATE", &[])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let promoted = promote.await.unwrap().expect("retried after the deadlock");
        assert!(promoted.is_admin());
        assert_eq!(crate::store::testing::admin_count(&s).await, 2);
        drop(other);
        let _ = task.await;
    });
}

#[tokio::test]
async fn keys_settings_and_meta_round_trip() {
    let Some((_d, s)) = pg_store().await else {
        return;
    };
    assert!(s.list_signing_keys().await.unwrap().is_empty());
    s.meta_put("k", b"v1").await.unwrap();
    s.meta_put("k", b"v2").await.unwrap();
    assert_eq!(s.meta_get("k").await.unwrap(), Some(b"v2".to_vec()));
    assert_eq!(s.meta_get("x").await.unwrap(), None);
    assert!(!s.delete_signing_key("none").await.unwrap());
}

/// Found by the link model test on PostgreSQL: a user whose id, username and email are all taken was an id
/// conflict there (the insert meets the primary key first) and a username conflict on sled. Both now check in
/// sled's order: the username, an email, the id.
#[tokio::test]
async fn a_taken_user_conflicts_on_the_username_then_an_email_then_the_id_as_on_sled() {
    let Some((_d, s)) = pg_store().await else {
        return;
    };
    s.create_user(&user("u0", "zoe", false)).await.unwrap();
    let field = |r: crate::error::Result<()>| match r {
        Err(Error::Conflict { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    let again = s.create_user(&user("u0", "zoe", false)).await;
    assert_eq!(field(again), Field::Username);
    let mut same_email = user("u0", "amy", false);
    same_email.emails = user("x", "zoe", false).emails;
    assert_eq!(field(s.create_user(&same_email).await), Field::Email);
    assert_eq!(
        field(s.create_user(&user("u0", "amy", false)).await),
        Field::Id
    );
}

/// A client_credentials token of `c1` expiring at `expires_at`.
fn client_token(expires_at: i64) -> TokenRecord {
    TokenRecord {
        kind: TokenKind::Access,
        lineage: Lineage::Epoch(0),
        client_id: "c1".into(),
        subject: Subject::Client,
        scope: String::new(),
        issued_at: 1,
        expires_at,
        rotated: false,
        sibling: None,
    }
}

#[tokio::test]
async fn one_node_sweeps_at_a_time_and_only_what_is_dead() {
    let Some((d, a)) = pg_store().await else {
        return;
    };
    let b = reopen(d.path()).await;
    a.create_app(&app("a1", "c1")).await.unwrap();
    for i in 0..3 {
        a.put_client_token(&[i; 32], &client_token(1_000))
            .await
            .unwrap();
    }
    a.put_client_token(&[9; 32], &client_token(5_000))
        .await
        .unwrap();
    a.revoke_jti("j1", "c1", 1_000).await.unwrap();
    a.revoke_jti("j2", "c1", 5_000).await.unwrap();

    // Another node mid-round holds the lease: this one sweeps nothing.
    let base = std::env::var(URL_VAR).unwrap();
    let (holder, conn) = tokio_postgres::connect(&url_of(&base, d.path()), tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(conn);
    let lease = "INSERT INTO leases VALUES ('sweep', 'another node', now() + interval '1 minute')";
    holder.batch_execute(lease).await.unwrap();
    assert_eq!(b.sweep(2_000).await.unwrap(), 0);
    assert!(a.token_record(&[0; 32]).await.unwrap().is_some());
    // The holder's round ends.
    let unlock = "DELETE FROM leases WHERE name = 'sweep' AND holder = 'another node'";
    holder.batch_execute(unlock).await.unwrap();
    drop(holder);
    let _ = task.await;

    // Both nodes at once: the rows go once, whoever sweeps them.
    let (x, y) = tokio::join!(a.sweep(2_000), b.sweep(2_000));
    assert_eq!(x.unwrap() + y.unwrap(), 4, "three tokens and a jti");
    for i in 0..3 {
        assert!(a.token_record(&[i; 32]).await.unwrap().is_none());
    }
    assert!(a.token_record(&[9; 32]).await.unwrap().is_some());
    assert!(!a.jti_revoked("j1").await.unwrap());
    assert!(a.jti_revoked("j2").await.unwrap());
    assert_eq!(b.sweep(2_000).await.unwrap(), 0);
}

#[tokio::test]
async fn a_dead_holders_sweep_lease_passes_to_the_next_node_when_it_expires() {
    let Some((d, s)) = pg_store().await else {
        return;
    };
    s.create_app(&app("a1", "c1")).await.unwrap();
    s.put_client_token(&[1; 32], &client_token(1_000))
        .await
        .unwrap();
    // A node took the lease and died mid-round: it never renews or releases it.
    let base = std::env::var(URL_VAR).unwrap();
    let (dead, conn) = tokio_postgres::connect(&url_of(&base, d.path()), tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(conn);
    dead.batch_execute(
        "INSERT INTO leases VALUES ('sweep', 'dead node', now() + interval '500 milliseconds')",
    )
    .await
    .unwrap();
    drop(dead);
    let _ = task.await;
    assert_eq!(s.sweep(2_000).await.unwrap(), 0, "the lease still runs");
    assert!(s.token_record(&[1; 32]).await.unwrap().is_some());
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        s.sweep(2_000).await.unwrap(),
        1,
        "expired: this node sweeps"
    );
    assert!(s.token_record(&[1; 32]).await.unwrap().is_none());
}

/// The records of a backup file: every record tree's (tree, key, value) lines, sorted (index trees left out:
/// each backend derives its own).
fn records_of(file: &Path) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    use crate::store::backup::RECORD_TREES;
    let mut out = Vec::new();
    crate::store::backup::scan(file, |tree, k, v| {
        let skip = !RECORD_TREES.contains(&tree)
            || (tree == "meta" && [b"schema".as_slice(), b"admins"].contains(&k.as_slice()));
        if !skip {
            out.push((tree.to_owned(), k, v));
        }
        Ok(())
    })
    .unwrap();
    out.sort();
    out
}

/// A sled store with a record of every kind: users (one with TOTP), apps, a provider with a sealed secret, links,
/// a code, a live family with its tokens, a client token, a login token, a signing key, a setting, a revoked jti.
async fn populated_sled() -> (tempfile::TempDir, Store) {
    use crate::model::provider::{Credential, Setting, SettingValue};
    use crate::model::Provider;
    use crate::store::sled::link::tests::link;
    use crate::store::token::FamilyId;
    let (d, s) = crate::store::testing::temp_store();
    let mut u = user("u1", "Jane", true);
    u.two_factor = Some(crate::model::user::TwoFactor {
        totp_secret: Some(vec![7; 40]),
        totp_enabled: true,
        ..Default::default()
    });
    s.create_user(&u).await.unwrap();
    s.create_user(&user("u2", "bob", false)).await.unwrap();
    s.create_app(&app("a1", "c1")).await.unwrap();
    let mut p = Provider::new("id1".into(), "Myidp".into(), 1);
    p.set(Setting::Enabled, SettingValue::Bool(true)).unwrap();
    p.credentials.push(Credential {
        name: "main".into(),
        client_id: "up".into(),
        sealed_secret: Some(vec![9; 48]),
        scopes: None,
    });
    s.add_provider(&p).await.unwrap();
    s.create_link(&link("l1", "u1", "myidp", "acct-1", true))
        .await
        .unwrap();
    s.create_link(&link("l2", "u2", "myidp", "acct-2", false))
        .await
        .unwrap();
    put_code(&s, 7, "c1", "u1").await;
    let fam: FamilyId = [5; 16];
    s.redeem_code(&[7; 32], "c1", 10, fam, Some(first_tokens(1, 2)))
        .await
        .unwrap();
    put_code(&s, 8, "c1", "u1").await;
    s.put_client_token(&[3; 32], &client_token(5_000))
        .await
        .unwrap();
    let login = crate::store::LoginToken {
        user_id: "u1".into(),
        created_at: 0,
        expires_at: 9_000,
        amr: Vec::new(),
    };
    s.create_login_token([4; 32], &login).await.unwrap();
    let public = crate::model::signing_key::PublicKey::Ed25519 { x: vec![1; 32] };
    s.put_signing_key(&crate::model::SigningKey {
        kid: public.thumbprint(),
        alg: crate::model::oidc::SigningAlg::EdDsa,
        private_sealed: vec![1; 40],
        public,
        created_at: 0,
        signs_from: 0,
    })
    .await
    .unwrap();
    s.put_setting(
        crate::model::builtin_setting::PROXY_SERVICES,
        &SettingValue::Str("x".into()),
    )
    .await
    .unwrap();
    s.revoke_jti("j1", "c1", 5_000).await.unwrap();
    s.meta_put("stack_project_id", b"p-1").await.unwrap();
    (d, s)
}

#[tokio::test]
async fn sled_to_postgres_to_sled_keeps_every_record() {
    let Some((pd, pg)) = pg_store().await else {
        return;
    };
    let (_sd, sled) = populated_sled().await;
    let out = tempfile::tempdir().unwrap();
    let file = |n: &str| out.path().join(n);
    sled.export(std::fs::File::create(file("a")).unwrap(), 0, Some("key"))
        .await
        .unwrap();
    sled.close().unwrap();

    let info = pg.import(&file("a")).await.unwrap();
    assert_eq!(info.master_key_file.as_deref(), Some("key"));
    pg.check_records().await.unwrap();
    // The restored database serves: lookups by every index, the admin count, the live tokens.
    assert_eq!(pg.user_by_username("jane").await.unwrap().unwrap().id, "u1");
    assert!(pg.active_token(&[2; 32], 20).await.unwrap().is_some());
    assert!(pg.active_token(&[3; 32], 20).await.unwrap().is_some());
    assert_eq!(crate::store::testing::admin_count(&pg).await, 1);
    assert!(pg
        .peek_code(&[7; 32])
        .await
        .unwrap()
        .unwrap()
        .redeemed
        .is_some());
    let e = pg.import(&file("a")).await.unwrap_err();
    assert!(e.contains("not empty"), "{e}");

    pg.export(std::fs::File::create(file("b")).unwrap(), 0, None)
        .await
        .unwrap();
    assert_eq!(records_of(&file("b")), records_of(&file("a")));
    let dir = out.path().join("sled-again");
    crate::store::backup::restore(&file("b"), &dir, 8 << 20, None).unwrap();
    let again = Store::open(&dir, 8 << 20).unwrap();
    again.verify().unwrap();
    assert_eq!(
        again
            .user_by_email("jane@example.com")
            .await
            .unwrap()
            .map(|u| u.id),
        pg.user_by_email("jane@example.com")
            .await
            .unwrap()
            .map(|u| u.id)
    );
    assert_eq!(crate::store::testing::admin_count(&again).await, 1);
    assert!(again.active_token(&[2; 32], 20).await.unwrap().is_some());
    assert_eq!(again.links_of_user("u1").await.unwrap().len(), 1);
    again
        .export(std::fs::File::create(file("c")).unwrap(), 0, None)
        .await
        .unwrap();
    assert_eq!(records_of(&file("c")), records_of(&file("a")));
    drop(pd);
}

/// Regression: a restore wrote `tokens.sibling` NULL (the link was not in the record), so after a move from sled
/// rotating a refresh token left the access token issued with it live. The record names it now.
#[tokio::test]
async fn a_refresh_token_moved_from_sled_still_removes_its_sibling_when_it_rotates() {
    let Some((_pd, pg)) = pg_store().await else {
        return;
    };
    let (_sd, sled) = populated_sled().await;
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("a");
    sled.export(std::fs::File::create(&file).unwrap(), 0, None)
        .await
        .unwrap();
    sled.close().unwrap();
    pg.import(&file).await.unwrap();
    assert!(pg.active_token(&[1; 32], 20).await.unwrap().is_some());
    let tok = |b: u8| NewToken {
        digest: [b; 32],
        expires_at: 1_000,
    };
    let r = pg.rotate_refresh(&[2; 32], "c1", "openid", 20, tok(8), Some(tok(9)));
    assert!(matches!(r.await.unwrap(), Rotated::Ok));
    assert!(
        pg.active_token(&[1; 32], 20).await.unwrap().is_none(),
        "the old access token is gone"
    );
    assert!(pg.active_token(&[8; 32], 20).await.unwrap().is_some());
}

/// A database outage: every store call is `Unavailable` (a 503 in every dialect) and `/healthz` says so; when the
/// database is back the same store serves again, without a restart. On a dedicated PostgreSQL (its own dir and
/// port), so the shared test server is not disturbed.
#[test]
fn an_outage_is_unavailable_and_the_store_recovers_without_restart() {
    let Some(pg) = own_pg::OwnServer::start() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let rt = multi_thread();
    rt.block_on(async {
        let s = Store::connect(&pg.url, data.path()).await.unwrap();
        s.create_app(&app("a1", "c1")).await.unwrap();
        assert!(s.healthy().await);
        pg.script("halt");
        assert!(matches!(s.get_app("a1").await, Err(Error::Unavailable)));
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        assert!(!s.healthy().await, "the cached answer expired");
        pg.script("resume");
        assert!(s.get_app("a1").await.unwrap().is_some());
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        assert!(s.healthy().await);
    });
}

#[tokio::test]
async fn providers_are_added_once_updated_and_removed_with_their_links() {
    let Some((_d, s)) = pg_store().await else {
        return;
    };
    crate::store::sled::link::tests::seed(&s).await;
    let again = Provider::new("other".into(), "Myidp".into(), 5);
    assert_eq!(
        s.add_provider(&again).await.unwrap().id,
        "p-myidp",
        "the first one stays"
    );
    let renamed = s.update_provider("myidp", |p| {
        p.name = "Other".into();
        Ok(())
    });
    assert!(renamed.await.is_err());
    let names: Vec<_> = s.list_providers().await.unwrap();
    assert_eq!(names.len(), 2);
    s.create_link(&link("l1", "u1", "myidp", "acc", true))
        .await
        .unwrap();
    s.create_link(&link("l2", "u2", "myidp", "acc", false))
        .await
        .unwrap();
    assert_eq!(s.list_links().await.unwrap().len(), 2);
    assert_eq!(
        s.remove_provider("myidp").await.unwrap().unwrap().id,
        "p-myidp"
    );
    assert!(s.remove_provider("myidp").await.unwrap().is_none());
    assert!(
        s.list_links().await.unwrap().is_empty(),
        "its links went too"
    );
    assert!(matches!(
        s.create_link(&link("l3", "u1", "myidp", "acc", true)).await,
        Err(Error::NotFound(Entity::Provider))
    ));
}

#[tokio::test]
async fn next_link_time_is_past_now_the_newest_link_and_every_time_handed_out() {
    let Some((dir, s)) = pg_store().await else {
        return;
    };
    crate::store::sled::link::tests::seed(&s).await;
    assert_eq!(s.next_link_time("u2", 100).await.unwrap(), 100);
    assert_eq!(s.next_link_time("u2", 100).await.unwrap(), 101);
    let mut l = link("l1", "u1", "myidp", "acc", true);
    l.created_at = 500;
    s.create_link(&l).await.unwrap();
    assert_eq!(s.newest_link_time("u1").await.unwrap(), Some(500));
    assert_eq!(s.newest_link_time("u2").await.unwrap(), None);
    assert_eq!(s.next_link_time("u1", 50).await.unwrap(), 501);
    drop(s);
    let s = reopen(dir.path()).await;
    assert_eq!(
        s.next_link_time("u2", 7).await.unwrap(),
        502,
        "every node, and a restarted one, counts on"
    );
}

/// Providers list oldest first, ties by name, as on sled; ordering by the service key put `_x` before `Ab`.
#[tokio::test]
async fn providers_list_in_sleds_order() {
    let Some((_d, s)) = pg_store().await else {
        return;
    };
    for name in ["_x", "Ab"] {
        s.add_provider(&Provider::new(name.into(), name.into(), 1))
            .await
            .unwrap();
    }
    let names: Vec<_> = s.list_providers().await.unwrap();
    let names: Vec<_> = names.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Ab", "_x"]);
}
