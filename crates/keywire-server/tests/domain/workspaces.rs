//! Workspaces, projects, environments, events and the master key.

use std::os::unix::fs::PermissionsExt;

use keywire_test_support::server::{Server, ServerConfig};
use serde_json::json;

use crate::support::{ADMIN, Api};

#[tokio::test]
async fn workspaces_are_created_listed_renamed_with_stable_slugs_and_deleted() {
    for api in Api::all().await {
        let created = api
            .post(
                "/api/v1/workspaces",
                ADMIN,
                json!({"name": "  Acme   Corp "}),
            )
            .await;
        let body = created.expect(201);
        assert_eq!(body["slug"], "acme-corp", "{}", api.backend());
        assert_eq!(body["name"], "Acme Corp");
        let second = api
            .post("/api/v1/workspaces", ADMIN, json!({"name": "Acme Corp"}))
            .await;
        assert_eq!(
            second.expect(201)["slug"],
            "acme-corp-2",
            "slugs are unique"
        );

        let renamed = api
            .patch(
                "/api/v1/workspaces/acme-corp",
                ADMIN,
                json!({"name": "Acme Global"}),
            )
            .await;
        assert_eq!(
            renamed.expect(200)["slug"],
            "acme-corp",
            "a rename keeps the slug"
        );
        assert_eq!(
            api.get("/api/v1/workspaces/acme-corp", ADMIN)
                .await
                .expect(200)["name"],
            "Acme Global"
        );

        let page = api.get("/api/v1/workspaces?limit=1", ADMIN).await;
        let page = page.expect(200);
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        let cursor = page["nextCursor"].as_str().expect("a second page");
        let next = api
            .get(
                &format!("/api/v1/workspaces?limit=1&cursor={cursor}"),
                ADMIN,
            )
            .await;
        assert_eq!(next.expect(200)["items"][0]["slug"], "acme-corp-2");
        assert!(next.body.get("nextCursor").is_none());
        api.get("/api/v1/workspaces?cursor=not-a-cursor!", ADMIN)
            .await
            .expect(400);

        assert!(
            api.event_types("acme-corp")
                .await
                .starts_with(&["WORKSPACE_UPDATED".into(), "WORKSPACE_CREATED".into()])
        );
        api.delete("/api/v1/workspaces/acme-corp", ADMIN)
            .await
            .expect(204);
        api.get("/api/v1/workspaces/acme-corp", ADMIN)
            .await
            .expect(404);
    }
}

#[tokio::test]
async fn bad_workspace_and_project_bodies_name_the_field() {
    let api = Api::sqlite().await;
    api.post("/api/v1/workspaces", ADMIN, json!({"name": ""}))
        .await
        .expect_field(400, "/name");
    api.post("/api/v1/workspaces", ADMIN, json!({"name": "a/b"}))
        .await
        .expect_field(400, "/name");
    api.post("/api/v1/workspaces", ADMIN, json!({"name": "x".repeat(65)}))
        .await
        .expect_field(400, "/name");
    api.post("/api/v1/workspaces", ADMIN, json!({"name": 5}))
        .await
        .expect_field(400, "/name");
    api.post("/api/v1/workspaces", ADMIN, json!({}))
        .await
        .expect_field(400, "/name");
    api.post(
        "/api/v1/workspaces",
        ADMIN,
        json!({"name": "ok", "owner": "x"}),
    )
    .await
    .expect_field(400, "/owner");
    let ws = api.workspace("Shop").await;
    let path = format!("/api/v1/workspaces/{ws}/projects");
    api.post(
        &path,
        ADMIN,
        json!({"name": "p", "environments": [{"name": "dev"}, {"name": ""}]}),
    )
    .await
    .expect_field(400, "/environments/1/name");
    api.post(
        &path,
        ADMIN,
        json!({"name": "p", "description": "x".repeat(1001)}),
    )
    .await
    .expect_field(400, "/description");
    api.post(
        &path,
        ADMIN,
        json!({"name": "p", "environments": [{"name": "dev"}, {"name": "dev"}]}),
    )
    .await
    .expect(409);
    let raw = reqwest_text(&api, &path, "{not json").await;
    assert_eq!(raw, 400);
    assert_eq!(
        api.get("/api/v1/workspaces/shop/projects", ADMIN)
            .await
            .expect(200)["items"],
        json!([]),
        "nothing was written"
    );
}

