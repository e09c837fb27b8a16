//! The GitHub Actions integration against a local fake of GitHub's Actions secrets and
//! variables API (`keywire_test_support::github`), which holds real X25519 key pairs.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use keywire_core::sync::{
    Change, DesiredEntry, EntryKind, MappedEnvironment, Op, Plan, PlanInput, RemoteKey, SyncRecord,
    SyncSettings, SyncTarget, cleanup_plan, plan,
};
use keywire_core::{Context, Integration, OutboundPolicy, Secret, check_descriptor, find};
use keywire_test_support::fake::FakeResponse;
use keywire_test_support::github::{self, FakeGitHub};
use keywire_test_support::{context, context_overriding, context_with};
use serde_json::{Value, json};

// Names the crate, so its registration is linked into this test binary.
use keywire_integration_github_actions as _;

fn metadata(fake: &FakeGitHub) -> Value {
    github::metadata(fake)
}

fn build(metadata: &Value) -> Box<dyn Integration> {
    find("github_actions")
        .expect("registered")
        .build(metadata)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn target(integration: &dyn Integration) -> &dyn SyncTarget {
    integration.sync_target().expect("an infrastructure type")
}

fn env(id: &str, scope: &str) -> MappedEnvironment {
    MappedEnvironment {
        id: id.into(),
        slug: format!("{id}-slug"),
        scope: scope.into(),
    }
}

fn desired(env: &str, key: &str, kind: EntryKind, value: &str) -> DesiredEntry {
    DesiredEntry {
        environment_id: env.into(),
        key: key.into(),
        kind,
        value: Secret::new(value),
        hash: format!("h({value})"),
    }
}

/// What the server records after applying a plan: one record per written key.
fn recorded(plan: &Plan, mut records: Vec<SyncRecord>) -> Vec<SyncRecord> {
    for change in &plan.changes {
        records.retain(|r| !(r.scope == change.scope && r.key == change.key));
        if matches!(change.op, Op::Upsert(_)) {
            records.push(SyncRecord {
                environment_id: change.environment_id.clone(),
                scope: change.scope.clone(),
                key: change.key.clone(),
                kind: change.kind,
                hash: change.hash.clone(),
            });
        }
    }
    records.extend(plan.adopted.iter().cloned());
    records
}

/// Lists the target, plans and applies; returns the plan and the new records.
async fn sync(
    target: &dyn SyncTarget,
    ctx: &Context,
    environments: &[MappedEnvironment],
    desired: Vec<DesiredEntry>,
    records: Vec<SyncRecord>,
    may_delete: bool,
) -> (Plan, Vec<SyncRecord>) {
    let settings = SyncSettings::default();
    let mut scopes: Vec<String> = environments.iter().map(|e| e.scope.clone()).collect();
    scopes.dedup();
    let remote = target.list(ctx, &scopes).await.unwrap();
    let plan = plan(
        target,
        PlanInput {
            settings: &settings,
            environments,
            desired,
            records: &records,
            may_upsert: true,
            may_delete,
        },
        remote,
    );
    let applied = target.apply(ctx, &plan.changes).await;
    assert!(applied.error.is_none(), "{:?}", applied.error);
    assert_eq!(applied.done, plan.changes.len());
    let records = recorded(&plan, records);
    (plan, records)
}

fn actions(plan: &Plan) -> Vec<(String, &'static str)> {
    plan.items
        .iter()
        .map(|i| (format!("{}/{}", i.target, i.key), i.action.as_str()))
        .collect()
}

fn upsert(scope: &str, key: &str, kind: EntryKind, value: &str) -> Change {
    Change {
        environment_id: "e1".into(),
        scope: scope.into(),
        key: key.into(),
        kind,
        op: Op::Upsert(Secret::new(value)),
        existing: None,
        hash: Some(format!("h({value})")),
    }
}

#[test]
fn descriptor_meets_the_contract() {
    check_descriptor("github_actions").unwrap_or_else(|problems| panic!("{problems:#?}"));
    let d = find("github_actions").unwrap();
    assert_eq!(d.secret_fields(), vec!["/token"]);
    assert!(d.permitted_actions.contains(&"delete"));
}

#[test]
fn metadata_is_checked_with_pointers() {
    let d = find("github_actions").unwrap();
    let err = d
        .build(&json!({"token": "t", "owner": "-bad-", "repo": "a/b", "apiBaseUrl": "ftp://x"}))
        .err()
        .unwrap();
    let text = err.to_string();
    for pointer in ["/owner", "/repo", "/apiBaseUrl"] {
        assert!(text.contains(pointer), "{text}");
    }
    assert!(d
        .build(&json!({"token": "t", "owner": "acme", "repo": "shop", "apiBaseUrl": "https://user:pw@ghe.example/api/v3"}))
        .is_err());
    assert!(
        d.build(&json!({"token": "t", "owner": "acme", "repo": "shop", "unknown": 1}))
            .is_err()
    );
    d.build(&json!({"token": "t", "owner": "acme-inc", "repo": "shop.web_1", "apiBaseUrl": "https://ghe.example/api/v3/"}))
        .unwrap();
}

#[test]
fn targets_are_github_environment_names_and_empty_means_repository() {
    let integration = build(&json!({"token": "t", "owner": "acme", "repo": "shop"}));
    let t = target(integration.as_ref());
    assert_eq!(t.scope(None).unwrap(), "");
    assert_eq!(t.scope(Some("")).unwrap(), "");
    assert_eq!(t.scope(Some(" production ")).unwrap(), "production");
    assert!(t.scope(Some(&"x".repeat(256))).is_err());
    assert!(t.scope(Some("bad\nname")).is_err());
}

#[test]
fn github_name_rules_refuse_keys_without_renaming_and_never_echo_values() {
    let integration = build(&json!({"token": "t", "owner": "acme", "repo": "shop"}));
    let t = target(integration.as_ref());
    for ok in ["DATABASE_URL", "A", "_X", "KEY_2"] {
        t.check(ok, EntryKind::Secret, "v").unwrap();
    }
    for (bad, why) in [
        ("GITHUB_TOKEN", "GITHUB_"),
        ("github_x", "GITHUB_"),
        ("2FA_KEY", "digit"),
        ("MY-KEY", "letters, digits and `_`"),
        ("MY KEY", "letters, digits and `_`"),
        ("", "non-empty"),
        ("database_url", "DATABASE_URL"),
    ] {
        let reason = t
            .check(bad, EntryKind::Variable, "hunter2-value")
            .unwrap_err();
        assert!(reason.contains(why), "{bad}: {reason}");
        assert!(!reason.contains("hunter2-value"));
    }
    let big = "x".repeat(48 * 1024 + 1);
    let reason = t.check("BIG", EntryKind::Secret, &big).unwrap_err();
    assert!(
        reason.contains("48 KB") && !reason.contains("xxxx"),
        "{reason}"
    );
}

#[tokio::test]
async fn live_check_reads_the_repository_and_its_public_key_with_githubs_headers() {
    let fake = FakeGitHub::start();
    build(&metadata(&fake)).validate(&context()).await.unwrap();
    let requests = fake.requests();
    let paths: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        paths,
        vec![
            ("GET", "/repos/acme/shop"),
            ("GET", "/repos/acme/shop/actions/secrets/public-key")
        ]
    );
    for r in &requests {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {}", github::TOKEN).as_str())
        );
        assert_eq!(r.header("accept"), Some("application/vnd.github+json"));
        assert_eq!(r.header("x-github-api-version"), Some("2022-11-28"));
        assert!(r.header("user-agent").unwrap().starts_with("keywire/"));
    }

    // A wrong token: final, and neither token appears in the error.
    let mut wrong = metadata(&fake);
    wrong["token"] = json!("ghp_wrongWrongWrong0123456789");
    let err = build(&wrong).validate(&context()).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(!err.is_retryable());
    let text = format!("{err} {err:?}");
    assert!(text.contains("Bad credentials"), "{text}");
    assert!(
        !text.contains("ghp_wrong") && !text.contains(github::TOKEN),
        "{text}"
    );

    // An unknown repository.
    let mut other = metadata(&fake);
    other["repo"] = json!("nope");
    let err = build(&other).validate(&context()).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert!(err.to_string().contains("acme/nope"), "{err}");
}

