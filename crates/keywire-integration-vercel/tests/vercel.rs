//! The Vercel integration against a fake of Vercel's REST API on 127.0.0.1
//! (`keywire_test_support::vercel`), driven the way core's sync engine drives it: `list`, then
//! `keywire_core::sync::plan`, then `apply`, then `after_sync`.

use std::time::Duration;

use keywire_core::sync::{
    self, Action, Change, ConflictPolicy, DesiredEntry, EntryKind, MappedEnvironment, Op,
    PlanInput, PlanItem, SyncRecord, SyncSettings, SyncTarget,
};
use keywire_core::{Context, Integration, Secret, check_descriptor, find};
use keywire_test_support::context_overriding;
use keywire_test_support::fake::FakeResponse;
use keywire_test_support::vercel::{self, CUSTOM_ENV_ID, FakeVercel, Options, TEAM_ID, TOKEN};
use serde_json::{Value, json};

// Names the crate, so its registration is linked into this test binary.
use keywire_integration_vercel as _;

fn team_fake() -> FakeVercel {
    FakeVercel::start_with(Options {
        team_id: Some(TEAM_ID.into()),
        ..Options::default()
    })
}

fn ctx(fake: &FakeVercel) -> Context {
    context_overriding(vercel::ORIGIN, fake)
}

fn build(metadata: &Value) -> Box<dyn Integration> {
    find("vercel").unwrap().build(metadata).unwrap()
}

fn env(id: &str, scope: &str) -> MappedEnvironment {
    MappedEnvironment {
        id: id.into(),
        slug: format!("{id}-slug"),
        scope: scope.into(),
    }
}

fn secret(env: &str, key: &str, value: &str) -> DesiredEntry {
    entry(env, key, EntryKind::Secret, value)
}

fn variable(env: &str, key: &str, value: &str) -> DesiredEntry {
    entry(env, key, EntryKind::Variable, value)
}

fn entry(env: &str, key: &str, kind: EntryKind, value: &str) -> DesiredEntry {
    DesiredEntry {
        environment_id: env.into(),
        key: key.into(),
        kind,
        value: Secret::new(value),
        hash: format!("h({value})"),
    }
}

/// What core keeps between syncs, and how it runs one.
struct Engine {
    settings: SyncSettings,
    environments: Vec<MappedEnvironment>,
    records: Vec<SyncRecord>,
    may_delete: bool,
}

impl Engine {
    fn new(environments: Vec<MappedEnvironment>) -> Engine {
        Engine {
            settings: SyncSettings::default(),
            environments,
            records: Vec::new(),
            may_delete: false,
        }
    }

    /// list → plan → apply → record, as core does; returns the plan's items.
    async fn sync(
        &mut self,
        target: &dyn SyncTarget,
        ctx: &Context,
        desired: Vec<DesiredEntry>,
    ) -> Vec<PlanItem> {
        let mut scopes: Vec<String> = self
            .environments
            .iter()
            .map(|e| e.scope.clone())
            .chain(self.records.iter().map(|r| r.scope.clone()))
            .collect();
        scopes.sort();
        scopes.dedup();
        let remote = target.list(ctx, &scopes).await.unwrap();
        let plan = sync::plan(
            target,
            PlanInput {
                settings: &self.settings,
                environments: &self.environments,
                desired,
                records: &self.records,
                may_upsert: true,
                may_delete: self.may_delete,
            },
            remote,
        );
        let applied = target.apply(ctx, &plan.changes).await;
        assert!(applied.error.is_none(), "{:?}", applied.error);
        let same = |a: &SyncRecord, scope: &str, key: &str| a.scope == scope && a.key == key;
        for change in &plan.changes[..applied.done] {
            self.records
                .retain(|r| !same(r, &change.scope, &change.key));
            if let Op::Upsert(_) = change.op {
                self.records.push(SyncRecord {
                    environment_id: change.environment_id.clone(),
                    scope: change.scope.clone(),
                    key: change.key.clone(),
                    kind: change.kind,
                    hash: change.hash.clone(),
                });
            }
        }
        for record in plan.adopted.iter().chain(&plan.refresh) {
            self.records
                .retain(|r| !same(r, &record.scope, &record.key));
            self.records.push(record.clone());
        }
        for record in &plan.forget {
            self.records
                .retain(|r| !same(r, &record.scope, &record.key));
        }
        plan.items
    }
}

