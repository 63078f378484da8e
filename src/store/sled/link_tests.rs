//! Unit tests of the link store (`link.rs`): each rule and index on its own, with named cases. The random
//! sequences are in `link_model_test.rs`.

use super::*;
use crate::model::link::CUSTOM_TYPE;
use crate::model::provider::{Setting, SettingValue};
use crate::store::sled::user::tests::user;
use crate::store::testing::temp_store;
use crate::store::Store;

pub(crate) fn link(id: &str, user: &str, provider: &str, account: &str, sign_in: bool) -> Link {
    Link {
        id: id.into(),
        user_id: user.into(),
        provider: provider.into(),
        provider_type: CUSTOM_TYPE.into(),
        email: None,
        allow_sign_in: sign_in,
        allow_connected_accounts: !sign_in,
        account_id: account.into(),
        created_at: 10,
        upstream: None,
    }
}

/// A store with users u1, u2 and the enabled provider `myidp` (plus the disabled `off`).
pub(crate) async fn seeded() -> (tempfile::TempDir, Store) {
    let (d, s) = temp_store();
    seed(&s).await;
    (d, s)
}

/// Adds to `s` what [`seeded`] has (the link tests of either backend start from it).
pub(crate) async fn seed(s: &Store) {
    s.create_user(&user("u1", "jane", true)).await.unwrap();
    s.create_user(&user("u2", "bob", false)).await.unwrap();
    for (name, on) in [("Myidp", true), ("Off", false)] {
        let key = name.to_lowercase();
        s.add_provider(&Provider::new(format!("p-{key}"), name.into(), 1))
            .await
            .unwrap();
        s.update_provider(&key, |p| p.set(Setting::Enabled, SettingValue::Bool(on)))
            .await
            .unwrap();
    }
}

fn conflict_field(e: Error) -> Field {
    match e {
        Error::Conflict { field, .. } => field,
        other => panic!("not a conflict: {other:?}"),
    }
}

