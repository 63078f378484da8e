//! Model-based test of the link store. Random sequences of link operations, interleaved with the user and provider
//! operations that cascade into links, run over a tiny key space (so sign-in claims collide often) against a real
//! store and a `BTreeMap` model. After every operation the outcome and every lookup must agree; after the run
//! `Store::verify` must pass (on sled). Plus the races that only a multi-threaded runtime can produce. Each runs on
//! sled and, when `LATCHKEY_TEST_PG_URL` names a server, on PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::clock::Millis;
use crate::error::{Entity, Error, Field, Result};
use crate::model::provider::{Setting, SettingValue};
use crate::model::{Link, Provider};
use crate::store::pg_test::pg_store;
use crate::store::sled::link::tests::{link as make_link, seed, seeded};
use crate::store::sled::user::tests::user as make_user;
use crate::store::testing::{agrees_with_model, steps, temp_store, Step};
use crate::store::Store;

const USERS: [&str; 3] = ["u0", "u1", "u2"];
/// Normalized provider names; the service keys are their lowercase forms.
const PROVIDERS: [&str; 2] = ["Pa", "Pb"];
const ACCOUNTS: [&str; 3] = ["a0", "a1", "a2"];
const LINKS: [&str; 6] = ["l0", "l1", "l2", "l3", "l4", "l5"];

fn key(p: usize) -> String {
    PROVIDERS[p].to_lowercase()
}

#[derive(Clone, Debug)]
enum Op {
    CreateUser {
        u: usize,
    },
    DeleteUser {
        u: usize,
    },
    AddProvider {
        p: usize,
    },
    SetEnabled {
        p: usize,
        on: bool,
    },
    RemoveProvider {
        p: usize,
    },
    CreateLink {
        id: usize,
        u: usize,
        p: usize,
        a: usize,
        sign_in: bool,
        at: Millis,
    },
    UpdateLink {
        id: usize,
        sign_in: Option<bool>,
        a: Option<usize>,
    },
    /// The closure edits the link, then fails: nothing may change.
    FailedUpdate {
        id: usize,
    },
    DeleteLink {
        id: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let u = || 0..USERS.len();
    let p = || 0..PROVIDERS.len();
    let a = || 0..ACCOUNTS.len();
    let id = || 0..LINKS.len();
    prop_oneof![
        3 => u().prop_map(|u| Op::CreateUser { u }),
        1 => u().prop_map(|u| Op::DeleteUser { u }),
        2 => p().prop_map(|p| Op::AddProvider { p }),
        3 => (p(), prop::bool::weighted(0.8)).prop_map(|(p, on)| Op::SetEnabled { p, on }),
        1 => p().prop_map(|p| Op::RemoveProvider { p }),
        8 => (id(), u(), p(), a(), any::<bool>(), 0..3i64)
            .prop_map(|(id, u, p, a, sign_in, at)| Op::CreateLink { id, u, p, a, sign_in, at }),
        4 => (id(), proptest::option::of(any::<bool>()), proptest::option::of(a()))
            .prop_map(|(id, sign_in, a)| Op::UpdateLink { id, sign_in, a }),
        1 => id().prop_map(|id| Op::FailedUpdate { id }),
        2 => id().prop_map(|id| Op::DeleteLink { id }),
    ]
}

/// What an operation answered: success with a link, success, or the error (conflicts with their field).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Link(Link),
    NotFound(Entity),
    Conflict(Field),
    Invalid,
    Other(String),
}

fn outcome<T>(r: Result<T>, ok: impl FnOnce(T) -> Outcome) -> Outcome {
    match r {
        Ok(v) => ok(v),
        Err(Error::NotFound(w)) => Outcome::NotFound(w),
        Err(Error::Conflict { field, .. }) => Outcome::Conflict(field),
        Err(Error::Invalid { .. }) => Outcome::Invalid,
        Err(e) => Outcome::Other(format!("{e:?}")),
    }
}

#[derive(Default, Debug)]
struct Model {
    users: BTreeSet<usize>,
    /// Provider → enabled.
    providers: BTreeMap<usize, bool>,
    links: BTreeMap<String, Link>,
}