#[tokio::test]
async fn the_default_api_is_api_github_com() {
    let fake = FakeGitHub::start();
    let ctx = context_overriding("https://api.github.com", fake.server());
    build(&json!({"token": github::TOKEN, "owner": "acme", "repo": "shop"}))
        .validate(&ctx)
        .await
        .unwrap();
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn an_enterprise_server_url_on_a_private_address_is_refused_unless_allow_listed() {
    let fake = FakeGitHub::start();
    let integration = build(&metadata(&fake));
    let err = integration
        .validate(&context_with(OutboundPolicy::default()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("private"), "{err}");
    assert!(!err.is_retryable());
    let err = target(integration.as_ref())
        .list(&context_with(OutboundPolicy::default()), &[String::new()])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("private"), "{err}");
    assert!(fake.requests().is_empty(), "nothing reached the address");
}

#[tokio::test]
async fn secrets_are_sealed_boxes_that_open_with_the_repository_key() {
    let fake = FakeGitHub::start();
    let integration = build(&metadata(&fake));
    let t = target(integration.as_ref());
    let ctx = context();
    let applied = t
        .apply(
            &ctx,
            &[
                upsert(
                    "",
                    "DATABASE_URL",
                    EntryKind::Secret,
                    "postgres://u:p4ss@db/shop",
                ),
                upsert("", "API_KEY", EntryKind::Secret, "sk_live_0123456789"),
            ],
        )
        .await;
    assert!(applied.error.is_none(), "{:?}", applied.error);
    assert_eq!(applied.done, 2);

    // Open the sealed box here, with the fake's real private key.
    let (secret_key, key_id) = fake.secret_key("");
    let stored = fake.secret("", "DATABASE_URL").unwrap();
    assert_eq!(stored.key_id, key_id);
    let sealed = BASE64.decode(&stored.encrypted_value).unwrap();
    assert_eq!(sealed.len(), 48 + "postgres://u:p4ss@db/shop".len());
    let opened = secret_key.unseal(&sealed).unwrap();
    assert_eq!(opened, b"postgres://u:p4ss@db/shop");
    assert_eq!(
        fake.secret_value("", "API_KEY").as_deref(),
        Some("sk_live_0123456789")
    );

    let requests = fake.requests();
    let methods: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        methods,
        vec![
            ("GET", "/repos/acme/shop/actions/secrets/public-key"),
            ("PUT", "/repos/acme/shop/actions/secrets/DATABASE_URL"),
            ("PUT", "/repos/acme/shop/actions/secrets/API_KEY"),
        ],
        "the public key is fetched once per sync"
    );
    let put = &requests[1];
    assert_eq!(put.header("content-type"), Some("application/json"));
    let body = put.json();
    assert_eq!(body["key_id"], json!(key_id));
    assert_eq!(body.as_object().unwrap().len(), 2);
    assert!(!put.text().contains("p4ss"), "only the sealed box is sent");
}

