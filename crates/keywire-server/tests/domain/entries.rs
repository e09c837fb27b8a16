//! Secrets and variables over HTTP: versions, reveal, validation, bulk atomicity, deletion,
//! rollback, events, authorities, and values at rest.

use serde_json::{Value, json};

use crate::support::{ADMIN, Api};

/// `/api/v1/projects/{project}/{kind}` (+ `/{rest}`).
fn at(project: &str, kind: &str, rest: &str) -> String {
    if rest.is_empty() {
        format!("/api/v1/projects/{project}/{kind}")
    } else {
        format!("/api/v1/projects/{project}/{kind}/{rest}")
    }
}

/// A workspace and a project with `dev` and `prod`; returns (workspace, project).
async fn setup(api: &Api, name: &str) -> (String, String) {
    let workspace = api.workspace(name).await;
    let project = api.project(&workspace, "Api").await;
    (workspace, project)
}

/// The events of a workspace whose type starts with `prefix`, oldest first.
async fn events(api: &Api, workspace: &str, prefix: &str) -> Vec<Value> {
    let answer = api
        .get(
            &format!("/api/v1/workspaces/{workspace}/events?limit=200"),
            ADMIN,
        )
        .await;
    let mut out: Vec<Value> = answer.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with(prefix))
        .cloned()
        .collect();
    out.reverse();
    out
}