impl Model {
    /// The field of the sign-in rule `l` would break, ignoring the link with `l`'s own id.
    fn sign_in_conflict(&self, l: &Link) -> Option<Field> {
        if !l.allow_sign_in {
            return None;
        }
        let others = || {
            self.links
                .values()
                .filter(|o| o.id != l.id && o.allow_sign_in)
        };
        if others().any(|o| o.provider == l.provider && o.account_id == l.account_id) {
            return Some(Field::AccountId);
        }
        if others().any(|o| o.provider == l.provider && o.user_id == l.user_id) {
            return Some(Field::Provider);
        }
        None
    }

    fn apply(&mut self, op: &Op) -> Outcome {
        match *op {
            Op::CreateUser { u } => {
                if !self.users.insert(u) {
                    return Outcome::Conflict(Field::Username);
                }
                Outcome::Ok
            }
            Op::DeleteUser { u } => {
                if !self.users.remove(&u) {
                    return Outcome::NotFound(Entity::User);
                }
                self.links.retain(|_, l| l.user_id != USERS[u]);
                Outcome::Ok
            }
            Op::AddProvider { p } => {
                self.providers.entry(p).or_insert(false);
                Outcome::Ok
            }
            Op::SetEnabled { p, on } => match self.providers.get_mut(&p) {
                Some(e) => {
                    *e = on;
                    Outcome::Ok
                }
                None => Outcome::NotFound(Entity::Provider),
            },
            Op::RemoveProvider { p } => {
                self.providers.remove(&p);
                self.links.retain(|_, l| l.provider != key(p));
                Outcome::Ok
            }
            Op::CreateLink {
                id,
                u,
                p,
                a,
                sign_in,
                at,
            } => {
                let l = new_link(id, u, p, a, sign_in, at);
                if self.providers.get(&p) != Some(&true) {
                    return Outcome::NotFound(Entity::Provider);
                }
                if !self.users.contains(&u) {
                    return Outcome::NotFound(Entity::User);
                }
                if self.links.contains_key(LINKS[id]) {
                    return Outcome::Conflict(Field::Id);
                }
                if let Some(field) = self.sign_in_conflict(&l) {
                    return Outcome::Conflict(field);
                }
                self.links.insert(l.id.clone(), l);
                Outcome::Ok
            }
            Op::UpdateLink { id, sign_in, a } => {
                let Some(old) = self.links.get(LINKS[id]) else {
                    return Outcome::NotFound(Entity::Link);
                };
                let mut new = old.clone();
                change(&mut new, sign_in, a);
                if (new.allow_sign_in, &new.account_id) != (old.allow_sign_in, &old.account_id) {
                    if let Some(field) = self.sign_in_conflict(&new) {
                        return Outcome::Conflict(field);
                    }
                }
                self.links.insert(new.id.clone(), new.clone());
                Outcome::Link(new)
            }
            Op::FailedUpdate { id } => match self.links.contains_key(LINKS[id]) {
                true => Outcome::Invalid,
                false => Outcome::NotFound(Entity::Link),
            },
            Op::DeleteLink { id } => match self.links.remove(LINKS[id]) {
                Some(l) => Outcome::Link(l),
                None => Outcome::NotFound(Entity::Link),
            },
        }
    }
}

fn new_link(id: usize, u: usize, p: usize, a: usize, sign_in: bool, at: Millis) -> Link {
    let mut l = make_link(LINKS[id], USERS[u], &key(p), ACCOUNTS[a], sign_in);
    l.created_at = at;
    l.email = Some(format!("{}@x.io", USERS[u]));
    l
}

fn change(l: &mut Link, sign_in: Option<bool>, a: Option<usize>) {
    if let Some(s) = sign_in {
        l.allow_sign_in = s;
    }
    if let Some(a) = a {
        l.account_id = ACCOUNTS[a].into();
    }
    l.allow_connected_accounts = !l.allow_connected_accounts;
}

