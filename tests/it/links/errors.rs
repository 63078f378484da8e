//! Every known error of the links API with its status and header, and that no rejected request changes anything.

use super::*;

#[tokio::test]
async fn header_errors_use_stacks_codes_and_statuses() {
    let e = env().await;
    let url = |path: &str| format!("{}{path}", e.s.url);
    let get = |headers: &[(&str, &str)]| {
        let mut rb = e.s.http.get(url(URL));
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        send(rb)
    };
    let p = ("X-Stack-Project-Id", PROJECT);
    get(&[p]).await.known(400, "ACCESS_TYPE_REQUIRED");
    let r = get(&[p, ("X-Stack-Access-Type", "root")]).await;
    r.known(400, "INVALID_ACCESS_TYPE");
    assert!(r.json["error"].as_str().unwrap().contains("'root'"));
    let r = get(&[("X-Stack-Access-Type", "server")]).await;
    r.known(400, "ACCESS_TYPE_WITHOUT_PROJECT_ID");
    assert_eq!(r.json["details"], json!({"request_type": "server"}));
    let r = get(&[
        ("X-Stack-Project-Id", "other"),
        ("X-Stack-Access-Type", "client"),
    ])
    .await;
    r.known(404, "PROJECT_NOT_FOUND");
    assert_eq!(r.json["details"], json!({"project_id": "other"}));
    get(&[p, ("X-Stack-Access-Type", "server")])
        .await
        .known(401, "SERVER_AUTHENTICATION_REQUIRED");
    get(&[
        p,
        ("X-Stack-Access-Type", "server"),
        ("X-Stack-Super-Secret-Admin-Key", ADMIN_KEY),
    ])
    .await
    .known(401, "SERVER_AUTHENTICATION_REQUIRED");
    let r = get(&[
        p,
        ("X-Stack-Access-Type", "server"),
        ("X-Stack-Secret-Server-Key", "wrong"),
    ])
    .await;
    r.known(401, "INVALID_SECRET_SERVER_KEY");
    assert_eq!(r.json["details"], json!({"project_id": PROJECT}));
    get(&[
        p,
        ("X-Stack-Access-Type", "admin"),
        ("X-Stack-Secret-Server-Key", SERVER_KEY),
    ])
    .await
    .known(401, "ADMIN_AUTHENTICATION_REQUIRED");
    get(&[
        p,
        ("X-Stack-Access-Type", "admin"),
        ("X-Stack-Super-Secret-Admin-Key", SERVER_KEY),
    ])
    .await
    .known(401, "INVALID_SUPER_SECRET_ADMIN_KEY");
    let r = e
        .create(As::Client(Some(&e.jane_token)), new_link("me", "a", true))
        .await;
    r.known(401, "INSUFFICIENT_ACCESS_TYPE");
    assert_eq!(
        r.json["details"],
        json!({"actual_access_type": "client", "allowed_access_types": ["server", "admin"]})
    );
    e.list(As::Client(Some("not-a-token")), "?user_id=me")
        .await
        .known(401, "INVALID_ACCESS_TOKEN");
    e.list(As::Client(Some(&e.admin.token)), "?user_id=me")
        .await
        .known(401, "INVALID_ACCESS_TOKEN");
    // The body is Stack's, byte for byte: pretty-printed, code first.
    let r = get(&[p]).await;
    assert!(r.text.starts_with("{\n  \"code\": \"ACCESS_TYPE_REQUIRED\",\n  \"error\": \"You must specify an access level"), "{}", r.text);
}

