//! The GitLab CI/CD integration against a fake of GitLab's project variables API on 127.0.0.1
//! (`keywire_test_support::gitlab`), driven the way core's sync engine drives it: `list`,
//! then `keywire_core::sync::plan`, then `apply`.

use std::time::Duration;

use keywire_core::sync::{
    self, Action, Change, ConflictPolicy, DesiredEntry, EntryKind, MappedEnvironment, Op,
    PlanInput, PlanItem, RemoteKey, SyncRecord, SyncSettings, SyncTarget,
};
use keywire_core::{Context, Integration, OutboundPolicy, Secret, check_descriptor, find};
use keywire_test_support::fake::FakeResponse;
use keywire_test_support::gitlab::{
    self, DEVELOPER_TOKEN, FakeGitLab, PROJECT_ID, PROJECT_PATH, TOKEN, Variable,
};
use keywire_test_support::{context, context_overriding, context_with};
use serde_json::{Value, json};

// Names the crate, so its registration is linked into this test binary.
use keywire_integration_gitlab_ci as _;

fn build(metadata: &Value) -> Box<dyn Integration> {
    find("gitlab_ci").unwrap().build(metadata).unwrap()
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

fn writes(fake: &FakeGitLab) -> usize {
    fake.requests().iter().filter(|r| r.method != "GET").count()
}

fn change(scope: &str, key: &str, op: Op, existing: bool) -> Change {
    Change {
        environment_id: "prod".into(),
        scope: scope.into(),
        key: key.into(),
        kind: EntryKind::Secret,
        op,
        existing: existing.then(|| RemoteKey {
            scope: scope.into(),
            key: key.into(),
            value: None,
            handle: None,
            kind: None,
        }),
        hash: Some("h".into()),
    }
}

#[test]
fn descriptor_meets_the_contract() {
    check_descriptor("gitlab_ci").unwrap_or_else(|problems| panic!("{problems:#?}"));
    let d = find("gitlab_ci").unwrap();
    assert_eq!(d.secret_fields(), vec!["/token"]);
    assert_eq!(
        d.permitted_actions,
        ["upsert", "delete", "cleanup_on_remove"]
    );
    let schema = d.metadata_schema();
    assert_eq!(schema["properties"]["masked"]["default"], json!(true));
    assert_eq!(schema["required"], json!(["token", "projectId"]));
}

#[test]
fn metadata_is_checked_without_echoing_the_token() {
    let d = find("gitlab_ci").unwrap();
    let err = d
        .build(&json!({"token": "glpat secret", "projectId": "shop", "baseUrl": "http://gitlab.example.com"}))
        .err()
        .unwrap();
    let pointers: Vec<&str> = err.errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(pointers, ["/token", "/projectId", "/baseUrl"]);
    assert!(!err.to_string().contains("glpat secret"), "{err}");
    let err = d
        .build(&json!({"token": "t", "projectId": "1", "environmentScope": "*"}))
        .err()
        .unwrap();
    assert!(err.to_string().contains("environmentScope"), "{err}");
}

#[tokio::test]
async fn first_sync_leaves_unrelated_keys_alone() {
    let fake = FakeGitLab::start();
    let seeded = vec![
        Variable::new("UNRELATED", "theirs", "*"),
        Variable::new("DB_URL", "postgres://staging", "staging"),
        Variable {
            hidden: true,
            masked: true,
            ..Variable::new("HIDDEN_TOKEN", "h1dden-token-value", "production")
        },
        Variable {
            variable_type: "file".into(),
            ..Variable::new("KUBECONFIG", "apiVersion: v1", "*")
        },
        Variable::new("REVIEW_ONLY", "r", "review/*"),
    ];
    for v in &seeded {
        fake.seed(v.clone());
    }
    let integration = build(&fake.metadata());
    let target = integration.sync_target().unwrap();
    let ctx = context();
    let mut engine = Engine::new(vec![env("prod", "production"), env("all", "*")]);
    let desired = || {
        vec![
            secret("prod", "DB_URL", "postgres://prod:pw@db:5432/shop"),
            secret("all", "API_KEY", "k3y-abcdefgh"),
            variable("prod", "LOG_LEVEL", "warn"),
            // Unmaskable (too short and a space): skipped, never sent unmasked.
            secret("prod", "SHORT", "p w!"),
        ]
    };
    let items = engine.sync(target, &ctx, desired()).await;
    assert_eq!(
        actions(&items),
        vec![
            ("*/API_KEY".into(), "create"),
            ("production/DB_URL".into(), "create"),
            ("production/LOG_LEVEL".into(), "create"),
            ("production/SHORT".into(), "skip"),
        ]
    );
    assert!(items[3].reason.as_deref().unwrap().contains("cannot mask"));
    let now = fake.variables();
    for v in &seeded {
        assert!(now.contains(v), "{} changed", v.key);
    }
    assert_eq!(now.len(), seeded.len() + 3);
    let db = fake.get("DB_URL", "production").unwrap();
    assert_eq!(db.value, "postgres://prod:pw@db:5432/shop");
    assert!(db.masked && db.raw && !db.protected && db.variable_type == "env_var");
    let key = fake.get("API_KEY", "*").unwrap();
    assert!(key.masked);
    let log = fake.get("LOG_LEVEL", "production").unwrap();
    assert!(!log.masked && log.raw, "variables are not masked");
    assert!(fake.get("SHORT", "production").is_none());

    // Every request: PRIVATE-TOKEN (no other credential header); the list followed the pages.
    let requests = fake.requests();
    for r in &requests {
        assert_eq!(r.header("private-token"), Some(TOKEN));
        assert_eq!(r.header("authorization"), None);
        assert!(
            r.path
                .starts_with(&format!("/api/v4/projects/{PROJECT_ID}/variables"))
        );
    }
    let pages: Vec<_> = requests.iter().filter(|r| r.method == "GET").collect();
    assert_eq!(pages.len(), 3, "5 variables, at most 2 a page");
    assert_eq!(pages[0].query_param("per_page"), Some("100"));
    assert_eq!(
        pages
            .iter()
            .map(|r| r.query_param("page").unwrap())
            .collect::<Vec<_>>(),
        ["1", "2", "3"]
    );
    let posts: Vec<_> = requests.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 3);
    assert_eq!(posts[0].header("content-type"), Some("application/json"));
    assert_eq!(posts[0].json()["environment_scope"], "*");

    // A second sync: unchanged (values are readable at GitLab), nothing written.
    let before = writes(&fake);
    let items = engine.sync(target, &ctx, desired()).await;
    assert_eq!(
        items
            .iter()
            .filter(|i| i.action == Action::Unchanged)
            .count(),
        3,
        "{items:?}"
    );
    assert_eq!(writes(&fake), before);
}