fn actions(items: &[PlanItem]) -> Vec<(String, &'static str)> {
    items
        .iter()
        .map(|i| (format!("{}/{}", i.target, i.key), i.action.as_str()))
        .collect()
}

fn writes(fake: &FakeVercel) -> usize {
    fake.requests().iter().filter(|r| r.method != "GET").count()
}

#[test]
fn descriptor_meets_the_contract() {
    check_descriptor("vercel").unwrap_or_else(|problems| panic!("{problems:#?}"));
    let d = find("vercel").unwrap();
    assert_eq!(d.secret_fields(), vec!["/token"]);
    assert_eq!(
        d.permitted_actions,
        ["upsert", "delete", "cleanup_on_remove", "redeploy"]
    );
    assert!(d.scope.project_required);
    let schema = d.metadata_schema();
    assert_eq!(
        schema["properties"]["secretType"]["enum"],
        json!(["encrypted", "sensitive"])
    );
    assert!(schema["properties"]["secretType"]["description"].is_string());
    assert_eq!(schema["required"], json!(["token", "projectId"]));
}

#[test]
fn metadata_is_checked_without_echoing_the_token() {
    let d = find("vercel").unwrap();
    let err = d
        .build(&json!({"token": "tok secret", "projectId": "a/b", "teamId": "acme", "secretType": "encrypted"}))
        .err()
        .unwrap();
    let pointers: Vec<&str> = err.errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(pointers, ["/token", "/projectId", "/teamId"]);
    assert!(!err.to_string().contains("tok secret"), "{err}");
    let err = d
        .build(&json!({"token": "t", "projectId": "p", "secretType": "plain"}))
        .err()
        .unwrap();
    assert_eq!(err.errors[0].pointer, "/secretType");
    let err = d
        .build(&json!({"token": "t", "projectId": "p", "target": "production"}))
        .err()
        .unwrap();
    assert!(err.to_string().contains("target"), "{err}");
}