#[tokio::test]
async fn environment_targets_use_the_environments_own_key_and_paths() {
    let fake = FakeGitHub::start();
    fake.add_environment("production");
    let integration = build(&metadata(&fake));
    let t = target(integration.as_ref());
    let ctx = context();
    let scope = t.scope(Some("production")).unwrap();
    let envs = [env("prod", &scope), env("dev", "")];
    let (plan, _) = sync(
        t,
        &ctx,
        &envs,
        vec![
            desired("prod", "TOKEN", EntryKind::Secret, "prod-secret-value"),
            desired("prod", "REGION", EntryKind::Variable, "eu-west-1"),
            desired("dev", "TOKEN", EntryKind::Secret, "dev-secret-value"),
        ],
        Vec::new(),
        false,
    )
    .await;
    assert_eq!(
        actions(&plan),
        vec![
            ("/TOKEN".into(), "create"),
            ("production/REGION".into(), "create"),
            ("production/TOKEN".into(), "create"),
        ]
    );
    assert_eq!(
        fake.secret_value("production", "TOKEN").as_deref(),
        Some("prod-secret-value")
    );
    assert_eq!(
        fake.secret_value("", "TOKEN").as_deref(),
        Some("dev-secret-value")
    );
    assert_eq!(fake.variables("production")["REGION"], "eu-west-1");
    assert!(fake.variables("").is_empty());
    // Two key pairs: each box opens only with its own target's key.
    let (repo_key, _) = fake.secret_key("");
    let prod_box = BASE64
        .decode(fake.secret("production", "TOKEN").unwrap().encrypted_value)
        .unwrap();
    assert!(repo_key.unseal(&prod_box).is_err());
    let paths: Vec<String> = fake.requests().iter().map(|r| r.path.clone()).collect();
    assert!(paths.contains(&"/repos/acme/shop/environments/production/secrets/public-key".into()));
    assert!(paths.contains(&"/repos/acme/shop/environments/production/variables".into()));

    // A GitHub environment that does not exist: a clear, final error.
    let missing = t.scope(Some("staging area")).unwrap();
    let err = t
        .list(&ctx, std::slice::from_ref(&missing))
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("`staging area`"), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.path == "/repos/acme/shop/environments/staging%20area/secrets")
    );
}

