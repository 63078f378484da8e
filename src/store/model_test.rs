//! Model-based tests of the store. Random operation sequences over a tiny key space (so ids, client ids, usernames
//! and emails collide often) run against a real store and a `BTreeMap` model; after every operation the outcome
//! class and every observable lookup must agree, and `Store::verify` must pass. Plus races that only a
//! multi-threaded runtime can produce.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::clock::Millis;
use crate::crypto;
use crate::error::{Error, Field, Result};
use crate::model::user::Email;
use crate::model::{App, ClientType, Role, User, UserRef};
use crate::store::testing::{admin_count, agrees_with_model, steps, temp_store, Step};
use crate::store::{LoginToken, Store};

const APP_IDS: [&str; 5] = ["a0", "a1", "a2", "a3", "a4"];
const CLIENT_IDS: [&str; 5] = ["c0", "c1", "c2", "c3", "c4"];
const USER_IDS: [&str; 4] = ["u0", "u1", "u2", "u3"];
/// Case variants of a few names, so case-insensitive username collisions are common.
const USERNAMES: [&str; 8] = [
    "jane", "Jane", "JANE", "bob", "Bob", "carol", "dave", "erin",
];
/// Already normalized (lowercase), as `core::user` stores them; drawn independently of usernames.
const EMAILS: [&str; 5] = ["e0@x.io", "e1@x.io", "e2@x.io", "e3@x.io", "e4@x.io"];
const TOKENS: [&str; 5] = ["t0", "t1", "t2", "t3", "t4"];

#[derive(Clone, Debug)]
enum Op {
    CreateApp {
        id: usize,
        client: usize,
        created_at: Millis,
    },
    RenameApp {
        id: usize,
        name: u8,
    },
    /// The closure edits the app, then fails: nothing may change.
    FailedAppUpdate {
        id: usize,
    },
    ChangeClientId {
        id: usize,
        client: usize,
    },
    DeleteApp {
        id: usize,
    },
    CreateUser {
        id: usize,
        name: usize,
        email: usize,
        admin: bool,
    },
    RenameUser {
        id: usize,
        name: usize,
    },
    SetAdmin {
        id: usize,
        admin: bool,
    },
    SetEmail {
        id: usize,
        email: usize,
    },
    /// The closure renames and demotes the user, then fails: nothing may change.
    FailedUserUpdate {
        id: usize,
    },
    ChangeUserId {
        id: usize,
        to: usize,
    },
    DeleteUser {
        id: usize,
    },
    CreateToken {
        user: usize,
        token: usize,
        expires_at: Millis,
    },
    DeleteToken {
        token: usize,
    },
    Sweep {
        now: Millis,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let app = || 0..APP_IDS.len();
    let client = || 0..CLIENT_IDS.len();
    let user = || 0..USER_IDS.len();
    let name = || 0..USERNAMES.len();
    let email = || 0..EMAILS.len();
    let token = || 0..TOKENS.len();
    prop_oneof![
        4 => (app(), client(), 0..4i64)
            .prop_map(|(id, client, created_at)| Op::CreateApp { id, client, created_at }),
        2 => (app(), any::<u8>()).prop_map(|(id, name)| Op::RenameApp { id, name }),
        1 => app().prop_map(|id| Op::FailedAppUpdate { id }),
        1 => (app(), client()).prop_map(|(id, client)| Op::ChangeClientId { id, client }),
        2 => app().prop_map(|id| Op::DeleteApp { id }),
        5 => (user(), name(), email(), any::<bool>())
            .prop_map(|(id, name, email, admin)| Op::CreateUser { id, name, email, admin }),
        2 => (user(), name()).prop_map(|(id, name)| Op::RenameUser { id, name }),
        3 => (user(), any::<bool>()).prop_map(|(id, admin)| Op::SetAdmin { id, admin }),
        2 => (user(), email()).prop_map(|(id, email)| Op::SetEmail { id, email }),
        1 => user().prop_map(|id| Op::FailedUserUpdate { id }),
        1 => (user(), user()).prop_map(|(id, to)| Op::ChangeUserId { id, to }),
        3 => user().prop_map(|id| Op::DeleteUser { id }),
        4 => (user(), token(), 0..10i64)
            .prop_map(|(user, token, expires_at)| Op::CreateToken { user, token, expires_at }),
        2 => token().prop_map(|token| Op::DeleteToken { token }),
        1 => (0..10i64).prop_map(|now| Op::Sweep { now }),
    ]
}

/// What an operation answered, coarsely: the error variant, not its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Ok,
    Conflict,
    NotFound,
    NotAllowed,
    Invalid,
    Internal,
    Other,
}