fn versions_of(body: &Value) -> Vec<i64> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn secrets_are_created_updated_versioned_and_revealed_only_when_asked() {
    for api in Api::all().await {
        let backend = api.backend();
        let (_, project) = setup(&api, "Versions").await;
        let key = at(&project, "secrets", "API_KEY");

        let created = api
            .put(
                &key,
                ADMIN,
                json!({"values": {"dev": "s3cr3t-dev-one", "prod": "s3cr3t-prod-one"}, "note": "payment gateway"}),
            )
            .await;
        let body = created.expect(201);
        assert_eq!(body["key"], "API_KEY", "{backend}");
        assert_eq!(body["note"], "payment gateway");
        assert_eq!(body["environments"]["dev"]["version"], 1);
        assert_eq!(body["environments"]["prod"]["version"], 1);
        assert!(body["environments"]["dev"]["updatedAt"].is_string());
        assert!(
            !body.to_string().contains("s3cr3t"),
            "{backend}: a value in {body}"
        );

        let updated = api
            .put(
                &key,
                ADMIN,
                json!({"values": {"dev": "s3cr3t-dev-two", "prod": "s3cr3t-prod-one"}}),
            )
            .await;
        let body = updated.expect(200);
        assert_eq!(body["environments"]["dev"]["version"], 2, "{backend}");
        assert_eq!(
            body["environments"]["prod"]["version"], 1,
            "{backend}: the same value adds no version"
        );
        assert_eq!(body["note"], "payment gateway", "an absent note is kept");
        let same = api
            .put(&key, ADMIN, json!({"values": {"dev": "s3cr3t-dev-two"}}))
            .await;
        assert_eq!(same.expect(200)["environments"]["dev"]["version"], 2);

        let listed = api.get(&at(&project, "secrets", ""), ADMIN).await;
        let body = listed.expect(200);
        assert_eq!(body["items"].as_array().unwrap().len(), 1, "{backend}");
        assert_eq!(body["items"][0]["environments"]["dev"]["version"], 2);
        assert!(body.get("nextCursor").is_none());
        assert!(
            !body.to_string().contains("s3cr3t"),
            "{backend}: the default listing shows a value: {body}"
        );

        let revealed = api
            .get(
                &format!("{}?reveal=true", at(&project, "secrets", "")),
                ADMIN,
            )
            .await;
        let body = revealed.expect(200);
        assert_eq!(
            body["items"][0]["environments"]["dev"]["value"],
            "s3cr3t-dev-two"
        );
        assert_eq!(
            body["items"][0]["environments"]["prod"]["value"],
            "s3cr3t-prod-one"
        );
        let one = api.get(&format!("{key}?reveal=true"), ADMIN).await;
        assert_eq!(
            one.expect(200)["environments"]["dev"]["value"],
            "s3cr3t-dev-two"
        );
        let hidden = api.get(&key, ADMIN).await;
        assert!(!hidden.expect(200).to_string().contains("s3cr3t"));

        let me = api.get("/api/v1/me", ADMIN).await;
        let admin_id = me.expect(200)["id"].as_str().unwrap().to_owned();
        let history = api
            .get(&format!("{key}/versions?environment=dev"), ADMIN)
            .await;
        let body = history.expect(200);
        assert_eq!(versions_of(body), [2, 1], "{backend}: newest first");
        assert_eq!(body["items"][0]["createdBy"], admin_id.as_str());
        assert!(!body.to_string().contains("s3cr3t"), "{backend}: {body}");
        let history = api
            .get(
                &format!("{key}/versions?environment=dev&reveal=true"),
                ADMIN,
            )
            .await;
        let body = history.expect(200);
        assert_eq!(body["items"][0]["value"], "s3cr3t-dev-two");
        assert_eq!(body["items"][1]["value"], "s3cr3t-dev-one");
        let first_page = api
            .get(&format!("{key}/versions?environment=dev&limit=1"), ADMIN)
            .await;
        let first_page = first_page.expect(200);
        assert_eq!(versions_of(first_page), [2]);
        let cursor = first_page["nextCursor"].as_str().expect("a second page");
        let second_page = api
            .get(
                &format!("{key}/versions?environment=dev&limit=1&cursor={cursor}"),
                ADMIN,
            )
            .await;
        let second_page = second_page.expect(200);
        assert_eq!(versions_of(second_page), [1], "{backend}");
        assert!(second_page.get("nextCursor").is_none());

        api.get(&format!("{key}/versions"), ADMIN).await.expect(400);
        api.get(&format!("{key}/versions?environment=staging"), ADMIN)
            .await
            .expect(400);
        api.get(&at(&project, "secrets", "MISSING"), ADMIN)
            .await
            .expect(404);
        api.get(
            &format!("{}?colour=red", at(&project, "secrets", "")),
            ADMIN,
        )
        .await
        .expect(400);

        // Clearing the note is a change; listing pages by key.
        let cleared = api
            .put(
                &key,
                ADMIN,
                json!({"values": {"dev": "s3cr3t-dev-two"}, "note": null}),
            )
            .await;
        assert_eq!(cleared.expect(200)["note"], Value::Null, "{backend}");
        for name in ["B_KEY", "C_KEY"] {
            api.put(
                &at(&project, "secrets", name),
                ADMIN,
                json!({"values": {"dev": "x"}}),
            )
            .await
            .expect(201);
        }
        let page = api
            .get(&format!("{}?limit=2", at(&project, "secrets", "")), ADMIN)
            .await;
        let page = page.expect(200);
        let keys: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["API_KEY", "B_KEY"], "{backend}");
        let cursor = page["nextCursor"].as_str().unwrap();
        let rest = api
            .get(
                &format!("{}?limit=2&cursor={cursor}", at(&project, "secrets", "")),
                ADMIN,
            )
            .await;
        assert_eq!(rest.expect(200)["items"][0]["key"], "C_KEY");
    }
}