#[tokio::test]
async fn lists_follow_every_page_with_githubs_page_sizes() {
    let fake = FakeGitHub::start();
    // GitHub allows 100 repository secrets: one page of 100.
    for i in 0..100 {
        fake.put_secret("", &format!("S{i:03}"), "x");
    }
    for i in 0..65 {
        fake.put_variable("", &format!("V{i:03}"), &format!("value-{i}"));
    }
    let integration = build(&metadata(&fake));
    let keys = target(integration.as_ref())
        .list(&context(), &[String::new()])
        .await
        .unwrap();
    let secrets: Vec<&RemoteKey> = keys
        .iter()
        .filter(|k| k.kind == Some(EntryKind::Secret))
        .collect();
    let variables: Vec<&RemoteKey> = keys
        .iter()
        .filter(|k| k.kind == Some(EntryKind::Variable))
        .collect();
    assert_eq!(secrets.len(), 100);
    assert_eq!(variables.len(), 65);
    assert!(
        secrets.iter().all(|k| k.value.is_none()),
        "secrets cannot be read back"
    );
    let v7 = variables.iter().find(|k| k.key == "V007").unwrap();
    assert_eq!(v7.value.as_ref().unwrap().expose(), "value-7");
    let queries: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.path, r.query))
        .collect();
    assert_eq!(
        queries,
        vec![
            "/repos/acme/shop/actions/secrets per_page=100&page=1",
            "/repos/acme/shop/actions/variables per_page=30&page=1",
            "/repos/acme/shop/actions/variables per_page=30&page=2",
            "/repos/acme/shop/actions/variables per_page=30&page=3",
        ]
    );
}

#[tokio::test]
async fn first_sync_leaves_unrelated_keys_untouched_and_skips_taken_and_invalid_names() {
    let fake = FakeGitHub::start();
    fake.put_secret("", "THEIR_SECRET", "their-secret-value");
    fake.put_secret("", "SHARED", "their-shared-value");
    fake.put_variable("", "THEIR_VARIABLE", "their-variable-value");
    let integration = build(&metadata(&fake));
    let t = target(integration.as_ref());
    let ctx = context();
    let envs = [env("e1", "")];
    let (plan, records) = sync(
        t,
        &ctx,
        &envs,
        vec![
            desired("e1", "DATABASE_URL", EntryKind::Secret, "db-secret-value"),
            desired("e1", "SHARED", EntryKind::Secret, "our-shared-value"),
            desired("e1", "LOG_LEVEL", EntryKind::Variable, "debug"),
            desired("e1", "GITHUB_TOKEN", EntryKind::Secret, "nope-value"),
            desired("e1", "lower_case", EntryKind::Variable, "lower-value"),
        ],
        Vec::new(),
        true,
    )
    .await;
    assert_eq!(
        actions(&plan),
        vec![
            ("/DATABASE_URL".into(), "create"),
            ("/GITHUB_TOKEN".into(), "skip"),
            ("/LOG_LEVEL".into(), "create"),
            ("/SHARED".into(), "skip"),
            ("/lower_case".into(), "skip"),
        ]
    );
    // Untouched: the unrelated keys and the taken one keep their owners' values.
    assert_eq!(
        fake.secret_value("", "THEIR_SECRET").as_deref(),
        Some("their-secret-value")
    );
    assert_eq!(
        fake.secret_value("", "SHARED").as_deref(),
        Some("their-shared-value")
    );
    assert_eq!(fake.variables("")["THEIR_VARIABLE"], "their-variable-value");
    assert_eq!(
        fake.secret_names(""),
        vec!["DATABASE_URL", "SHARED", "THEIR_SECRET"]
    );
    assert_eq!(fake.variables("").len(), 2);
    // Nothing was sent for refused names.
    assert!(
        !fake
            .requests()
            .iter()
            .any(|r| r.path.contains("GITHUB_TOKEN") || r.text().contains("lower"))
    );
    // The plan never carries a value.
    let text = format!("{plan} {}", serde_json::to_string(&plan.items).unwrap());
    for value in [
        "db-secret-value",
        "our-shared-value",
        "nope-value",
        "lower-value",
    ] {
        assert!(!text.contains(value), "{text}");
    }
    assert_eq!(records.len(), 2);

    // Second sync, nothing changed: GitHub cannot read secrets back, the records say unchanged.
    let before = fake.requests().len();
    let (plan, _) = sync(
        t,
        &ctx,
        &envs,
        vec![
            desired("e1", "DATABASE_URL", EntryKind::Secret, "db-secret-value"),
            desired("e1", "LOG_LEVEL", EntryKind::Variable, "debug"),
        ],
        records,
        true,
    )
    .await;
    assert!(!plan.writes(), "{plan}");
    assert!(
        fake.requests()[before..].iter().all(|r| r.method == "GET"),
        "an unchanged sync only reads"
    );
}

