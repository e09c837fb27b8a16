//! State-based sync end to end: the real server, its workers and the Vercel fake (which keeps
//! the project's variables like Vercel does), on SQLite and PostgreSQL.

use std::time::{Duration, Instant};

use keywire_test_support::vercel::FakeVercel;
use serde_json::{Value, json};

use crate::support::{ADMIN, Api};

const SECRET_PROD: &str = "pr0d-db-url-canary-7Qx";
const SECRET_DEV: &str = "d3v-db-url-canary-2Lk";

fn secrets(project: &str, key: &str) -> String {
    format!("/api/v1/projects/{project}/secrets/{key}")
}

/// Waits until the integration has no pending or running run; returns its runs, newest first.
async fn settled(api: &Api, slug: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runs = api
            .get(
                &format!("/api/v1/integrations/{slug}/runs?limit=200"),
                ADMIN,
            )
            .await;
        let items = runs.expect(200)["items"].as_array().unwrap().clone();
        let busy = items
            .iter()
            .any(|r| r["status"] == "pending" || r["status"] == "running");
        if !busy {
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "{}: runs did not settle: {items:?}",
            api.backend()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn plan(api: &Api, slug: &str) -> Value {
    let answer = api
        .post(
            &format!("/api/v1/integrations/{slug}/sync?dryRun=true"),
            ADMIN,
            json!({}),
        )
        .await;
    answer.expect(200).clone()
}

/// (target/key, action) of a plan, in its order.
fn actions(plan: &Value) -> Vec<(String, String)> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                format!(
                    "{}/{}",
                    c["target"].as_str().unwrap(),
                    c["key"].as_str().unwrap()
                ),
                c["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn value_at(vercel: &FakeVercel, key: &str, target: &str) -> Option<String> {
    vercel.var_at(key, target).map(|v| v.value)
}

#[tokio::test]
async fn vercel_sync_follows_keywire_and_never_touches_what_it_did_not_write() {
    let vercel = FakeVercel::start();
    let overrides = format!("{}={}", keywire_test_support::vercel::ORIGIN, vercel.url());
    for api in Api::all_with_env(&[
        ("KEYWIRE_TEST_ORIGIN_OVERRIDES", overrides.as_str()),
        ("KEYWIRE_LOG", "debug"),
        ("KEYWIRE_SYNC_DEBOUNCE", "300ms"),
        ("KEYWIRE_POLL_INTERVAL", "100ms"),
    ])
    .await
    {
        let backend = api.backend();
        let ws = api.workspace(&format!("Sync {backend}")).await;
        let project = api.project(&ws, &format!("Web {backend}")).await;
        // Someone else's variables at the target.
        let unrelated = format!("UNRELATED_{}", backend.to_uppercase());
        vercel.seed(&unrelated, "theirs", "plain", &["production"]);
        let taken = format!("APP_TAKEN_{}", backend.to_uppercase());
        vercel.seed(&taken, "theirs", "encrypted", &["production"]);
        let db_url = format!("APP_DB_URL_{}", backend.to_uppercase());
        let key = |k: &str| format!("{k}_{}", backend.to_uppercase());

        api.put(
            &secrets(&project, &key("DB_URL")),
            ADMIN,
            json!({"values": {"dev": SECRET_DEV, "prod": SECRET_PROD}}),
        )
        .await
        .expect(201);
        api.put(
            &secrets(&project, &key("TAKEN")),
            ADMIN,
            json!({"values": {"prod": "mine-canary-9"}}),
        )
        .await
        .expect(201);
        api.put(
            &format!("/api/v1/projects/{project}/variables/{}", key("LOG_LEVEL")),
            ADMIN,
            json!({"values": {"prod": "info"}}),
        )
        .await
        .expect(201);

        // Created disabled, so the plan can be read before anything is written.
        let created = api
            .post(
                &format!("/api/v1/workspaces/{ws}/integrations"),
                ADMIN,
                json!({
                    "name": "Vercel web",
                    "type": "vercel",
                    "notifyOn": ["SECRET_ADDED", "SECRET_UPDATED", "SECRET_DELETED", "VARIABLE_ADDED", "VARIABLE_UPDATED", "VARIABLE_DELETED"],
                    "actions": ["upsert", "delete"],
                    "projectSlug": project,
                    "environmentSlugs": ["dev", "prod"],
                    "metadata": vercel.metadata(),
                    "sync": {"keyTemplate": "APP_{{key}}", "targets": {"dev": "development", "prod": "production"}},
                    "enabled": false
                }),
            )
            .await;
        let body = created.expect(201).clone();
        let slug = body["slug"].as_str().unwrap().to_owned();
        assert_eq!(
            body["sync"],
            json!({"keyTemplate": "APP_{{key}}", "onConflict": "skip", "targets": {"dev": "development", "prod": "production"}}),
            "{backend}"
        );

        let first = plan(&api, &slug).await;
        assert_eq!(
            actions(&first),
            vec![
                (format!("development/{db_url}"), "create".to_owned()),
                (format!("production/{db_url}"), "create".to_owned()),
                (
                    format!("production/APP_LOG_LEVEL_{}", backend.to_uppercase()),
                    "create".to_owned()
                ),
                (format!("production/{taken}"), "skip".to_owned()),
            ],
            "{backend}: {first}"
        );
        assert!(
            !first.to_string().contains("canary"),
            "{backend}: a value in the plan {first}"
        );
        assert!(
            vercel.var_at(&db_url, "production").is_none(),
            "dry run wrote"
        );

        // Enabling it queues a full sync.
        api.patch(
            &format!("/api/v1/integrations/{slug}"),
            ADMIN,
            json!({"enabled": true}),
        )
        .await
        .expect(200);
        let runs = settled(&api, &slug).await;
        assert!(
            runs.iter()
                .all(|r| r["kind"] == "sync" && r["status"] == "succeeded"),
            "{backend}: {runs:?}"
        );
        assert_eq!(
            value_at(&vercel, &db_url, "production").as_deref(),
            Some(SECRET_PROD)
        );
        assert_eq!(
            value_at(&vercel, &db_url, "development").as_deref(),
            Some(SECRET_DEV)
        );
        assert_eq!(
            value_at(&vercel, &unrelated, "production").as_deref(),
            Some("theirs")
        );
        assert_eq!(
            value_at(&vercel, &taken, "production").as_deref(),
            Some("theirs")
        );
        assert_eq!(
            vercel.var_at(&db_url, "production").unwrap().kind,
            "encrypted",
            "secrets are encrypted at Vercel"
        );
        assert_eq!(
            vercel
                .var_at(
                    &format!("APP_LOG_LEVEL_{}", backend.to_uppercase()),
                    "production"
                )
                .unwrap()
                .kind,
            "plain"
        );
        assert!(
            actions(&plan(&api, &slug).await)
                .iter()
                .all(|(k, a)| a == "unchanged" || k.ends_with(&taken)),
            "{backend}: in sync after the first run"
        );

        // A secret change arrives.
        api.put(
            &secrets(&project, &key("DB_URL")),
            ADMIN,
            json!({"values": {"prod": "pr0d-v2-canary"}}),
        )
        .await
        .expect(200);
        settled(&api, &slug).await;
        assert_eq!(
            value_at(&vercel, &db_url, "production").as_deref(),
            Some("pr0d-v2-canary")
        );

        // Renaming an environment changes nothing at the target.
        api.patch(
            &format!("/api/v1/projects/{project}/environments/prod"),
            ADMIN,
            json!({"name": "Production"}),
        )
        .await
        .expect(200);
        assert!(
            actions(&plan(&api, &slug).await)
                .iter()
                .all(|(k, a)| a == "unchanged" || k.ends_with(&taken)),
            "{backend}: a rename changed the plan"
        );

        // Deleting a variable with the `delete` action deletes it at the target.
        api.delete(
            &format!("/api/v1/projects/{project}/variables/{}", key("LOG_LEVEL")),
            ADMIN,
        )
        .await
        .expect(204);
        settled(&api, &slug).await;
        assert!(
            vercel
                .var_at(
                    &format!("APP_LOG_LEVEL_{}", backend.to_uppercase()),
                    "production"
                )
                .is_none(),
            "{backend}: the deleted variable is still at Vercel"
        );

        // Without `delete`, a deleted secret stays, reported as `keep`.
        api.patch(
            &format!("/api/v1/integrations/{slug}"),
            ADMIN,
            json!({"actions": ["upsert"]}),
        )
        .await
        .expect(200);
        settled(&api, &slug).await;
        api.delete(&secrets(&project, &key("TAKEN")), ADMIN)
            .await
            .expect(204);
        api.put(
            &secrets(&project, &key("GONE_SOON")),
            ADMIN,
            json!({"values": {"prod": "short-lived-canary"}}),
        )
        .await
        .expect(201);
        settled(&api, &slug).await;
        let gone_soon = format!("APP_GONE_SOON_{}", backend.to_uppercase());
        assert!(vercel.var_at(&gone_soon, "production").is_some());
        api.delete(&secrets(&project, &key("GONE_SOON")), ADMIN)
            .await
            .expect(204);
        settled(&api, &slug).await;
        assert!(
            vercel.var_at(&gone_soon, "production").is_some(),
            "{backend}: deleted without the delete action"
        );
        let kept = plan(&api, &slug).await;
        assert!(
            actions(&kept).contains(&(format!("production/{gone_soon}"), "keep".to_owned())),
            "{backend}: {kept}"
        );
        assert_eq!(
            value_at(&vercel, &taken, "production").as_deref(),
            Some("theirs"),
            "a foreign key was touched"
        );

        // Deleting an environment removes what it put there (with `delete`).
        api.patch(
            &format!("/api/v1/integrations/{slug}"),
            ADMIN,
            json!({"actions": ["upsert", "delete"]}),
        )
        .await
        .expect(200);
        settled(&api, &slug).await;
        assert!(vercel.var_at(&gone_soon, "production").is_none());
        api.delete(
            &format!("/api/v1/projects/{project}/environments/dev"),
            ADMIN,
        )
        .await
        .expect(204);
        settled(&api, &slug).await;
        assert!(
            vercel.var_at(&db_url, "development").is_none(),
            "{backend}: the deleted environment's key is still at Vercel"
        );
        assert!(vercel.var_at(&db_url, "production").is_some());

        // 100 rapid changes: far fewer syncs than events, and the target ends at the last value.
        let before = settled(&api, &slug).await.len();
        for i in 0..100 {
            api.put(
                &secrets(&project, &key("DB_URL")),
                ADMIN,
                json!({"values": {"prod": format!("rapid-{i}-canary")}}),
            )
            .await
            .expect(200);
        }
        let after = settled(&api, &slug).await.len();
        let syncs = after - before;
        eprintln!("{backend}: {syncs} sync runs carried 100 changes");
        assert!(
            (1..50).contains(&syncs),
            "{backend}: {syncs} sync runs for 100 changes"
        );
        assert_eq!(
            value_at(&vercel, &db_url, "production").as_deref(),
            Some("rapid-99-canary")
        );

        // Every run's log summarises names and counts, never a value.
        for run in settled(&api, &slug).await.iter().take(5) {
            let detail = api
                .get(
                    &format!(
                        "/api/v1/integrations/{slug}/runs/{}",
                        run["id"].as_str().unwrap()
                    ),
                    ADMIN,
                )
                .await;
            let text = detail.expect(200).to_string();
            assert!(!text.contains("canary"), "{backend}: a value in {text}");
        }

        // Deleting with cleanup removes every key keywire wrote, and nothing else.
        api.delete(&format!("/api/v1/integrations/{slug}?cleanup=true"), ADMIN)
            .await
            .expect(204);
        assert!(vercel.var_at(&db_url, "production").is_none());
        assert_eq!(
            value_at(&vercel, &unrelated, "production").as_deref(),
            Some("theirs")
        );
        assert_eq!(
            value_at(&vercel, &taken, "production").as_deref(),
            Some("theirs")
        );
        let log = format!("{}{}", api.server.stderr(), api.server.stdout());
        for canary in [
            SECRET_PROD,
            SECRET_DEV,
            "rapid-99-canary",
            keywire_test_support::vercel::TOKEN,
        ] {
            assert!(!log.contains(canary), "{backend}: `{canary}` in the log");
        }
    }
}

#[tokio::test]
async fn sync_settings_are_checked_and_name_the_field() {
    let vercel = FakeVercel::start();
    let overrides = format!("{}={}", keywire_test_support::vercel::ORIGIN, vercel.url());
    let api = Api::with_env(
        keywire_test_support::TestDb::sqlite().await,
        &[("KEYWIRE_TEST_ORIGIN_OVERRIDES", overrides.as_str())],
    );
    let ws = api.workspace("Checks").await;
    let project = api.project(&ws, "Web").await;
    let body = |sync: Value| {
        json!({
            "name": "V",
            "type": "vercel",
            "notifyOn": ["SECRET_UPDATED"],
            "actions": ["upsert"],
            "projectSlug": project,
            "environmentSlugs": ["dev", "prod"],
            "metadata": vercel.metadata(),
            "sync": sync,
        })
    };
    let path = format!("/api/v1/workspaces/{ws}/integrations?validate=false");
    for (sync, pointer) in [
        (json!({"keyTemplate": "APP_"}), "/sync/keyTemplate"),
        (json!({"onConflict": "overwrite"}), "/sync/onConflict"),
        (
            json!({"targets": {"qa": "preview", "dev": "development", "prod": "production"}}),
            "/sync/targets/qa",
        ),
        (
            json!({"targets": {"dev": "staging", "prod": "production"}}),
            "/sync/targets/dev",
        ),
        (
            json!({"targets": {"dev": "production", "prod": "production"}}),
            "/sync/targets/prod",
        ),
        (
            json!({"targets": {"dev": "development"}}),
            "/sync/targets/prod",
        ),
    ] {
        api.post(&path, ADMIN, body(sync.clone()))
            .await
            .expect_field(400, pointer);
    }
    api.post(&path, ADMIN, body(json!({"colour": 1})))
        .await
        .expect(400);
    // Communication types do not sync.
    let discord = json!({
        "name": "D",
        "type": "discord",
        "notifyOn": ["SECRET_UPDATED"],
        "metadata": {"webhookUrl": "https://discord.com/api/webhooks/1/abc"},
        "sync": {"keyTemplate": "{{key}}"},
    });
    api.post(&path, ADMIN, discord)
        .await
        .expect_field(400, "/sync");
    let ok = api
        .post(
            &path,
            ADMIN,
            body(json!({"targets": {"dev": "development", "prod": "production"}})),
        )
        .await;
    let slug = ok.expect(201)["slug"].as_str().unwrap().to_owned();
    // The dry run of a communication integration is refused.
    let d = api
        .post(
            &path,
            ADMIN,
            json!({
                "name": "D2",
                "type": "discord",
                "notifyOn": ["SECRET_UPDATED"],
                "metadata": {"webhookUrl": "https://discord.com/api/webhooks/1/abc"},
            }),
        )
        .await;
    let discord_slug = d.expect(201)["slug"].as_str().unwrap().to_owned();
    api.post(
        &format!("/api/v1/integrations/{discord_slug}/sync?dryRun=true"),
        ADMIN,
        json!({}),
    )
    .await
    .expect(400);
    // A patch that maps a new environment must give it a target.
    api.post(
        &format!("/api/v1/projects/{project}/environments"),
        ADMIN,
        json!({"name": "qa"}),
    )
    .await
    .expect(201);
    api.patch(
        &format!("/api/v1/integrations/{slug}?validate=false"),
        ADMIN,
        json!({"environmentSlugs": ["dev", "prod", "qa"]}),
    )
    .await
    .expect_field(400, "/sync/targets/qa");
    api.patch(
        &format!("/api/v1/integrations/{slug}?validate=false"),
        ADMIN,
        json!({"environmentSlugs": ["dev", "prod", "qa"], "sync": {"targets": {"dev": "development", "prod": "production", "qa": "preview"}}}),
    )
    .await
    .expect(200);
    // Manual sync: 202 with the run; a second one coalesces into it while it waits.
    let queued = api
        .post(
            &format!("/api/v1/integrations/{slug}/sync"),
            ADMIN,
            json!({}),
        )
        .await;
    assert_eq!(queued.expect(202)["run"]["kind"], "sync");
}

/// GitHub Actions, GitLab CI and AWS Lambda through the API: the fakes end equal to keywire's
/// state, and what someone else put there stays.
#[tokio::test]
async fn every_provider_ends_equal_to_keywire_and_keeps_foreign_keys() {
    use keywire_test_support::{
        github::FakeGitHub, gitlab, gitlab::FakeGitLab, lambda, lambda::FakeLambda,
    };
    let github = FakeGitHub::start();
    let gitlab = FakeGitLab::start();
    let lambda = FakeLambda::start();
    for api in Api::all_with_env(&[
        ("KEYWIRE_OUTBOUND_ALLOW", "127.0.0.1/32"),
        ("KEYWIRE_SYNC_DEBOUNCE", "200ms"),
        ("KEYWIRE_POLL_INTERVAL", "100ms"),
    ])
    .await
    {
        let backend = api.backend();
        let up = backend.to_uppercase();
        let ws = api.workspace(&format!("Providers {backend}")).await;
        let project = api.project(&ws, &format!("Api {backend}")).await;
        let foreign = format!("FOREIGN_{up}");
        github.put_secret("", &foreign, "theirs");
        gitlab.seed(gitlab::Variable::new(
            &foreign,
            "theirs-value",
            "production",
        ));
        let mut existing: Vec<(String, String)> = lambda.variables().into_iter().collect();
        existing.push((foreign.clone(), "theirs".into()));
        let pairs: Vec<(&str, &str)> = existing
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        lambda.set_variables(&pairs);

        let api_key = format!("API_KEY_{up}");
        let mode = format!("MODE_{up}");
        api.put(
            &secrets(&project, &api_key),
            ADMIN,
            json!({"values": {"prod": "first-Secret-Value-1"}}),
        )
        .await
        .expect(201);
        api.put(
            &format!("/api/v1/projects/{project}/variables/{mode}"),
            ADMIN,
            json!({"values": {"prod": "fast"}}),
        )
        .await
        .expect(201);

        let events = json!([
            "SECRET_ADDED",
            "SECRET_UPDATED",
            "SECRET_DELETED",
            "VARIABLE_ADDED",
            "VARIABLE_UPDATED",
            "VARIABLE_DELETED"
        ]);
        let mut slugs = Vec::new();
        for (name, kind, metadata, sync) in [
            (
                "GitHub",
                "github_actions",
                json!({"token": keywire_test_support::github::TOKEN, "owner": keywire_test_support::github::OWNER, "repo": keywire_test_support::github::REPO, "apiBaseUrl": github.url()}),
                json!({}),
            ),
            (
                "GitLab",
                "gitlab_ci",
                gitlab.metadata(),
                json!({"targets": {"prod": "production"}}),
            ),
            (
                "Lambda",
                "aws_lambda",
                json!({"region": lambda::REGION, "functionName": lambda::FUNCTION, "accessKeyId": lambda::ACCESS_KEY_ID, "secretAccessKey": lambda::SECRET_ACCESS_KEY, "endpointUrl": lambda.url()}),
                json!({}),
            ),
        ] {
            let created = api
                .post(
                    &format!("/api/v1/workspaces/{ws}/integrations"),
                    ADMIN,
                    json!({
                        "name": name,
                        "type": kind,
                        "notifyOn": events,
                        "actions": ["upsert", "delete", "cleanup_on_remove"],
                        "projectSlug": project,
                        "environmentSlugs": ["prod"],
                        "metadata": metadata,
                        "sync": sync,
                    }),
                )
                .await;
            let body = created.expect(201);
            assert!(
                !body.to_string().contains("theirs")
                    && !body
                        .to_string()
                        .contains(keywire_test_support::github::TOKEN),
                "{backend}: {body}"
            );
            slugs.push(body["slug"].as_str().unwrap().to_owned());
        }
        let settle_all = async || {
            for slug in &slugs {
                let runs = settled(&api, slug).await;
                assert!(
                    runs.iter().all(|r| r["status"] == "succeeded"),
                    "{backend} {slug}: {runs:?}"
                );
            }
        };
        settle_all().await;
        let check = |secret: Option<&str>, variable: Option<&str>| {
            assert_eq!(
                github.secret_value("", &api_key).as_deref(),
                secret,
                "{backend}: github secret"
            );
            assert_eq!(
                github.variables("").get(&mode).map(String::as_str),
                variable,
                "{backend}: github variable"
            );
            assert_eq!(
                gitlab
                    .get(&api_key, "production")
                    .map(|v| v.value)
                    .as_deref(),
                secret,
                "{backend}: gitlab secret"
            );
            assert_eq!(
                gitlab.get(&mode, "production").map(|v| v.value).as_deref(),
                variable,
                "{backend}: gitlab variable"
            );
            let vars = lambda.variables();
            assert_eq!(
                vars.get(&api_key).map(String::as_str),
                secret,
                "{backend}: lambda secret"
            );
            assert_eq!(
                vars.get(&mode).map(String::as_str),
                variable,
                "{backend}: lambda variable"
            );
            assert_eq!(github.secret_value("", &foreign).as_deref(), Some("theirs"));
            assert_eq!(
                gitlab
                    .get(&foreign, "production")
                    .map(|v| v.value)
                    .as_deref(),
                Some("theirs-value")
            );
            assert_eq!(vars.get(&foreign).map(String::as_str), Some("theirs"));
        };
        check(Some("first-Secret-Value-1"), Some("fast"));
        let masked = gitlab.get(&api_key, "production").unwrap();
        assert!(masked.masked, "{backend}: gitlab secrets are masked");

        api.put(
            &secrets(&project, &api_key),
            ADMIN,
            json!({"values": {"prod": "second-Secret-Value-2"}}),
        )
        .await
        .expect(200);
        api.delete(
            &format!("/api/v1/projects/{project}/variables/{mode}"),
            ADMIN,
        )
        .await
        .expect(204);
        settle_all().await;
        check(Some("second-Secret-Value-2"), None);

        // Deleting the integrations (`cleanup_on_remove`) takes back exactly what they wrote.
        for slug in &slugs {
            api.delete(&format!("/api/v1/integrations/{slug}"), ADMIN)
                .await
                .expect(204);
        }
        check(None, None);
    }
}
