//! The token state machine, model-based: proptest generates sequences of operations (authorize, redeem a code —
//! again, by the other client, late —, refresh — with a rotated token, by the other client —, revoke, issue
//! client_credentials tokens, bump an app's token epoch, delete a user, move the clock, sweep, restart), runs them
//! against a real server over HTTP, and runs them on a small model of the rules. Every answer must be the model's,
//! and after every step every token ever issued must introspect exactly as the model says (active or not, and its
//! fields). The rules the model states:
//!
//! - a code is redeemed once, by its own client, before it expires; presenting it again revokes the family it
//!   produced (until the sweeper removes the expired code); another client's attempt changes nothing;
//! - a refresh token rotates once: the exchange retires it and the access token issued with it; presenting it
//!   again revokes its family (until it expires and is swept); another client's attempt changes nothing;
//! - revoking (RFC 7009) a refresh token revokes its family, an access token goes alone; another client's
//!   revocation changes nothing;
//! - deactivating an app (an epoch bump) revokes its families and its client_credentials tokens; deleting a user
//!   revokes the families issued to it, and its unredeemed codes no longer redeem;
//! - the sweeper removes only what is dead, so it changes no introspection;
//! - a restart loses nothing: every answer was durable (the server sweeps once as it starts).
//!
//! Bounded: 48 cases of at most 24 steps, a fresh server (on a manual clock) per case.

use latchkey::clock::Millis;
use proptest::prelude::*;
use reqwest::Client;
use serde_json::{json, Value};

use crate::common::steps::{create_user, make_app, TestApp, REDIRECT};
use crate::common::{browser, query_of, Auth, Server, TestServer};
use crate::oauth_flow::{
    authorize_url, introspect, redeem, submit_sign_in, token as token_endpoint,
};

/// Where the manual clock starts (a whole second, so `exp` and `iat` are exact).
const T0: Millis = 1_800_000_000_000;
const CODE_TTL: u64 = 30;
const ACCESS_TTL: u64 = 60;
const REFRESH_TTL: u64 = 300;
const USERS: [&str; 2] = ["alice", "bob"];

fn ms(secs: u64) -> Millis {
    Millis::try_from(secs * 1000).unwrap()
}

#[derive(Clone, Debug)]
enum Op {
    /// A new code for user `user` and app `app` (both signed in through the pages; the apps skip consent).
    Authorize {
        user: usize,
        app: usize,
    },
    /// Redeems code `code` (one of the last few issued) by its own app or the other one.
    Redeem {
        code: usize,
        other: bool,
    },
    /// Refreshes with refresh token `token` (one of the last few issued: the current one or one it replaced).
    Refresh {
        token: usize,
        other: bool,
    },
    /// Revokes token `token` (an index into every token issued so far).
    Revoke {
        token: usize,
        other: bool,
    },
    /// Introspects token `token` as the app it was not issued to.
    IntrospectByOther {
        token: usize,
    },
    ClientCredentials {
        app: usize,
    },
    /// Deactivates and reactivates app `app`.
    BumpEpoch {
        app: usize,
    },
    /// Deletes user `user` and creates it again (a new id).
    DeleteUser {
        user: usize,
    },
    Advance {
        secs: u64,
    },
    Sweep,
    /// Stops the server and starts it again on the same data dir.
    Restart,
}

/// One of the last three of `len` items, chosen by `pick`: what a client presents is mostly recent.
fn recent(len: usize, pick: usize) -> usize {
    len - 1 - pick % len.min(3)
}

fn op() -> impl Strategy<Value = Op> {
    let other = || prop::bool::weighted(0.2);
    prop_oneof![
        4 => (0..2usize, 0..2usize).prop_map(|(user, app)| Op::Authorize { user, app }),
        5 => (any::<usize>(), other()).prop_map(|(code, other)| Op::Redeem { code, other }),
        5 => (any::<usize>(), other()).prop_map(|(token, other)| Op::Refresh { token, other }),
        2 => (any::<usize>(), other()).prop_map(|(token, other)| Op::Revoke { token, other }),
        1 => any::<usize>().prop_map(|token| Op::IntrospectByOther { token }),
        2 => (0..2usize).prop_map(|app| Op::ClientCredentials { app }),
        1 => (0..2usize).prop_map(|app| Op::BumpEpoch { app }),
        1 => (0..2usize).prop_map(|user| Op::DeleteUser { user }),
        1 => prop_oneof![Just(5u64), Just(35), Just(70), Just(350)]
            .prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::Sweep),
        1 => Just(Op::Restart),
    ]
}