#[tokio::test]
async fn invalid_requests_name_the_failing_field_and_never_echo_a_value() {
    for api in Api::all().await {
        let backend = api.backend();
        let (_, project) = setup(&api, "Validation").await;
        let key = at(&project, "secrets", "GOOD_KEY");

        let bad_key = api
            .put(
                &at(&project, "secrets", "1-bad"),
                ADMIN,
                json!({"values": {"dev": "v"}}),
            )
            .await;
        bad_key.expect(400);
        assert!(
            bad_key.body["detail"]
                .as_str()
                .unwrap()
                .contains("^[A-Za-z_][A-Za-z0-9_]*$"),
            "{backend}: {}",
            bad_key.body
        );
        let long = "K".repeat(257);
        api.put(
            &at(&project, "secrets", &long),
            ADMIN,
            json!({"values": {"dev": "v"}}),
        )
        .await
        .expect(400);

        api.put(&key, ADMIN, json!({"values": {"staging": "v"}}))
            .await
            .expect_field(400, "/values/staging");
        api.put(&key, ADMIN, json!({"values": {}}))
            .await
            .expect_field(400, "/values");
        api.put(&key, ADMIN, json!({"note": "no values"}))
            .await
            .expect_field(400, "/values");
        let oversized = format!("oversized-marker-{}", "Z".repeat(64 * 1024));
        let answer = api
            .put(&key, ADMIN, json!({"values": {"dev": oversized}}))
            .await;
        answer.expect_field(400, "/values/dev");
        assert!(
            !answer.body.to_string().contains("oversized-marker"),
            "{backend}: the value is echoed"
        );
        let answer = api
            .put(&key, ADMIN, json!({"values": {"dev": 918273645}}))
            .await;
        answer.expect_field(400, "/values/dev");
        assert!(!answer.body.to_string().contains("918273645"), "{backend}");
        let answer = api
            .put(
                &key,
                ADMIN,
                json!({"values": "a-secret-in-the-wrong-place"}),
            )
            .await;
        answer.expect_field(400, "/values");
        assert!(
            !answer
                .body
                .to_string()
                .contains("a-secret-in-the-wrong-place")
        );
        api.put(
            &key,
            ADMIN,
            json!({"values": {"dev": "v"}, "note": "n".repeat(1001)}),
        )
        .await
        .expect_field(400, "/note");
        api.put(
            &key,
            ADMIN,
            json!({"values": {"dev": "v"}, "colour": "red"}),
        )
        .await
        .expect_field(400, "/colour");

        // Nothing above was written.
        let listed = api.get(&at(&project, "secrets", ""), ADMIN).await;
        assert_eq!(listed.expect(200)["items"], json!([]), "{backend}");

        api.put(&key, ADMIN, json!({"values": {"dev": "v"}}))
            .await
            .expect(201);
        api.post(
            &format!("{key}/rollback"),
            ADMIN,
            json!({"environment": "staging", "version": 1}),
        )
        .await
        .expect_field(400, "/environment");
        api.post(
            &format!("{key}/rollback"),
            ADMIN,
            json!({"environment": "dev", "version": 1, "extra": true}),
        )
        .await
        .expect_field(400, "/extra");
    }
}

#[tokio::test]
async fn a_bulk_request_is_all_or_nothing() {
    for api in Api::all().await {
        let backend = api.backend();
        let (workspace, project) = setup(&api, "Bulk").await;
        let bulk = at(&project, "secrets", "");

        let bad_key = api
            .put(
                &bulk,
                ADMIN,
                json!({"items": [
                    {"key": "ONE", "values": {"dev": "bulk-value-1"}},
                    {"key": "TWO", "values": {"dev": "bulk-value-2"}},
                    {"key": "three-bad", "values": {"dev": "bulk-value-3"}},
                ]}),
            )
            .await;
        bad_key.expect_field(400, "/items/2/key");
        api.put(
            &bulk,
            ADMIN,
            json!({"items": [
                {"key": "ONE", "values": {"dev": "bulk-value-1"}},
                {"key": "TWO", "values": {"staging": "bulk-value-2"}},
            ]}),
        )
        .await
        .expect_field(400, "/items/1/values/staging");
        api.put(
            &bulk,
            ADMIN,
            json!({"items": [
                {"key": "ONE", "values": {"dev": "bulk-value-1"}},
                {"key": "ONE", "values": {"prod": "bulk-value-2"}},
            ]}),
        )
        .await
        .expect_field(400, "/items/1/key");
        api.put(
            &bulk,
            ADMIN,
            json!({"items": [{"key": "ONE", "values": {"dev": "v"}, "colour": "red"}]}),
        )
        .await
        .expect_field(400, "/items/0/colour");
        let too_many: Vec<Value> = (0..101)
            .map(|i| json!({"key": format!("K{i}"), "values": {"dev": "v"}}))
            .collect();
        api.put(&bulk, ADMIN, json!({"items": too_many}))
            .await
            .expect_field(400, "/items");
        api.put(&bulk, ADMIN, json!({"items": []}))
            .await
            .expect_field(400, "/items");

        let listed = api.get(&bulk, ADMIN).await;
        assert_eq!(
            listed.expect(200)["items"],
            json!([]),
            "{backend}: a rejected bulk wrote something"
        );
        assert!(
            events(&api, &workspace, "SECRET_").await.is_empty(),
            "{backend}: a rejected bulk recorded events"
        );

        let written = api
            .put(
                &bulk,
                ADMIN,
                json!({"items": [
                    {"key": "TWO", "values": {"dev": "bulk-value-2", "prod": "bulk-value-2p"}},
                    {"key": "ONE", "values": {"dev": "bulk-value-1"}, "note": "first"},
                ]}),
            )
            .await;
        let body = written.expect(200);
        let keys: Vec<&str> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["TWO", "ONE"], "{backend}: request order");
        assert!(
            !body.to_string().contains("bulk-value"),
            "{backend}: {body}"
        );
        let added = events(&api, &workspace, "SECRET_").await;
        assert_eq!(added.len(), 2, "{backend}: one event per key");
        assert!(added.iter().all(|e| e["type"] == "SECRET_ADDED"));

        // Updating one key and adding another: one event each, none for the unchanged one.
        api.put(
            &bulk,
            ADMIN,
            json!({"items": [
                {"key": "ONE", "values": {"dev": "bulk-value-1"}},
                {"key": "TWO", "values": {"dev": "bulk-value-2-new"}},
                {"key": "THREE", "values": {"prod": "bulk-value-3"}},
            ]}),
        )
        .await
        .expect(200);
        let types: Vec<String> = events(&api, &workspace, "SECRET_")
            .await
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            types,
            [
                "SECRET_ADDED",
                "SECRET_ADDED",
                "SECRET_ADDED",
                "SECRET_UPDATED"
            ],
            "{backend}"
        );
    }
}