#[tokio::test]
async fn updates_deletes_and_hand_edited_variables() {
    let fake = FakeGitHub::start();
    let integration = build(&metadata(&fake));
    let t = target(integration.as_ref());
    let ctx = context();
    let envs = [env("e1", "")];
    let (_, records) = sync(
        t,
        &ctx,
        &envs,
        vec![
            desired("e1", "A_SECRET", EntryKind::Secret, "first-a"),
            desired("e1", "B_SECRET", EntryKind::Secret, "first-b"),
            desired("e1", "C_VAR", EntryKind::Variable, "first-c"),
            desired("e1", "D_VAR", EntryKind::Variable, "first-d"),
        ],
        Vec::new(),
        true,
    )
    .await;
    // Someone edits a variable by hand in GitHub: its value is readable, so it is noticed.
    fake.put_variable("", "D_VAR", "edited-by-hand");

    // B_SECRET and C_VAR are deleted in keywire, A_SECRET changes; delete not permitted.
    let (plan, records) = sync(
        t,
        &ctx,
        &envs,
        vec![
            desired("e1", "A_SECRET", EntryKind::Secret, "second-a"),
            desired("e1", "D_VAR", EntryKind::Variable, "first-d"),
        ],
        records,
        false,
    )
    .await;
    assert_eq!(
        actions(&plan),
        vec![
            ("/A_SECRET".into(), "update"),
            ("/B_SECRET".into(), "keep"),
            ("/C_VAR".into(), "keep"),
            ("/D_VAR".into(), "update"),
        ]
    );
    assert_eq!(
        fake.secret_value("", "A_SECRET").as_deref(),
        Some("second-a")
    );
    assert_eq!(fake.variables("")["D_VAR"], "first-d");
    assert!(fake.requests().iter().any(|r| r.method == "PATCH"
        && r.path == "/repos/acme/shop/actions/variables/D_VAR"
        && r.json() == json!({"name": "D_VAR", "value": "first-d"})));

    // Now with `delete` permitted.
    let (plan, records) = sync(
        t,
        &ctx,
        &envs,
        vec![
            desired("e1", "A_SECRET", EntryKind::Secret, "second-a"),
            desired("e1", "D_VAR", EntryKind::Variable, "first-d"),
        ],
        records,
        true,
    )
    .await;
    assert_eq!(plan.summary()["delete"], 2, "{plan}");
    assert_eq!(fake.secret_names(""), vec!["A_SECRET"]);
    assert_eq!(fake.variables("").keys().collect::<Vec<_>>(), vec!["D_VAR"]);

    // Cleanup removes exactly what keywire wrote.
    fake.put_secret("", "THEIRS", "their-value");
    let remote = t.list(&ctx, &[String::new()]).await.unwrap();
    let cleanup = cleanup_plan(&records, remote);
    let applied = t.apply(&ctx, &cleanup.changes).await;
    assert!(applied.error.is_none());
    assert_eq!(fake.secret_names(""), vec!["THEIRS"]);
    assert!(fake.variables("").is_empty());
}

#[tokio::test]
async fn a_key_that_changes_kind_moves_between_secrets_and_variables() {
    let fake = FakeGitHub::start();
    let integration = build(&metadata(&fake));
    let t = target(integration.as_ref());
    let ctx = context();
    let envs = [env("e1", "")];
    let (_, records) = sync(
        t,
        &ctx,
        &envs,
        vec![desired(
            "e1",
            "MOVING",
            EntryKind::Variable,
            "was-a-variable",
        )],
        Vec::new(),
        true,
    )
    .await;
    let (plan, _) = sync(
        t,
        &ctx,
        &envs,
        vec![desired("e1", "MOVING", EntryKind::Secret, "now-a-secret")],
        records,
        true,
    )
    .await;
    assert_eq!(actions(&plan), vec![("/MOVING".into(), "update")]);
    assert_eq!(
        fake.secret_value("", "MOVING").as_deref(),
        Some("now-a-secret")
    );
    assert!(fake.variables("").is_empty());
}