fn class_of(e: &Error) -> Class {
    match e {
        Error::Conflict { .. } => Class::Conflict,
        Error::NotFound(_) => Class::NotFound,
        Error::NotAllowed(_) => Class::NotAllowed,
        Error::Invalid { .. } => Class::Invalid,
        Error::Internal(_) => Class::Internal,
        _ => Class::Other,
    }
}

/// What an operation returned on success, when it returns a record or a count.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ret {
    None,
    App(App),
    User(User),
    Count(usize),
}

type Outcome = (Class, Ret);

fn outcome<T>(r: Result<T>, ret: impl FnOnce(T) -> Ret) -> Outcome {
    match r {
        Ok(v) => (Class::Ok, ret(v)),
        Err(e) => (class_of(&e), Ret::None),
    }
}

fn err(c: Class) -> Outcome {
    (c, Ret::None)
}

fn make_app(id: usize, client: usize, created_at: Millis) -> App {
    App {
        id: APP_IDS[id].into(),
        name: format!("app {id}"),
        active: true,
        client_id: CLIENT_IDS[client].into(),
        redirect_uris: vec!["https://a.example/cb".into()],
        client_type: ClientType::Confidential,
        grant_types: App::default_grants(),
        scopes: App::default_scopes(),
        skip_consent: false,
        token_epoch: 0,
        secret_hash: None,
        created_at,
        updated_at: created_at,
        created_by: UserRef::default(),
        oidc: Default::default(),
    }
}

fn make_user(id: usize, name: usize, email: usize, admin: bool) -> User {
    User {
        id: USER_IDS[id].into(),
        username: USERNAMES[name].into(),
        name: USERNAMES[name].into(),
        emails: vec![email_of(email)],
        roles: vec![role(admin)],
        active: true,
        password_hash: None,
        created_at: 0,
        updated_at: 0,
        two_factor: None,
        profile: Default::default(),
    }
}

fn email_of(email: usize) -> Email {
    Email {
        address: EMAILS[email].into(),
        verified: false,
    }
}

fn role(admin: bool) -> Role {
    if admin {
        Role::Admin
    } else {
        Role::User
    }
}

fn digest(token: usize) -> [u8; 32] {
    crypto::sha256(TOKENS[token].as_bytes())
}

fn rejected() -> Error {
    Error::invalid(Field::Name, "rejected by the test")
}

/// What the store should hold: each record once, every index derived by search.
#[derive(Default, Debug)]
struct Model {
    apps: BTreeMap<String, App>,
    users: BTreeMap<String, User>,
    tokens: BTreeMap<[u8; 32], LoginToken>,
}

impl Model {
    fn app_by_client(&self, client: &str) -> Option<&App> {
        self.apps.values().find(|a| a.client_id == client)
    }

    fn user_by_name(&self, name: &str) -> Option<&User> {
        let name = name.to_lowercase();
        self.users
            .values()
            .find(|u| u.username.to_lowercase() == name)
    }

    fn user_by_email(&self, email: &str) -> Option<&User> {
        let email = email.to_lowercase();
        self.users
            .values()
            .find(|u| u.emails.iter().any(|e| e.address == email))
    }

    fn admins(&self) -> u64 {
        self.users.values().filter(|u| u.is_admin()).count() as u64
    }

