//! Integrations over HTTP: every create check, live checks against local provider fakes,
//! credentials on every route and in the logs, pagination, partial updates, events,
//! authorities, cascades, the dry run, test deliveries, the OpenAPI document and the
//! documented examples.

use std::collections::BTreeSet;
use std::sync::Arc;

use keywire_test_support::discord::{self, WEBHOOK_ID, WEBHOOK_TOKEN};
use keywire_test_support::fake::{FakeResponse, FakeServer};
use serde_json::{Value, json};

use crate::support::{ADMIN, Answer, Api};

/// A Discord token the fake does not know.
const WRONG_TOKEN: &str = "wrongTokenWrongToken-0123456789abcdefXYZ";
/// A webhook signing secret (`whsec_` + base64 of the key below).
const SIGNING_SECRET: &str = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LWZvci1rZXl3aXJlLXRlc3Rz";
const SIGNING_KEY: &[u8] = b"secret-signing-key-for-keywire-tests";

fn wrong_url() -> String {
    format!("https://discord.com/api/webhooks/{WEBHOOK_ID}/{WRONG_TOKEN}")
}

/// Every credential the tests use: none may appear in an answer or a log line.
fn credentials() -> Vec<String> {
    vec![
        WEBHOOK_TOKEN.to_owned(),
        discord::webhook_url(),
        WRONG_TOKEN.to_owned(),
        SIGNING_SECRET.to_owned(),
        SIGNING_SECRET.trim_start_matches("whsec_").to_owned(),
    ]
}

/// Asserts that an answer holds no credential, and returns it.
#[track_caller]
fn clean(answer: Answer) -> Answer {
    let text = answer.body.to_string();
    for secret in credentials() {
        assert!(
            !text.contains(&secret),
            "a credential leaked into an answer: {text}"
        );
    }
    answer
}

#[track_caller]
fn assert_log_clean(api: &Api) {
    let log = api.server.stderr();
    assert!(
        log.contains("DEBUG"),
        "the server should log at debug level here"
    );
    for secret in credentials() {
        assert!(
            !log.contains(&secret),
            "a credential leaked into the log ({}):\n{log}",
            api.backend()
        );
    }
}

/// Servers (one per backend) that send `https://discord.com` to `fake` and log at debug level.
async fn servers_for(fake: &FakeServer) -> Vec<Api> {
    let overrides = format!("https://discord.com={}", fake.url());
    Api::all_with_env(&[
        ("KEYWIRE_TEST_ORIGIN_OVERRIDES", overrides.as_str()),
        ("KEYWIRE_LOG", "debug"),
    ])
    .await
}

/// `base` with the top-level fields of `changes` set (or removed when `null`).
fn with(base: &Value, changes: Value) -> Value {
    let mut out = base.clone();
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            out.as_object_mut().unwrap().remove(key);
        } else {
            out[key] = value.clone();
        }
    }
    out
}

fn discord_body(name: &str) -> Value {
    json!({
        "name": name,
        "type": "discord",
        "notifyOn": ["SECRET_UPDATED", "SECRET_ADDED"],
        "metadata": {"webhookUrl": discord::webhook_url()},
    })
}

