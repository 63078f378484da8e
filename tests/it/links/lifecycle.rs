//! Links over time: a 16-way race for one upstream account, the cascades from user deletion and provider
//! removal, and generated keys that are announced once and survive a restart.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_racing_claims_of_one_upstream_account_admit_exactly_one() {
    let e = env().await;
    let mut users = Vec::new();
    for i in 0..16 {
        users.push(create_user(&e.s, &e.admin, &format!("racer{i}")).await);
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(16));
    let mut set = JoinSet::new();
    for user in users.clone() {
        let (http, url, barrier) = (e.s.http.clone(), e.s.url.clone(), barrier.clone());
        set.spawn(async move {
            let rb = stack_req(&url, &http, Method::POST, URL, As::Server).json(&new_link(
                &user,
                "contested",
                true,
            ));
            barrier.wait().await;
            (user, send(rb).await)
        });
    }
    let mut winners = Vec::new();
    while let Some(done) = set.join_next().await {
        let (user, r) = done.unwrap();
        match r.status {
            201 => winners.push(user),
            _ => {
                r.known(400, "OAUTH_PROVIDER_ACCOUNT_ID_ALREADY_USED_FOR_SIGN_IN");
            }
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let st = state(&e.s);
    assert_eq!(
        st.store
            .sign_in_link("myidp", "contested")
            .await
            .unwrap()
            .unwrap()
            .user_id,
        winners[0]
    );
    assert_eq!(st.store.list_links().await.unwrap().len(), 1);
    st.store.verify().unwrap();
}

#[tokio::test]
async fn deleting_a_user_removes_its_links() {
    let e = env().await;
    e.link(&e.jane, "acc", true).await;
    e.link(&e.jane, "acc-2", false).await;
    let bobs = e.link(&e.bob, "acc", false).await;
    let (st, v) =
        e.s.post("/api/v1/users.delete", &e.admin, json!({"userId": e.jane}))
            .await;
    assert_eq!((st, v), (200, json!({"success": true})));
    let r = e.list(As::Server, "").await;
    let items = r.json["items"].as_array().unwrap();
    assert_eq!((items.len(), &items[0]["id"]), (1, &json!(bobs)));
    // The upstream account is free to sign in to someone else now.
    let r = e
        .call(
            Method::PATCH,
            &format!("{URL}/{}/{bobs}", e.bob),
            As::Server,
            Some(json!({"allow_sign_in": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    e.list(As::Server, &format!("?user_id={}", e.jane))
        .await
        .known(404, "USER_NOT_FOUND");
    state(&e.s).store.verify().unwrap();
}

#[tokio::test]
async fn removing_a_provider_removes_its_links() {
    let e = env().await;
    e.link(&e.jane, "acc", true).await;
    e.link(&e.bob, "acc", false).await;
    let (st, v) = post_2fa(
        &e.s,
        "/api/v1/settings.removeCustomOAuth",
        &e.admin,
        json!({"name": "Myidp"}),
    )
    .await;
    assert_eq!((st, v), (200, json!({"success": true})));
    let r = e.list(As::Server, "").await;
    assert_eq!(r.json, json!({"items": [], "is_paginated": false}));
    // Re-adding the name starts empty: no old link signs in through the new provider.
    add(&e.s, &e.admin, "Myidp").await;
    assert!(state(&e.s)
        .store
        .sign_in_link("myidp", "acc")
        .await
        .unwrap()
        .is_none());
    e.create(As::Server, new_link(&e.jane, "acc", true))
        .await
        .status_error(404, "OAuth provider myidp not found or not configured");
    state(&e.s).store.verify().unwrap();
}

#[tokio::test]
async fn generated_keys_are_announced_once_and_persist() {
    let s = spawn().await;
    let lines = &s.running.as_ref().unwrap().announcements.lines;
    let after = |prefix: &str| -> String {
        let line = lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix} in {lines:?}"));
        line[prefix.len()..].split(' ').next().unwrap().to_owned()
    };
    let (project, server_key, admin_key) = (
        after("stack: project id "),
        after("stack: secret server key "),
        after("stack: super secret admin key "),
    );
    assert!(uuid::Uuid::parse_str(&project).is_ok());
    assert_eq!(server_key.len(), 43);
    assert_ne!(server_key, admin_key);
    let list = |s: &Server, key: &str| {
        send(
            s.http
                .get(format!("{}{URL}", s.url))
                .header("X-Stack-Project-Id", &project)
                .header("X-Stack-Access-Type", "server")
                .header("X-Stack-Secret-Server-Key", key),
        )
    };
    assert_eq!(list(&s, &server_key).await.status, 200);
    list(&s, &admin_key)
        .await
        .known(401, "INVALID_SECRET_SERVER_KEY");
    let state = state(&s);
    for k in ["stack_server_key_sha256", "stack_admin_key_sha256"] {
        let stored = state.store.meta_get(k).await.unwrap().unwrap();
        assert_eq!(stored.len(), 32, "only a digest is stored");
    }

    let dir = s.stop().await;
    let again = TestServer::new().data_dir(dir).start().await;
    let running = again.running.as_ref().unwrap();
    assert!(
        !running
            .announcements
            .lines
            .iter()
            .any(|l| l.starts_with("stack:")),
        "{:?}",
        running.announcements.lines
    );
    assert_eq!(
        list(&again, &server_key).await.status,
        200,
        "the same keys after a restart"
    );
    again.stop().await;
}