#[tokio::test]
async fn a_key_or_one_environments_value_can_be_deleted() {
    for api in Api::all().await {
        let backend = api.backend();
        let (workspace, project) = setup(&api, "Deletion").await;
        let key = at(&project, "secrets", "TO_DELETE");
        api.put(
            &key,
            ADMIN,
            json!({"values": {"dev": "del-dev", "prod": "del-prod"}}),
        )
        .await
        .expect(201);
        api.put(&key, ADMIN, json!({"values": {"dev": "del-dev-2"}}))
            .await
            .expect(200);

        api.delete(&format!("{key}?environment=dev"), ADMIN)
            .await
            .expect(204);
        let left = api.get(&key, ADMIN).await;
        let envs = left.expect(200)["environments"]
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(
            envs.keys().collect::<Vec<_>>(),
            ["prod"],
            "{backend}: only prod is left"
        );
        let history = api
            .get(&format!("{key}/versions?environment=dev"), ADMIN)
            .await;
        assert_eq!(
            history.expect(200)["items"],
            json!([]),
            "{backend}: its versions are gone"
        );
        api.delete(&format!("{key}?environment=dev"), ADMIN)
            .await
            .expect(404);
        api.delete(&format!("{key}?environment=staging"), ADMIN)
            .await
            .expect(400);
        // A new value starts a new history.
        let again = api
            .put(&key, ADMIN, json!({"values": {"dev": "del-dev-3"}}))
            .await;
        assert_eq!(again.expect(200)["environments"]["dev"]["version"], 1);

        api.delete(&key, ADMIN).await.expect(204);
        api.get(&key, ADMIN).await.expect(404);
        api.delete(&key, ADMIN).await.expect(404);
        api.delete(&at(&project, "secrets", "bad-key"), ADMIN)
            .await
            .expect(400);

        let deleted: Vec<Value> = events(&api, &workspace, "SECRET_DELETED").await;
        assert_eq!(deleted.len(), 2, "{backend}");
        assert_eq!(deleted[0]["payload"]["environments"], json!(["dev"]));
        assert_eq!(deleted[0]["payload"]["keyDeleted"], false);
        assert_eq!(deleted[0]["environmentIds"].as_array().unwrap().len(), 1);
        assert_eq!(deleted[1]["payload"]["keyDeleted"], true);
        assert_eq!(deleted[1]["payload"]["key"], "TO_DELETE");
        assert!(deleted.iter().all(|e| e["severity"] == "WARN"), "{backend}");
    }
}

