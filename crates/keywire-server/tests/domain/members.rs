//! Users, API tokens, workspace roles and memberships, and the authorities they grant.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{ADMIN, Api};

/// Creates a user as the admin; returns its first token.
async fn user(api: &Api, name: &str) -> String {
    let created = api
        .post("/api/v1/users", ADMIN, json!({"name": name}))
        .await;
    let body = created.expect(201);
    assert_eq!(body["user"]["name"], name);
    assert_eq!(body["user"]["isAdmin"], false);
    let token = body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("kw_"), "{token}");
    token
}

/// Creates a role as the admin; returns its slug.
async fn role(
    api: &Api,
    ws: &str,
    name: &str,
    authorities: &[&str],
    projects: Option<&[&str]>,
) -> String {
    let mut body = json!({"name": name, "authorities": authorities});
    if let Some(projects) = projects {
        body["projects"] = json!(projects);
    }
    let created = api
        .post(&format!("/api/v1/workspaces/{ws}/roles"), ADMIN, body)
        .await;
    created.expect(201)["slug"].as_str().unwrap().to_owned()
}

/// Adds `user` to `ws` with `roles` as the admin.
async fn add(api: &Api, ws: &str, user: &str, roles: &[&str]) {
    api.post(
        &format!("/api/v1/workspaces/{ws}/members"),
        ADMIN,
        json!({"user": user, "roles": roles}),
    )
    .await
    .expect(201);
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[field].as_str().unwrap().to_owned())
        .collect()
}

#[track_caller]
fn forbidden(answer: &crate::support::Answer) {
    assert_eq!(answer.expect(403)["code"], "forbidden", "{}", answer.body);
}

#[tokio::test]
async fn admins_create_users_whose_tokens_are_shown_once() {
    for api in Api::all().await {
        let backend = api.backend();
        let alice = user(&api, "alice").await;
        let bob = user(&api, "bob").await;
        let me = api.get("/api/v1/me", &alice).await;
        assert_eq!(me.expect(200)["name"], "alice", "{backend}");

        let users = api.get("/api/v1/users?limit=2", ADMIN).await;
        let page = users.expect(200);
        assert_eq!(names(page, "name"), ["admin", "alice"], "{backend}");
        let rest = api
            .get(
                &format!(
                    "/api/v1/users?cursor={}",
                    page["nextCursor"].as_str().unwrap()
                ),
                ADMIN,
            )
            .await;
        assert_eq!(names(rest.expect(200), "name"), ["bob"], "{backend}");
        for listed in [&users.body, &rest.body] {
            let text = listed.to_string();
            assert!(
                !text.contains(&alice) && !text.contains(&bob) && !text.contains("token"),
                "{backend}: {text}"
            );
        }
        assert_eq!(
            api.get("/api/v1/users/bob", ADMIN).await.expect(200)["name"],
            "bob"
        );

        // Validation and conflicts.
        for bad in ["", "has space", "-dash", "ünï", &"n".repeat(65)] {
            api.post("/api/v1/users", ADMIN, json!({"name": bad}))
                .await
                .expect_field(400, "/name");
        }
        api.post("/api/v1/users", ADMIN, json!({"name": "alice"}))
            .await
            .expect(409);
        api.post("/api/v1/users", ADMIN, json!({"name": "x", "admin": true}))
            .await
            .expect_field(400, "/admin");

        // Only server administrators manage users.
        forbidden(
            &api.post("/api/v1/users", &alice, json!({"name": "mallory"}))
                .await,
        );
        forbidden(&api.get("/api/v1/users", &alice).await);
        forbidden(&api.delete("/api/v1/users/bob", &alice).await);
        api.get("/api/v1/users", "kw_nonsense_token_1234567890")
            .await
            .expect(401);

        // Deleting: not oneself, not unknown; a deleted user's token stops at once.
        api.delete("/api/v1/users/admin", ADMIN).await.expect(409);
        api.delete("/api/v1/users/nobody", ADMIN).await.expect(404);
        api.delete("/api/v1/users/bob", ADMIN).await.expect(204);
        api.get("/api/v1/me", &bob).await.expect(401);
        let users = api.get("/api/v1/users", ADMIN).await;
        assert_eq!(
            names(users.expect(200), "name"),
            ["admin", "alice"],
            "{backend}"
        );

        // A second administrator may be created; an admin's limited token manages no users.
        let created = api
            .post(
                "/api/v1/users",
                ADMIN,
                json!({"name": "root", "isAdmin": true}),
            )
            .await;
        let root = created.expect(201)["token"].as_str().unwrap().to_owned();
        let limited = api
            .post(
                "/api/v1/me/tokens",
                &root,
                json!({"name": "ro", "authorities": ["READ_WORKSPACE"]}),
            )
            .await;
        let limited = limited.expect(201)["token"].as_str().unwrap().to_owned();
        forbidden(&api.get("/api/v1/users", &limited).await);
        api.get("/api/v1/users", &root).await.expect(200);
    }
}