#[tokio::test]
async fn updates_and_deletes_use_the_scope_filter_and_follow_the_delete_action() {
    let fake = FakeGitLab::start();
    // The same key in another scope must not be touched by updates or deletes.
    fake.seed(Variable::new("API_KEY", "staging-value", "staging"));
    let integration = build(&fake.metadata());
    let target = integration.sync_target().unwrap();
    let ctx = context();
    let mut engine = Engine::new(vec![env("prod", "production")]);
    engine
        .sync(
            target,
            &ctx,
            vec![
                secret("prod", "API_KEY", "first-value-1"),
                variable("prod", "REGION", "eu"),
            ],
        )
        .await;

    let items = engine
        .sync(
            target,
            &ctx,
            vec![secret("prod", "API_KEY", "second-value-2")],
        )
        .await;
    assert_eq!(
        actions(&items),
        vec![
            ("production/API_KEY".into(), "update"),
            ("production/REGION".into(), "keep"),
        ]
    );
    assert_eq!(
        fake.get("API_KEY", "production").unwrap().value,
        "second-value-2"
    );
    assert_eq!(
        fake.get("API_KEY", "staging").unwrap().value,
        "staging-value"
    );
    let put = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .unwrap();
    assert_eq!(
        put.path,
        format!("/api/v4/projects/{PROJECT_ID}/variables/API_KEY")
    );
    assert_eq!(put.query, "filter%5Benvironment_scope%5D=production");
    assert_eq!(
        put.json(),
        json!({"value": "second-value-2", "variable_type": "env_var", "masked": true, "protected": false, "raw": true})
    );
    assert!(fake.get("REGION", "production").is_some());

    // A value changed by hand in GitLab is readable, so it is put back; with `delete`,
    // REGION goes; a key keywire never wrote stays.
    fake.seed(Variable::new("NOISE", "x", "production"));
    fake.edit("API_KEY", "production", |v| {
        v.value = "edited-by-hand".into()
    });
    engine.may_delete = true;
    let items = engine
        .sync(
            target,
            &ctx,
            vec![secret("prod", "API_KEY", "second-value-2")],
        )
        .await;
    assert_eq!(
        actions(&items),
        vec![
            ("production/API_KEY".into(), "update"),
            ("production/REGION".into(), "delete"),
        ]
    );
    assert_eq!(
        fake.get("API_KEY", "production").unwrap().value,
        "second-value-2"
    );
    assert!(fake.get("REGION", "production").is_none());
    assert!(fake.get("NOISE", "production").is_some());
    assert_eq!(
        fake.get("API_KEY", "staging").unwrap().value,
        "staging-value"
    );
    let delete = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "DELETE")
        .unwrap();
    assert_eq!(delete.query, "filter%5Benvironment_scope%5D=production");
}