    /// Applies `op` to the model and returns what the store should answer.
    fn apply(&mut self, op: &Op) -> Outcome {
        match *op {
            Op::CreateApp {
                id,
                client,
                created_at,
            } => {
                let app = make_app(id, client, created_at);
                if self.app_by_client(&app.client_id).is_some() || self.apps.contains_key(&app.id) {
                    return err(Class::Conflict);
                }
                self.apps.insert(app.id.clone(), app);
                (Class::Ok, Ret::None)
            }
            Op::RenameApp { id, name } => match self.apps.get_mut(APP_IDS[id]) {
                Some(app) => {
                    app.name = format!("renamed {name}");
                    (Class::Ok, Ret::App(app.clone()))
                }
                None => err(Class::NotFound),
            },
            Op::FailedAppUpdate { id } => match self.apps.contains_key(APP_IDS[id]) {
                true => err(Class::Invalid),
                false => err(Class::NotFound),
            },
            Op::ChangeClientId { id, client } => match self.apps.get(APP_IDS[id]) {
                Some(app) if app.client_id == CLIENT_IDS[client] => {
                    (Class::Ok, Ret::App(app.clone()))
                }
                Some(_) => err(Class::Internal),
                None => err(Class::NotFound),
            },
            Op::DeleteApp { id } => match self.apps.remove(APP_IDS[id]) {
                Some(app) => (Class::Ok, Ret::App(app)),
                None => err(Class::NotFound),
            },
            Op::CreateUser {
                id,
                name,
                email,
                admin,
            } => {
                let user = make_user(id, name, email, admin);
                if self.user_by_name(&user.username).is_some()
                    || self.user_by_email(EMAILS[email]).is_some()
                    || self.users.contains_key(&user.id)
                {
                    return err(Class::Conflict);
                }
                self.users.insert(user.id.clone(), user);
                (Class::Ok, Ret::None)
            }
            Op::RenameUser { id, name } => {
                let id = USER_IDS[id];
                if !self.users.contains_key(id) {
                    return err(Class::NotFound);
                }
                if self
                    .user_by_name(USERNAMES[name])
                    .is_some_and(|u| u.id != id)
                {
                    return err(Class::Conflict);
                }
                let user = self.users.get_mut(id).unwrap();
                user.username = USERNAMES[name].into();
                (Class::Ok, Ret::User(user.clone()))
            }
            Op::SetAdmin { id, admin } => {
                let admins = self.admins();
                let Some(user) = self.users.get_mut(USER_IDS[id]) else {
                    return err(Class::NotFound);
                };
                if user.is_admin() && !admin && admins <= 1 {
                    return err(Class::NotAllowed);
                }
                user.roles = vec![role(admin)];
                (Class::Ok, Ret::User(user.clone()))
            }
            Op::SetEmail { id, email } => {
                let id = USER_IDS[id];
                if !self.users.contains_key(id) {
                    return err(Class::NotFound);
                }
                if self
                    .user_by_email(EMAILS[email])
                    .is_some_and(|u| u.id != id)
                {
                    return err(Class::Conflict);
                }
                let user = self.users.get_mut(id).unwrap();
                user.emails = vec![email_of(email)];
                (Class::Ok, Ret::User(user.clone()))
            }
            Op::FailedUserUpdate { id } => match self.users.contains_key(USER_IDS[id]) {
                true => err(Class::Invalid),
                false => err(Class::NotFound),
            },
            Op::ChangeUserId { id, to } => match self.users.get(USER_IDS[id]) {
                Some(user) if id == to => (Class::Ok, Ret::User(user.clone())),
                Some(_) => err(Class::Internal),
                None => err(Class::NotFound),
            },
            Op::DeleteUser { id } => {
                let admins = self.admins();
                let id = USER_IDS[id];
                match self.users.get(id) {
                    None => err(Class::NotFound),
                    Some(u) if u.is_admin() && admins <= 1 => err(Class::NotAllowed),
                    Some(_) => {
                        let user = self.users.remove(id).unwrap();
                        self.tokens.retain(|_, t| t.user_id != id);
                        (Class::Ok, Ret::User(user))
                    }
                }
            }
            Op::CreateToken {
                user,
                token,
                expires_at,
            } => {
                if !self.users.contains_key(USER_IDS[user]) {
                    return err(Class::NotFound);
                }
                if self.tokens.contains_key(&digest(token)) {
                    return err(Class::Conflict);
                }
                let record = LoginToken {
                    user_id: USER_IDS[user].into(),
                    created_at: 0,
                    expires_at,
                    amr: Vec::new(),
                };
                self.tokens.insert(digest(token), record);
                (Class::Ok, Ret::None)
            }
            Op::DeleteToken { token } => {
                self.tokens.remove(&digest(token));
                (Class::Ok, Ret::None)
            }
            Op::Sweep { now } => {
                let before = self.tokens.len();
                self.tokens.retain(|_, t| t.expires_at > now);
                (Class::Ok, Ret::Count(before - self.tokens.len()))
            }
        }
    }
}

