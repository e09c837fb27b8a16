//! Delivery bookkeeping at the database level, on SQLite and (when configured) PostgreSQL:
//! fan-out in the writer's transaction, coalescing for infrastructure, leases.

use std::collections::BTreeMap;
use std::time::Duration;

use keywire_core::Actor;
use keywire_db::delivery::{AttemptResult, FAILED, PENDING, RUNNING};
use keywire_db::{Cipher, Db, EntryInput, EntryKind, NewEnvironment, NewIntegration, PageRequest};
use keywire_test_support::TestDb;
use serde_json::json;

fn actor() -> Actor {
    Actor {
        id: "system".into(),
        name: "tester".into(),
    }
}

fn input(key: &str, value: &str) -> EntryInput {
    EntryInput {
        key: key.into(),
        values: BTreeMap::from([("dev".to_owned(), value.to_owned())]),
        note: None,
    }
}

async fn setup(
    db: &Db,
    cipher: &Cipher,
    category: &str,
) -> (keywire_db::Project, keywire_db::StoredIntegration) {
    let admin = db.create_user("owner", true).await.unwrap();
    let owner = Actor {
        id: admin.id.clone(),
        name: admin.name.clone(),
    };
    let ws = db.create_workspace("W", &owner).await.unwrap();
    let (project, _) = db
        .create_project(
            &ws,
            "P",
            None,
            &[NewEnvironment {
                name: "dev".into(),
                description: None,
            }],
            &owner,
        )
        .await
        .unwrap();
    let notify_on = vec!["SECRET_ADDED".to_owned(), "SECRET_UPDATED".to_owned()];
    let integration = db
        .create_integration(
            &ws,
            &NewIntegration {
                name: "target",
                integration_type: "webhook",
                category,
                notify_on: &notify_on,
                actions: &[],
                project: Some(&project),
                environments: &[],
                metadata: &json!({"url": "http://127.0.0.1:9/x", "signingSecret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
                enabled: true,
                sync_settings: None,
            },
            cipher,
            &owner,
        )
        .await
        .unwrap();
    (project, integration)
}

async fn runs(db: &Db, integration: &str) -> Vec<keywire_db::delivery::Run> {
    db.list_runs(
        integration,
        None,
        &PageRequest {
            limit: Some(200),
            after: None,
        },
    )
    .await
    .unwrap()
    .items
}

#[tokio::test]
async fn infrastructure_runs_coalesce_while_one_waits_and_communication_runs_do_not() {
    for test_db in TestDb::all().await {
        for (category, expected) in [("infrastructure", 1), ("communication", 3)] {
            let db = test_db.migrated().await;
            let cipher = Cipher::from_bytes(&[7; 32]).unwrap();
            let (project, integration) = setup(&db, &cipher, category).await;
            for value in ["a", "b", "c"] {
                db.set_entries(
                    &project,
                    EntryKind::Secret,
                    &[input("KEY", value)],
                    &cipher,
                    &actor(),
                )
                .await
                .unwrap();
            }
            assert_eq!(
                runs(&db, &integration.id).await.len(),
                expected,
                "{category} on {}",
                test_db.backend()
            );
            db.revert_all_migrations().await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_lease_that_expires_is_claimed_again_and_the_old_holder_cannot_record() {
    for test_db in TestDb::all().await {
        let db = test_db.migrated().await;
        let cipher = Cipher::from_bytes(&[7; 32]).unwrap();
        let (project, integration) = setup(&db, &cipher, "communication").await;
        db.set_entries(
            &project,
            EntryKind::Secret,
            &[input("KEY", "v")],
            &cipher,
            &actor(),
        )
        .await
        .unwrap();

        let first = db
            .claim_runs("node-a/0", 5, Duration::from_millis(300))
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].run.status, RUNNING);
        assert_eq!(first[0].event.as_ref().unwrap().event_type, "SECRET_ADDED");
        assert_eq!(
            first[0].slugs.project.as_deref(),
            Some(project.slug.as_str())
        );
        assert!(
            db.claim_runs("node-b/0", 5, Duration::from_secs(30))
                .await
                .unwrap()
                .is_empty(),
            "held runs are not claimed twice"
        );

        tokio::time::sleep(Duration::from_millis(400)).await;
        let second = db
            .claim_runs("node-b/0", 5, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(second.len(), 1, "an expired lease is reclaimed");
        assert_eq!(second[0].run.attempts, 2);

        let result = AttemptResult {
            outcome: "permanent_failure",
            started_at: chrono::Utc::now().naive_utc(),
            duration: Duration::from_millis(5),
            http_status: Some(400),
            excerpt: "bad".into(),
            retry_at: None,
        };
        assert!(
            !db.finish_attempt(&first[0].run, "node-a/0", &result)
                .await
                .unwrap(),
            "the old holder lost the run"
        );
        assert!(
            db.finish_attempt(&second[0].run, "node-b/0", &result)
                .await
                .unwrap()
        );
        let all = runs(&db, &integration.id).await;
        assert_eq!(all[0].status, FAILED);
        let (_, attempts) = db.get_run(&integration.id, &all[0].id).await.unwrap();
        assert_eq!(attempts.len(), 1, "only the holder's attempt is recorded");

        assert_eq!(db.retry_runs(&integration.id, None, None).await.unwrap(), 1);
        assert_eq!(runs(&db, &integration.id).await[0].status, PENDING);
    }
}

#[tokio::test]
async fn a_change_that_fails_leaves_no_event_and_no_run() {
    for test_db in TestDb::all().await {
        let db = test_db.migrated().await;
        let cipher = Cipher::from_bytes(&[7; 32]).unwrap();
        let (project, integration) = setup(&db, &cipher, "communication").await;
        // One bad environment makes the whole bulk write fail inside its transaction.
        let bad = EntryInput {
            key: "B".into(),
            values: BTreeMap::from([("nope".to_owned(), "v".to_owned())]),
            note: None,
        };
        assert!(
            db.set_entries(
                &project,
                EntryKind::Secret,
                &[input("A", "v"), bad],
                &cipher,
                &actor()
            )
            .await
            .is_err()
        );
        assert!(runs(&db, &integration.id).await.is_empty());
    }
}