// ---------------------------------------------------------------------------------------------------------------
// The model.

struct Code {
    value: String,
    app: usize,
    user_id: String,
    expires_at: Millis,
    /// Redeemed, with the family it produced (none when the redemption found its user gone).
    redeemed: Option<Option<usize>>,
    /// Still in the store (the sweeper removes expired codes).
    stored: bool,
}

struct Family {
    app: usize,
    owner: String,
    scope: String,
    revoked: bool,
    stored: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Access,
    Refresh,
    /// A client_credentials access token: no family, bound to its app's token epoch.
    Client,
}

struct Token {
    value: String,
    kind: Kind,
    app: usize,
    family: Option<usize>,
    epoch: u64,
    /// The user's id (and name) for code-flow tokens, the client id for client_credentials.
    sub: String,
    username: Option<String>,
    scope: String,
    issued_at: Millis,
    expires_at: Millis,
    rotated: bool,
    /// For a refresh token: the access token issued with it, which its rotation retires.
    sibling: Option<usize>,
    stored: bool,
}

struct Model {
    now: Millis,
    epochs: [u64; 2],
    user_ids: [String; 2],
    codes: Vec<Code>,
    families: Vec<Family>,
    tokens: Vec<Token>,
}

impl Model {
    fn active(&self, t: &Token) -> bool {
        let alive = match t.family {
            Some(f) => self.families[f].stored && !self.families[f].revoked,
            None => t.epoch == self.epochs[t.app],
        };
        t.stored && self.now < t.expires_at && !t.rotated && alive
    }

    fn revoke_family(&mut self, f: Option<usize>) {
        if let Some(f) = f {
            self.families[f].revoked = true;
        }
    }

    /// Whether code `i` presented by app `by` redeems, and what presenting it does: a replay revokes the family
    /// the code produced, a first redemption marks it (and makes a family unless its user is gone).
    fn redeem(&mut self, i: usize, by: usize) -> Option<usize> {
        let c = &self.codes[i];
        if !c.stored || c.app != by {
            return None;
        }
        if let Some(family) = c.redeemed {
            self.revoke_family(family);
            return None;
        }
        if self.now >= c.expires_at {
            return None;
        }
        let owner = c.user_id.clone();
        let app = c.app;
        if !self.user_ids.contains(&owner) {
            self.codes[i].redeemed = Some(None);
            return None;
        }
        self.families.push(Family {
            app,
            owner,
            scope: String::new(),
            revoked: false,
            stored: true,
        });
        let f = self.families.len() - 1;
        self.codes[i].redeemed = Some(Some(f));
        Some(f)
    }

    /// Whether refresh token `i` presented by app `by` rotates, and what presenting it does: a rotated one
    /// revokes its family; a rotation retires it and its sibling access token. Returns the family.
    fn rotate(&mut self, i: usize, by: usize) -> Option<usize> {
        let t = &self.tokens[i];
        if !t.stored || t.app != by {
            return None;
        }
        let family = t.family;
        if t.rotated {
            self.revoke_family(family);
            return None;
        }
        let f = family.expect("a refresh token has a family");
        if !self.families[f].stored || self.families[f].revoked || self.now >= t.expires_at {
            return None;
        }
        self.tokens[i].rotated = true;
        if let Some(s) = self.tokens[i].sibling {
            self.tokens[s].stored = false;
        }
        Some(f)
    }

    /// RFC 7009 by app `by`: another app's token is left alone; a refresh token takes its family.
    fn revoke(&mut self, i: usize, by: usize) {
        let t = &self.tokens[i];
        if !t.stored || t.app != by {
            return;
        }
        match t.kind {
            Kind::Refresh => self.revoke_family(t.family),
            Kind::Access | Kind::Client => self.tokens[i].stored = false,
        }
    }

    /// Revokes every family `owns` selects (an app's or a user's).
    fn revoke_families(&mut self, owns: impl Fn(&Family) -> bool) {
        for f in self.families.iter_mut().filter(|f| owns(f)) {
            f.revoked = true;
        }
    }