/// Runs `op` against the store.
async fn run(s: &Store, op: &Op) -> Outcome {
    match *op {
        Op::CreateApp {
            id,
            client,
            created_at,
        } => outcome(
            s.create_app(&make_app(id, client, created_at)).await,
            |()| Ret::None,
        ),
        Op::RenameApp { id, name } => outcome(
            s.update_app(APP_IDS[id], |a| {
                a.name = format!("renamed {name}");
                Ok(())
            })
            .await,
            Ret::App,
        ),
        Op::FailedAppUpdate { id } => outcome(
            s.update_app(APP_IDS[id], |a| {
                a.name = "half done".into();
                a.active = !a.active;
                Err(rejected())
            })
            .await,
            Ret::App,
        ),
        Op::ChangeClientId { id, client } => outcome(
            s.update_app(APP_IDS[id], |a| {
                a.client_id = CLIENT_IDS[client].into();
                Ok(())
            })
            .await,
            Ret::App,
        ),
        Op::DeleteApp { id } => outcome(s.delete_app(APP_IDS[id]).await, Ret::App),
        Op::CreateUser {
            id,
            name,
            email,
            admin,
        } => outcome(
            s.create_user(&make_user(id, name, email, admin)).await,
            |()| Ret::None,
        ),
        Op::RenameUser { id, name } => outcome(
            s.update_user(USER_IDS[id], |u| {
                u.username = USERNAMES[name].into();
                Ok(())
            })
            .await,
            Ret::User,
        ),
        Op::SetAdmin { id, admin } => outcome(
            s.update_user(USER_IDS[id], |u| {
                u.roles = vec![role(admin)];
                Ok(())
            })
            .await,
            Ret::User,
        ),
        Op::SetEmail { id, email } => outcome(
            s.update_user(USER_IDS[id], |u| {
                u.emails = vec![email_of(email)];
                Ok(())
            })
            .await,
            Ret::User,
        ),
        Op::FailedUserUpdate { id } => outcome(
            s.update_user(USER_IDS[id], |u| {
                u.username = "half-done".into();
                u.emails.clear();
                u.roles = vec![Role::User];
                Err(rejected())
            })
            .await,
            Ret::User,
        ),
        Op::ChangeUserId { id, to } => outcome(
            s.update_user(USER_IDS[id], |u| {
                u.id = USER_IDS[to].into();
                Ok(())
            })
            .await,
            Ret::User,
        ),
        Op::DeleteUser { id } => outcome(s.delete_user(USER_IDS[id]).await, Ret::User),
        Op::CreateToken {
            user,
            token,
            expires_at,
        } => {
            let record = LoginToken {
                user_id: USER_IDS[user].into(),
                created_at: 0,
                expires_at,
                amr: Vec::new(),
            };
            outcome(s.create_login_token(digest(token), &record).await, |()| {
                Ret::None
            })
        }
        Op::DeleteToken { token } => {
            outcome(s.delete_login_token(&digest(token)).await, |()| Ret::None)
        }
        Op::Sweep { now } => outcome(s.sweep(now).await, Ret::Count),
    }
}

/// Every lookup the store offers, over the whole key space, against the model.
async fn check(s: &Store, m: &Model) -> Result<(), TestCaseError> {
    for id in APP_IDS {
        prop_assert_eq!(
            s.get_app(id).await.unwrap(),
            m.apps.get(id).cloned(),
            "get_app({})",
            id
        );
    }
    for client in CLIENT_IDS {
        prop_assert_eq!(
            s.app_by_client_id(client).await.unwrap(),
            m.app_by_client(client).cloned(),
            "app_by_client_id({})",
            client
        );
        let cached = s.client_app(client).await.unwrap();
        prop_assert_eq!(
            cached.as_deref(),
            m.app_by_client(client),
            "client_app({}), the cached lookup",
            client
        );
    }
    let listed: Vec<String> = s
        .list_apps()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    let mut expected: Vec<&App> = m.apps.values().collect();
    expected.sort_by_key(|a| (a.created_at, a.id.clone()));
    let expected: Vec<String> = expected.into_iter().map(|a| a.id.clone()).collect();
    prop_assert_eq!(listed, expected, "list_apps order");

    for id in USER_IDS {
        prop_assert_eq!(
            s.get_user(id).await.unwrap(),
            m.users.get(id).cloned(),
            "get_user({})",
            id
        );
    }
    for name in USERNAMES {
        for query in [name.to_owned(), name.to_uppercase(), name.to_lowercase()] {
            prop_assert_eq!(
                s.user_by_username(&query).await.unwrap(),
                m.user_by_name(&query).cloned(),
                "user_by_username({})",
                query
            );
        }
    }
    for email in EMAILS {
        for query in [email.to_owned(), email.to_uppercase()] {
            prop_assert_eq!(
                s.user_by_email(&query).await.unwrap(),
                m.user_by_email(&query).cloned(),
                "user_by_email({})",
                query
            );
        }
    }
    prop_assert_eq!(s.has_users().await.unwrap(), !m.users.is_empty());
    prop_assert_eq!(admin_count(s).await, m.admins(), "admin counter");

    for (i, token) in TOKENS.iter().enumerate() {
        prop_assert_eq!(
            s.login_token(&digest(i)).await.unwrap(),
            m.tokens.get(&digest(i)).cloned(),
            "login_token({})",
            token
        );
    }
    Ok(())
}