#[tokio::test]
async fn a_rollback_writes_a_new_version_with_the_old_value() {
    for api in Api::all().await {
        let backend = api.backend();
        let (workspace, project) = setup(&api, "Rollback").await;
        let key = at(&project, "secrets", "TOKEN");
        api.put(&key, ADMIN, json!({"values": {"dev": "first-value"}}))
            .await
            .expect(201);
        api.put(&key, ADMIN, json!({"values": {"dev": "second-value"}}))
            .await
            .expect(200);

        let rolled = api
            .post(
                &format!("{key}/rollback"),
                ADMIN,
                json!({"environment": "dev", "version": 1}),
            )
            .await;
        let body = rolled.expect(200);
        assert_eq!(body["environments"]["dev"]["version"], 3, "{backend}");
        assert!(!body.to_string().contains("first-value"));
        let history = api
            .get(
                &format!("{key}/versions?environment=dev&reveal=true"),
                ADMIN,
            )
            .await;
        let body = history.expect(200);
        assert_eq!(versions_of(body), [3, 2, 1], "{backend}");
        assert_eq!(body["items"][0]["value"], "first-value");
        assert_eq!(body["items"][1]["value"], "second-value");

        api.post(
            &format!("{key}/rollback"),
            ADMIN,
            json!({"environment": "dev", "version": 9}),
        )
        .await
        .expect(404);
        api.post(
            &format!("{key}/rollback"),
            ADMIN,
            json!({"environment": "prod", "version": 1}),
        )
        .await
        .expect(404);
        api.post(
            &at(&project, "secrets", "NOPE/rollback"),
            ADMIN,
            json!({"environment": "dev", "version": 1}),
        )
        .await
        .expect(404);

        let updates = events(&api, &workspace, "SECRET_UPDATED").await;
        assert_eq!(updates.len(), 2, "{backend}");
        assert_eq!(updates[1]["payload"]["rolledBackTo"], 1);
        assert_eq!(updates[1]["payload"]["environments"], json!({"dev": 3}));
    }
}

#[tokio::test]
async fn variables_work_the_same_and_are_separate_from_secrets() {
    for api in Api::all().await {
        let backend = api.backend();
        let (workspace, project) = setup(&api, "Variables").await;
        let key = at(&project, "variables", "PORT");
        let created = api
            .put(
                &key,
                ADMIN,
                json!({"values": {"dev": "8080", "prod": "80"}}),
            )
            .await;
        assert_eq!(created.expect(201)["environments"]["dev"]["version"], 1);
        api.put(&key, ADMIN, json!({"values": {"dev": "8081"}}))
            .await
            .expect(200);
        let listed = api.get(&at(&project, "variables", ""), ADMIN).await;
        let body = listed.expect(200);
        assert_eq!(body["items"][0]["environments"]["dev"]["version"], 2);
        assert!(
            body["items"][0]["environments"]["dev"]
                .get("value")
                .is_none()
        );
        let revealed = api.get(&format!("{key}?reveal=true"), ADMIN).await;
        assert_eq!(revealed.expect(200)["environments"]["dev"]["value"], "8081");
        let secrets = api.get(&at(&project, "secrets", ""), ADMIN).await;
        assert_eq!(
            secrets.expect(200)["items"],
            json!([]),
            "{backend}: a variable is not a secret"
        );
        api.get(&at(&project, "secrets", "PORT"), ADMIN)
            .await
            .expect(404);
        api.put(
            &at(&project, "variables", ""),
            ADMIN,
            json!({"items": [{"key": "HOST", "values": {"dev": "localhost"}}]}),
        )
        .await
        .expect(200);
        api.post(
            &format!("{key}/rollback"),
            ADMIN,
            json!({"environment": "dev", "version": 1}),
        )
        .await
        .expect(200);
        api.delete(&format!("{key}?environment=prod"), ADMIN)
            .await
            .expect(204);
        api.delete(&key, ADMIN).await.expect(204);
        let types: Vec<String> = events(&api, &workspace, "VARIABLE_")
            .await
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            types,
            [
                "VARIABLE_ADDED",
                "VARIABLE_UPDATED",
                "VARIABLE_ADDED",
                "VARIABLE_UPDATED",
                "VARIABLE_DELETED",
                "VARIABLE_DELETED"
            ],
            "{backend}"
        );
        assert!(events(&api, &workspace, "SECRET_").await.is_empty());
    }
}