#[tokio::test]
async fn roles_are_validated_listed_changed_and_the_admin_role_is_protected() {
    for api in Api::all().await {
        let backend = api.backend();
        let ws = api.workspace("Acme").await;
        let shop = api.project(&ws, "Shop").await;
        let roles = format!("/api/v1/workspaces/{ws}/roles");

        let bad = api
            .post(
                &roles,
                ADMIN,
                json!({"name": "x", "authorities": ["READ_PROJECT", "READ_SECRET", "BE_ROOT"]}),
            )
            .await;
        bad.expect_field(400, "/authorities/2");
        let bad = api
            .post(
                &roles,
                ADMIN,
                json!({"name": "x", "authorities": ["READ_PROJECT"], "projects": [shop, "nope"]}),
            )
            .await;
        bad.expect_field(400, "/projects/1");
        api.post(
            &roles,
            ADMIN,
            json!({"name": "x", "authorities": [], "projects": []}),
        )
        .await
        .expect_field(400, "/projects");
        api.post(&roles, ADMIN, json!({"name": "a/b", "authorities": []}))
            .await
            .expect_field(400, "/name");
        api.post(&roles, ADMIN, json!({"name": "x"}))
            .await
            .expect_field(400, "/authorities");
        api.post(
            &roles,
            ADMIN,
            json!({"name": "x", "authorities": "READ_PROJECT"}),
        )
        .await
        .expect_field(400, "/authorities");

        let created = api
            .post(
                &roles,
                ADMIN,
                json!({"name": "Shop Readers", "description": "read the shop", "authorities": ["READ_SECRET", "READ_PROJECT"], "projects": [shop]}),
            )
            .await;
        let body = created.expect(201);
        assert_eq!(body["slug"], "shop-readers", "{backend}");
        assert_eq!(body["authorities"], json!(["READ_PROJECT", "READ_SECRET"]));
        assert_eq!(body["projects"], json!([shop]));
        assert_eq!(body["isAdminRole"], false);
        api.post(
            &roles,
            ADMIN,
            json!({"name": "Shop Readers", "authorities": []}),
        )
        .await
        .expect(409);

        let list = api.get(&roles, ADMIN).await;
        assert_eq!(
            names(list.expect(200), "slug"),
            ["admin", "shop-readers"],
            "{backend}"
        );
        let admin_role = api.get(&format!("{roles}/admin"), ADMIN).await;
        let admin_role = admin_role.expect(200);
        assert_eq!(admin_role["authorities"], json!(["WORKSPACE_ADMIN"]));
        assert_eq!(admin_role["projects"], Value::Null);
        api.get(&format!("{roles}/nope"), ADMIN).await.expect(404);

        let patched = api
            .patch(
                &format!("{roles}/shop-readers"),
                ADMIN,
                json!({"name": "Readers", "description": null, "projects": null, "authorities": ["READ_PROJECT"]}),
            )
            .await;
        let body = patched.expect(200);
        assert_eq!(body["slug"], "shop-readers", "{backend}: the slug stays");
        assert_eq!(body["name"], "Readers");
        assert_eq!(body["projects"], Value::Null);
        assert_eq!(body.get("description"), None);
        api.patch(
            &format!("{roles}/shop-readers"),
            ADMIN,
            json!({"authorities": ["NOPE"]}),
        )
        .await
        .expect_field(400, "/authorities/0");
        api.patch(
            &format!("{roles}/shop-readers"),
            ADMIN,
            json!({"projects": ["nope"]}),
        )
        .await
        .expect_field(400, "/projects/0");

        // The built-in admin role.
        api.delete(&format!("{roles}/admin"), ADMIN)
            .await
            .expect(409);
        let lose = api
            .patch(
                &format!("{roles}/admin"),
                ADMIN,
                json!({"authorities": ["READ_WORKSPACE"]}),
            )
            .await;
        assert!(
            lose.expect(409)["detail"]
                .as_str()
                .unwrap()
                .contains("WORKSPACE_ADMIN"),
            "{backend}"
        );
        api.patch(
            &format!("{roles}/admin"),
            ADMIN,
            json!({"projects": [shop]}),
        )
        .await
        .expect(409);
        api.patch(&format!("{roles}/admin"), ADMIN, json!({"name": "Owners"}))
            .await
            .expect(200);

        api.delete(&format!("{roles}/shop-readers"), ADMIN)
            .await
            .expect(204);
        api.delete(&format!("{roles}/shop-readers"), ADMIN)
            .await
            .expect(404);

        let types = api.event_types(&ws).await;
        for expected in [
            "WORKSPACE_ROLE_CREATED",
            "WORKSPACE_ROLE_UPDATED",
            "WORKSPACE_ROLE_DELETED",
        ] {
            assert!(
                types.iter().any(|t| t == expected),
                "{backend}: no {expected} in {types:?}"
            );
        }
        assert_eq!(
            types
                .iter()
                .filter(|t| *t == "WORKSPACE_ROLE_UPDATED")
                .count(),
            2,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn a_viewer_reads_but_cannot_write_and_strangers_see_nothing() {
    for api in Api::all().await {
        let backend = api.backend();
        let ws = api.workspace("Acme").await;
        let shop = api.project(&ws, "Shop").await;
        let alice = user(&api, "alice").await;
        let carol = user(&api, "carol").await;
        let viewer = role(
            &api,
            &ws,
            "Viewer",
            &["READ_WORKSPACE", "READ_PROJECT", "READ_SECRET"],
            None,
        )
        .await;
        add(&api, &ws, "alice", &[&viewer]).await;

        api.get(&format!("/api/v1/workspaces/{ws}"), &alice)
            .await
            .expect(200);
        let projects = api
            .get(&format!("/api/v1/workspaces/{ws}/projects"), &alice)
            .await;
        assert_eq!(
            names(projects.expect(200), "slug"),
            [shop.as_str()],
            "{backend}"
        );
        api.get(&format!("/api/v1/projects/{shop}"), &alice)
            .await
            .expect(200);
        forbidden(
            &api.post(
                &format!("/api/v1/workspaces/{ws}/projects"),
                &alice,
                json!({"name": "Mine"}),
            )
            .await,
        );
        forbidden(
            &api.patch(
                &format!("/api/v1/workspaces/{ws}"),
                &alice,
                json!({"name": "Mine"}),
            )
            .await,
        );
        forbidden(
            &api.get(&format!("/api/v1/workspaces/{ws}/roles"), &alice)
                .await,
        );
        forbidden(
            &api.get(&format!("/api/v1/workspaces/{ws}/members"), &alice)
                .await,
        );
        forbidden(
            &api.post(
                &format!("/api/v1/workspaces/{ws}/roles"),
                &alice,
                json!({"name": "Mine", "authorities": []}),
            )
            .await,
        );
        forbidden(
            &api.post(
                &format!("/api/v1/workspaces/{ws}/members"),
                &alice,
                json!({"user": "carol", "roles": []}),
            )
            .await,
        );
        // A member sees their own membership without READ_USERS.
        let own = api
            .get(&format!("/api/v1/workspaces/{ws}/members/alice"), &alice)
            .await;
        assert_eq!(own.expect(200)["roles"], json!(["viewer"]), "{backend}");

        // Carol belongs to no workspace: everything in it is 404, as if it did not exist.
        for path in [
            format!("/api/v1/workspaces/{ws}"),
            format!("/api/v1/workspaces/{ws}/projects"),
            format!("/api/v1/workspaces/{ws}/roles"),
            format!("/api/v1/workspaces/{ws}/members"),
            format!("/api/v1/projects/{shop}"),
        ] {
            api.get(&path, &carol).await.expect(404);
        }
        let listed = api.get("/api/v1/workspaces", &carol).await;
        assert_eq!(listed.expect(200)["items"], json!([]), "{backend}");
        api.post(
            &format!("/api/v1/workspaces/{ws}/members"),
            &carol,
            json!({"user": "carol", "roles": ["admin"]}),
        )
        .await
        .expect(404);
    }
}

#[tokio::test]
async fn a_member_limited_to_one_project_sees_only_that_one() {
    for api in Api::all().await {
        let backend = api.backend();
        let ws = api.workspace("Acme").await;
        let a = api.project(&ws, "Alpha").await;
        let b = api.project(&ws, "Beta").await;
        let bob = user(&api, "bob").await;
        let only_a = role(
            &api,
            &ws,
            "Alpha only",
            &["READ_WORKSPACE", "READ_PROJECT"],
            Some(&[&a]),
        )
        .await;
        add(&api, &ws, "bob", &[&only_a]).await;

        api.get(&format!("/api/v1/workspaces/{ws}"), &bob)
            .await
            .expect(200);
        api.get(&format!("/api/v1/projects/{a}"), &bob)
            .await
            .expect(200);
        api.get(&format!("/api/v1/projects/{b}"), &bob)
            .await
            .expect(404);
        let projects = api
            .get(&format!("/api/v1/workspaces/{ws}/projects"), &bob)
            .await;
        assert_eq!(
            names(projects.expect(200), "slug"),
            [a.as_str()],
            "{backend}"
        );
        forbidden(
            &api.patch(
                &format!("/api/v1/projects/{a}"),
                &bob,
                json!({"name": "Mine"}),
            )
            .await,
        );

        // Widening the role to every project shows Beta at once.
        api.patch(
            &format!("/api/v1/workspaces/{ws}/roles/{only_a}"),
            ADMIN,
            json!({"projects": null}),
        )
        .await
        .expect(200);
        api.get(&format!("/api/v1/projects/{b}"), &bob)
            .await
            .expect(200);
    }
}

#[tokio::test]
async fn members_are_added_changed_and_removed_with_events() {
    for api in Api::all().await {
        let backend = api.backend();
        let ws = api.workspace("Acme").await;
        let alice = user(&api, "alice").await;
        let bob = user(&api, "bob").await;
        let viewer = role(
            &api,
            &ws,
            "Viewer",
            &["READ_WORKSPACE", "READ_PROJECT"],
            None,
        )
        .await;
        let managers = role(
            &api,
            &ws,
            "Managers",
            &[
                "READ_WORKSPACE",
                "READ_USERS",
                "ADD_USER",
                "UPDATE_USER_ROLE",
                "REMOVE_USER",
                "CREATE_WORKSPACE_ROLE",
            ],
            None,
        )
        .await;
        let members = format!("/api/v1/workspaces/{ws}/members");

        api.post(&members, ADMIN, json!({"user": "nobody", "roles": []}))
            .await
            .expect_field(400, "/user");
        api.post(
            &members,
            ADMIN,
            json!({"user": "alice", "roles": [viewer, "nope"]}),
        )
        .await
        .expect_field(400, "/roles/1");
        api.post(&members, ADMIN, json!({"user": "alice"}))
            .await
            .expect_field(400, "/roles");
        let added = api
            .post(&members, ADMIN, json!({"user": "alice", "roles": [viewer]}))
            .await;
        let body = added.expect(201);
        assert_eq!(
            (&body["user"], &body["roles"]),
            (&json!("alice"), &json!([viewer])),
            "{backend}"
        );
        api.post(&members, ADMIN, json!({"user": "alice", "roles": []}))
            .await
            .expect(409);

        let changed = api
            .patch(
                &format!("{members}/alice"),
                ADMIN,
                json!({"roles": [managers, viewer]}),
            )
            .await;
        assert_eq!(
            changed.expect(200)["roles"],
            json!([managers, viewer]),
            "{backend}"
        );
        api.patch(&format!("{members}/bob"), ADMIN, json!({"roles": []}))
            .await
            .expect(404);
        api.patch(
            &format!("{members}/alice"),
            ADMIN,
            json!({"roles": ["nope"]}),
        )
        .await
        .expect_field(400, "/roles/0");

        // Alice manages members, but only a WORKSPACE_ADMIN holder hands out admin powers.
        api.post(&members, &alice, json!({"user": "bob", "roles": [viewer]}))
            .await
            .expect(201);
        forbidden(
            &api.patch(
                &format!("{members}/bob"),
                &alice,
                json!({"roles": ["admin"]}),
            )
            .await,
        );
        forbidden(
            &api.post(
                &format!("/api/v1/workspaces/{ws}/roles"),
                &alice,
                json!({"name": "Sneaky", "authorities": ["WORKSPACE_ADMIN"]}),
            )
            .await,
        );
        forbidden(&api.delete(&format!("{members}/admin"), &alice).await);

        let list = api.get(&members, &alice).await;
        let list = list.expect(200);
        assert_eq!(names(list, "user"), ["admin", "alice", "bob"], "{backend}");
        assert_eq!(list["items"][0]["roles"], json!(["admin"]), "{backend}");

        // The last holder of the admin role stays.
        let last = api.delete(&format!("{members}/admin"), ADMIN).await;
        assert!(
            last.expect(409)["detail"]
                .as_str()
                .unwrap()
                .contains("admin role"),
            "{backend}"
        );
        api.patch(
            &format!("{members}/admin"),
            ADMIN,
            json!({"roles": [viewer]}),
        )
        .await
        .expect(409);

        // Removal by someone else, and leaving.
        api.delete(&format!("{members}/bob"), &alice)
            .await
            .expect(204);
        api.get(&format!("/api/v1/workspaces/{ws}"), &bob)
            .await
            .expect(404);
        api.delete(&format!("{members}/bob"), ADMIN)
            .await
            .expect(404);
        api.delete(&format!("{members}/alice"), &alice)
            .await
            .expect(204);
        api.get(&format!("/api/v1/workspaces/{ws}"), &alice)
            .await
            .expect(404);

        let types = api.event_types(&ws).await;
        for expected in [
            "WORKSPACE_ROLE_CREATED",
            "INVITED_TO_WORKSPACE",
            "WORKSPACE_MEMBERSHIP_UPDATED",
            "REMOVED_FROM_WORKSPACE",
            "LEFT_WORKSPACE",
        ] {
            assert!(
                types.iter().any(|t| t == expected),
                "{backend}: no {expected} in {types:?}"
            );
        }
        let events = api
            .get(&format!("/api/v1/workspaces/{ws}/events?limit=200"), ADMIN)
            .await;
        let events = events.expect(200);
        let invited = events["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "INVITED_TO_WORKSPACE" && e["payload"]["user"] == "alice")
            .expect("alice's invitation");
        assert_eq!(
            invited["payload"],
            json!({"user": "alice", "roles": [viewer], "direct": true}),
            "{backend}"
        );
        let text = events.to_string();
        for token in [&alice, &bob, &ADMIN.to_owned()] {
            assert!(
                !text.contains(token.as_str()),
                "{backend}: a token in the events"
            );
        }
    }
}

#[tokio::test]
async fn tokens_are_limited_listed_revoked_and_expire() {
    for api in Api::all().await {
        let backend = api.backend();
        let ws = api.workspace("Acme").await;
        let shop = api.project(&ws, "Shop").await;
        let alice = user(&api, "alice").await;
        let bob = user(&api, "bob").await;
        let editor = role(
            &api,
            &ws,
            "Editor",
            &["READ_WORKSPACE", "READ_PROJECT", "UPDATE_PROJECT"],
            None,
        )
        .await;
        add(&api, &ws, "alice", &[&editor]).await;

        // Validation.
        let tokens = "/api/v1/me/tokens";
        api.post(
            tokens,
            &alice,
            json!({"name": "x", "authorities": ["READ_PROJECT", "READ_WORKSPACE", "NOPE"]}),
        )
        .await
        .expect_field(400, "/authorities/2");
        api.post(tokens, &alice, json!({"name": "x", "authorities": []}))
            .await
            .expect_field(400, "/authorities");
        api.post(
            tokens,
            &alice,
            json!({"name": "x", "expiresAt": "2001-01-01T00:00:00Z"}),
        )
        .await
        .expect_field(400, "/expiresAt");
        api.post(
            tokens,
            &alice,
            json!({"name": "x", "expiresAt": "tomorrow"}),
        )
        .await
        .expect_field(400, "/expiresAt");
        api.post(tokens, &alice, json!({"name": "x", "expiresInDays": 0}))
            .await
            .expect_field(400, "/expiresInDays");
        api.post(
            tokens,
            &alice,
            json!({"name": "x", "expiresInDays": 1, "expiresAt": "2999-01-01T00:00:00Z"}),
        )
        .await
        .expect_field(400, "/expiresInDays");
        api.post(tokens, &alice, json!({"name": ""}))
            .await
            .expect_field(400, "/name");

        // A token limited to READ_PROJECT reads the project but can neither change it (which
        // Alice can) nor read the workspace.
        let created = api
            .post(
                tokens,
                &alice,
                json!({"name": "reader", "authorities": ["READ_PROJECT"], "expiresInDays": 30}),
            )
            .await;
        let body = created.expect(201).clone();
        let reader = body["token"].as_str().unwrap().to_owned();
        assert_eq!(body["authorities"], json!(["READ_PROJECT"]), "{backend}");
        assert!(body["expiresAt"].is_string(), "{backend}");
        api.get(&format!("/api/v1/projects/{shop}"), &reader)
            .await
            .expect(200);
        api.patch(
            &format!("/api/v1/projects/{shop}"),
            &alice,
            json!({"description": "mine"}),
        )
        .await
        .expect(200);
        forbidden(
            &api.patch(
                &format!("/api/v1/projects/{shop}"),
                &reader,
                json!({"description": "x"}),
            )
            .await,
        );
        forbidden(&api.get(&format!("/api/v1/workspaces/{ws}"), &reader).await);
        let me = api.get("/api/v1/me", &reader).await;
        assert_eq!(
            me.expect(200)["token"]["authorities"],
            json!(["READ_PROJECT"]),
            "{backend}"
        );
        // ...and cannot mint a stronger token, or one that lives longer.
        forbidden(
            &api.post(
                tokens,
                &reader,
                json!({"name": "more", "authorities": ["UPDATE_PROJECT"]}),
            )
            .await,
        );
        forbidden(
            &api.post(
                tokens,
                &reader,
                json!({"name": "longer", "expiresInDays": 3000}),
            )
            .await,
        );
        let child = api.post(tokens, &reader, json!({"name": "child"})).await;
        let child = child.expect(201);
        assert_eq!(
            child["authorities"],
            json!(["READ_PROJECT"]),
            "{backend}: inherits the limit"
        );
        assert_eq!(
            child["expiresAt"], body["expiresAt"],
            "{backend}: and the expiry"
        );

        // Listing shows no token and no hash.
        let list = api.get(tokens, &alice).await;
        let list = list.expect(200);
        assert_eq!(
            names(list, "name"),
            ["first", "reader", "child"],
            "{backend}"
        );
        let text = list.to_string();
        assert!(
            !text.contains(&reader) && !text.contains(&alice),
            "{backend}: {text}"
        );
        assert!(
            !text.contains("hash") && !text.contains("\"token\""),
            "{backend}: {text}"
        );
        assert!(
            list["items"][0]["lastUsedAt"].is_string(),
            "{backend}: {text}"
        );

        // Revoking: only one's own; the token stops at once.
        let id = body["id"].as_str().unwrap();
        api.delete(&format!("{tokens}/{id}"), &bob)
            .await
            .expect(404);
        api.delete(&format!("{tokens}/{id}"), &alice)
            .await
            .expect(204);
        api.get(&format!("/api/v1/projects/{shop}"), &reader)
            .await
            .expect(401);
        api.delete(&format!("{tokens}/{id}"), &alice)
            .await
            .expect(404);

        // Expiry.
        let soon = (chrono::Utc::now() + chrono::TimeDelta::milliseconds(1500)).to_rfc3339();
        let short = api
            .post(tokens, &alice, json!({"name": "short", "expiresAt": soon}))
            .await;
        let short = short.expect(201)["token"].as_str().unwrap().to_owned();
        api.get("/api/v1/me", &short).await.expect(200);
        tokio::time::sleep(Duration::from_millis(1700)).await;
        let expired = api.get("/api/v1/me", &short).await;
        assert_eq!(expired.expect(401)["code"], "unauthorized", "{backend}");
    }
}