async fn run(s: &Store, op: &Op) -> Outcome {
    match *op {
        Op::CreateUser { u } => outcome(
            s.create_user(&make_user(USERS[u], USERS[u], false)).await,
            |()| Outcome::Ok,
        ),
        Op::DeleteUser { u } => outcome(s.delete_user(USERS[u]).await, |_| Outcome::Ok),
        Op::AddProvider { p } => {
            let fresh = Provider::new(format!("id-{}", key(p)), PROVIDERS[p].into(), 0);
            outcome(s.add_provider(&fresh).await, |_| Outcome::Ok)
        }
        Op::SetEnabled { p, on } => outcome(
            s.update_provider(&key(p), |pr| {
                pr.set(Setting::Enabled, SettingValue::Bool(on))
            })
            .await,
            |_| Outcome::Ok,
        ),
        Op::RemoveProvider { p } => outcome(s.remove_provider(&key(p)).await, |_| Outcome::Ok),
        Op::CreateLink {
            id,
            u,
            p,
            a,
            sign_in,
            at,
        } => outcome(
            s.create_link(&new_link(id, u, p, a, sign_in, at)).await,
            |()| Outcome::Ok,
        ),
        Op::UpdateLink { id, sign_in, a } => outcome(
            s.update_link(LINKS[id], |l| {
                change(l, sign_in, a);
                Ok(())
            })
            .await,
            Outcome::Link,
        ),
        Op::FailedUpdate { id } => outcome(
            s.update_link(LINKS[id], |l| {
                l.allow_sign_in = !l.allow_sign_in;
                l.account_id = "half-done".into();
                Err(Error::invalid(Field::AccountId, "rejected by the test"))
            })
            .await,
            Outcome::Link,
        ),
        Op::DeleteLink { id } => outcome(s.delete_link(LINKS[id]).await, Outcome::Link),
    }
}

/// Every link lookup over the whole key space, against the model.
async fn check(s: &Store, m: &Model) -> Result<(), TestCaseError> {
    for id in LINKS {
        prop_assert_eq!(
            s.get_link(id).await.unwrap(),
            m.links.get(id).cloned(),
            "get_link({})",
            id
        );
    }
    let ordered = |mut v: Vec<&Link>| {
        v.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        v.into_iter().cloned().collect::<Vec<_>>()
    };
    prop_assert_eq!(
        s.list_links().await.unwrap(),
        ordered(m.links.values().collect())
    );
    for p in 0..PROVIDERS.len() {
        for a in ACCOUNTS {
            let want = m
                .links
                .values()
                .find(|l| l.allow_sign_in && l.provider == key(p) && l.account_id == a)
                .cloned();
            prop_assert_eq!(
                s.sign_in_link(&key(p), a).await.unwrap(),
                want,
                "sign_in_link({}, {})",
                key(p),
                a
            );
        }
        for u in USERS {
            let want = m
                .links
                .values()
                .find(|l| l.allow_sign_in && l.provider == key(p) && l.user_id == u)
                .cloned();
            prop_assert_eq!(s.sign_in_link_of_user(u, &key(p)).await.unwrap(), want);
        }
    }
    for u in USERS {
        let want = ordered(m.links.values().filter(|l| l.user_id == u).collect());
        prop_assert_eq!(
            s.newest_link_time(u).await.unwrap(),
            want.last().map(|l| l.created_at)
        );
        prop_assert_eq!(
            s.links_of_user(u).await.unwrap(),
            want,
            "links_of_user({})",
            u
        );
    }
    Ok(())
}

async fn run_model(
    (dir, s): (tempfile::TempDir, Store),
    ops: &[Step<Op>],
) -> Result<(), TestCaseError> {
    // An admin outside the key space, so deleting any of the model's users is never "the last admin".
    s.create_user(&make_user("root", "root", true))
        .await
        .unwrap();
    agrees_with_model((dir, s), ops, Model::default(), Model::apply, run, check).await
}

proptest! {
    // No regression file: failures found here become named regression tests next to their fix.
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn link_store_agrees_with_model(ops in steps(op(), 60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run_model(temp_store(), &ops))?;
    }
}

proptest! {
    // The same model on PostgreSQL (a fresh schema per case), when LATCHKEY_TEST_PG_URL names a server. A case
    // costs a schema and its migrations: 16 keep this and the store model's 16 under a minute in CI.
    #![proptest_config(ProptestConfig {
        cases: 16,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn pg_link_store_agrees_with_model(ops in steps(op(), 60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            match pg_store().await {
                Some(store) => run_model(store, &ops).await,
                None => Ok(()),
            }
        })?;
    }
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