#[tokio::test]
async fn first_sync_leaves_unrelated_keys_alone_and_writes_one_variable_per_target() {
    let fake = team_fake();
    // What the project already holds: other people's variables (more than one page).
    let unrelated = fake.seed(
        "UNRELATED",
        "theirs-1",
        "encrypted",
        &["production", "preview"],
    );
    let plain = fake.seed(
        "NEXT_PUBLIC_SITE",
        "https://shop.example",
        "plain",
        &["production"],
    );
    let dev_only = fake.seed("DEBUG", "1", "plain", &["development"]);
    let branch = fake.seed_branch("DB_URL", "postgres://feature", "encrypted", "feature-x");
    for i in 0..4 {
        fake.seed(&format!("FILLER_{i}"), "f", "plain", &[CUSTOM_ENV_ID]);
    }
    let before = fake.envs();
    let integration = build(&fake.metadata());
    let target = integration.sync_target().unwrap();
    let ctx = ctx(&fake);
    let mut engine = Engine::new(vec![
        env("prod", "production"),
        env("stg", CUSTOM_ENV_ID),
        env("dev", "development"),
        env("prev", "preview"),
    ]);
    let desired = || {
        vec![
            secret("prod", "DB_URL", "postgres://prod"),
            secret("stg", "DB_URL", "postgres://staging"),
            secret("dev", "DB_URL", "postgres://dev"),
            secret("prev", "DB_URL", "postgres://preview"),
            variable("prod", "LOG_LEVEL", "warn"),
        ]
    };
    let items = engine.sync(target, &ctx, desired()).await;
    assert_eq!(
        actions(&items),
        vec![
            ("development/DB_URL".into(), "create"),
            (format!("{CUSTOM_ENV_ID}/DB_URL"), "create"),
            ("preview/DB_URL".into(), "create"),
            ("production/DB_URL".into(), "create"),
            ("production/LOG_LEVEL".into(), "create"),
        ]
    );
    // Unrelated variables are exactly as they were (the branch variable too: a preview
    // variable for one git branch is another slot than the preview variable).
    for id in [&unrelated, &plain, &dev_only, &branch] {
        let was = before.iter().find(|e| e.id == *id).unwrap();
        let now = fake.envs().into_iter().find(|e| e.id == *id).unwrap();
        assert_eq!(*was, now);
    }
    let prod = fake.var_at("DB_URL", "production").unwrap();
    assert_eq!(
        (
            prod.value.as_str(),
            prod.kind.as_str(),
            prod.target.as_slice()
        ),
        (
            "postgres://prod",
            "encrypted",
            ["production".to_owned()].as_slice()
        )
    );
    assert_eq!(prod.comment.as_deref(), Some("managed by keywire"));
    let stg = fake.var_at("DB_URL", CUSTOM_ENV_ID).unwrap();
    assert!(stg.target.is_empty());
    assert_eq!(stg.custom_environment_ids, [CUSTOM_ENV_ID]);
    assert_eq!(stg.value, "postgres://staging");
    let log = fake.var_at("LOG_LEVEL", "production").unwrap();
    assert_eq!((log.kind.as_str(), log.value.as_str()), ("plain", "warn"));
    assert_eq!(fake.envs().len(), before.len() + 5);

    // Every request: the bearer token and the team; the list followed the pages.
    let requests = fake.requests();
    for r in &requests {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(
            r.query_param("teamId"),
            Some(TEAM_ID),
            "{} {}",
            r.method,
            r.path
        );
    }
    let pages: Vec<_> = requests
        .iter()
        .filter(|r| {
            r.method == "GET" && r.path == format!("/v10/projects/{}/env", vercel::PROJECT_ID)
        })
        .collect();
    assert_eq!(pages.len(), 3, "8 variables, 3 a page");
    assert!(pages[0].query_param("until").is_none());
    assert!(pages[1].query_param("until").is_some());
    let posts: Vec<_> = requests.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 5);
    for post in &posts {
        assert_eq!(post.query_param("upsert"), Some("true"));
        assert_eq!(post.header("content-type"), Some("application/json"));
    }

    // A second sync finds everything as wanted (by value for plain, by hash for secrets).
    let before_second = writes(&fake);
    let items = engine.sync(target, &ctx, desired()).await;
    assert!(
        items.iter().all(|i| i.action == Action::Unchanged),
        "{items:?}"
    );
    assert_eq!(writes(&fake), before_second);
}