    /// Records the access and refresh token a redemption or rotation issued in `family`, now.
    fn issue_pair(&mut self, family: usize, access: String, refresh: String) {
        let f = &self.families[family];
        let (app, now, sub, scope) = (f.app, self.now, f.owner.clone(), f.scope.clone());
        let username = self
            .user_ids
            .iter()
            .position(|id| *id == sub)
            .map(|u| USERS[u].to_owned());
        let token = |value, kind, ttl: u64, sibling| Token {
            value,
            kind,
            app,
            family: Some(family),
            epoch: 0,
            sub: sub.clone(),
            username: username.clone(),
            scope: scope.clone(),
            issued_at: now,
            expires_at: now + ms(ttl),
            rotated: false,
            sibling,
            stored: true,
        };
        let sibling = Some(self.tokens.len());
        let pair = [
            token(access, Kind::Access, ACCESS_TTL, None),
            token(refresh, Kind::Refresh, REFRESH_TTL, sibling),
        ];
        self.tokens.extend(pair);
    }

    /// The sweeper: expired codes go; dead client_credentials tokens go; in each family the dead tokens go, and
    /// the family with them once none is left.
    fn sweep(&mut self) {
        let now = self.now;
        for c in &mut self.codes {
            c.stored &= c.expires_at > now;
        }
        for i in 0..self.tokens.len() {
            let t = &self.tokens[i];
            let dead = match t.family {
                None => t.expires_at <= now || t.epoch != self.epochs[t.app],
                Some(f) => self.families[f].revoked || t.expires_at <= now,
            };
            if dead {
                self.tokens[i].stored = false;
            }
        }
        for (f, fam) in self.families.iter_mut().enumerate() {
            fam.stored &= self.tokens.iter().any(|t| t.family == Some(f) && t.stored);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The server, driven step by step beside the model.

/// The server of a case: on `clock`, with the model's lifetimes, sweeping only when the test says so (so every
/// run of a sequence is the same).
fn server(clock: &latchkey::clock::Clock) -> TestServer<'static> {
    TestServer::new().clock(clock.clone()).config(|c| {
        c.tokens.code_ttl_secs = CODE_TTL;
        c.tokens.access_ttl_secs = ACCESS_TTL;
        c.tokens.refresh_ttl_secs = REFRESH_TTL;
        c.limits.sweep_interval_ms = latchkey::config::MAX_TIMEOUT_SECS * 1000;
    })
}

struct Harness {
    s: Server,
    clock: latchkey::clock::Clock,
    admin: Auth,
    apps: [TestApp; 2],
    /// One browser per user, signed in on first use (a deleted user's browser is replaced).
    browsers: [Client; 2],
    model: Model,
}

impl Harness {
    async fn start() -> Harness {
        let clock = latchkey::clock::Clock::manual(T0);
        let s = server(&clock).start().await;
        let admin = s.admin().await;
        let fields = json!({"skipConsent": true,
            "grantTypes": ["authorization_code", "refresh_token", "client_credentials"]});
        let apps = [
            make_app(&s, fields.clone()).await,
            make_app(&s, fields).await,
        ];
        let user_ids = [
            create_user(&s, &admin, USERS[0]).await,
            create_user(&s, &admin, USERS[1]).await,
        ];
        Harness {
            s,
            clock,
            admin,
            apps,
            browsers: [browser(), browser()],
            model: Model {
                now: T0,
                epochs: [0, 0],
                user_ids,
                codes: Vec::new(),
                families: Vec::new(),
                tokens: Vec::new(),
            },
        }
    }

    /// Stops the server and starts it again on its data dir (and the same clock): every answer was durable, so
    /// the model only sweeps, as the server does once at start. That sweep runs in the background at the clock's
    /// time, so the test sweeps too (at the same time, which changes nothing twice) and lets the runtime turn
    /// before the clock can move. The browsers' sessions are named for the old URL, so they sign in again.
    async fn restarted(self) -> Harness {
        let dir = self.s.stop().await;
        let s = server(&self.clock).data_dir(dir).start().await;
        let mut h = Harness {
            s,
            browsers: [browser(), browser()],
            ..self
        };
        h.sweep().await;
        let r = h.s.http.get(format!("{}/healthz", h.s.url)).send().await;
        assert_eq!(r.unwrap().status(), 200);
        h
    }

    /// Sweeps the server's store and the model at the clock's time.
    async fn sweep(&mut self) {
        let store = &self.s.running.as_ref().unwrap().state.store;
        store.sweep(self.clock.now_ms()).await.unwrap();
        self.model.sweep();
    }

    /// Runs `op` on the server and on the model; asserts the server answers as the model says.
    async fn step(&mut self, op: &Op) {
        let m = &mut self.model;
        match *op {
            Op::Authorize { user, app } => {
                let value = self.authorize(user, app).await;
                let m = &mut self.model;
                m.codes.push(Code {
                    value,
                    app,
                    user_id: m.user_ids[user].clone(),
                    expires_at: m.now + ms(CODE_TTL),
                    redeemed: None,
                    stored: true,
                });
            }
            Op::Redeem { code, other } => {
                if m.codes.is_empty() {
                    return;
                }
                let i = recent(m.codes.len(), code);
                let by = m.codes[i].app ^ usize::from(other);
                let (st, v) = redeem(&self.s, &self.apps[by], &m.codes[i].value).await;
                let issued = m.redeem(i, by);
                if let Some(f) = issued {
                    m.families[f].scope = v["scope"].as_str().unwrap_or_default().to_owned();
                }
                self.record_pair(issued, st, v);
            }
            Op::Refresh { token, other } => {
                let refresh: Vec<usize> = (0..m.tokens.len())
                    .filter(|&i| m.tokens[i].kind == Kind::Refresh)
                    .collect();
                if refresh.is_empty() {
                    return;
                }
                let i = refresh[recent(refresh.len(), token)];
                let by = m.tokens[i].app ^ usize::from(other);
                let form = [
                    ("grant_type", "refresh_token"),
                    ("refresh_token", m.tokens[i].value.as_str()),
                ];
                let (st, v, _) = token_endpoint(&self.s, &self.apps[by], &form, true).await;
                let issued = m.rotate(i, by);
                if let Some(f) = issued {
                    assert_eq!(
                        v["scope"], m.families[f].scope,
                        "a rotation keeps the scope"
                    );
                }
                self.record_pair(issued, st, v);
            }
            Op::Revoke { token, other } => {
                if m.tokens.is_empty() {
                    return;
                }
                let i = token % m.tokens.len();
                let by = m.tokens[i].app ^ usize::from(other);
                let r = self
                    .s
                    .http
                    .post(format!("{}/oauth/revoke", self.s.url))
                    .basic_auth(&self.apps[by].client_id, self.apps[by].secret.as_deref())
                    .form(&[("token", &m.tokens[i].value)])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "revocation answers 200 whatever the token");
                m.revoke(i, by);
            }
            Op::IntrospectByOther { token } => {
                if m.tokens.is_empty() {
                    return;
                }
                let t = &m.tokens[token % m.tokens.len()];
                let other = &self.apps[t.app ^ 1];
                assert_eq!(
                    introspect(&self.s, other, &t.value).await,
                    json!({"active": false}),
                    "another app's token"
                );
            }
            Op::ClientCredentials { app } => {
                let form = [("grant_type", "client_credentials")];
                let (st, v, _) = token_endpoint(&self.s, &self.apps[app], &form, true).await;
                assert_eq!(st, 200, "{v}");
                assert_eq!(v["expires_in"], ACCESS_TTL, "{v}");
                assert!(v.get("refresh_token").is_none(), "{v}");
                m.tokens.push(Token {
                    value: v["access_token"].as_str().unwrap().to_owned(),
                    kind: Kind::Client,
                    app,
                    family: None,
                    epoch: m.epochs[app],
                    sub: self.apps[app].client_id.clone(),
                    username: None,
                    scope: v["scope"].as_str().unwrap().to_owned(),
                    issued_at: m.now,
                    expires_at: m.now + ms(ACCESS_TTL),
                    rotated: false,
                    sibling: None,
                    stored: true,
                });
            }
            Op::BumpEpoch { app } => {
                for active in [false, true] {
                    let body = json!({"appId": self.apps[app].id, "name": "Test App", "active": active,
                                      "redirectUri": REDIRECT, "skipConsent": true});
                    let (st, v) = self
                        .s
                        .post("/api/v1/oauth-apps.update", &self.admin, body)
                        .await;
                    assert_eq!(st, 200, "{v}");
                }
                m.epochs[app] += 2;
                m.revoke_families(|f| f.app == app);
            }
            Op::DeleteUser { user } => {
                let old = m.user_ids[user].clone();
                let (st, v) = self
                    .s
                    .post("/api/v1/users.delete", &self.admin, json!({"userId": old}))
                    .await;
                assert_eq!(st, 200, "{v}");
                let new = create_user(&self.s, &self.admin, USERS[user]).await;
                let m = &mut self.model;
                m.revoke_families(|f| f.owner == old);
                m.user_ids[user] = new;
                self.browsers[user] = browser();
            }
            Op::Advance { secs } => {
                self.clock.advance(ms(secs));
                m.now += ms(secs);
            }
            Op::Restart => unreachable!("`run` restarts the server"),
            Op::Sweep => self.sweep().await,
        }
    }

    fn store(&self) -> &latchkey::store::Store {
        &self.s.running.as_ref().unwrap().state.store
    }

    /// A code for `user` at app `app` through the pages, signing the user's browser in when it is not yet.
    async fn authorize(&self, user: usize, app: usize) -> String {
        let (s, b) = (&self.s, &self.browsers[user]);
        let url = authorize_url(s, &self.apps[app], &[]);
        let mut r = b.get(&url).send().await.unwrap();
        if r.status() == 200 {
            let page = r.text().await.unwrap();
            let signed = submit_sign_in(s, b, &page, USERS[user], "pw").await;
            assert_eq!(signed.status(), 303, "{} signs in", USERS[user]);
            r = b.get(&url).send().await.unwrap();
        }
        assert_eq!(r.status(), 303, "the app skips consent");
        let loc = r.headers()["location"].to_str().unwrap();
        assert!(loc.starts_with(REDIRECT), "{loc}");
        query_of(loc)["code"].clone()
    }

    /// Checks a token response against the model's verdict (`issued`: the family it issued into) and records
    /// the tokens it carries.
    fn record_pair(&mut self, issued: Option<usize>, st: u16, v: Value) {
        let Some(f) = issued else {
            assert_eq!(
                (st, v["error"].as_str()),
                (400, Some("invalid_grant")),
                "{v}"
            );
            return;
        };
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["expires_in"], ACCESS_TTL, "{v}");
        let field = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("no {k}: {v}"))
                .to_owned()
        };
        self.model
            .issue_pair(f, field("access_token"), field("refresh_token"));
    }

    /// Introspects every token ever issued as its own app: each must be exactly what the model says.
    async fn check(&self, n: usize, op: &Op) {
        let m = &self.model;
        for (i, t) in m.tokens.iter().enumerate() {
            let app = &self.apps[t.app];
            let want = if m.active(t) {
                let mut v = json!({
                    "active": true,
                    "scope": t.scope,
                    "client_id": app.client_id,
                    "token_type": if t.kind == Kind::Refresh { "refresh_token" } else { "Bearer" },
                    "exp": t.expires_at / 1000,
                    "iat": t.issued_at / 1000,
                    "iss": self.s.url,
                    "aud": app.client_id,
                    "sub": t.sub,
                });
                if let Some(name) = &t.username {
                    v["username"] = json!(name);
                }
                v
            } else {
                json!({"active": false})
            };
            let got = introspect(&self.s, app, &t.value).await;
            assert_eq!(
                got, want,
                "after step {n} ({op:?}): token {i} ({:?})",
                t.kind
            );
        }
    }
}

async fn run(ops: Vec<Op>) {
    let mut h = Harness::start().await;
    for (n, op) in ops.iter().enumerate() {
        if let Op::Restart = op {
            h = h.restarted().await;
        } else {
            h.step(op).await;
        }
        h.check(n, op).await;
    }
    h.store().verify().unwrap();
    h.s.stop().await;
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        max_shrink_iters: 100,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn tokens_live_and_die_as_the_model_says(ops in prop::collection::vec(op(), 4..=24)) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(run(ops));
    }
}