#[tokio::test]
async fn every_change_records_an_event_without_values() {
    for api in Api::all().await {
        let backend = api.backend();
        let (workspace, project) = setup(&api, "Events").await;
        let key = at(&project, "secrets", "DB_PASSWORD");
        api.put(
            &key,
            ADMIN,
            json!({"values": {"dev": "ev-value-1", "prod": "ev-value-p"}}),
        )
        .await
        .expect(201);
        api.put(&key, ADMIN, json!({"values": {"dev": "ev-value-2"}}))
            .await
            .expect(200);
        api.put(&key, ADMIN, json!({"values": {"dev": "ev-value-2"}}))
            .await
            .expect(200);
        api.put(
            &key,
            ADMIN,
            json!({"values": {"dev": "ev-value-2"}, "note": "rotated"}),
        )
        .await
        .expect(200);
        api.delete(&key, ADMIN).await.expect(204);

        let types = api.event_types(&workspace).await;
        for expected in ["SECRET_ADDED", "SECRET_UPDATED", "SECRET_DELETED"] {
            assert!(types.iter().any(|t| t == expected), "{backend}: {types:?}");
        }
        let secret_events = events(&api, &workspace, "SECRET_").await;
        let kinds: Vec<&str> = secret_events
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "SECRET_ADDED",
                "SECRET_UPDATED",
                "SECRET_UPDATED",
                "SECRET_DELETED"
            ],
            "{backend}: an unchanged value records nothing"
        );
        let added = &secret_events[0];
        assert_eq!(added["payload"]["project"], project.as_str());
        assert_eq!(added["payload"]["key"], "DB_PASSWORD");
        assert_eq!(
            added["payload"]["environments"],
            json!({"dev": 1, "prod": 1})
        );
        assert_eq!(added["environmentIds"].as_array().unwrap().len(), 2);
        assert!(added["projectId"].is_string(), "{backend}: {added}");
        assert_eq!(
            secret_events[1]["payload"]["environments"],
            json!({"dev": 2})
        );
        assert_eq!(
            secret_events[1]["environmentIds"].as_array().unwrap().len(),
            1
        );
        assert_eq!(secret_events[2]["payload"]["noteChanged"], true);
        assert_eq!(secret_events[2]["payload"]["environments"], json!({}));
        let all = api
            .get(
                &format!("/api/v1/workspaces/{workspace}/events?limit=200"),
                ADMIN,
            )
            .await;
        assert!(
            !all.expect(200).to_string().contains("ev-value"),
            "{backend}: an event carries a value"
        );
    }
}

#[tokio::test]
async fn an_unknown_project_is_not_found() {
    for api in Api::all().await {
        for (method, path) in [
            ("GET", "/api/v1/projects/no-such-project/secrets"),
            ("GET", "/api/v1/projects/no-such-project/variables/KEY"),
            ("DELETE", "/api/v1/projects/no-such-project/secrets/KEY"),
        ] {
            let answer = api.call(method, path, ADMIN, None).await;
            assert_eq!(answer.status, 404, "{}: {method} {path}", api.backend());
        }
        api.put(
            "/api/v1/projects/no-such-project/secrets/KEY",
            ADMIN,
            json!({"values": {"dev": "v"}}),
        )
        .await
        .expect(404);
    }
}

#[tokio::test]
async fn the_openapi_document_describes_both_kinds() {
    let api = Api::sqlite().await;
    let document = api.get("/openapi.json", ADMIN).await;
    let paths = &document.expect(200)["paths"];
    let mut operation_ids = std::collections::HashSet::new();
    for kind in ["secrets", "variables"] {
        for (path, methods) in [
            (
                format!("/api/v1/projects/{{project}}/{kind}"),
                &["get", "put"][..],
            ),
            (
                format!("/api/v1/projects/{{project}}/{kind}/{{key}}"),
                &["get", "put", "delete"][..],
            ),
            (
                format!("/api/v1/projects/{{project}}/{kind}/{{key}}/versions"),
                &["get"][..],
            ),
            (
                format!("/api/v1/projects/{{project}}/{kind}/{{key}}/rollback"),
                &["post"][..],
            ),
        ] {
            for method in methods {
                let operation = &paths[&path][*method];
                assert!(operation.is_object(), "{method} {path} is not documented");
                let id = operation["operationId"].as_str().unwrap().to_owned();
                assert!(
                    operation_ids.insert(id.clone()),
                    "operationId {id} is used twice"
                );
                for (status, response) in operation["responses"].as_object().unwrap() {
                    assert!(
                        response["description"]
                            .as_str()
                            .is_some_and(|d| !d.is_empty()),
                        "{method} {path} {status} has no description"
                    );
                }
            }
        }
    }
}