fn pointers(answer: &Answer) -> Vec<String> {
    answer.body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["pointer"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn slugs(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["slug"].as_str().unwrap().to_owned())
        .collect()
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Events of one type in a workspace, newest first.
async fn events(api: &Api, ws: &str, event_type: &str) -> Vec<Value> {
    let answer = api
        .get(
            &format!("/api/v1/workspaces/{ws}/events?type={event_type}&limit=200"),
            ADMIN,
        )
        .await;
    answer.expect(200)["items"].as_array().unwrap().clone()
}

/// Creates a user as the admin; returns its token.
async fn user(api: &Api, name: &str) -> String {
    let created = api
        .post("/api/v1/users", ADMIN, json!({"name": name}))
        .await;
    created.expect(201)["token"].as_str().unwrap().to_owned()
}

/// Creates a role and adds `user` with it to `ws`, as the admin.
async fn member(api: &Api, ws: &str, user: &str, authorities: &[&str], projects: Option<&[&str]>) {
    let mut role = json!({"name": format!("{user} role"), "authorities": authorities});
    if let Some(projects) = projects {
        role["projects"] = json!(projects);
    }
    let created = api
        .post(&format!("/api/v1/workspaces/{ws}/roles"), ADMIN, role)
        .await;
    let slug = created.expect(201)["slug"].as_str().unwrap().to_owned();
    api.post(
        &format!("/api/v1/workspaces/{ws}/members"),
        ADMIN,
        json!({"user": user, "roles": [slug]}),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn every_create_check_answers_with_its_own_problem_naming_the_field() {
    for api in Api::all().await {
        let backend = api.backend();
        let ws = api.workspace("Acme").await;
        let shop = api.project(&ws, "Shop").await;
        let other = api.workspace("Other").await;
        let foreign = api.project(&other, "Foreign").await;
        api.post(
            &format!("/api/v1/workspaces/{ws}/projects"),
            ADMIN,
            json!({"name": "Blog", "environments": [{"name": "staging"}]}),
        )
        .await
        .expect(201);
        let path = format!("/api/v1/workspaces/{ws}/integrations?validate=false");
        let good = discord_body("Alerts");
        let post = |body: Value| {
            let api = &api;
            let path = &path;
            async move { api.post(path, ADMIN, body).await }
        };

        let unknown = post(with(&good, json!({"type": "carrier-pigeon"}))).await;
        unknown.expect_field(400, "/type");
        let detail = unknown.body["errors"][0]["detail"].as_str().unwrap();
        assert!(
            detail.contains("known: ") && detail.contains("discord") && detail.contains("webhook"),
            "{backend}: {detail}"
        );

        let events = post(with(
            &good,
            json!({"notifyOn": ["SECRET_UPDATED", "SECRET_EXPLODED", "PROJECT_CREATED", "NOPE"]}),
        ))
        .await;
        assert_eq!(events.status, 400, "{backend}");
        assert_eq!(
            pointers(&events),
            ["/notifyOn/1", "/notifyOn/3"],
            "every offender is named"
        );
        post(with(&good, json!({"notifyOn": []})))
            .await
            .expect_field(400, "/notifyOn");
        post(with(&good, json!({"notifyOn": null})))
            .await
            .expect_field(400, "/notifyOn");
        post(with(&good, json!({"actions": ["upsert", "redeploy"]})))
            .await
            .expect_field(400, "/actions/1");

        // Scope: environments need a project; they must be the project's, once each.
        post(with(&good, json!({"environmentSlugs": ["prod"]})))
            .await
            .expect_field(400, "/environmentSlugs");
        let strangers = post(with(
            &good,
            json!({"projectSlug": shop, "environmentSlugs": ["prod", "staging", "prod", "nowhere"]}),
        ))
        .await;
        assert_eq!(strangers.status, 400, "{backend}: {}", strangers.body);
        assert_eq!(
            pointers(&strangers),
            [
                "/environmentSlugs/1",
                "/environmentSlugs/2",
                "/environmentSlugs/3"
            ],
            "an environment of another project is refused (keyshade does not check this)"
        );
        // Projects that do not exist or are in another workspace: 404.
        post(with(&good, json!({"projectSlug": "nope"})))
            .await
            .expect(404);
        let elsewhere = post(with(&good, json!({"projectSlug": foreign}))).await;
        elsewhere.expect(404);
        assert!(
            elsewhere.body["detail"]
                .as_str()
                .unwrap()
                .contains("/projectSlug"),
            "{}",
            elsewhere.body
        );

        // Metadata: missing, unknown, wrong type, bad value; never echoed.
        post(with(&good, json!({"metadata": {}})))
            .await
            .expect_field(400, "/metadata/webhookUrl");
        post(with(
            &good,
            json!({"metadata": {"webhookUrl": discord::webhook_url(), "bogus": 1}}),
        ))
        .await
        .expect_field(400, "/metadata/bogus");
        post(with(&good, json!({"metadata": {"webhookUrl": 5}})))
            .await
            .expect_field(400, "/metadata/webhookUrl");
        let evil = format!("https://evil.example/api/webhooks/{WEBHOOK_ID}/{WRONG_TOKEN}");
        let bad_host = clean(post(with(&good, json!({"metadata": {"webhookUrl": evil}}))).await);
        bad_host.expect_field(400, "/metadata/webhookUrl");
        assert!(
            !bad_host.body.to_string().contains("evil.example"),
            "{}",
            bad_host.body
        );
        post(with(&good, json!({"metadata": "https://discord.com"})))
            .await
            .expect_field(400, "/metadata");

        post(with(&good, json!({"name": ""})))
            .await
            .expect_field(400, "/name");
        post(with(&good, json!({"name": "a/b"})))
            .await
            .expect_field(400, "/name");
        post(with(&good, json!({"colour": "red"})))
            .await
            .expect_field(400, "/colour");
        post(with(&good, json!({"enabled": "yes"})))
            .await
            .expect_field(400, "/enabled");

        // Nothing was written by any of these.
        let list = api
            .get(&format!("/api/v1/workspaces/{ws}/integrations"), ADMIN)
            .await;
        assert_eq!(list.expect(200)["items"], json!([]), "{backend}");
        assert!(
            !api.event_types(&ws)
                .await
                .contains(&"INTEGRATION_ADDED".to_owned())
        );

        let created = clean(post(good.clone()).await);
        assert_eq!(created.expect(201)["slug"], "alerts", "{backend}");
        let twice = post(good.clone()).await;
        assert_eq!(twice.expect(409)["code"], "conflict");
        assert!(
            twice.body["detail"]
                .as_str()
                .unwrap()
                .contains("already has an integration named `Alerts`")
        );
        // The same name in another workspace is fine; the slug is global, so it differs.
        let elsewhere = api
            .post(
                &format!("/api/v1/workspaces/{other}/integrations?validate=false"),
                ADMIN,
                good.clone(),
            )
            .await;
        assert_eq!(elsewhere.expect(201)["slug"], "alerts-2", "{backend}");

        // The dry run refuses only malformed requests.
        let dry = "/api/v1/integrations/validate";
        api.post(dry, ADMIN, json!([1])).await.expect_field(400, "");
        api.post(dry, ADMIN, good.clone())
            .await
            .expect_field(400, "/workspace");
        api.post(
            dry,
            ADMIN,
            with(&good, json!({"workspace": ws, "notifyOn": "x"})),
        )
        .await
        .expect_field(400, "/notifyOn");
        api.post(dry, ADMIN, with(&good, json!({"workspace": "nope"})))
            .await
            .expect(404);
        api.post(dry, ADMIN, json!({"slug": "nope", "patch": {}}))
            .await
            .expect(404);
        api.post(
            dry,
            ADMIN,
            json!({"slug": "alerts", "patch": {"colour": 1}}),
        )
        .await
        .expect_field(400, "/patch/colour");
    }
}

#[tokio::test]
async fn discord_credentials_never_leave_the_server_on_any_route_or_in_its_logs() {
    let fake = discord::start(0);
    let token_path = format!("/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}");
    for api in servers_for(&fake).await {
        let backend = api.backend();
        let ws = api.workspace("Acme").await;
        let shop = api.project(&ws, "Shop").await;
        let create = format!("/api/v1/workspaces/{ws}/integrations");
        let body = with(
            &discord_body("Deploy alerts"),
            json!({"projectSlug": shop, "environmentSlugs": ["prod"]}),
        );

        // Create runs the live check: Discord's GET of the webhook.
        let seen = fake.requests().len();
        let created = clean(api.post(&create, ADMIN, body.clone()).await);
        let view = created.expect(201).clone();
        let live = fake.requests()[seen..].to_vec();
        assert_eq!(live.len(), 1, "{backend}: one live check");
        assert_eq!(live[0].method, "GET");
        assert_eq!(live[0].path, token_path);
        assert_eq!(view["metadata"], json!({}), "{backend}");
        assert_eq!(
            view["secretFields"],
            json!({"/webhookUrl": {"configured": true}})
        );
        assert_eq!(view["projectSlug"], json!(shop));
        assert_eq!(view["environmentSlugs"], json!(["prod"]));
        assert_eq!(view["enabled"], true);
        let slug = view["slug"].as_str().unwrap().to_owned();
        let one = format!("/api/v1/integrations/{slug}");

        // A token Discord does not know: 422 with the integration's message, nothing saved.
        let wrong = with(
            &discord_body("Wrong"),
            json!({"metadata": {"webhookUrl": wrong_url()}}),
        );
        let refused = clean(api.post(&create, ADMIN, wrong.clone()).await);
        assert_eq!(
            refused.expect(422)["code"],
            "live_check_failed",
            "{backend}"
        );
        let detail = refused.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("Discord does not know this webhook (HTTP 401)"),
            "{detail}"
        );
        // `?validate=false` skips the check (no request reaches the fake).
        let seen = fake.requests().len();
        let offline = clean(
            api.post(&format!("{create}?validate=false"), ADMIN, wrong)
                .await,
        );
        offline.expect(201);
        assert_eq!(fake.requests().len(), seen, "{backend}: no live check");
        let list = clean(api.get(&create, ADMIN).await);
        assert_eq!(slugs(list.expect(200)), ["deploy-alerts", "wrong"]);
        clean(api.get(&one, ADMIN).await).expect(200);

        // The dry run: all checks, live included; nothing saved.
        let dry = "/api/v1/integrations/validate";
        let report = clean(
            api.post(
                dry,
                ADMIN,
                with(&discord_body("Dry"), json!({"workspace": ws})),
            )
            .await,
        );
        let report = report.expect(200);
        assert_eq!(report["valid"], true, "{backend}: {report}");
        assert!(
            report["checks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["passed"] == true)
        );
        assert_eq!(
            report["checks"].as_array().unwrap().last().unwrap()["name"],
            "live"
        );
        let failing = clean(
            api.post(
                dry,
                ADMIN,
                json!({"slug": slug, "patch": {"metadata": {"webhookUrl": wrong_url()}}}),
            )
            .await,
        );
        let failing = failing.expect(200);
        assert_eq!(failing["valid"], false);
        let live_check = failing["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "live")
            .unwrap();
        assert_eq!(live_check["status"], 422, "{failing}");
        let stored = clean(
            api.post(dry, ADMIN, json!({"slug": slug, "patch": {}}))
                .await,
        );
        assert_eq!(stored.expect(200)["valid"], true, "{}", stored.body);
        let list = api.get(&create, ADMIN).await;
        assert_eq!(list.expect(200)["items"].as_array().unwrap().len(), 2);

        // The test event goes through Discord's real renderer to the stored webhook.
        let seen = fake.requests().len();
        let tested = clean(api.post(&format!("{one}/test"), ADMIN, json!({})).await);
        let outcome = tested.expect(200);
        assert_eq!(outcome["delivered"], true, "{backend}: {outcome}");
        assert_eq!(outcome["status"], 200);
        assert_eq!(outcome["eventType"], "SECRET_UPDATED");
        let sent = fake.requests()[seen..].to_vec();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].method, "POST");
        assert_eq!(sent[0].path, token_path);
        assert_eq!(sent[0].query_param("wait"), Some("true"));
        let embed = &sent[0].json()["embeds"][0];
        assert_eq!(embed["title"], "Test event from keywire");
        let fields: Vec<(String, String)> = embed["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap().to_owned(),
                    f["value"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        for expected in [
            ("Event", "SECRET_UPDATED"),
            ("Workspace", "acme"),
            ("Project", "shop"),
            ("Environments", "prod"),
            ("By", "admin"),
            ("test", "yes"),
        ] {
            assert!(
                fields.contains(&(expected.0.to_owned(), expected.1.to_owned())),
                "{expected:?} not in {fields:?}"
            );
        }

        // A partial update keeps the stored credential; the test still reaches the webhook.
        let seen = fake.requests().len();
        let patched = clean(
            api.patch(
                &one,
                ADMIN,
                json!({"name": "Prod alerts", "notifyOn": ["SECRET_ADDED"], "metadata": {}}),
            )
            .await,
        );
        let patched = patched.expect(200);
        assert_eq!(patched["name"], "Prod alerts", "{backend}");
        assert_eq!(patched["slug"], slug, "the slug stays");
        assert_eq!(patched["notifyOn"], json!(["SECRET_ADDED"]));
        assert_eq!(patched["environmentSlugs"], json!(["prod"]));
        assert_eq!(
            patched["secretFields"],
            json!({"/webhookUrl": {"configured": true}})
        );
        let tested = clean(api.post(&format!("{one}/test"), ADMIN, json!({})).await);
        assert_eq!(tested.expect(200)["eventType"], "SECRET_ADDED");
        assert_eq!(tested.body["delivered"], true);
        let sent = fake.requests()[seen..].to_vec();
        assert_eq!(
            sent.len(),
            2,
            "{backend}: live check of the merged metadata, then the test"
        );
        assert!(sent.iter().all(|r| r.path == token_path));

        // A bad new credential is refused and the stored one stays.
        let bad = clean(
            api.patch(
                &one,
                ADMIN,
                json!({"metadata": {"webhookUrl": format!("http://discord.com/api/webhooks/{WEBHOOK_ID}/{WRONG_TOKEN}")}}),
            )
            .await,
        );
        bad.expect_field(400, "/metadata/webhookUrl");
        let unknown = clean(
            api.patch(
                &one,
                ADMIN,
                json!({"metadata": {"webhookUrl": wrong_url()}}),
            )
            .await,
        );
        unknown.expect(422);
        clean(
            api.patch(&one, ADMIN, json!({"metadata": {"webhookUrl": 5}}))
                .await,
        )
        .expect_field(400, "/metadata/webhookUrl");
        let seen = fake.requests().len();
        let tested = clean(api.post(&format!("{one}/test"), ADMIN, json!({})).await);
        assert_eq!(tested.expect(200)["delivered"], true);
        assert_eq!(fake.requests()[seen].path, token_path);

        // The type and the project cannot change; sending the current values is accepted.
        clean(api.patch(&one, ADMIN, json!({"type": "webhook"})).await).expect_field(400, "/type");
        clean(
            api.patch(&one, ADMIN, json!({"projectSlug": "other"}))
                .await,
        )
        .expect_field(400, "/projectSlug");
        clean(
            api.patch(&one, ADMIN, json!({"projectSlug": null, "name": "x y"}))
                .await,
        )
        .expect(200);
        clean(
            api.patch(
                &one,
                ADMIN,
                json!({"type": "discord", "projectSlug": shop, "enabled": false}),
            )
            .await,
        )
        .expect(200);
        let disabled = clean(api.get(&one, ADMIN).await);
        assert_eq!(
            disabled.expect(200)["enabled"],
            false,
            "says so in responses"
        );

        // A test of the integration with the unknown token says what Discord answered.
        let failed = clean(
            api.post("/api/v1/integrations/wrong/test", ADMIN, json!({}))
                .await,
        );
        let failed = failed.expect(200);
        assert_eq!(failed["delivered"], false, "{backend}: {failed}");
        assert_eq!(failed["status"], 401);
        assert_eq!(failed["retryable"], false);
        assert!(
            failed["error"]
                .as_str()
                .unwrap()
                .contains("Invalid Webhook Token"),
            "{failed}"
        );

        clean(api.delete(&format!("{one}?cleanup=true"), ADMIN).await).expect(204);
        assert_log_clean(&api);
    }
}

#[tokio::test]
async fn webhook_test_events_are_signed_with_the_kept_secret() {
    let received: Arc<std::sync::Mutex<u32>> = Arc::default();
    let counter = received.clone();
    let receiver = FakeServer::start(move |_| {
        *counter.lock().unwrap() += 1;
        FakeResponse::json(200, json!({"ok": true}))
    });
    for api in Api::all_with_env(&[("KEYWIRE_LOG", "debug")]).await {
        let backend = api.backend();
        let ws = api.workspace("Acme").await;
        let url = format!("{}/hooks/keywire", receiver.url());
        let seen = receiver.requests().len();
        let created = clean(
            api.post(
                &format!("/api/v1/workspaces/{ws}/integrations"),
                ADMIN,
                json!({
                    "name": "Hook",
                    "type": "webhook",
                    "notifyOn": ["VARIABLE_UPDATED"],
                    "metadata": {"url": url, "signingSecret": SIGNING_SECRET},
                }),
            )
            .await,
        );
        let view = created.expect(201);
        assert_eq!(view["metadata"], json!({"url": url}), "{backend}");
        assert_eq!(
            view["secretFields"],
            json!({"/headers": {"configured": false}, "/previousSigningSecrets": {"configured": false}, "/signingSecret": {"configured": true}})
        );
        let ping = receiver.requests()[seen].clone();
        assert_eq!(ping.json()["type"], "keywire.ping", "the live check pings");

        // Only the URL changes: the signing secret is kept.
        let moved = format!("{}/hooks/moved", receiver.url());
        let patched = clean(
            api.patch(
                "/api/v1/integrations/hook",
                ADMIN,
                json!({"metadata": {"url": moved}}),
            )
            .await,
        );
        assert_eq!(patched.expect(200)["metadata"]["url"], json!(moved));
        let seen = receiver.requests().len();
        let tested = clean(
            api.post("/api/v1/integrations/hook/test", ADMIN, json!({}))
                .await,
        );
        let outcome = tested.expect(200);
        assert_eq!(outcome["delivered"], true, "{backend}: {outcome}");
        assert_eq!(outcome["excerpt"], r#"{"ok":true}"#);
        let sent = receiver.requests()[seen].clone();
        assert_eq!(sent.path, "/hooks/moved");
        let envelope = sent.json();
        assert_eq!(envelope["type"], "VARIABLE_UPDATED");
        assert_eq!(envelope["data"]["title"], "Test event from keywire");
        assert_eq!(envelope["data"]["payload"]["test"], true);
        assert_eq!(envelope["data"]["workspace"], "acme");
        let id = sent.header("webhook-id").unwrap();
        assert_eq!(id, outcome["messageId"].as_str().unwrap());
        let timestamp: i64 = sent.header("webhook-timestamp").unwrap().parse().unwrap();
        assert_eq!(
            sent.header("webhook-signature").unwrap(),
            keywire_integration_webhook::sign(SIGNING_KEY, id, timestamp, &sent.body),
            "signed with the secret kept from create"
        );
        assert_log_clean(&api);
    }
    assert!(*received.lock().unwrap() >= 2);
}

#[tokio::test]
async fn lists_are_keyset_pages_sorted_filtered_and_searched() {
    for api in Api::all().await {
        let backend = api.backend();
        let ws = api.workspace("Acme").await;
        let shop = api.project(&ws, "Shop").await;
        let blog = api.project(&ws, "Blog").await;
        let create = format!("/api/v1/workspaces/{ws}/integrations?validate=false");
        let hook = |name: &str| {
            json!({"name": name, "type": "webhook", "notifyOn": ["SECRET_UPDATED"],
                   "metadata": {"url": "https://hooks.example.com/x", "signingSecret": SIGNING_SECRET}})
        };
        let bodies = [
            discord_body("alpha alerts"),
            with(&hook("bravo builds"), json!({"projectSlug": shop})),
            with(
                &discord_body("charlie ops"),
                json!({"projectSlug": shop, "environmentSlugs": ["prod"], "enabled": false}),
            ),
            with(&hook("delta_x hooks"), json!({"enabled": false})),
            with(&discord_body("echo ops"), json!({"projectSlug": blog})),
            discord_body("foxtrot"),
            hook("golf"),
        ];
        for body in bodies {
            clean(api.post(&create, ADMIN, body).await).expect(201);
        }
        let list = |query: String| {
            let api = &api;
            let ws = &ws;
            async move {
                api.get(
                    &format!("/api/v1/workspaces/{ws}/integrations?{query}"),
                    ADMIN,
                )
                .await
            }
        };
        // Walks every page; returns the names in order and the number of pages.
        let walk = |query: &'static str| {
            let list = &list;
            async move {
                let mut all = Vec::new();
                let mut cursor: Option<String> = None;
                let mut pages = 0;
                loop {
                    let q = match &cursor {
                        Some(c) => format!("{query}&cursor={c}"),
                        None => query.to_owned(),
                    };
                    let answer = list(q).await;
                    let page = answer.expect(200);
                    all.extend(names(page));
                    pages += 1;
                    match page["nextCursor"].as_str() {
                        Some(next) => cursor = Some(next.to_owned()),
                        None => return (all, pages),
                    }
                }
            }
        };
        let by_name = [
            "alpha alerts",
            "bravo builds",
            "charlie ops",
            "delta_x hooks",
            "echo ops",
            "foxtrot",
            "golf",
        ];
        assert_eq!(
            walk("limit=3").await,
            (by_name.map(String::from).to_vec(), 3),
            "{backend}"
        );
        let mut reversed = by_name.map(String::from).to_vec();
        reversed.reverse();
        assert_eq!(walk("sort=name&order=desc&limit=4").await, (reversed, 2));
        let created_order = [
            "alpha alerts",
            "bravo builds",
            "charlie ops",
            "delta_x hooks",
            "echo ops",
            "foxtrot",
            "golf",
        ];
        assert_eq!(
            walk("sort=created&limit=2").await.0,
            created_order.map(String::from).to_vec()
        );
        let mut newest_first = created_order.map(String::from).to_vec();
        newest_first.reverse();
        assert_eq!(
            walk("sort=created&order=desc&limit=5").await.0,
            newest_first
        );

        // Keyset, not offset: rows added before the cursor or removed after it neither repeat
        // nor skip anything on the next page.
        let first = list("limit=3".into()).await;
        let cursor = first.expect(200)["nextCursor"].as_str().unwrap().to_owned();
        clean(api.post(&create, ADMIN, discord_body("aaa first")).await).expect(201);
        api.delete("/api/v1/integrations/delta-x-hooks", ADMIN)
            .await
            .expect(204);
        let next = list(format!("limit=3&cursor={cursor}")).await;
        assert_eq!(
            names(next.expect(200)),
            ["echo ops", "foxtrot", "golf"],
            "{backend}"
        );

        // Filters and search.
        let found = |query: &'static str| {
            let list = &list;
            async move { names(list(query.to_owned()).await.expect(200)) }
        };
        assert_eq!(found("type=webhook").await, ["bravo builds", "golf"]);
        assert_eq!(found("project=shop").await, ["bravo builds", "charlie ops"]);
        assert_eq!(found("enabled=false").await, ["charlie ops"]);
        assert_eq!(
            found("enabled=true&type=discord").await,
            ["aaa first", "alpha alerts", "echo ops", "foxtrot"]
        );
        assert_eq!(found("q=OPS").await, ["charlie ops", "echo ops"]);
        assert_eq!(found("q=Alert").await, ["alpha alerts"]);
        assert_eq!(found("q=o_s").await, Vec::<String>::new(), "`_` is literal");
        assert_eq!(found("q=%25").await, Vec::<String>::new(), "`%` is literal");
        assert_eq!(
            found("type=discord&project=shop&enabled=true").await,
            Vec::<String>::new()
        );
        let view = list("project=shop&type=discord".into()).await;
        let item = &view.expect(200)["items"][0];
        assert_eq!(item["environmentSlugs"], json!(["prod"]));
        assert_eq!(item["enabled"], false);

        // Bad requests.
        list("cursor=not-a-cursor!".into()).await.expect(400);
        let other_order = list(format!("sort=created&cursor={cursor}")).await;
        assert!(
            other_order.expect(400)["detail"]
                .as_str()
                .unwrap()
                .contains("another sort order")
        );
        list("sort=size".into()).await.expect(400);
        list("order=sideways".into()).await.expect(400);
        list("enabled=maybe".into()).await.expect(400);
        list("colour=red".into()).await.expect(400);
        list(format!("q={}", "x".repeat(65))).await.expect(400);
        list("project=nope".into()).await.expect(404);
    }
}

#[tokio::test]
async fn changes_record_events_whose_payloads_hold_no_metadata() {
    for api in Api::all().await {
        let backend = api.backend();
        let ws = api.workspace("Acme").await;
        let shop = api.project(&ws, "Shop").await;
        let created = api
            .post(
                &format!("/api/v1/workspaces/{ws}/integrations?validate=false"),
                ADMIN,
                with(
                    &discord_body("Alerts"),
                    json!({"projectSlug": shop, "environmentSlugs": ["prod", "dev"]}),
                ),
            )
            .await;
        assert_eq!(
            created.expect(201)["environmentSlugs"],
            json!(["dev", "prod"]),
            "{backend}"
        );
        let added = events(&api, &ws, "INTEGRATION_ADDED").await;
        assert_eq!(added.len(), 1, "{backend}");
        assert_eq!(
            added[0]["payload"],
            json!({"integration": "alerts", "type": "discord", "name": "Alerts"})
        );
        assert_eq!(added[0]["source"], "INTEGRATION");
        assert!(added[0]["projectId"].is_string());
        assert_eq!(added[0]["environmentIds"].as_array().unwrap().len(), 2);

        let one = "/api/v1/integrations/alerts";
        api.patch(one, ADMIN, json!({})).await.expect(400);
        api.patch(one, ADMIN, json!({"name": "Team alerts", "enabled": false}))
            .await
            .expect(200);
        api.patch(
            &format!("{one}?validate=false"),
            ADMIN,
            json!({"metadata": {"webhookUrl": wrong_url()}, "environmentSlugs": ["dev"]}),
        )
        .await
        .expect(200);
        let updated = events(&api, &ws, "INTEGRATION_UPDATED").await;
        assert_eq!(updated.len(), 2, "{backend}");
        assert_eq!(
            updated[1]["payload"],
            json!({"integration": "alerts", "type": "discord", "name": "Team alerts",
                   "changed": ["name", "enabled"], "previousName": "Alerts"})
        );
        assert_eq!(
            updated[0]["payload"],
            json!({"integration": "alerts", "type": "discord", "name": "Team alerts",
                   "changed": ["environmentSlugs", "metadata"]})
        );
        assert_eq!(updated[0]["environmentIds"].as_array().unwrap().len(), 1);

        api.delete(&format!("{one}?cleanup=true"), ADMIN)
            .await
            .expect(204);
        api.get(one, ADMIN).await.expect(404);
        api.delete(one, ADMIN).await.expect(404);
        let deleted = events(&api, &ws, "INTEGRATION_DELETED").await;
        assert_eq!(
            deleted[0]["payload"],
            json!({"integration": "alerts", "type": "discord", "name": "Team alerts"}),
            "{backend}"
        );
        assert_eq!(deleted[0]["severity"], "WARN");
        let all = api
            .get(&format!("/api/v1/workspaces/{ws}/events?limit=200"), ADMIN)
            .await;
        clean(all);
    }
}

#[tokio::test]
async fn deleting_an_environment_or_project_leaves_integrations_consistent() {
    for api in Api::all().await {
        let backend = api.backend();
        let ws = api.workspace("Acme").await;
        let shop = api.project(&ws, "Shop").await;
        api.post(
            &format!("/api/v1/workspaces/{ws}/integrations?validate=false"),
            ADMIN,
            with(
                &discord_body("Alerts"),
                json!({"projectSlug": shop, "environmentSlugs": ["dev", "prod"]}),
            ),
        )
        .await
        .expect(201);
        api.delete(&format!("/api/v1/projects/{shop}/environments/prod"), ADMIN)
            .await
            .expect(204);
        let view = api.get("/api/v1/integrations/alerts", ADMIN).await;
        assert_eq!(
            view.expect(200)["environmentSlugs"],
            json!(["dev"]),
            "{backend}: the deleted environment leaves the integration's scope"
        );
        api.delete(&format!("/api/v1/projects/{shop}"), ADMIN)
            .await
            .expect(204);
        api.get("/api/v1/integrations/alerts", ADMIN)
            .await
            .expect(404);
    }
}

#[tokio::test]
async fn authorities_decide_what_members_see_and_do() {
    for api in Api::all().await {
        let backend = api.backend();
        let ws = api.workspace("Acme").await;
        let shop = api.project(&ws, "Shop").await;
        let blog = api.project(&ws, "Blog").await;
        let create = format!("/api/v1/workspaces/{ws}/integrations?validate=false");
        for body in [
            discord_body("Everywhere"),
            with(&discord_body("Shop alerts"), json!({"projectSlug": shop})),
            with(&discord_body("Blog alerts"), json!({"projectSlug": blog})),
        ] {
            api.post(&create, ADMIN, body).await.expect(201);
        }
        let everywhere = "/api/v1/integrations/everywhere";

        // An outsider sees nothing: 404 everywhere, never 403.
        let outsider = user(&api, "outsider").await;
        for answer in [
            api.get(everywhere, &outsider).await,
            api.patch(everywhere, &outsider, json!({"enabled": false}))
                .await,
            api.delete(everywhere, &outsider).await,
            api.post(&format!("{everywhere}/test"), &outsider, json!({}))
                .await,
            api.post(
                "/api/v1/integrations/validate",
                &outsider,
                json!({"slug": "everywhere", "patch": {}}),
            )
            .await,
        ] {
            assert_eq!(answer.status, 404, "{backend}: {}", answer.body);
            assert_eq!(
                answer.body["detail"], "no integration `everywhere`",
                "a 404 names neither the workspace nor anything in it"
            );
        }
        for answer in [
            api.get(&format!("/api/v1/workspaces/{ws}/integrations"), &outsider)
                .await,
            api.post(&create, &outsider, discord_body("Mine")).await,
            api.post(
                "/api/v1/integrations/validate",
                &outsider,
                with(&discord_body("Mine"), json!({"workspace": ws})),
            )
            .await,
        ] {
            assert_eq!(answer.status, 404, "{backend}: {}", answer.body);
        }

        // A member without READ_INTEGRATION: 403 on what they may see, 404 on what not.
        let viewer = user(&api, "viewer").await;
        member(&api, &ws, "viewer", &["READ_WORKSPACE"], None).await;
        let forbidden = api.get(everywhere, &viewer).await;
        assert_eq!(forbidden.expect(403)["code"], "forbidden", "{backend}");
        assert!(
            forbidden.body["detail"]
                .as_str()
                .unwrap()
                .contains("READ_INTEGRATION")
        );
        api.get(&format!("/api/v1/workspaces/{ws}/integrations"), &viewer)
            .await
            .expect(403);
        api.get("/api/v1/integrations/shop-alerts", &viewer)
            .await
            .expect(404);
        api.patch(everywhere, &viewer, json!({"enabled": false}))
            .await
            .expect(403);
        api.delete(everywhere, &viewer).await.expect(403);
        api.post(&format!("{everywhere}/test"), &viewer, json!({}))
            .await
            .expect(403);
        api.post(&create, &viewer, discord_body("Mine"))
            .await
            .expect(403);
        let dry = api
            .post(
                "/api/v1/integrations/validate",
                &viewer,
                with(&discord_body("Mine"), json!({"workspace": ws})),
            )
            .await;
        let report = dry.expect(200);
        assert_eq!(report["valid"], false);
        assert_eq!(report["checks"][0]["name"], "authority");
        assert_eq!(report["checks"][0]["status"], 403);
        assert!(
            report["checks"].as_array().unwrap()[1..]
                .iter()
                .all(|c| c["skipped"] == true),
            "nothing else runs (no live call) without the authority: {report}"
        );

        // A member whose role is limited to the shop project.
        let shopper = user(&api, "shopper").await;
        member(
            &api,
            &ws,
            "shopper",
            &[
                "READ_INTEGRATION",
                "CREATE_INTEGRATION",
                "UPDATE_INTEGRATION",
                "READ_PROJECT",
                "READ_ENVIRONMENT",
            ],
            Some(&[shop.as_str()]),
        )
        .await;
        let list = api
            .get(&format!("/api/v1/workspaces/{ws}/integrations"), &shopper)
            .await;
        assert_eq!(
            slugs(list.expect(200)),
            ["everywhere", "shop-alerts"],
            "{backend}: the blog's integration is left out"
        );
        api.get("/api/v1/integrations/blog-alerts", &shopper)
            .await
            .expect(404);
        api.patch(
            "/api/v1/integrations/blog-alerts",
            &shopper,
            json!({"enabled": false}),
        )
        .await
        .expect(404);
        api.patch(
            "/api/v1/integrations/shop-alerts",
            &shopper,
            json!({"enabled": false}),
        )
        .await
        .expect(200);
        api.delete("/api/v1/integrations/shop-alerts", &shopper)
            .await
            .expect(403);
        api.get(
            &format!("/api/v1/workspaces/{ws}/integrations?project={blog}"),
            &shopper,
        )
        .await
        .expect(404);
        api.post(
            &create,
            &shopper,
            with(&discord_body("Mine"), json!({"projectSlug": blog})),
        )
        .await
        .expect(404);
        api.post(
            &create,
            &shopper,
            with(
                &discord_body("Mine"),
                json!({"projectSlug": shop, "environmentSlugs": ["prod"]}),
            ),
        )
        .await
        .expect(201);

        // Narrowing to environments needs READ_ENVIRONMENT.
        let blind = user(&api, "blind").await;
        member(
            &api,
            &ws,
            "blind",
            &["CREATE_INTEGRATION", "READ_PROJECT"],
            None,
        )
        .await;
        let answer = api
            .post(
                &create,
                &blind,
                with(
                    &discord_body("Blind"),
                    json!({"projectSlug": shop, "environmentSlugs": ["prod"]}),
                ),
            )
            .await;
        assert!(
            answer.expect(403)["detail"]
                .as_str()
                .unwrap()
                .contains("READ_ENVIRONMENT")
        );
        api.post(
            &create,
            &blind,
            with(&discord_body("Blind"), json!({"projectSlug": shop})),
        )
        .await
        .expect(201);
    }
}

#[tokio::test]
async fn openapi_documents_every_integration_route_with_its_schemas() {
    let api = Api::sqlite().await;
    let doc = api.get("/openapi.json", ADMIN).await;
    let doc = doc.expect(200);
    let routes = [
        (
            "/api/v1/workspaces/{workspace}/integrations",
            "post",
            Some("CreateBody"),
        ),
        ("/api/v1/workspaces/{workspace}/integrations", "get", None),
        ("/api/v1/integrations/{integration}", "get", None),
        (
            "/api/v1/integrations/{integration}",
            "patch",
            Some("PatchBody"),
        ),
        ("/api/v1/integrations/{integration}", "delete", None),
        (
            "/api/v1/integrations/validate",
            "post",
            Some("ValidateBody"),
        ),
        ("/api/v1/integrations/{integration}/test", "post", None),
    ];
    for (path, method, body) in routes {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is missing");
        if let Some(body) = body {
            assert_eq!(
                operation["requestBody"]["content"]["application/json"]["schema"]["$ref"],
                format!("#/components/schemas/{body}"),
                "{method} {path}"
            );
        }
        let responses = operation["responses"].as_object().unwrap();
        assert!(responses.len() >= 3, "{method} {path}");
        for (status, response) in responses {
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{method} {path} {status} has no description"
            );
        }
        let ok = responses
            .iter()
            .find(|(status, _)| status.starts_with('2'))
            .unwrap();
        if ok.0 != "204" {
            assert!(
                ok.1["content"]["application/json"]["schema"].is_object(),
                "{method} {path}: the success answer has a schema"
            );
        }
    }
    for schema in [
        "IntegrationView",
        "CreateBody",
        "PatchBody",
        "ValidateBody",
        "ValidationReport",
        "CheckView",
        "TestOutcome",
        "SecretField",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema} is missing"
        );
    }
    let list_params: BTreeSet<&str> =
        doc["paths"]["/api/v1/workspaces/{workspace}/integrations"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
    for param in [
        "limit", "cursor", "sort", "order", "type", "project", "enabled", "q",
    ] {
        assert!(list_params.contains(param), "list parameter {param}");
    }
}

/// The fenced JSON block after each `<!-- example: NAME -->` line of the integration API doc.
fn documented_examples() -> std::collections::BTreeMap<String, Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/integration-api.md");
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = std::collections::BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- example: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(lines.next().map(str::trim), Some("```json"), "{name}");
        let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        let value = serde_json::from_str(&block.join("\n"))
            .unwrap_or_else(|e| panic!("example {name} is not JSON: {e}"));
        assert!(out.insert(name.to_owned(), value).is_none(), "{name} twice");
    }
    out
}