#[tokio::test]
async fn updates_and_deletes_follow_the_delete_action() {
    let fake = FakeVercel::start();
    let integration = build(&fake.metadata());
    let target = integration.sync_target().unwrap();
    let ctx = ctx(&fake);
    let mut engine = Engine::new(vec![env("prod", "production")]);
    engine
        .sync(
            target,
            &ctx,
            vec![
                secret("prod", "API_KEY", "k1-aaaaaaaa"),
                variable("prod", "REGION", "eu"),
            ],
        )
        .await;
    let api_key_id = fake.var_at("API_KEY", "production").unwrap().id;

    // API_KEY changes, REGION goes away; without `delete` it stays.
    let items = engine
        .sync(target, &ctx, vec![secret("prod", "API_KEY", "k2-bbbbbbbb")])
        .await;
    assert_eq!(
        actions(&items),
        vec![
            ("production/API_KEY".into(), "update"),
            ("production/REGION".into(), "keep"),
        ]
    );
    let api_key = fake.var_at("API_KEY", "production").unwrap();
    assert_eq!(
        (api_key.id.as_str(), api_key.value.as_str()),
        (api_key_id.as_str(), "k2-bbbbbbbb")
    );
    assert!(fake.var_at("REGION", "production").is_some());
    let patch = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .unwrap();
    assert_eq!(
        patch.path,
        format!("/v9/projects/{}/env/{api_key_id}", vercel::PROJECT_ID)
    );
    assert_eq!(patch.json(), json!({"value": "k2-bbbbbbbb"}));

    // With `delete`, REGION is deleted; a variable changed by hand is put back.
    fake.edit(&api_key_id, |v| v.value = "edited by hand".into());
    engine.may_delete = true;
    let items = engine
        .sync(target, &ctx, vec![secret("prod", "API_KEY", "k2-bbbbbbbb")])
        .await;
    // Encrypted values are not readable: the record's hash says unchanged.
    assert_eq!(
        actions(&items),
        vec![
            ("production/API_KEY".into(), "unchanged"),
            ("production/REGION".into(), "delete"),
        ]
    );
    assert!(fake.var_at("REGION", "production").is_none());
    assert!(engine.records.iter().all(|r| r.key != "REGION"));

    // A plain variable edited by hand is readable, so it is put back.
    engine
        .sync(target, &ctx, vec![variable("prod", "MODE", "fast")])
        .await;
    let mode = fake.var_at("MODE", "production").unwrap();
    fake.edit(&mode.id, |v| v.value = "slow".into());
    let items = engine
        .sync(target, &ctx, vec![variable("prod", "MODE", "fast")])
        .await;
    assert_eq!(actions(&items), vec![("production/MODE".into(), "update")]);
    assert_eq!(fake.var_at("MODE", "production").unwrap().value, "fast");
}

#[tokio::test]
async fn sensitive_secrets_and_changes_of_kind() {
    let fake = FakeVercel::start();
    let mut metadata = fake.metadata();
    metadata["secretType"] = json!("sensitive");
    let integration = build(&metadata);
    let target = integration.sync_target().unwrap();
    let ctx = ctx(&fake);
    let mut engine = Engine::new(vec![env("prod", "production"), env("dev", "development")]);
    engine
        .sync(
            target,
            &ctx,
            vec![
                secret("prod", "TOKEN_A", "a-secret-1"),
                secret("dev", "TOKEN_A", "a-secret-dev"),
            ],
        )
        .await;
    let prod = fake.var_at("TOKEN_A", "production").unwrap();
    assert_eq!(prod.kind, "sensitive");
    // Vercel allows no sensitive variables in development: stored encrypted there.
    assert_eq!(
        fake.var_at("TOKEN_A", "development").unwrap().kind,
        "encrypted"
    );

    // TOKEN_A becomes a plain variable: the sensitive one is replaced (it cannot be made
    // readable), the encrypted one is changed in place.
    let dev_id = fake.var_at("TOKEN_A", "development").unwrap().id;
    let items = engine
        .sync(
            target,
            &ctx,
            vec![
                variable("prod", "TOKEN_A", "now-plain"),
                variable("dev", "TOKEN_A", "now-plain-dev"),
            ],
        )
        .await;
    assert!(
        items.iter().all(|i| i.action == Action::Update),
        "{items:?}"
    );
    let new_prod = fake.var_at("TOKEN_A", "production").unwrap();
    assert_ne!(new_prod.id, prod.id);
    assert_eq!(
        (new_prod.kind.as_str(), new_prod.value.as_str()),
        ("plain", "now-plain")
    );
    let dev = fake.var_at("TOKEN_A", "development").unwrap();
    assert_eq!(
        (dev.id.as_str(), dev.kind.as_str()),
        (dev_id.as_str(), "plain")
    );
    assert_eq!(fake.envs().len(), 2);
}