/// On SQLite, the database file (and its write-ahead log) holds variable values in clear but
/// never a secret value.
#[tokio::test]
async fn secret_values_are_not_in_the_database_file() {
    let api = Api::sqlite().await;
    let (_, project) = setup(&api, "At Rest").await;
    let nonce = std::process::id();
    let secret = format!("s3cr3t-value-{nonce}-at-rest");
    let variable = format!("plain-variable-{nonce}-at-rest");
    api.put(
        &at(&project, "secrets", "AT_REST"),
        ADMIN,
        json!({"values": {"dev": secret}}),
    )
    .await
    .expect(201);
    api.put(
        &at(&project, "variables", "AT_REST"),
        ADMIN,
        json!({"values": {"dev": variable}}),
    )
    .await
    .expect(201);

    let path = api
        .db
        .url()
        .strip_prefix("sqlite://")
        .expect("a sqlite:// URL")
        .to_owned();
    let mut bytes = std::fs::read(&path).unwrap();
    if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
        bytes.extend(wal);
    }
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(
        contains(&variable),
        "the variable's value is not in {path}: the check reads the wrong file"
    );
    assert!(!contains(&secret), "a secret value is in clear in {path}");
}

/// A token limited to reading the project: it lists names but may not reveal, write or delete.
#[tokio::test]
async fn authorities_guard_reveal_and_changes() {
    for api in Api::all().await {
        let backend = api.backend();
        let (_, project) = setup(&api, "Rights").await;
        let key = at(&project, "secrets", "GUARDED");
        api.put(&key, ADMIN, json!({"values": {"dev": "guarded-value"}}))
            .await
            .expect(201);
        let limited = api
            .post(
                "/api/v1/me/tokens",
                ADMIN,
                json!({"name": "reader", "authorities": ["READ_PROJECT", "READ_VARIABLE", "CREATE_SECRET"]}),
            )
            .await;
        let token = limited.expect(201)["token"].as_str().unwrap().to_owned();

        let listed = api.get(&at(&project, "secrets", ""), &token).await;
        assert_eq!(
            listed.expect(200)["items"][0]["key"],
            "GUARDED",
            "{backend}"
        );
        api.get(
            &format!("{}?reveal=true", at(&project, "secrets", "")),
            &token,
        )
        .await
        .expect(403);
        api.get(&format!("{key}?reveal=true"), &token)
            .await
            .expect(403);
        api.get(
            &format!("{key}/versions?environment=dev&reveal=true"),
            &token,
        )
        .await
        .expect(403);
        api.get(&format!("{key}/versions?environment=dev"), &token)
            .await
            .expect(200);
        // CREATE_SECRET creates new keys but does not update existing ones.
        api.put(&key, &token, json!({"values": {"dev": "overwritten"}}))
            .await
            .expect(403);
        api.put(
            &at(&project, "secrets", ""),
            &token,
            json!({"items": [
                {"key": "BRAND_NEW", "values": {"dev": "n"}},
                {"key": "GUARDED", "values": {"dev": "overwritten"}},
            ]}),
        )
        .await
        .expect(403);
        api.put(
            &at(&project, "secrets", "BRAND_NEW"),
            &token,
            json!({"values": {"dev": "n"}}),
        )
        .await
        .expect(201);
        api.post(
            &format!("{key}/rollback"),
            &token,
            json!({"environment": "dev", "version": 1}),
        )
        .await
        .expect(403);
        api.delete(&key, &token).await.expect(403);
        // Variables have their own authorities.
        api.put(
            &at(&project, "variables", "V"),
            &token,
            json!({"values": {"dev": "v"}}),
        )
        .await
        .expect(403);
        api.put(
            &at(&project, "variables", "V"),
            ADMIN,
            json!({"values": {"dev": "v"}}),
        )
        .await
        .expect(201);
        api.get(
            &format!("{}?reveal=true", at(&project, "variables", "")),
            &token,
        )
        .await
        .expect(200);

        let revealed = api.get(&format!("{key}?reveal=true"), ADMIN).await;
        assert_eq!(
            revealed.expect(200)["environments"]["dev"]["value"],
            "guarded-value",
            "{backend}: a refused write changed the value"
        );
    }
}