/// How many tasks race in the tests below.
const RACERS: usize = 30;

/// Users `r00`, `r01`, … racing, each creating `link(i)` once a barrier releases them all; the results in task
/// order.
async fn race(s: &Store, link: impl Fn(usize) -> Link) -> Vec<Result<()>> {
    for i in 0..RACERS {
        s.create_user(&make_user(&format!("r{i:02}"), &format!("racer{i}"), false))
            .await
            .unwrap();
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let (s, barrier, l) = (s.clone(), barrier.clone(), link(i));
            tokio::spawn(async move {
                barrier.wait().await;
                s.create_link(&l).await
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    results
}

/// The one task of `results` that succeeded; every other must have failed with the conflict on `field`.
fn one_winner(results: Vec<Result<()>>, field: Field) -> usize {
    let mut winners = Vec::new();
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(()) => winners.push(i),
            Err(Error::Conflict { field: f, .. }) if f == field => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    winners[0]
}

/// sled's index check; PostgreSQL enforces its indexes itself.
fn verify(s: &Store) {
    if !s.is_postgres() {
        s.verify().unwrap();
    }
}

/// Users race to claim one upstream account for sign-in: exactly one wins, the rest get the account conflict,
/// and the losers may still link it connected-only.
async fn racing_sign_in_claims_admit_exactly_one(s: Store) {
    let claim = |i: usize| {
        make_link(
            &format!("race{i:02}"),
            &format!("r{i:02}"),
            "myidp",
            "shared",
            true,
        )
    };
    let winner = one_winner(race(&s, claim).await, Field::AccountId);
    let owner = s.sign_in_link("myidp", "shared").await.unwrap().unwrap();
    assert_eq!(owner.user_id, format!("r{winner:02}"));
    let loser = (winner + 1) % RACERS;
    s.create_link(&make_link(
        "conn",
        &format!("r{loser:02}"),
        "myidp",
        "shared",
        false,
    ))
    .await
    .unwrap();
    assert_eq!(s.list_links().await.unwrap().len(), 2);
    verify(&s);
}

/// One user's sign-in links to one provider (each for another upstream account) race: exactly one wins, the rest
/// get the provider conflict.
async fn racing_sign_in_links_of_one_user_admit_exactly_one(s: Store) {
    let claim = |i: usize| {
        make_link(
            &format!("race{i:02}"),
            "u2",
            "myidp",
            &format!("acc{i:02}"),
            true,
        )
    };
    let winner = one_winner(race(&s, claim).await, Field::Provider);
    let link = s
        .sign_in_link_of_user("u2", "myidp")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.id, format!("race{winner:02}"));
    assert_eq!(s.links_of_user("u2").await.unwrap(), vec![link]);
    verify(&s);
}

#[test]
fn sled_racing_sign_in_claims_admit_exactly_one() {
    multi_thread().block_on(async {
        let (_dir, s) = seeded().await;
        racing_sign_in_claims_admit_exactly_one(s).await;
    });
}

#[test]
fn sled_racing_sign_in_links_of_one_user_admit_exactly_one() {
    multi_thread().block_on(async {
        let (_dir, s) = seeded().await;
        racing_sign_in_links_of_one_user_admit_exactly_one(s).await;
    });
}

/// A PostgreSQL store seeded as sled's link tests are; `None` without `LATCHKEY_TEST_PG_URL`.
async fn pg_seeded() -> Option<(tempfile::TempDir, Store)> {
    let (dir, s) = pg_store().await?;
    seed(&s).await;
    Some((dir, s))
}

#[test]
fn pg_racing_sign_in_claims_admit_exactly_one() {
    multi_thread().block_on(async {
        if let Some((_dir, s)) = pg_seeded().await {
            racing_sign_in_claims_admit_exactly_one(s).await;
        }
    });
}

#[test]
fn pg_racing_sign_in_links_of_one_user_admit_exactly_one() {
    multi_thread().block_on(async {
        if let Some((_dir, s)) = pg_seeded().await {
            racing_sign_in_links_of_one_user_admit_exactly_one(s).await;
        }
    });
}