#[tokio::test]
async fn adopt_splits_a_shared_foreign_variable_and_skip_leaves_it() {
    let fake = FakeVercel::start();
    let shared = fake.seed(
        "API_KEY",
        "theirs",
        "encrypted",
        &["production", "preview", "development"],
    );
    let solo = fake.seed("SOLO", "old", "plain", &["production"]);
    let integration = build(&fake.metadata());
    let target = integration.sync_target().unwrap();
    let ctx = ctx(&fake);
    let mut engine = Engine::new(vec![env("prod", "production"), env("prev", "preview")]);
    let desired = || {
        vec![
            secret("prod", "API_KEY", "ours-prod"),
            secret("prev", "API_KEY", "ours-preview"),
            variable("prod", "SOLO", "new"),
        ]
    };

    // Default policy: skip, reported, nothing written.
    let before = fake.envs();
    let items = engine.sync(target, &ctx, desired()).await;
    assert!(items.iter().all(|i| i.action == Action::Skip), "{items:?}");
    assert!(
        items[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("not written by keywire")
    );
    assert_eq!(fake.envs(), before);
    assert_eq!(writes(&fake), 0);

    // Adopt: each mapped target gets keywire's own variable; the target nobody mapped
    // (development) keeps the foreign value.
    engine.settings.on_conflict = ConflictPolicy::Adopt;
    let items = engine.sync(target, &ctx, desired()).await;
    assert!(items.iter().all(|i| i.action == Action::Adopt), "{items:?}");
    let original = fake.envs().into_iter().find(|e| e.id == shared).unwrap();
    assert_eq!(original.target, ["development"]);
    assert_eq!(original.value, "theirs");
    let prod = fake.var_at("API_KEY", "production").unwrap();
    let preview = fake.var_at("API_KEY", "preview").unwrap();
    assert_eq!((prod.value.as_str(), prod.target.len()), ("ours-prod", 1));
    assert_eq!(
        (preview.value.as_str(), preview.target.len()),
        ("ours-preview", 1)
    );
    // A foreign variable with only that target is taken over in place.
    let solo_now = fake.var_at("SOLO", "production").unwrap();
    assert_eq!(
        (solo_now.id.as_str(), solo_now.value.as_str()),
        (solo.as_str(), "new")
    );
    assert_eq!(engine.records.len(), 3);

    // From now on they are keywire's: unchanged.
    let items = engine.sync(target, &ctx, desired()).await;
    assert!(
        items.iter().all(|i| i.action == Action::Unchanged),
        "{items:?}"
    );
}

#[tokio::test]
async fn a_variable_widened_by_hand_keeps_its_other_targets_on_delete() {
    let fake = FakeVercel::start();
    let integration = build(&fake.metadata());
    let target = integration.sync_target().unwrap();
    let ctx = ctx(&fake);
    let mut engine = Engine::new(vec![env("prod", "production")]);
    engine.may_delete = true;
    engine
        .sync(target, &ctx, vec![secret("prod", "FLAG", "on-value")])
        .await;
    let id = fake.var_at("FLAG", "production").unwrap().id;
    fake.edit(&id, |v| v.target.push("preview".into()));
    let items = engine.sync(target, &ctx, Vec::new()).await;
    assert_eq!(actions(&items), vec![("production/FLAG".into(), "delete")]);
    let left = fake.envs().into_iter().find(|e| e.id == id).unwrap();
    assert_eq!(left.target, ["preview"]);
    assert!(fake.var_at("FLAG", "production").is_none());
}

#[tokio::test]
async fn errors_are_classified_and_never_carry_values_or_the_token() {
    let fake = team_fake();
    let integration = build(&fake.metadata());
    let target = integration.sync_target().unwrap();
    let ctx = ctx(&fake);
    let scopes = vec!["production".to_owned()];

    fake.rate_limit_next(1);
    let err = target.list(&ctx, &scopes).await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));

    // A 429 with only Vercel's `X-RateLimit-Reset` waits until the reset.
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 30;
    fake.answer_next(
        FakeResponse::json(
            429,
            json!({"error": {"code": "rate_limited", "message": "Rate limit exceeded"}}),
        )
        .with_header("x-ratelimit-reset", &reset.to_string()),
    );
    let err = target.list(&ctx, &scopes).await.unwrap_err();
    let wait = err.retry_after().unwrap().as_secs();
    assert!(err.is_retryable() && (25..=30).contains(&wait), "{wait}");

    for status in [500, 502, 503] {
        fake.answer_next(FakeResponse::json(
            status,
            json!({"error": {"code": "internal_server_error", "message": "An unexpected internal error occurred"}}),
        ));
        let err = target.list(&ctx, &scopes).await.unwrap_err();
        assert!(err.is_retryable(), "{status}");
    }

    fake.answer_next(FakeResponse::json(
        401,
        json!({"error": {"code": "unauthorized", "message": "Not authenticated"}}),
    ));
    let err = target.list(&ctx, &scopes).await.unwrap_err();
    assert!(!err.is_retryable());

    // A wrong token: 403 from Vercel, permanent, and the token is not in the message.
    let mut wrong = fake.metadata();
    wrong["token"] = json!("vc_wrong_token_value_77");
    let err = build(&wrong)
        .sync_target()
        .unwrap()
        .list(&ctx, &scopes)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert!(!err.is_retryable());
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains("vc_wrong_token_value_77") && !text.contains(TOKEN),
        "{text}"
    );

    // A team's project without `teamId`: 404 with a hint.
    let mut no_team = fake.metadata();
    no_team.as_object_mut().unwrap().remove("teamId");
    let err = build(&no_team).validate(&ctx).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("teamId"), "{err}");

    // Vercel's error objects can repeat the value; keywire's errors do not.
    let value = "s3cr3t-value-never-shown";
    for (scope, key) in [("env_unknown1", "GOOD_KEY"), ("production", "TZ")] {
        let change = Change {
            environment_id: "prod".into(),
            scope: scope.into(),
            key: key.into(),
            kind: EntryKind::Secret,
            op: Op::Upsert(Secret::new(value)),
            existing: None,
            hash: Some("h".into()),
        };
        let err = target.write(&ctx, &change).await.unwrap_err();
        assert_eq!(err.status(), Some(400));
        assert!(!err.is_retryable());
        let text = format!("{err} {err:?}");
        assert!(text.contains(key), "{text}");
        assert!(!text.contains(value) && !text.contains(TOKEN), "{text}");
        let last = fake.requests().pop().unwrap();
        assert!(last.text().contains(value), "the fake did echo it");
    }
    assert!(fake.envs().is_empty());
}