#[tokio::test]
async fn adopt_takes_over_in_place_and_skip_leaves_alone() {
    let fake = FakeGitLab::start();
    fake.seed(Variable::new("SHARED", "theirs", "production"));
    fake.seed(Variable::new("EQUAL", "same-value-1", "production"));
    let integration = build(&fake.metadata());
    let target = integration.sync_target().unwrap();
    let ctx = context();
    let mut engine = Engine::new(vec![env("prod", "production")]);
    let desired = || {
        vec![
            secret("prod", "SHARED", "ours-value-1"),
            secret("prod", "EQUAL", "same-value-1"),
        ]
    };
    let before = fake.variables();
    let items = engine.sync(target, &ctx, desired()).await;
    assert!(items.iter().all(|i| i.action == Action::Skip), "{items:?}");
    assert_eq!(fake.variables(), before);
    assert_eq!(writes(&fake), 0);

    engine.settings.on_conflict = ConflictPolicy::Adopt;
    let items = engine.sync(target, &ctx, desired()).await;
    assert!(items.iter().all(|i| i.action == Action::Adopt), "{items:?}");
    let shared = fake.get("SHARED", "production").unwrap();
    assert_eq!(shared.value, "ours-value-1");
    assert!(shared.masked && shared.raw);
    assert_eq!(writes(&fake), 1, "EQUAL already had keywire's value");
    assert_eq!(engine.records.len(), 2);
    let items = engine.sync(target, &ctx, desired()).await;
    assert!(
        items.iter().all(|i| i.action == Action::Unchanged),
        "{items:?}"
    );
}

#[tokio::test]
async fn masking_and_protection_options() {
    let fake = FakeGitLab::start();
    let mut metadata = fake.metadata();
    metadata["allowUnmasked"] = json!(true);
    metadata["protected"] = json!(true);
    let integration = build(&metadata);
    let target = integration.sync_target().unwrap();
    let ctx = context();
    let mut engine = Engine::new(vec![env("prod", "production")]);
    let items = engine
        .sync(
            target,
            &ctx,
            vec![
                secret("prod", "SHORT", "p w!"),
                secret("prod", "LONG", "abcdefgh-12345678"),
            ],
        )
        .await;
    assert!(
        items.iter().all(|i| i.action == Action::Create),
        "{items:?}"
    );
    let short = fake.get("SHORT", "production").unwrap();
    assert!(!short.masked && short.protected);
    let long = fake.get("LONG", "production").unwrap();
    assert!(long.masked && long.protected);

    let mut unmasked = fake.metadata();
    unmasked["masked"] = json!(false);
    let integration = build(&unmasked);
    let target = integration.sync_target().unwrap();
    let mut engine = Engine::new(vec![env("prod", "staging")]);
    engine
        .sync(
            target,
            &ctx,
            vec![secret("prod", "LONG", "abcdefgh-12345678")],
        )
        .await;
    assert!(!fake.get("LONG", "staging").unwrap().masked);
}