#[tokio::test]
async fn link_errors_are_stacks_known_errors_and_change_nothing() {
    let e = env().await;
    let jane_link = e.link(&e.jane, "acc", true).await;
    let before = state(&e.s).store.list_links().await.unwrap();

    // The upstream account signs in to jane: not to bob too; nor may jane sign in twice through myidp.
    e.create(As::Server, new_link(&e.bob, "acc", true))
        .await
        .known(400, "OAUTH_PROVIDER_ACCOUNT_ID_ALREADY_USED_FOR_SIGN_IN");
    e.create(As::Admin, new_link(&e.jane, "acc-2", true))
        .await
        .status_error(
            400,
            "The same provider type with sign-in enabled already exists for this user.",
        );
    for provider in ["nope", "off"] {
        let body = json!({"user_id": e.jane, "provider_config_id": provider, "allow_sign_in": false,
            "allow_connected_accounts": true, "account_id": "x"});
        let r = e.create(As::Server, body).await;
        r.status_error(
            404,
            &format!("OAuth provider {provider} not found or not configured"),
        );
    }
    e.create(As::Server, new_link("no-such-user", "x", false))
        .await
        .known(404, "USER_NOT_FOUND");
    e.list(As::Server, "?user_id=no-such-user")
        .await
        .known(404, "USER_NOT_FOUND");
    let r = e
        .call(
            Method::GET,
            &format!("{URL}/no-such-user/{jane_link}"),
            As::Server,
            None,
        )
        .await;
    r.known(404, "USER_NOT_FOUND");
    // A link is found only under its own user.
    let not_bobs = format!("OAuth provider {jane_link} for user {} not found", e.bob);
    let r = e
        .call(
            Method::GET,
            &format!("{URL}/{}/{jane_link}", e.bob),
            As::Server,
            None,
        )
        .await;
    r.status_error(404, &not_bobs);
    e.call(
        Method::DELETE,
        &format!("{URL}/{}/{jane_link}", e.bob),
        As::Admin,
        None,
    )
    .await
    .status_error(404, &not_bobs);
    let missing = uuid::Uuid::new_v4();
    e.call(
        Method::GET,
        &format!("{URL}/{}/{missing}", e.jane),
        As::Server,
        None,
    )
    .await
    .status_error(
        404,
        &format!("OAuth provider {missing} for user {} not found", e.jane),
    );

    // Schema errors name every problem.
    for (body, needle) in [
        (json!({}), "body.user_id must be defined"),
        (
            json!({"user_id": e.jane, "provider_config_id": "myidp", "allow_sign_in": "yes", "allow_connected_accounts": true, "account_id": "x"}),
            "body.allow_sign_in must be a `boolean` type",
        ),
        (
            json!({"user_id": e.jane, "provider_config_id": "myidp", "allow_sign_in": true, "allow_connected_accounts": true, "account_id": "x", "type": "custom"}),
            "body contains unknown properties: type",
        ),
        (
            json!({"user_id": e.jane, "provider_config_id": "myidp", "allow_sign_in": false, "allow_connected_accounts": true, "account_id": ""}),
            "body.account_id must not be empty",
        ),
        (
            json!({"user_id": e.jane, "provider_config_id": "myidp", "allow_sign_in": false, "allow_connected_accounts": true, "account_id": "x", "email": "nope"}),
            "body.email must be a valid email",
        ),
        (json!([1]), "body must be a `object` type"),
    ] {
        let r = e.create(As::Server, body).await;
        r.known(400, "SCHEMA_ERROR");
        let msg = r.json["error"].as_str().unwrap();
        assert!(
            msg.starts_with("Request validation failed on POST /api/v1/oauth-providers:\n  - "),
            "{msg}"
        );
        assert!(msg.contains(needle), "{msg}");
        assert_eq!(r.json["details"], json!({"message": msg}));
    }
    // A path segment that is not a link id names a provider config id (Stack's current API): none here.
    e.call(
        Method::GET,
        &format!("{URL}/{}/not-a-uuid", e.jane),
        As::Server,
        None,
    )
    .await
    .status_error(404, "OAuth provider not found for this user");
    let r = send(
        stack_req(&e.s.url, &e.s.http, Method::POST, URL, As::Server)
            .header("content-type", "application/json")
            .body("{nope"),
    )
    .await;
    r.known(400, "BODY_PARSING_ERROR");
    assert_eq!(r.json["error"], "Invalid JSON in request body");
    let r = send(
        stack_req(&e.s.url, &e.s.http, Method::POST, URL, As::Server)
            .header("content-type", "application/json")
            .body(format!("{{\"pad\":\"{}\"}}", "x".repeat(70_000))),
    )
    .await;
    r.status_error(413, "Payload Too Large");
    e.call(
        Method::PATCH,
        &format!("{URL}/{}/{jane_link}", e.jane),
        As::Server,
        None,
    )
    .await
    .known(400, "SCHEMA_ERROR");

    assert_eq!(
        state(&e.s).store.list_links().await.unwrap(),
        before,
        "no rejected request changed anything"
    );
    state(&e.s).store.verify().unwrap();
}