#[tokio::test]
async fn redeploy_cancels_stale_builds_and_redeploys_each_changed_target() {
    let fake = team_fake();
    let old = fake.add_deployment("production", "READY");
    let ready = fake.add_deployment("production", "READY");
    let building = fake.add_deployment("production", "BUILDING");
    let preview = fake.add_deployment("preview", "READY");
    let _preview_old_error = fake.add_deployment("preview", "ERROR");
    let integration = build(&fake.metadata());
    let target = integration.sync_target().unwrap();
    let ctx = ctx(&fake);
    let changed: Vec<String> = ["production", "preview", "development", CUSTOM_ENV_ID]
        .map(String::from)
        .to_vec();

    // Without the action: nothing.
    target
        .after_sync(&ctx, &changed, &["upsert".into()])
        .await
        .unwrap();
    assert!(fake.requests().is_empty());

    target
        .after_sync(&ctx, &changed, &["upsert".into(), "redeploy".into()])
        .await
        .unwrap();
    let deployments = fake.deployments();
    let by_id = |id: &str| deployments.iter().find(|d| d.uid == id).unwrap();
    assert_eq!(by_id(&building).state, "CANCELED");
    assert_eq!(by_id(&old).state, "READY");
    assert_eq!(by_id(&ready).state, "READY");
    let redeploys: Vec<_> = deployments
        .iter()
        .filter(|d| d.redeploy_of.is_some())
        .collect();
    // Production: the cancelled build (newer code than the last ready one) is rebuilt;
    // preview: the latest ready deployment; the custom environment has none; development is
    // never deployed.
    assert_eq!(redeploys.len(), 2, "{redeploys:?}");
    let redeploy_of = |target: &str| {
        redeploys
            .iter()
            .find(|d| d.target == target)
            .and_then(|d| d.redeploy_of.clone())
    };
    assert_eq!(redeploy_of("production"), Some(building.clone()));
    assert_eq!(redeploy_of("preview"), Some(preview.clone()));
    let requests = fake.requests();
    let posts: Vec<Value> = requests
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| {
            assert_eq!(r.path, "/v13/deployments");
            r.json()
        })
        .collect();
    let post_for = |source: &str| posts.iter().find(|p| p["deploymentId"] == source).unwrap();
    assert_eq!(post_for(&building)["target"], "production");
    assert_eq!(post_for(&building)["name"], vercel::PROJECT_NAME);
    assert!(
        post_for(&preview).get("target").is_none(),
        "preview is the default"
    );
    let cancel = requests.iter().find(|r| r.method == "PATCH").unwrap();
    assert_eq!(cancel.path, format!("/v12/deployments/{building}/cancel"));
    assert!(
        requests
            .iter()
            .all(|r| r.query_param("target") != Some("development"))
    );
    let lists: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/v6/deployments")
        .collect();
    assert!(lists.iter().any(|r| r.query_param("state") == Some("READY") && r.query_param("limit") == Some("1")));

    // Once that build is ready, a second run (nothing building) redeploys the latest ready
    // production deployment: the one just built.
    let rebuilt = fake
        .deployments()
        .into_iter()
        .find(|d| d.target == "production" && d.redeploy_of.is_some())
        .unwrap()
        .uid;
    fake.set_deployment_state(&rebuilt, "READY");
    target
        .after_sync(&ctx, &["production".into()], &["redeploy".into()])
        .await
        .unwrap();
    let last = fake.deployments().pop().unwrap();
    assert_eq!(last.redeploy_of.as_deref(), Some(rebuilt.as_str()));
    assert_eq!(last.target, "production");
}