#[tokio::test]
async fn variables_created_meanwhile_are_updated_and_deleting_a_missing_key_succeeds() {
    let fake = FakeGitHub::start();
    let integration = build(&metadata(&fake));
    let t = target(integration.as_ref());
    let ctx = context();
    // Created by someone between list and write (POST answers 409): updated instead.
    fake.put_variable("", "RACE", "theirs");
    t.write(&ctx, &upsert("", "RACE", EntryKind::Variable, "ours"))
        .await
        .unwrap();
    assert_eq!(fake.variables("")["RACE"], "ours");
    // Already gone: a delete is done.
    t.write(
        &ctx,
        &Change {
            environment_id: "e1".into(),
            scope: String::new(),
            key: "GONE".into(),
            kind: EntryKind::Secret,
            op: Op::Delete,
            existing: None,
            hash: None,
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn rate_limits_are_retryable_after_githubs_wait() {
    let fake = FakeGitHub::start();
    let integration = build(&metadata(&fake));
    let t = target(integration.as_ref());
    let ctx = context();
    let scopes = [String::new()];

    // Primary rate limit: 403, x-ratelimit-remaining 0, reset in 120 s.
    fake.primary_rate_limit_next(120);
    let err = t.list(&ctx, &scopes).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.status(), Some(403));
    let wait = err.retry_after().unwrap();
    assert!(
        wait >= Duration::from_secs(115) && wait <= Duration::from_secs(122),
        "{wait:?}"
    );

    // Secondary rate limit: 429 with Retry-After.
    fake.secondary_rate_limit_next(7);
    let err = t.list(&ctx, &scopes).await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));

    // A 403 with Retry-After on a write.
    fake.fail_next(
        FakeResponse::json(
            403,
            json!({"message": "You have exceeded a secondary rate limit.", "documentation_url": "x"}),
        )
        .with_header("retry-after", "30"),
    );
    let applied = t
        .apply(&ctx, &[upsert("", "K", EntryKind::Variable, "v")])
        .await;
    let err = applied.error.unwrap();
    assert_eq!(applied.done, 0);
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));

    // 5xx: retryable; a plain 403 (no permission): final.
    fake.fail_next(FakeResponse::json(502, json!({"message": "Server Error"})));
    assert!(t.list(&ctx, &scopes).await.unwrap_err().is_retryable());
    fake.fail_next(FakeResponse::json(
        403,
        json!({"message": "Resource not accessible by personal access token"}),
    ));
    let err = t.list(&ctx, &scopes).await.unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("not accessible"), "{err}");

    // And the next sync goes through.
    t.list(&ctx, &scopes).await.unwrap();
}

#[tokio::test]
async fn a_failed_write_reports_how_far_it_got_and_never_a_value_or_the_token() {
    let fake = FakeGitHub::start();
    let integration = build(&metadata(&fake));
    let t = target(integration.as_ref());
    let ctx = context();
    fake.fail_matching(
        "PUT",
        "/secrets/SECOND",
        FakeResponse::json(
            422,
            json!({"message": "Invalid request.", "documentation_url": "https://docs.github.com/rest"}),
        ),
    );
    let applied = t
        .apply(
            &ctx,
            &[
                upsert("", "FIRST", EntryKind::Secret, "first-secret-value"),
                upsert("", "SECOND", EntryKind::Secret, "second-secret-value"),
                upsert("", "THIRD", EntryKind::Secret, "third-secret-value"),
            ],
        )
        .await;
    assert_eq!(applied.done, 1);
    let err = applied.error.unwrap();
    assert!(!err.is_retryable());
    assert_eq!(err.status(), Some(422));
    let text = format!("{err} {err:?}");
    assert!(text.contains("`SECOND`"), "{text}");
    for secret in [
        "first-secret-value",
        "second-secret-value",
        "third-secret-value",
        github::TOKEN,
    ] {
        assert!(!text.contains(secret), "{text}");
    }
    assert_eq!(fake.secret_names(""), vec!["FIRST"]);
}