#[tokio::test]
async fn errors_are_classified_and_never_carry_values_or_the_token() {
    let fake = FakeGitLab::start();
    let integration = build(&fake.metadata());
    let target = integration.sync_target().unwrap();
    let ctx = context();
    let scopes = vec!["*".to_owned()];

    fake.rate_limit_next(1);
    let err = target.list(&ctx, &scopes).await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(5)));
    assert!(err.to_string().contains("Retry later"), "{err}");

    for status in [500, 502, 503] {
        fake.answer_next(FakeResponse::json(
            status,
            json!({"message": format!("{status} Internal Server Error")}),
        ));
        assert!(
            target.list(&ctx, &scopes).await.unwrap_err().is_retryable(),
            "{status}"
        );
    }

    let mut wrong = fake.metadata();
    wrong["token"] = json!("glpat-wrongTokenValue99");
    let err = build(&wrong).validate(&ctx).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(!err.is_retryable());
    let text = format!("{err} {err:?}");
    assert!(text.contains("401 Unauthorized"), "{text}");
    assert!(
        !text.contains("glpat-wrongTokenValue99") && !text.contains(TOKEN),
        "{text}"
    );

    // A Developer may read the project (the live check passes) but not its variables.
    let mut developer = fake.metadata();
    developer["token"] = json!(DEVELOPER_TOKEN);
    let developer = build(&developer);
    developer.validate(&ctx).await.unwrap();
    let err = developer
        .sync_target()
        .unwrap()
        .list(&ctx, &scopes)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("Maintainer"), "{err}");

    let mut missing = fake.metadata();
    missing["projectId"] = json!("acme/missing");
    let err = build(&missing).validate(&ctx).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("404 Project Not Found"), "{err}");

    // GitLab's errors may repeat a value; keywire's do not, and name the key only.
    let value = "abc def ghi";
    let unmaskable = change("*", "BAD_MASK", Op::Upsert(Secret::new(value)), false);
    fake.answer_next(FakeResponse::json(
        400,
        json!({"message": {"value": [format!("{value} is invalid")]}}),
    ));
    let err = target.write(&ctx, &unmaskable).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(!err.is_retryable());
    let text = format!("{err} {err:?}");
    assert!(text.contains("BAD_MASK"), "{text}");
    assert!(!text.contains(value) && !text.contains(TOKEN), "{text}");

    // A key created at GitLab between list and write: retryable, the next sync re-plans.
    fake.seed(Variable::new("RACE", "someone-elses", "*"));
    let err = target
        .write(
            &ctx,
            &change("*", "RACE", Op::Upsert(Secret::new("ours-123456")), false),
        )
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(fake.get("RACE", "*").unwrap().value, "someone-elses");
}

#[tokio::test]
async fn writes_survive_keys_that_vanished_since_the_list() {
    let fake = FakeGitLab::start();
    let integration = build(&fake.metadata());
    let target = integration.sync_target().unwrap();
    let ctx = context();
    // Listed, then deleted by someone: the update creates it.
    target
        .write(
            &ctx,
            &change(
                "production",
                "GONE",
                Op::Upsert(Secret::new("value-12345")),
                true,
            ),
        )
        .await
        .unwrap();
    assert_eq!(fake.get("GONE", "production").unwrap().value, "value-12345");
    // Deleting what is already gone is done.
    target
        .write(&ctx, &change("staging", "NEVER", Op::Delete, true))
        .await
        .unwrap();
    let methods: Vec<String> = fake.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["PUT", "POST", "DELETE"]);
}

#[tokio::test]
async fn live_check_reads_the_project_and_changes_nothing() {
    let fake = FakeGitLab::start();
    fake.seed(Variable::new("KEEP", "v", "*"));
    let before = fake.variables();
    let mut by_path = fake.metadata();
    by_path["projectId"] = json!(PROJECT_PATH);
    build(&by_path).validate(&context()).await.unwrap();
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, "/api/v4/projects/acme%2Fshop");
    assert_eq!(fake.variables(), before);

    // gitlab.com is the default base URL.
    let mut default_host = fake.metadata();
    default_host.as_object_mut().unwrap().remove("baseUrl");
    let ctx = context_overriding(gitlab::ORIGIN, &fake);
    build(&default_host).validate(&ctx).await.unwrap();
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn a_private_base_url_is_refused_unless_allow_listed() {
    let fake = FakeGitLab::start();
    let integration = build(&fake.metadata());
    let guarded = context_with(OutboundPolicy::default());
    let err = integration.validate(&guarded).await.unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("private"), "{err}");
    let metadata = json!({"token": TOKEN, "projectId": "1", "baseUrl": "https://169.254.169.254"});
    let err = build(&metadata).validate(&guarded).await.unwrap_err();
    assert!(err.to_string().contains("private"), "{err}");
    assert!(fake.requests().is_empty());
}