#[tokio::test]
async fn patch_rechecks_the_sign_in_rules() {
    let e = env().await;
    e.link(&e.jane, "acc", true).await;
    // The same upstream account may be a connected-only link of other users.
    let bobs = e.link(&e.bob, "acc", false).await;
    let bobs_url = format!("{URL}/{}/{bobs}", e.bob);
    e.call(
        Method::PATCH,
        &bobs_url,
        As::Client(Some(&e.bob_token)),
        Some(json!({"allow_sign_in": true})),
    )
    .await
    .known(400, "OAUTH_PROVIDER_ACCOUNT_ID_ALREADY_USED_FOR_SIGN_IN");
    let other = e.link(&e.bob, "acc-b", true).await;
    let others_url = format!("{URL}/{}/{other}", e.bob);
    let move_onto_acc = || {
        e.call(
            Method::PATCH,
            &others_url,
            As::Server,
            Some(json!({"account_id": "acc"})),
        )
    };
    // Bob already links jane's account (connected-only): Stack's one-link-per-account rule answers first...
    move_onto_acc().await.status_error(
        400,
        "The same provider type with the same account ID already exists for this user.",
    );
    // ...a second sign-in link for bob through myidp is refused...
    e.call(
        Method::PATCH,
        &bobs_url,
        As::Server,
        Some(json!({"account_id": "acc-c", "allow_sign_in": true})),
    )
    .await
    .status_error(
        400,
        "The same provider type with sign-in enabled already exists for this user.",
    );
    // ...and without that link, moving bob's sign-in link onto jane's account is refused as well.
    let r = e.call(Method::DELETE, &bobs_url, As::Server, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    move_onto_acc()
        .await
        .known(400, "OAUTH_PROVIDER_ACCOUNT_ID_ALREADY_USED_FOR_SIGN_IN");
    let st = state(&e.s);
    assert_eq!(
        st.store
            .sign_in_link("myidp", "acc")
            .await
            .unwrap()
            .unwrap()
            .user_id,
        e.jane
    );
    assert_eq!(
        st.store
            .sign_in_link("myidp", "acc-b")
            .await
            .unwrap()
            .unwrap()
            .id,
        other
    );
    st.store.verify().unwrap();
}

/// Stack answers an unknown provider, or a link whose provider is removed or disabled, with a plain-text 404 and
/// leaves such links out of lists; nothing changes, and the link is back when the provider is enabled again.
#[tokio::test]
async fn unknown_or_disabled_providers_are_stacks_404() {
    let e = env().await;
    let link = e.link(&e.jane, "acc", true).await;
    let by_provider = format!("{URL}/{}/myidp", e.jane);
    let by_id = format!("{URL}/{}/{link}", e.jane);
    // Addressed by its provider config id, the user's link is found as by its id.
    for path in [&by_provider, &by_id] {
        let r = e.call(Method::GET, path, As::Server, None).await;
        assert_eq!(
            (r.status, r.json["id"].as_str()),
            (200, Some(link.as_str())),
            "{}",
            r.text
        );
    }
    for m in [Method::GET, Method::PATCH, Method::DELETE] {
        let body = (m == Method::PATCH).then(|| json!({"allow_sign_in": false}));
        e.call(m, &format!("{URL}/{}/github", e.jane), As::Server, body)
            .await
            .status_error(404, "OAuth provider not found for this user");
    }

    let (st, _) = set(&e.s, &e.admin, &format!("{PREFIX}Myidp"), json!(false)).await;
    assert_eq!(st, 200);
    for path in [&by_provider, &by_id] {
        e.call(Method::GET, path, As::Server, None)
            .await
            .status_error(404, "OAuth provider myidp not found or not configured");
        e.call(
            Method::PATCH,
            path,
            As::Server,
            Some(json!({"allow_sign_in": false})),
        )
        .await
        .status_error(404, "OAuth provider myidp not found or not configured");
    }
    let r = e.list(As::Server, &format!("?user_id={}", e.jane)).await;
    assert_eq!(r.json, json!({"items": [], "is_paginated": false}));
    assert!(
        state(&e.s)
            .store
            .get_link(&link)
            .await
            .unwrap()
            .unwrap()
            .allow_sign_in,
        "unchanged"
    );

    let (st, _) = set(&e.s, &e.admin, &format!("{PREFIX}Myidp"), json!(true)).await;
    assert_eq!(st, 200);
    let r = e.list(As::Server, &format!("?user_id={}", e.jane)).await;
    assert_eq!(r.json["items"][0]["id"], link.as_str());
    let r = e.call(Method::DELETE, &by_provider, As::Server, None).await;
    assert_eq!((r.status, &r.json), (200, &json!({"success": true})));
    assert!(state(&e.s).store.get_link(&link).await.unwrap().is_none());
}