#[tokio::test]
async fn create_checks_user_provider_and_both_sign_in_rules() {
    let (_d, s) = seeded().await;
    s.create_link(&link("l1", "u1", "myidp", "acc", true))
        .await
        .unwrap();
    assert_eq!(
        s.sign_in_link("myidp", "acc").await.unwrap().unwrap().id,
        "l1",
        "one point lookup finds the sign-in user"
    );
    assert_eq!(
        s.sign_in_link_of_user("u1", "myidp")
            .await
            .unwrap()
            .unwrap()
            .id,
        "l1"
    );
    // The same upstream account cannot sign in to another user...
    let e = s.create_link(&link("l2", "u2", "myidp", "acc", true)).await;
    assert_eq!(conflict_field(e.unwrap_err()), Field::AccountId);
    // ...but may be a connected-only link of anyone.
    s.create_link(&link("l2", "u2", "myidp", "acc", false))
        .await
        .unwrap();
    // One sign-in link per (user, provider).
    let e = s
        .create_link(&link("l3", "u1", "myidp", "other", true))
        .await;
    assert_eq!(conflict_field(e.unwrap_err()), Field::Provider);
    let e = s.create_link(&link("l1", "u2", "myidp", "x", false)).await;
    assert_eq!(conflict_field(e.unwrap_err()), Field::Id);
    for (l, want) in [
        (link("l4", "nobody", "myidp", "a", false), Entity::User),
        (link("l4", "u1", "nope", "a", false), Entity::Provider),
        (link("l4", "u1", "off", "a", false), Entity::Provider),
    ] {
        match s.create_link(&l).await {
            Err(Error::NotFound(what)) => assert_eq!(what, want),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(s.list_links().await.unwrap().len(), 2);
    s.verify().unwrap();
}

#[tokio::test]
async fn links_of_a_user_come_in_creation_order() {
    let (_d, s) = seeded().await;
    for (i, t) in [(0, 30), (1, -5), (2, 7), (3, 7)] {
        let mut l = link(&format!("l{i}"), "u1", "myidp", &format!("a{i}"), false);
        l.created_at = t;
        s.create_link(&l).await.unwrap();
    }
    let ids = |v: Vec<Link>| v.into_iter().map(|l| l.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.links_of_user("u1").await.unwrap()),
        ["l1", "l2", "l3", "l0"]
    );
    assert_eq!(ids(s.list_links().await.unwrap()), ["l1", "l2", "l3", "l0"]);
    assert_eq!(s.newest_link_time("u1").await.unwrap(), Some(30));
    assert_eq!(s.newest_link_time("u2").await.unwrap(), None);
    assert!(s.links_of_user("u2").await.unwrap().is_empty());
    assert!(
        s.links_of_user("u").await.unwrap().is_empty(),
        "no prefix bleed"
    );

    assert_eq!(s.next_link_time("u2", 100).await.unwrap(), 100);
    assert_eq!(
        s.next_link_time("u2", 100).await.unwrap(),
        101,
        "never twice the same"
    );
    assert_eq!(
        s.next_link_time("u1", 50).await.unwrap(),
        102,
        "never backwards"
    );
    let (_d2, fresh) = seeded().await;
    let mut l = link("l9", "u1", "myidp", "a9", false);
    l.created_at = 500;
    fresh.create_link(&l).await.unwrap();
    assert_eq!(
        fresh.next_link_time("u1", 7).await.unwrap(),
        501,
        "after a restart: past the user's newest link"
    );
}

#[tokio::test]
async fn update_rechecks_the_invariants_and_keeps_identity() {
    let (_d, s) = seeded().await;
    s.create_link(&link("l1", "u1", "myidp", "acc", true))
        .await
        .unwrap();
    s.create_link(&link("l2", "u2", "myidp", "acc", false))
        .await
        .unwrap();
    let e = s
        .update_link("l2", |l| {
            l.allow_sign_in = true;
            Ok(())
        })
        .await;
    assert_eq!(conflict_field(e.unwrap_err()), Field::AccountId);
    // Moving l1 to another account frees "acc" for u2.
    let l1 = s
        .update_link("l1", |l| {
            l.account_id = "acc2".into();
            l.email = Some("j@example.com".into());
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(l1.account_id, "acc2");
    assert!(s.sign_in_link("myidp", "acc").await.unwrap().is_none());
    assert_eq!(
        s.sign_in_link("myidp", "acc2").await.unwrap().unwrap().id,
        "l1"
    );
    s.update_link("l2", |l| {
        l.allow_sign_in = true;
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(
        s.sign_in_link("myidp", "acc")
            .await
            .unwrap()
            .unwrap()
            .user_id,
        "u2"
    );
    // Turning sign-in off releases both keys.
    s.update_link("l1", |l| {
        l.allow_sign_in = false;
        Ok(())
    })
    .await
    .unwrap();
    assert!(s
        .sign_in_link_of_user("u1", "myidp")
        .await
        .unwrap()
        .is_none());
    for change in [
        (|l: &mut Link| l.user_id = "u2".into()) as fn(&mut Link),
        |l| l.provider = "off".into(),
        |l| l.id = "zz".into(),
        |l| l.created_at += 1,
    ] {
        let r = s
            .update_link("l1", |l| {
                change(l);
                Ok(())
            })
            .await;
        assert!(matches!(r, Err(Error::Internal(_))), "{r:?}");
    }
    let r = s
        .update_link("l1", |l| {
            l.allow_sign_in = true;
            Err(Error::invalid(Field::Name, "rejected"))
        })
        .await;
    assert!(matches!(r, Err(Error::Invalid { .. })));
    assert!(!s.get_link("l1").await.unwrap().unwrap().allow_sign_in);
    assert!(matches!(
        s.update_link("nope", |_| Ok(())).await,
        Err(Error::NotFound(Entity::Link))
    ));
    s.verify().unwrap();
}

#[tokio::test]
async fn deleting_links_users_and_providers_leaves_no_index_behind() {
    let (_d, s) = seeded().await;
    s.create_link(&link("l1", "u1", "myidp", "a1", true))
        .await
        .unwrap();
    s.create_link(&link("l2", "u2", "myidp", "a2", true))
        .await
        .unwrap();
    s.create_link(&link("l3", "u2", "myidp", "a1", false))
        .await
        .unwrap();
    assert_eq!(s.delete_link("l1").await.unwrap().id, "l1");
    assert!(matches!(
        s.delete_link("l1").await,
        Err(Error::NotFound(Entity::Link))
    ));
    assert!(s.sign_in_link("myidp", "a1").await.unwrap().is_none());
    s.verify().unwrap();

    s.delete_user("u2").await.unwrap();
    assert!(s.list_links().await.unwrap().is_empty());
    s.verify().unwrap();

    s.create_link(&link("l4", "u1", "myidp", "a1", true))
        .await
        .unwrap();
    s.remove_provider("myidp").await.unwrap();
    assert!(s.list_links().await.unwrap().is_empty());
    assert!(s.sign_in_link("myidp", "a1").await.unwrap().is_none());
    s.verify().unwrap();
}

#[tokio::test]
async fn upstream_tokens_round_trip_opaquely() {
    let (_d, s) = seeded().await;
    let mut l = link("l1", "u1", "myidp", "a1", true);
    l.upstream = Some(vec![0, 1, 2, 255]);
    l.email = Some("Jane@Example.com".into());
    s.create_link(&l).await.unwrap();
    assert_eq!(s.get_link("l1").await.unwrap().unwrap(), l);
    assert_eq!(codec::decode::<Link>(&codec::encode(&l)).unwrap(), l);
}