async fn reqwest_text(api: &Api, path: &str, body: &str) -> u16 {
    keywire_test_support::http_client()
        .post(format!("{}{path}", api.server.url))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn projects_and_environments_have_full_lifecycles_and_events() {
    for api in Api::all().await {
        let ws = api.workspace("Shop").await;
        let project = api.project(&ws, "Web Store").await;
        assert_eq!(project, "web-store");
        let got = api.get("/api/v1/projects/web-store", ADMIN).await;
        let envs: Vec<&str> = got.expect(200)["environments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["slug"].as_str().unwrap())
            .collect();
        assert_eq!(envs, ["dev", "prod"]);
        api.post(
            &format!("/api/v1/workspaces/{ws}/projects"),
            ADMIN,
            json!({"name": "Web Store"}),
        )
        .await
        .expect(409);

        let patched = api
            .patch(
                "/api/v1/projects/web-store",
                ADMIN,
                json!({"name": "Storefront", "description": "the shop"}),
            )
            .await;
        assert_eq!(patched.expect(200)["slug"], "web-store");
        let cleared = api
            .patch(
                "/api/v1/projects/web-store",
                ADMIN,
                json!({"description": null}),
            )
            .await;
        assert!(cleared.expect(200).get("description").is_none());
        api.patch("/api/v1/projects/web-store", ADMIN, json!({}))
            .await
            .expect(400);

        let staging = api
            .post(
                "/api/v1/projects/web-store/environments",
                ADMIN,
                json!({"name": "Staging EU"}),
            )
            .await;
        assert_eq!(staging.expect(201)["slug"], "staging-eu");
        api.post(
            "/api/v1/projects/web-store/environments",
            ADMIN,
            json!({"name": "Staging EU"}),
        )
        .await
        .expect(409);
        api.patch(
            "/api/v1/projects/web-store/environments/staging-eu",
            ADMIN,
            json!({"name": "Staging"}),
        )
        .await
        .expect(200);
        assert_eq!(
            api.get("/api/v1/projects/web-store/environments/staging-eu", ADMIN)
                .await
                .expect(200)["name"],
            "Staging"
        );
        assert_eq!(
            api.get("/api/v1/projects/web-store/environments", ADMIN)
                .await
                .expect(200)["items"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        api.delete("/api/v1/projects/web-store/environments/staging-eu", ADMIN)
            .await
            .expect(204);
        api.get("/api/v1/projects/web-store/environments/staging-eu", ADMIN)
            .await
            .expect(404);
        api.get("/api/v1/projects/web-store/environments/..%2F..", ADMIN)
            .await
            .expect(404);

        let types = api.event_types(&ws).await;
        let expected = [
            "ENVIRONMENT_DELETED",
            "ENVIRONMENT_UPDATED",
            "ENVIRONMENT_ADDED",
            "PROJECT_UPDATED",
            "PROJECT_UPDATED",
            "ENVIRONMENT_ADDED",
            "ENVIRONMENT_ADDED",
            "PROJECT_CREATED",
            "WORKSPACE_CREATED",
        ];
        assert_eq!(types, expected, "{}", api.backend());

        let only = api
            .get(
                &format!("/api/v1/workspaces/{ws}/events?type=ENVIRONMENT_ADDED&project=web-store"),
                ADMIN,
            )
            .await;
        let only = only.expect(200)["items"].as_array().unwrap().clone();
        assert_eq!(only.len(), 3);
        assert!(
            only.iter()
                .all(|e| e["environmentIds"].as_array().unwrap().len() == 1
                    && e["actor"]["name"] == "admin")
        );
        let first = api
            .get(&format!("/api/v1/workspaces/{ws}/events?limit=4"), ADMIN)
            .await;
        let cursor = first.expect(200)["nextCursor"].as_str().unwrap().to_owned();
        let rest = api
            .get(
                &format!("/api/v1/workspaces/{ws}/events?limit=50&cursor={cursor}"),
                ADMIN,
            )
            .await;
        assert_eq!(
            rest.expect(200)["items"].as_array().unwrap().len(),
            expected.len() - 4,
            "pages do not overlap"
        );
        api.get(&format!("/api/v1/workspaces/{ws}/events?type=NOPE"), ADMIN)
            .await
            .expect(400);
        api.get(
            &format!("/api/v1/workspaces/{ws}/events?since=yesterday"),
            ADMIN,
        )
        .await
        .expect(400);

        api.delete("/api/v1/projects/web-store", ADMIN)
            .await
            .expect(204);
        api.get("/api/v1/projects/web-store", ADMIN)
            .await
            .expect(404);
        assert_eq!(api.event_types(&ws).await[0], "PROJECT_DELETED");
    }
}

#[tokio::test]
async fn a_generated_master_key_is_owner_only_and_a_wrong_key_is_refused_by_id() {
    let api = Api::sqlite().await;
    let key_file = api.dir.path().join("master.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert!(!api.server.stderr().contains(key.trim()) && !api.server.stdout().contains(key.trim()));
    let url = api.db.url().to_owned();
    let dir = api.dir.path().to_owned();
    let Api {
        server,
        db,
        dir: tempdir,
        ..
    } = api;
    drop(server.terminate());

    let wrong = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    let config = ServerConfig::new(env!("CARGO_BIN_EXE_keywire"), &dir)
        .database(Some(&url))
        .env("KEYWIRE_MASTER_KEY", wrong);
    let (_, _, err) = Server::try_start(&config)
        .err()
        .expect("a wrong master key is refused");
    assert!(
        err.contains("master key") && err.contains("is not the key"),
        "{err}"
    );
    assert!(!err.contains(wrong) && !err.contains(key.trim()));
    let bad = ServerConfig::new(env!("CARGO_BIN_EXE_keywire"), &dir)
        .database(Some(&url))
        .env("KEYWIRE_MASTER_KEY", "c2hvcnQ=");
    let (_, _, err) = Server::try_start(&bad)
        .err()
        .expect("a short key is refused");
    assert!(err.contains("32 bytes"), "{err}");

    let right = ServerConfig::new(env!("CARGO_BIN_EXE_keywire"), &dir)
        .database(Some(&url))
        .env("KEYWIRE_MASTER_KEY", key.trim());
    Server::start(&right);
    drop((db, tempdir));
}