async fn run_model(
    store: (tempfile::TempDir, Store),
    ops: &[Step<Op>],
) -> Result<(), TestCaseError> {
    agrees_with_model(store, ops, Model::default(), Model::apply, run, check).await
}

proptest! {
    // No regression file: failures found here become named regression tests next to their fix.
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn store_agrees_with_model(ops in steps(op(), 60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run_model(temp_store(), &ops))?;
    }
}

proptest! {
    // The same model on PostgreSQL (a fresh schema per case), when LATCHKEY_TEST_PG_URL names a server. A case
    // costs a schema and its migrations: 16 keep this and the link model's 16 under a minute in CI.
    #![proptest_config(ProptestConfig {
        cases: 16,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn pg_store_agrees_with_model(ops in steps(op(), 60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            // PostgreSQL's sweep counts the emptied families it removes too, so its count is not sled's: the step is
            // left out here (pg_test covers the sweep).
            let ops: Vec<_> = ops
                .into_iter()
                .filter(|s| !matches!(s, crate::store::testing::Step::Op(Op::Sweep { .. })))
                .collect();
            match crate::store::pg_test::pg_store().await {
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

/// Spawns `n` tasks that wait on one barrier, then create `app(i)` each; returns every result.
async fn race(s: &Store, n: usize, app: impl Fn(usize) -> App) -> Vec<Result<()>> {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (s, barrier, app) = (s.clone(), barrier.clone(), app(i));
            tokio::spawn(async move {
                barrier.wait().await;
                s.create_app(&app).await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn racing_app(i: usize, client: &str) -> App {
    App {
        id: format!("app{i:02}"),
        client_id: client.into(),
        ..make_app(0, 0, i as Millis)
    }
}

#[test]
fn racing_creates_of_one_client_id_admit_exactly_one() {
    multi_thread().block_on(async {
        let (_dir, s) = temp_store();
        let results = race(&s, 16, |i| racing_app(i, "shared")).await;
        let winners: Vec<usize> = (0..16).filter(|&i| results[i].is_ok()).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        for r in &results {
            assert!(
                matches!(
                    r,
                    Ok(())
                        | Err(Error::Conflict {
                            field: Field::ClientId,
                            ..
                        })
                ),
                "{r:?}"
            );
        }
        let stored = s.app_by_client_id("shared").await.unwrap().unwrap();
        assert_eq!(stored.id, format!("app{:02}", winners[0]));
        assert_eq!(s.list_apps().await.unwrap().len(), 1);
        s.verify().unwrap();
    });
}

/// Copies a directory tree; used to snapshot a live store as a crash would leave it (no final flush on drop).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn concurrent_distinct_creates_all_succeed_and_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = tempfile::tempdir().unwrap();
    let client = |i: usize| format!("client{i:02}");
    multi_thread().block_on(async {
        let s = Store::open(dir.path(), 8 << 20).unwrap();
        let results = race(&s, 16, |i| racing_app(i, &client(i))).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        // Every create has returned, so each was flushed: a copy taken now is what a kill -9 would leave.
        copy_dir(dir.path(), snapshot.path());
        drop(s);
    });
    for path in [dir.path(), snapshot.path()] {
        let s = Store::open(path, 8 << 20).unwrap();
        multi_thread().block_on(async {
            for i in 0..16 {
                let app = s.app_by_client_id(&client(i)).await.unwrap();
                assert_eq!(
                    app.map(|a| a.id),
                    Some(format!("app{i:02}")),
                    "{}",
                    path.display()
                );
            }
            assert_eq!(s.list_apps().await.unwrap().len(), 16);
        });
        s.verify().unwrap();
    }
}
