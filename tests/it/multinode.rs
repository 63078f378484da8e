//! Several nodes on one PostgreSQL (issue 14): three `latchkey` processes on one database, requests spread over
//! them and released together; the invariants hold because the database enforces them, not a process. Gated by
//! `LATCHKEY_TEST_PG_URL` (`common::nodes`); each test has a database of its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tokio::sync::Barrier;

use crate::common::binary::Latchkey;
use crate::common::json_of;
use crate::common::nodes::{
    fresh_database, node_command, start_nodes, start_nodes_with, Node, OwnServer, MASTER_KEY,
};
use crate::oauth_flow::{get_code, make_app, redeem, token, TestApp};

/// An answer: its status and body (the assertions show both).
type Answer = (u16, String);

/// Sends `rb`; its answer.
async fn answer(rb: reqwest::RequestBuilder) -> Answer {
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Runs `request(i)` for `0..n` at once (released together by a barrier) and returns each answer, in order.
async fn all_at_once<F, Fut>(n: usize, request: F) -> Vec<Answer>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Answer> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let barrier = barrier.clone();
            let request = request(i);
            tokio::spawn(async move {
                barrier.wait().await;
                request.await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    answers
}

fn count(answers: &[Answer], status: u16) -> usize {
    answers.iter().filter(|a| a.0 == status).count()
}

/// A statement on the test's database (to count what the nodes wrote).
async fn query(url: &str, sql: &str) -> Vec<tokio_postgres::Row> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(conn);
    let rows = client.query(sql, &[]).await.unwrap();
    drop(client);
    let _ = task.await;
    rows
}

/// A token request to `node` as `app`, by HTTP basic auth.
fn token_request(
    node: &Node,
    app: &TestApp,
    form: Vec<(&'static str, String)>,
) -> impl std::future::Future<Output = Answer> + Send + 'static {
    answer(
        node.http
            .post(format!("{}/oauth/token", node.url))
            .basic_auth(&app.client_id, app.secret.clone())
            .form(&form),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_starting_at_once_make_one_admin_one_stack_project_and_one_key_set() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let nodes = start_nodes(3, &url);
    let said = |what: &str| {
        nodes
            .iter()
            .filter(|n| n.process.stdout_lines.iter().any(|l| l.contains(what)))
            .count()
    };
    assert_eq!(said("created admin user"), 1, "one node created the admin");
    assert_eq!(said("stack: project id"), 1, "one node made the project");
    let users = query(&url, "SELECT count(*) FROM users").await;
    assert_eq!(users[0].get::<_, i64>(0), 1);
    let projects = query(
        &url,
        "SELECT count(*) FROM meta WHERE key = 'stack_project_id'",
    )
    .await;
    assert_eq!(projects[0].get::<_, i64>(0), 1);
    // One key per algorithm, and every node publishes (and signs with) the same ones.
    let keys = query(&url, "SELECT count(*) FROM signing_keys").await;
    let mut jwks = Vec::new();
    for n in &nodes {
        let r = n
            .req(Method::GET, "/.well-known/jwks.json")
            .send()
            .await
            .unwrap();
        jwks.push(json_of(r).await.1);
    }
    assert_eq!(
        jwks[0]["keys"].as_array().unwrap().len() as i64,
        keys[0].get::<_, i64>(0)
    );
    assert!(jwks.iter().all(|j| *j == jwks[0]), "{jwks:?}");
    // And every node signs the admin in with the one admin's password.
    for n in &nodes {
        n.admin().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_with_another_master_key_refuses_to_start() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let _first = start_nodes(1, &url);
    let dir = tempfile::tempdir().unwrap();
    let other_key = "WllaWVlZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWVk";
    let refused = Latchkey::try_start(node_command(dir.path(), &url, other_key))
        .err()
        .expect("a node with another master key must not start");
    assert!(
        refused.contains("master key does not match") && refused.contains("every node"),
        "{refused}"
    );
    // The right key still starts.
    let dir = tempfile::tempdir().unwrap();
    Latchkey::start(node_command(dir.path(), &url, MASTER_KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_code_and_a_refresh_token_each_redeem_once_across_nodes() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let nodes = start_nodes(3, &url);
    let app = make_app(&nodes[0], json!({})).await;
    let code = get_code(&nodes[0], &app, &[]).await;
    let answers = all_at_once(30, |i| {
        let form = crate::oauth_flow::code_grant(&code)
            .iter()
            .map(|(k, v)| (*k, v.to_string()))
            .collect();
        token_request(&nodes[i % 3], &app, form)
    })
    .await;
    assert_eq!(count(&answers, 200), 1, "{answers:?}");

    let code = get_code(&nodes[1], &app, &[]).await;
    let (st, v) = redeem(&nodes[2], &app, &code).await;
    assert_eq!(st, 200, "{v}");
    let refresh = v["refresh_token"].as_str().unwrap().to_owned();
    let answers = all_at_once(30, |i| {
        let form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh.clone()),
        ];
        token_request(&nodes[i % 3], &app, form)
    })
    .await;
    assert_eq!(count(&answers, 200), 1, "{answers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_app_deactivated_or_given_a_new_secret_on_one_node_is_refused_at_once_on_another() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let nodes = start_nodes(2, &url);
    let (a, b) = (&nodes[0], &nodes[1]);
    let mut app = make_app(
        a,
        json!({"grantTypes": ["authorization_code", "refresh_token", "client_credentials"]}),
    )
    .await;
    let cc = [("grant_type", "client_credentials")];
    // B verifies (and caches) the secret, then A regenerates it: B refuses the old one at once.
    assert_eq!(token(b, &app, &cc, true).await.0, 200);
    let admin = a.admin().await;
    let (st, v) = a
        .post(
            "/api/v1/oauth-apps.regenerateSecret",
            &admin,
            json!({"appId": app.id}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (_, refused, _) = token(b, &app, &cc, true).await;
    assert_eq!(refused["error"], "invalid_client", "{refused}");
    app.secret = Some(v["application"]["clientSecret"].as_str().unwrap().into());
    assert_eq!(token(b, &app, &cc, true).await.0, 200);

    // Tokens B has served, then A deactivates the app: B refuses its client and its tokens at once.
    let code = get_code(a, &app, &[]).await;
    let (st, v) = redeem(b, &app, &code).await;
    assert_eq!(st, 200, "{v}");
    let access = v["access_token"].as_str().unwrap().to_owned();
    let userinfo = |n: &Node| {
        n.req(Method::GET, "/oauth/userinfo")
            .bearer_auth(&access)
            .send()
    };
    assert_eq!(userinfo(b).await.unwrap().status(), 200);
    let (st, v) = a
        .post(
            "/api/v1/oauth-apps.update",
            &admin,
            json!({"appId": app.id, "name": "Test App", "active": false, "redirectUri": crate::oauth_flow::REDIRECT}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(userinfo(b).await.unwrap().status(), 401);
    assert_ne!(token(b, &app, &cc, true).await.0, 200);
    let r = b
        .http
        .post(format!("{}/oauth/introspect", b.url))
        .basic_auth(&app.client_id, app.secret.as_deref())
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    let (st, v) = json_of(r).await;
    assert!(st != 200 || v == json!({"active": false}), "{st} {v}");
}

/// Deleting an admin is the API's way to take the admin role away; the last admin stays however the requests race.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_deleting_the_two_admins_at_once_leave_one() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let nodes = start_nodes(2, &url);
    let mut admin = nodes[0].admin().await;
    for round in 0..5 {
        let name = format!("second{round}");
        let (st, v) = nodes[0]
            .post(
                "/api/v1/users.create",
                &admin,
                json!({"username": name, "email": format!("{name}@example.com"), "password": "pw", "roles": ["admin"]}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        let second = v["user"]["_id"].as_str().unwrap().to_owned();
        let answers = all_at_once(2, |i| {
            let target = [&admin.user_id, &second][i];
            answer(
                nodes[i]
                    .authed(Method::POST, "/api/v1/users.delete", &admin)
                    .json(&json!({"userId": target})),
            )
        })
        .await;
        assert_eq!(count(&answers, 200), 1, "round {round}: {answers:?}");
        let admins = query(&url, "SELECT count(*) FROM users WHERE is_admin").await;
        assert_eq!(admins[0].get::<_, i64>(0), 1, "round {round}");
        if answers[0].0 == 200 {
            // The signed-in admin is gone: the second one carries on.
            admin = nodes[1].login(&name, "pw").await;
        }
    }
}

/// Two nodes change two fields of one user at once (each a read-change-write of the whole record): neither change
/// is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_of_one_user_on_two_nodes_lose_none() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let nodes = start_nodes(3, &url);
    let admin = nodes[0].admin().await;
    let id = crate::common::steps::create_user(&nodes[0], &admin, "ada").await;
    for round in 0..20 {
        let changes = [
            json!({"name": format!("Ada {round}")}),
            json!({"claims": {"round": round}}),
        ];
        let answers = all_at_once(2, |i| {
            answer(
                nodes[(round + i) % 3]
                    .authed(Method::POST, "/api/v1/users.update", &admin)
                    .json(&json!({"userId": id, "data": changes[i]})),
            )
        })
        .await;
        assert_eq!(count(&answers, 200), 2, "round {round}: {answers:?}");
        let (st, v) = nodes[round % 3]
            .get(&format!("/api/v1/users.info?userId={id}"), &admin)
            .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(
            v["user"]["name"],
            format!("Ada {round}"),
            "round {round}: {v}"
        );
        assert_eq!(v["user"]["claims"]["round"], round, "round {round}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_passwords_spread_over_nodes_share_one_per_user_window() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let nodes = start_nodes(3, &url);
    // The per-user limit (10 by default) holds over all nodes: of 30 guesses spread over three, 10 are checked.
    let answers = all_at_once(30, |i| {
        let rb = nodes[i % 3]
            .req(Method::POST, "/api/v1/login")
            .json(&json!({"user": "admin", "password": format!("guess-{i}")}));
        answer(rb)
    })
    .await;
    assert_eq!(count(&answers, 401), 10, "{answers:?}");
    assert_eq!(count(&answers, 429), 20, "{answers:?}");
}

/// Writes that nodes acknowledged survive a `kill -9` of one of them: a few seconds of client_credentials tokens
/// issued on two nodes (a durable insert each), one node killed halfway; every token a node answered 200 for is
/// live on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_a_node_killed_under_load() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let mut nodes = start_nodes(2, &url);
    let app = make_app(&nodes[0], json!({"grantTypes": ["client_credentials"]})).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let node = &nodes[w % 2];
            let rb = node
                .http
                .post(format!("{}/oauth/token", node.url))
                .basic_auth(&app.client_id, app.secret.clone())
                .form(&[("grant_type", "client_credentials")]);
            tokio::spawn(async move {
                let mut acked: Vec<String> = Vec::new();
                while Instant::now() < deadline && acked.len() < 50 {
                    match rb.try_clone().unwrap().send().await {
                        Ok(r) if r.status() == 200 => {
                            let v: serde_json::Value = r.json().await.unwrap();
                            acked.push(v["access_token"].as_str().unwrap().to_owned());
                        }
                        Ok(_) => {}
                        Err(_) => break, // the node is gone
                    }
                }
                acked
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    nodes.remove(1).process.kill();
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    assert!(acked.len() > 20, "too little load: {}", acked.len());
    let survivor = &nodes[0];
    let mut lost = Vec::new();
    for t in &acked {
        if crate::oauth_flow::introspect(survivor, &app, t).await["active"] != true {
            lost.push(t);
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged tokens lost",
        lost.len(),
        acked.len()
    );
}

/// Six users on three nodes claim one upstream account for sign-in through Stack's `POST /api/v1/oauth-providers`
/// at once: exactly one link is made (201), the others get Stack's known error for a taken account, none fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sign_in_claims_of_one_upstream_account_across_nodes_make_one_link() {
    const PROJECT: &str = "6b3c2a1e-0d4f-4a5b-8c7d-9e0f1a2b3c4d";
    const SERVER_KEY: &str = "multinode-server-key-aaaaaaaaaaaaaaaaaaaaaaa";
    let Some(url) = fresh_database().await else {
        return;
    };
    let stack = [
        ("LATCHKEY_STACK_PROJECT_ID", PROJECT),
        ("LATCHKEY_STACK_SERVER_KEY", SERVER_KEY),
    ];
    let nodes = start_nodes_with(3, &url, &stack);
    let admin = nodes[0].admin().await;
    crate::providers::add(&nodes[0], &admin, "Upstream").await;
    let key = format!("{}Upstream", crate::providers::PREFIX);
    let (st, v) = crate::providers::set(&nodes[1], &admin, &key, json!(true)).await;
    assert_eq!(st, 200, "{v}");
    let mut users = Vec::new();
    for i in 0..6 {
        users.push(
            crate::common::steps::create_user(&nodes[i % 3], &admin, &format!("claimer{i}")).await,
        );
    }
    let answers = all_at_once(6, |i| {
        answer(
            nodes[i % 3]
                .http
                .post(format!("{}/api/v1/oauth-providers", nodes[i % 3].url))
                .header("X-Stack-Project-Id", PROJECT)
                .header("X-Stack-Access-Type", "server")
                .header("X-Stack-Secret-Server-Key", SERVER_KEY)
                .json(&json!({"user_id": users[i], "provider_config_id": "upstream",
                               "email": format!("claimer{i}@example.com"), "account_id": "upstream-42",
                               "allow_sign_in": true, "allow_connected_accounts": false})),
        )
    })
    .await;
    assert_eq!(count(&answers, 201), 1, "{answers:?}");
    assert!(
        answers.iter().all(|a| a.0 == 201
            || (a.0 == 400
                && a.1
                    .contains("OAUTH_PROVIDER_ACCOUNT_ID_ALREADY_USED_FOR_SIGN_IN"))),
        "the others are Stack's known conflict: {answers:?}"
    );
    let links = query(
        &url,
        "SELECT count(*) FROM links WHERE account_id = 'upstream-42' AND allow_sign_in",
    )
    .await;
    assert_eq!(links[0].get::<_, i64>(0), 1);
}

/// PostgreSQL stopped and started again under load: while it is down the nodes answer the token endpoint's 503
/// (`temporarily_unavailable`), they serve again once it is back without a restart, and every token a node
/// answered 200 for is live afterwards. On a server of the test's own, so the shared one is not disturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_answer_503_while_postgresql_restarts_and_recover_losing_no_acknowledged_write() {
    let Some(pg) = OwnServer::start() else {
        return;
    };
    let nodes = start_nodes(2, &pg.url);
    let app = make_app(&nodes[0], json!({"grantTypes": ["client_credentials"]})).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let node = &nodes[w % 2];
            let rb = node
                .http
                .post(format!("{}/oauth/token", node.url))
                .basic_auth(&app.client_id, app.secret.clone())
                .form(&[("grant_type", "client_credentials")]);
            let stop = stop.clone();
            tokio::spawn(async move {
                let (mut acked, mut outage) = (Vec::<String>::new(), Vec::<Answer>::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = rb.try_clone().unwrap().send().await.unwrap();
                    let st = r.status().as_u16();
                    let body = r.text().await.unwrap();
                    if st == 200 {
                        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                        acked.push(v["access_token"].as_str().unwrap().to_owned());
                    } else {
                        outage.push((st, body));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                (acked, outage)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    pg.script("halt");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    pg.script("resume");
    // Serving again: the writers' answers turn back to 200.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut acked, mut outage) = (Vec::new(), Vec::new());
    for w in writers {
        let (a, o) = w.await.unwrap();
        acked.extend(a);
        outage.extend(o);
    }
    assert!(!outage.is_empty(), "the outage was seen");
    for (st, body) in &outage {
        assert_eq!(*st, 503, "{body}");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"], "temporarily_unavailable", "{body}");
    }
    assert!(acked.len() > 20, "too little load: {}", acked.len());
    for n in &nodes {
        let (st, _, _) = token(n, &app, &[("grant_type", "client_credentials")], true).await;
        assert_eq!(st, 200, "recovered without a restart");
    }
    let mut lost = 0;
    for t in &acked {
        if crate::oauth_flow::introspect(&nodes[0], &app, t).await["active"] != true {
            lost += 1;
        }
    }
    assert_eq!(
        lost,
        0,
        "{lost} of {} acknowledged tokens lost",
        acked.len()
    );
}