#[tokio::test]
async fn a_refused_redeploy_of_a_cancelled_build_falls_back_to_the_latest_ready_one() {
    let fake = FakeVercel::start_with(Options {
        refuse_cancelled_redeploys: true,
        ..Options::default()
    });
    let ready = fake.add_deployment(CUSTOM_ENV_ID, "READY");
    let queued = fake.add_deployment(CUSTOM_ENV_ID, "QUEUED");
    let integration = build(&fake.metadata());
    let target = integration.sync_target().unwrap();
    target
        .after_sync(&ctx(&fake), &[CUSTOM_ENV_ID.into()], &["redeploy".into()])
        .await
        .unwrap();
    let deployments = fake.deployments();
    assert_eq!(deployments[1].uid, queued);
    assert_eq!(deployments[1].state, "CANCELED");
    assert_eq!(deployments.len(), 3);
    assert_eq!(deployments[2].redeploy_of.as_deref(), Some(ready.as_str()));
    assert_eq!(deployments[2].target, CUSTOM_ENV_ID);
    let posts: Vec<Value> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.json())
        .collect();
    assert_eq!(posts.len(), 2, "the refused one, then the fallback");
    assert_eq!(posts[1]["target"], CUSTOM_ENV_ID);
}

#[tokio::test]
async fn live_check_lists_environments_and_changes_nothing() {
    let fake = team_fake();
    fake.seed("KEEP", "v", "plain", &["production"]);
    let before = fake.envs();
    let integration = build(&fake.metadata());
    integration.validate(&ctx(&fake)).await.unwrap();
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(
        requests[0].path,
        format!("/v9/projects/{}/custom-environments", vercel::PROJECT_ID)
    );
    assert_eq!(fake.envs(), before);

    let mut unknown = fake.metadata();
    unknown["projectId"] = json!("prj_missing");
    let err = build(&unknown).validate(&ctx(&fake)).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert!(err.to_string().contains("Project not found"), "{err}");
}

#[tokio::test]
async fn personal_projects_send_no_team_and_a_stray_team_is_refused() {
    let fake = FakeVercel::start();
    let integration = build(&fake.metadata());
    integration.validate(&ctx(&fake)).await.unwrap();
    assert_eq!(fake.requests()[0].query, "");
    let mut stray = fake.metadata();
    stray["teamId"] = json!("team_other");
    let err = build(&stray).validate(&ctx(&fake)).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
}