/// Asserts that `actual` is what `documented` shows: the same fields everywhere, the same
/// values except times and message ids.
#[track_caller]
fn assert_documented(documented: &Value, actual: &Value, at: &str) {
    match (documented, actual) {
        (Value::Object(doc), Value::Object(real)) => {
            let doc_keys: BTreeSet<&String> = doc.keys().collect();
            let real_keys: BTreeSet<&String> = real.keys().collect();
            assert_eq!(doc_keys, real_keys, "fields at {at}: {actual}");
            for (key, value) in doc {
                if matches!(key.as_str(), "createdAt" | "updatedAt" | "messageId") {
                    continue;
                }
                assert_documented(value, &real[key], &format!("{at}/{key}"));
            }
        }
        (Value::Array(doc), Value::Array(real)) => {
            assert_eq!(doc.len(), real.len(), "length at {at}: {actual}");
            for (i, (d, r)) in doc.iter().zip(real).enumerate() {
                assert_documented(d, r, &format!("{at}/{i}"));
            }
        }
        _ => assert_eq!(documented, actual, "value at {at}"),
    }
}

#[tokio::test]
async fn documented_examples_are_what_the_api_answers() {
    let examples = documented_examples();
    let example = |name: &str| {
        examples
            .get(name)
            .unwrap_or_else(|| panic!("docs/integration-api.md has no example `{name}`"))
            .clone()
    };
    let fake = discord::start(0);
    for api in servers_for(&fake).await {
        let ws = api.workspace("Acme").await;
        let shop = api.project(&ws, "Shop").await;
        assert_eq!((ws.as_str(), shop.as_str()), ("acme", "shop"));

        let created = api
            .post(
                "/api/v1/workspaces/acme/integrations",
                ADMIN,
                example("create-request"),
            )
            .await;
        assert_documented(&example("create-response"), created.expect(201), "create");
        let got = api.get("/api/v1/integrations/deploy-alerts", ADMIN).await;
        assert_documented(&example("get-response"), got.expect(200), "get");
        let listed = api
            .get(
                "/api/v1/workspaces/acme/integrations?type=discord&project=shop&enabled=true&q=deploy&sort=created&order=desc&limit=20",
                ADMIN,
            )
            .await;
        assert_documented(&example("list-response"), listed.expect(200), "list");
        let patched = api
            .patch(
                "/api/v1/integrations/deploy-alerts",
                ADMIN,
                example("patch-request"),
            )
            .await;
        assert_documented(&example("patch-response"), patched.expect(200), "patch");
        let report = api
            .post(
                "/api/v1/integrations/validate",
                ADMIN,
                example("validate-request"),
            )
            .await;
        assert_documented(
            &example("validate-response"),
            report.expect(200),
            "validate",
        );
        let tested = api
            .post("/api/v1/integrations/deploy-alerts/test", ADMIN, json!({}))
            .await;
        assert_documented(&example("test-response"), tested.expect(200), "test");
        let refused = api
            .post(
                "/api/v1/workspaces/acme/integrations",
                ADMIN,
                example("create-error-request"),
            )
            .await;
        assert_documented(
            &example("create-error-response"),
            refused.expect(400),
            "error",
        );
        api.delete("/api/v1/integrations/deploy-alerts?cleanup=true", ADMIN)
            .await
            .expect(204);
    }
}
