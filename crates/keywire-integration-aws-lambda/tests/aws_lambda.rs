//! The AWS Lambda integration (through the real AWS SDK) against a local fake of the Lambda
//! API (`keywire_test_support::lambda`) that verifies SigV4 signatures.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keywire_core::sync::{
    DesiredEntry, EntryKind, MappedEnvironment, Plan, PlanInput, SyncRecord, SyncSettings,
    SyncTarget, cleanup_plan, plan,
};
use keywire_core::{
    Context, EnvironmentRule, Integration, IntegrationError, OutboundPolicy, Secret,
    check_descriptor, find,
};
use keywire_test_support::fake::RecordedRequest;
use keywire_test_support::lambda::{self, FakeLambda, lambda_error};
use keywire_test_support::{context, context_with};
use serde_json::{Value, json};

// Names the crate, so its registration is linked into this test binary.
use keywire_integration_aws_lambda as _;

const CONFIG_PATH: &str = "/2015-03-31/functions/checkout-api/configuration";

fn metadata(fake: &FakeLambda) -> Value {
    lambda::metadata(fake)
}

fn build(metadata: &Value) -> Box<dyn Integration> {
    find("aws_lambda")
        .expect("registered")
        .build(metadata)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn target(integration: &dyn Integration) -> &dyn SyncTarget {
    integration.sync_target().expect("an infrastructure type")
}

fn desired(key: &str, kind: EntryKind, value: &str) -> DesiredEntry {
    DesiredEntry {
        environment_id: "prod".into(),
        key: key.into(),
        kind,
        value: Secret::new(value),
        hash: format!("h({value})"),
    }
}

fn environments() -> Vec<MappedEnvironment> {
    vec![MappedEnvironment {
        id: "prod".into(),
        slug: "production".into(),
        scope: String::new(),
    }]
}

/// What the server records after applying a plan.
fn recorded(plan: &Plan, mut records: Vec<SyncRecord>) -> Vec<SyncRecord> {
    for change in &plan.changes {
        records.retain(|r| !(r.scope == change.scope && r.key == change.key));
        if matches!(change.op, keywire_core::Op::Upsert(_)) {
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

/// Lists, plans and applies as the server does; returns the plan, the apply error, the
/// records.
async fn sync(
    target: &dyn SyncTarget,
    ctx: &Context,
    desired: Vec<DesiredEntry>,
    records: Vec<SyncRecord>,
    may_delete: bool,
) -> (Plan, Option<IntegrationError>, Vec<SyncRecord>) {
    let settings = SyncSettings::default();
    let envs = environments();
    let scope = target.scope(None).unwrap();
    let remote = target.list(ctx, &[scope]).await.unwrap();
    let plan = plan(
        target,
        PlanInput {
            settings: &settings,
            environments: &envs,
            desired,
            records: &records,
            may_upsert: true,
            may_delete,
        },
        remote,
    );
    let applied = target.apply(ctx, &plan.changes).await;
    let records = if applied.error.is_none() {
        assert_eq!(applied.done, plan.changes.len());
        recorded(&plan, records)
    } else {
        assert_eq!(applied.done, 0, "Lambda writes all or nothing");
        records
    };
    (plan, applied.error, records)
}

fn actions(plan: &Plan) -> Vec<(String, &'static str)> {
    plan.items
        .iter()
        .map(|i| (i.key.clone(), i.action.as_str()))
        .collect()
}

fn calls(requests: &[RecordedRequest]) -> Vec<String> {
    requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn variables(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn descriptor_meets_the_contract() {
    check_descriptor("aws_lambda").unwrap_or_else(|problems| panic!("{problems:#?}"));
    let d = find("aws_lambda").unwrap();
    assert_eq!(d.secret_fields(), vec!["/secretAccessKey", "/sessionToken"]);
    assert_eq!(d.scope.environments, EnvironmentRule::ExactlyOne);
    assert!(d.scope.project_required);
}

#[test]
fn metadata_is_checked_with_pointers() {
    let d = find("aws_lambda").unwrap();
    let err = d
        .build(&json!({
            "region": "eu.west.1", "functionName": "checkout-api:prod",
            "accessKeyId": "akia-lower", "secretAccessKey": "s", "endpointUrl": "ftp://x"
        }))
        .err()
        .unwrap()
        .to_string();
    for pointer in ["/region", "/functionName", "/accessKeyId", "/endpointUrl"] {
        assert!(err.contains(pointer), "{err}");
    }
    for name in [
        "checkout-api",
        "123456789012:function:checkout-api",
        "arn:aws:lambda:eu-west-1:123456789012:function:checkout-api",
    ] {
        d.build(&json!({"region": "eu-west-1", "functionName": name,
                        "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": "s"}))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(
        d.build(&json!({"region": "eu-west-1", "functionName": "arn:aws:lambda:eu-west-1:123456789012:function:f:1",
                        "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": "s"}))
            .is_err(),
        "a qualified ARN is refused"
    );
}

#[test]
fn the_target_is_the_function_and_lambdas_key_rules_skip_keys() {
    let integration = build(&json!({"region": "eu-west-1", "functionName": "f",
        "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": "s"}));
    let t = target(integration.as_ref());
    assert_eq!(t.scope(None).unwrap(), "");
    assert_eq!(t.scope(Some("")).unwrap(), "");
    assert!(t.scope(Some("production")).is_err());
    for ok in ["DB", "database_url", "A1_b"] {
        t.check(ok, EntryKind::Secret, "v").unwrap();
    }
    for (bad, why) in [
        ("A", "at least two"),
        ("1X", "start with a letter"),
        ("_X", "start with a letter"),
        ("MY-KEY", "[a-zA-Z]"),
        ("AWS_REGION", "reserves"),
        ("TZ", "reserves"),
    ] {
        let reason = t.check(bad, EntryKind::Variable, "value-xyz").unwrap_err();
        assert!(reason.contains(why), "{bad}: {reason}");
        assert!(!reason.contains("value-xyz"));
    }
    let reason = t
        .check("BIG", EntryKind::Secret, &"q".repeat(4100))
        .unwrap_err();
    assert!(
        reason.contains("4 KB") && !reason.contains("qqqq"),
        "{reason}"
    );
}

#[tokio::test]
async fn live_check_calls_get_function_configuration_signed_with_sigv4() {
    let fake = FakeLambda::start();
    build(&metadata(&fake)).validate(&context()).await.unwrap();
    let requests = fake.requests();
    assert_eq!(calls(&requests), vec![format!("GET {CONFIG_PATH}")]);
    let request = &requests[0];
    // Well-formed SigV4 (the fake also recomputes the signature).
    let authorization = request.header("authorization").unwrap();
    let amz_date = request.header("x-amz-date").unwrap();
    assert_eq!(amz_date.len(), 16);
    let prefix = format!(
        "AWS4-HMAC-SHA256 Credential={}/{}/eu-west-1/lambda/aws4_request, SignedHeaders=",
        lambda::ACCESS_KEY_ID,
        &amz_date[..8]
    );
    assert!(authorization.starts_with(&prefix), "{authorization}");
    let signature = authorization.rsplit("Signature=").next().unwrap();
    assert_eq!(signature.len(), 64);
    assert!(!authorization.contains(lambda::SECRET_ACCESS_KEY));
    assert!(
        request
            .headers
            .iter()
            .all(|(_, v)| !v.contains(lambda::SECRET_ACCESS_KEY))
    );
}

#[tokio::test]
async fn bad_credentials_and_unknown_functions_are_final_and_name_lambdas_error_code() {
    let fake = FakeLambda::start();
    let mut wrong = metadata(&fake);
    wrong["secretAccessKey"] = json!("wrongSecretKeyValue0123456789");
    let err = build(&wrong).validate(&context()).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert!(!err.is_retryable());
    let text = format!("{err} {err:?}");
    assert!(text.contains("InvalidSignatureException"), "{text}");
    assert!(!text.contains("wrongSecretKeyValue"), "{text}");

    let mut unknown = metadata(&fake);
    unknown["accessKeyId"] = json!("AKIAUNKNOWNKEY000000");
    let err = build(&unknown).validate(&context()).await.unwrap_err();
    assert!(
        err.to_string().contains("UnrecognizedClientException"),
        "{err}"
    );

    let mut other = metadata(&fake);
    other["functionName"] = json!("no-such-function");
    let err = build(&other).validate(&context()).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("ResourceNotFoundException") && text.contains("Function not found"),
        "{text}"
    );
    assert!(!text.contains("service error"), "{text}");
}

#[tokio::test]
async fn functions_can_be_named_by_arn_and_temporary_credentials_carry_the_session_token() {
    let fake = FakeLambda::start();
    fake.require_session_token("IQoJb3JpZ2luX2VjEFakeSessionToken==");
    let mut meta = metadata(&fake);
    meta["functionName"] = json!("arn:aws:lambda:eu-west-1:123456789012:function:checkout-api");
    let err = build(&meta).validate(&context()).await.unwrap_err();
    assert!(
        err.to_string().contains("UnrecognizedClientException"),
        "{err}"
    );
    meta["sessionToken"] = json!("IQoJb3JpZ2luX2VjEFakeSessionToken==");
    build(&meta).validate(&context()).await.unwrap();
    let last = fake.requests().pop().unwrap();
    assert_eq!(
        last.path,
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Acheckout-api/configuration"
    );
    assert!(
        last.header("authorization")
            .unwrap()
            .contains("x-amz-security-token")
    );
}

#[tokio::test]
async fn private_endpoints_are_refused_unless_allow_listed() {
    let fake = FakeLambda::start();
    let integration = build(&metadata(&fake));
    let ctx = context_with(OutboundPolicy::default());
    let err = integration.validate(&ctx).await.unwrap_err();
    assert!(err.to_string().contains("private"), "{err}");
    assert!(!err.is_retryable());
    let err = target(integration.as_ref())
        .list(&ctx, &[String::new()])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("private"), "{err}");
    let mut metadata_v6 = metadata(&fake);
    metadata_v6["endpointUrl"] = json!("http://[::ffff:169.254.169.254]/");
    let err = build(&metadata_v6).validate(&context()).await.unwrap_err();
    assert!(err.to_string().contains("private"), "{err}");
    assert!(fake.requests().is_empty(), "nothing reached the fake");
}

#[tokio::test]
async fn first_sync_merges_into_the_functions_variables_and_never_wipes_them() {
    let fake = FakeLambda::start();
    fake.set_variables(&[("UNRELATED", "keep-me"), ("SHARED", "theirs")]);
    let revision = fake.revision_id();
    let integration = build(&metadata(&fake));
    let t = target(integration.as_ref());
    let ctx = context();
    let (plan, error, records) = sync(
        t,
        &ctx,
        vec![
            desired("DATABASE_URL", EntryKind::Secret, "postgres://u:pw@db/shop"),
            desired("LOG_LEVEL", EntryKind::Variable, "debug"),
            desired("SHARED", EntryKind::Secret, "ours"),
            desired("AWS_REGION", EntryKind::Variable, "us-east-1"),
        ],
        Vec::new(),
        true,
    )
    .await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        actions(&plan),
        vec![
            ("AWS_REGION".into(), "skip"),
            ("DATABASE_URL".into(), "create"),
            ("LOG_LEVEL".into(), "create"),
            ("SHARED".into(), "skip"),
        ]
    );
    assert_eq!(
        fake.variables(),
        variables(&[
            ("DATABASE_URL", "postgres://u:pw@db/shop"),
            ("LOG_LEVEL", "debug"),
            ("SHARED", "theirs"),
            ("UNRELATED", "keep-me"),
        ])
    );
    let requests = fake.requests();
    assert_eq!(
        calls(&requests),
        vec![
            format!("GET {CONFIG_PATH}"),
            format!("GET {CONFIG_PATH}"),
            format!("PUT {CONFIG_PATH}"),
        ],
        "one list, then one read-merge-write"
    );
    let put = requests[2].json();
    assert_eq!(put["RevisionId"], json!(revision));
    assert_eq!(
        put["Environment"]["Variables"]["UNRELATED"],
        json!("keep-me")
    );
    assert_eq!(records.len(), 2);
    // Plans carry no values.
    let text = format!("{plan} {}", serde_json::to_string(&plan.items).unwrap());
    assert!(
        !text.contains("pw@db") && !text.contains("\"ours\""),
        "{text}"
    );

    // An unchanged second sync writes nothing.
    let (plan, error, _) = sync(
        t,
        &ctx,
        vec![
            desired("DATABASE_URL", EntryKind::Secret, "postgres://u:pw@db/shop"),
            desired("LOG_LEVEL", EntryKind::Variable, "debug"),
        ],
        records,
        true,
    )
    .await;
    assert!(error.is_none() && !plan.writes(), "{plan}");
    assert_eq!(fake.writes(), 1);
}

#[tokio::test]
async fn updates_deletes_hand_edits_and_cleanup_touch_only_keywires_keys() {
    let fake = FakeLambda::start();
    fake.set_variables(&[("UNRELATED", "keep-me")]);
    let integration = build(&metadata(&fake));
    let t = target(integration.as_ref());
    let ctx = context();
    let (_, _, records) = sync(
        t,
        &ctx,
        vec![
            desired("A_KEY", EntryKind::Secret, "a1"),
            desired("B_KEY", EntryKind::Secret, "b1"),
            desired("C_KEY", EntryKind::Variable, "c1"),
        ],
        Vec::new(),
        true,
    )
    .await;
    fake.set_variables(&[("C_KEY", "edited in the console")]);
    // A changes, B is deleted in keywire, C was edited by hand; delete not permitted yet.
    let (plan, error, records) = sync(
        t,
        &ctx,
        vec![
            desired("A_KEY", EntryKind::Secret, "a2"),
            desired("C_KEY", EntryKind::Variable, "c1"),
        ],
        records,
        false,
    )
    .await;
    assert!(error.is_none());
    assert_eq!(
        actions(&plan),
        vec![
            ("A_KEY".into(), "update"),
            ("B_KEY".into(), "keep"),
            ("C_KEY".into(), "update"),
        ]
    );
    assert_eq!(
        fake.variables(),
        variables(&[
            ("A_KEY", "a2"),
            ("B_KEY", "b1"),
            ("C_KEY", "c1"),
            ("UNRELATED", "keep-me")
        ])
    );
    let (plan, _, records) = sync(
        t,
        &ctx,
        vec![
            desired("A_KEY", EntryKind::Secret, "a2"),
            desired("C_KEY", EntryKind::Variable, "c1"),
        ],
        records,
        true,
    )
    .await;
    assert_eq!(
        actions(&plan),
        vec![
            ("A_KEY".into(), "unchanged"),
            ("B_KEY".into(), "delete"),
            ("C_KEY".into(), "unchanged"),
        ]
    );
    assert_eq!(
        fake.variables(),
        variables(&[("A_KEY", "a2"), ("C_KEY", "c1"), ("UNRELATED", "keep-me")])
    );
    // Cleanup (integration deleted with ?cleanup=true): only keywire's keys go.
    let remote = t.list(&ctx, &[String::new()]).await.unwrap();
    let cleanup = cleanup_plan(&records, remote);
    let applied = t.apply(&ctx, &cleanup.changes).await;
    assert!(applied.error.is_none());
    assert_eq!(applied.done, 2);
    assert_eq!(fake.variables(), variables(&[("UNRELATED", "keep-me")]));
}

#[tokio::test]
async fn a_concurrent_change_is_read_again_and_merged_not_overwritten() {
    let fake = FakeLambda::start();
    fake.set_variables(&[("UNRELATED", "keep-me")]);
    fake.concurrent_changes(2);
    let integration = build(&metadata(&fake));
    let t = target(integration.as_ref());
    let ctx = context();
    let (_, error, _) = sync(
        t,
        &ctx,
        vec![desired("MINE", EntryKind::Secret, "my-value")],
        Vec::new(),
        true,
    )
    .await;
    assert!(error.is_none(), "{error:?}");
    let vars = fake.variables();
    assert_eq!(vars["MINE"], "my-value");
    assert_eq!(vars["UNRELATED"], "keep-me");
    assert_eq!(
        vars.keys().filter(|k| k.starts_with("CONCURRENT_")).count(),
        2,
        "both concurrent writes survive: {vars:?}"
    );
    let methods: Vec<String> = fake.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(
        methods,
        vec!["GET", "GET", "PUT", "GET", "PUT", "GET", "PUT"]
    );

    // A function that keeps changing: a retryable failure after a few attempts.
    fake.concurrent_changes(100);
    let (_, error, _) = sync(
        t,
        &ctx,
        vec![desired("OTHER", EntryKind::Variable, "v")],
        Vec::new(),
        true,
    )
    .await;
    let error = error.unwrap();
    assert!(error.is_retryable());
    assert!(error.to_string().contains("RevisionId"), "{error}");
    assert!(!fake.variables().contains_key("OTHER"));
}

#[tokio::test]
async fn apis_without_revision_ids_are_written_without_one() {
    let fake = FakeLambda::start();
    fake.without_revision_ids();
    fake.set_variables(&[("UNRELATED", "keep-me")]);
    let integration = build(&metadata(&fake));
    let t = target(integration.as_ref());
    let (_, error, _) = sync(
        t,
        &context(),
        vec![desired("MINE", EntryKind::Variable, "v")],
        Vec::new(),
        true,
    )
    .await;
    assert!(error.is_none(), "{error:?}");
    let put = fake.requests().pop().unwrap();
    assert_eq!(put.method, "PUT");
    assert!(put.json().get("RevisionId").is_none(), "{}", put.text());
    assert_eq!(fake.variables().len(), 2);
}

#[tokio::test]
async fn over_four_kilobytes_is_refused_before_writing_and_names_no_value() {
    let fake = FakeLambda::start();
    let theirs = "t".repeat(3000);
    fake.set_variables(&[("THEIR_BLOB", &theirs)]);
    let integration = build(&metadata(&fake));
    let t = target(integration.as_ref());
    let ours = format!("secret-{}", "s".repeat(1100));
    let (plan, error, _) = sync(
        t,
        &context(),
        vec![desired("MY_BLOB", EntryKind::Secret, &ours)],
        Vec::new(),
        true,
    )
    .await;
    assert_eq!(actions(&plan), vec![("MY_BLOB".into(), "create")]);
    let error = error.unwrap();
    assert!(!error.is_retryable());
    let text = format!("{error} {error:?}");
    assert!(text.contains("4 KB") && text.contains("4096"), "{text}");
    assert!(text.contains("bytes"), "{text}");
    assert!(!text.contains("sss") && !text.contains("ttt"), "{text}");
    assert_eq!(fake.writes(), 0);
    assert_eq!(fake.variables(), variables(&[("THEIR_BLOB", &theirs)]));
}

#[tokio::test]
async fn lambdas_own_refusals_are_scrubbed_of_values_and_credentials() {
    let fake = FakeLambda::start();
    fake.set_variables(&[("THEIRS", "their-private-value")]);
    // Lambda measures differently from keywire here: its refusal quotes every variable.
    fake.set_size_limit(60);
    let integration = build(&metadata(&fake));
    let t = target(integration.as_ref());
    let (_, error, _) = sync(
        t,
        &context(),
        vec![desired("MINE", EntryKind::Secret, "my-secret-value-123")],
        Vec::new(),
        true,
    )
    .await;
    let error = error.unwrap();
    assert_eq!(error.status(), Some(400));
    assert!(!error.is_retryable());
    let text = format!("{error} {error:?}");
    assert!(text.contains("InvalidParameterValueException"), "{text}");
    assert!(text.contains("4KB limit"), "{text}");
    for secret in [
        "my-secret-value-123",
        "their-private-value",
        lambda::SECRET_ACCESS_KEY,
    ] {
        assert!(!text.contains(secret), "{text}");
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn throttling_conflicts_and_server_errors_are_retryable_and_logs_hold_no_secrets() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let fake = FakeLambda::start();
    let integration = build(&metadata(&fake));
    let t = target(integration.as_ref());
    let ctx = context();
    fake.rate_limit_next(3);
    let err = t.list(&ctx, &[String::new()]).await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    assert!(
        err.to_string().contains("TooManyRequestsException"),
        "{err}"
    );

    fake.fail_next(lambda_error(500, "ServiceException", "Internal failure"));
    let err = t.list(&ctx, &[String::new()]).await.unwrap_err();
    assert!(err.is_retryable());
    assert!(err.to_string().contains("ServiceException"), "{err}");

    // An update still in progress: the read succeeds, the write gets 409.
    let change = keywire_core::Change {
        environment_id: "prod".into(),
        scope: String::new(),
        key: "MINE".into(),
        kind: EntryKind::Secret,
        op: keywire_core::Op::Upsert(Secret::new("logged-never-value")),
        existing: None,
        hash: Some("h".into()),
    };
    fake.fail_next_write(lambda_error(
        409,
        "ResourceConflictException",
        "The operation cannot be performed at this time. An update is in progress for resource: arn:aws:lambda:eu-west-1:123456789012:function:checkout-api",
    ));
    let err = t.write(&ctx, &change).await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.status(), Some(409));
    assert!(
        err.to_string().contains("ResourceConflictException"),
        "{err}"
    );
    assert_eq!(fake.writes(), 0);
    // Then it goes through.
    t.write(&ctx, &change).await.unwrap();
    assert_eq!(fake.variables()["MINE"], "logged-never-value");

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("TooManyRequestsException"), "{logs}");
    for secret in [lambda::SECRET_ACCESS_KEY, "logged-never-value"] {
        assert!(!logs.contains(secret), "{logs}");
    }
}
