//! keywire-db against real databases: every test runs on SQLite, and on PostgreSQL too when
//! `KEYWIRE_TEST_DATABASE_URL` is set (each test in a fresh database of its own).

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use keywire_db::{
    BOOTSTRAP_ADMIN_NAME, BOOTSTRAP_TOKEN_NAME, Backend, Db, DbError, DbOptions, TOKEN_PREFIX,
    hash_token,
};
use keywire_test_support::TestDb;

const TABLES: [&str; 12] = [
    "api_tokens",
    "encryption_keys",
    "entries",
    "entry_versions",
    "environments",
    "events",
    "member_roles",
    "projects",
    "users",
    "workspace_members",
    "workspace_roles",
    "workspaces",
];

#[tokio::test]
async fn migrations_go_up_down_and_up_again() {
    for test_db in TestDb::all().await {
        let backend = test_db.backend();
        let db = test_db.connect().await;
        assert_eq!(db.backend(), backend);
        assert!(
            db.table_names().await.unwrap().is_empty(),
            "{backend}: fresh database"
        );

        let applied = db.migrate().await.unwrap();
        assert!(!applied.is_empty(), "{backend}: nothing applied");
        assert_eq!(
            db.table_names().await.unwrap(),
            TABLES,
            "{backend}: after up"
        );
        assert!(
            db.migrate().await.unwrap().is_empty(),
            "{backend}: second up is a no-op"
        );

        let reverted = db.revert_all_migrations().await.unwrap();
        assert_eq!(reverted.len(), applied.len(), "{backend}: reverted");
        assert!(
            db.table_names().await.unwrap().is_empty(),
            "{backend}: tables left after down"
        );
        assert!(
            db.bootstrap_admin(None).await.is_err(),
            "{backend}: users table survived down"
        );

        assert_eq!(db.migrate().await.unwrap(), applied, "{backend}: up again");
        assert_eq!(
            db.table_names().await.unwrap(),
            TABLES,
            "{backend}: after up again"
        );
        assert!(
            db.bootstrap_admin(None).await.unwrap().is_some(),
            "{backend}: usable again"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_of_one_database_do_not_collide() {
    for test_db in TestDb::all().await {
        let backend = test_db.backend();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            // Separate pools, as separate nodes would have.
            let db = test_db.connect().await;
            tasks.push(tokio::spawn(async move { db.migrate().await }));
        }
        let mut applied_total = 0;
        for task in tasks {
            applied_total += task
                .await
                .unwrap()
                .unwrap_or_else(|error| {
                    panic!("{backend}: concurrent migrate failed: {error}");
                })
                .len();
        }
        let db = test_db.connect().await;
        let migration_count = db.revert_all_migrations().await.unwrap().len();
        assert_eq!(
            applied_total, migration_count,
            "{backend}: each migration ran once"
        );
    }
}

#[tokio::test]
async fn bootstrap_creates_one_admin_whose_token_authenticates() {
    for test_db in TestDb::all().await {
        let backend = test_db.backend();
        let db = test_db.migrated().await;

        let token = db
            .bootstrap_admin(None)
            .await
            .unwrap()
            .expect("first bootstrap");
        assert!(token.starts_with(TOKEN_PREFIX), "{backend}: {token}");
        assert_eq!(token.len(), TOKEN_PREFIX.len() + 43, "{backend}");

        let users = db.list_users().await.unwrap();
        assert_eq!(users.len(), 1, "{backend}: {users:?}");
        let admin = &users[0];
        assert_eq!(admin.name, BOOTSTRAP_ADMIN_NAME);
        assert!(admin.is_admin);
        assert_eq!(&db.get_user(&admin.id).await.unwrap(), admin);

        let tokens = db.list_tokens(&admin.id).await.unwrap();
        assert_eq!(tokens.len(), 1, "{backend}: {tokens:?}");
        assert_eq!(tokens[0].name, BOOTSTRAP_TOKEN_NAME);
        assert_eq!(tokens[0].prefix, token[..10]);
        assert_eq!(tokens[0].expires_at, None);
        assert_eq!(tokens[0].last_used_at, None);
        assert!(
            !format!("{tokens:?}").contains(&token[10..]),
            "{backend}: token in Debug"
        );

        let (user, api_token) = db
            .authenticate(&token)
            .await
            .unwrap()
            .expect("authenticates");
        assert_eq!(&user, admin, "{backend}");
        assert_eq!(api_token.id, tokens[0].id, "{backend}");
        let used = api_token.last_used_at.expect("last_used_at recorded");
        assert!(
            (Utc::now().naive_utc() - used).abs() < TimeDelta::seconds(60),
            "{backend}"
        );

        // Within a minute the use is not written again: authentication stays a single read.
        let (_, again) = db
            .authenticate(&token)
            .await
            .unwrap()
            .expect("still authenticates");
        assert_eq!(again.last_used_at, Some(used), "{backend}");
        assert_eq!(
            db.list_tokens(&admin.id).await.unwrap()[0].last_used_at,
            Some(used)
        );
    }
}

#[tokio::test]
async fn second_bootstrap_returns_none_and_changes_nothing() {
    for test_db in TestDb::all().await {
        let backend = test_db.backend();
        let db = test_db.migrated().await;
        let first = db
            .bootstrap_admin(None)
            .await
            .unwrap()
            .expect("first bootstrap");
        let users_before = db.list_users().await.unwrap();

        let unused = "kw_second-bootstrap-token-never-stored";
        assert_eq!(db.bootstrap_admin(None).await.unwrap(), None, "{backend}");
        assert_eq!(
            db.bootstrap_admin(Some(unused)).await.unwrap(),
            None,
            "{backend}"
        );

        assert_eq!(db.list_users().await.unwrap(), users_before, "{backend}");
        assert_eq!(
            db.list_tokens(&users_before[0].id).await.unwrap().len(),
            1,
            "{backend}"
        );
        assert!(
            db.authenticate(unused).await.unwrap().is_none(),
            "{backend}"
        );
        assert!(
            db.authenticate(&first).await.unwrap().is_some(),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn bootstrap_with_a_user_present_changes_nothing() {
    for test_db in TestDb::all().await {
        let backend = test_db.backend();
        let db = test_db.migrated().await;
        db.create_user("alice", false).await.unwrap();
        assert_eq!(db.bootstrap_admin(None).await.unwrap(), None, "{backend}");
        let names: Vec<_> = db
            .list_users()
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(names, ["alice"], "{backend}");
    }
}

#[tokio::test]
async fn provided_bootstrap_token_is_used_verbatim() {
    for test_db in TestDb::all().await {
        let backend = test_db.backend();
        let db = test_db.migrated().await;
        let provided = "operator-chosen-bootstrap-token-0123456789";
        let returned = db.bootstrap_admin(Some(provided)).await.unwrap();
        assert_eq!(returned.as_deref(), Some(provided), "{backend}");

        let (user, token) = db
            .authenticate(provided)
            .await
            .unwrap()
            .expect("authenticates");
        assert_eq!(user.name, BOOTSTRAP_ADMIN_NAME, "{backend}");
        // A quarter of a 41-character token, at most 10 characters, is shown.
        assert_eq!(token.prefix, "operator-c", "{backend}");
        assert!(
            db.authenticate(&format!("{provided}x"))
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn short_bootstrap_token_is_rejected_without_echoing_it() {
    for test_db in TestDb::all().await {
        let backend = test_db.backend();
        let db = test_db.migrated().await;
        let short = "tiny-secret";
        let error = db.bootstrap_admin(Some(short)).await.unwrap_err();
        assert!(
            matches!(error, DbError::InvalidInput(_)),
            "{backend}: {error:?}"
        );
        assert!(!error.to_string().contains(short), "{backend}: {error}");
        assert!(
            !format!("{error:?}").contains(short),
            "{backend}: {error:?}"
        );
        assert!(
            db.list_users().await.unwrap().is_empty(),
            "{backend}: user created anyway"
        );
    }
}

#[tokio::test]
async fn wrong_tokens_and_the_stored_hash_do_not_authenticate() {
    for test_db in TestDb::all().await {
        let backend = test_db.backend();
        let db = test_db.migrated().await;
        let token = db.bootstrap_admin(None).await.unwrap().expect("bootstrap");

        let hash = hash_token(&token);
        assert_ne!(hash, token);
        assert!(!hash.contains(&token[TOKEN_PREFIX.len()..]), "{backend}");
        assert!(
            db.authenticate(&hash).await.unwrap().is_none(),
            "{backend}: hash accepted"
        );

        let mut wrong = token.clone();
        wrong.pop();
        wrong.push(if token.ends_with('A') { 'B' } else { 'A' });
        for candidate in [wrong.as_str(), "", "kw_", &token[..20], &"x".repeat(10_000)] {
            assert!(
                db.authenticate(candidate).await.unwrap().is_none(),
                "{backend}: {candidate:?} authenticated"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_bootstraps_create_exactly_one_admin() {
    for test_db in TestDb::all().await {
        let backend = test_db.backend();
        test_db.migrated().await;
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let mut tasks = Vec::new();
        // Four pools, as four nodes would have, two racers on each.
        let mut pools = Vec::new();
        for _ in 0..4 {
            pools.push(test_db.connect().await);
        }
        for i in 0..8 {
            let db: Db = pools[i % pools.len()].clone();
            let barrier = Arc::clone(&barrier);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                db.bootstrap_admin(None).await
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            let result = task.await.unwrap();
            match result {
                Ok(Some(token)) => winners.push(token),
                Ok(None) => {}
                Err(error) => panic!("{backend}: a concurrent bootstrap failed: {error}"),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "{backend}: {} bootstraps won",
            winners.len()
        );

        let db = test_db.connect().await;
        let users = db.list_users().await.unwrap();
        assert_eq!(users.len(), 1, "{backend}: {users:?}");
        assert_eq!(
            db.list_tokens(&users[0].id).await.unwrap().len(),
            1,
            "{backend}"
        );
        assert!(
            db.authenticate(&winners[0]).await.unwrap().is_some(),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn deleting_a_user_deletes_its_tokens() {
    for test_db in TestDb::all().await {
        let backend = test_db.backend();
        let db = test_db.migrated().await;
        let alice = db.create_user("alice", false).await.unwrap();
        let bob = db.create_user("bob", false).await.unwrap();
        let first = db.create_token(&alice.id, "laptop", None).await.unwrap();
        db.create_token(&alice.id, "ci", None).await.unwrap();
        let bobs = db.create_token(&bob.id, "phone", None).await.unwrap();
        assert_eq!(
            db.list_tokens(&alice.id).await.unwrap().len(),
            2,
            "{backend}"
        );
        assert!(
            !format!("{first:?}").contains(&first.secret),
            "{backend}: secret in Debug"
        );

        db.delete_user(&alice.id).await.unwrap();

        // With `foreign_keys = ON` the cascade removed alice's tokens; bob's stay.
        assert!(
            db.list_tokens(&alice.id).await.unwrap().is_empty(),
            "{backend}: no cascade"
        );
        assert!(
            db.authenticate(&first.secret).await.unwrap().is_none(),
            "{backend}"
        );
        assert!(
            db.authenticate(&bobs.secret).await.unwrap().is_some(),
            "{backend}"
        );
        assert_eq!(db.get_user(&alice.id).await.unwrap_err(), DbError::NotFound);
        assert_eq!(
            db.delete_user(&alice.id).await.unwrap_err(),
            DbError::NotFound
        );
        // Foreign keys are enforced on insert too.
        assert_eq!(
            db.create_token(&alice.id, "orphan", None)
                .await
                .unwrap_err(),
            DbError::NotFound,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn expired_tokens_do_not_authenticate_and_deleted_ones_stop_at_once() {
    for test_db in TestDb::all().await {
        let backend = test_db.backend();
        let db = test_db.migrated().await;
        let user = db.create_user("carol", false).await.unwrap();
        let now = Utc::now().naive_utc();
        let expired = db
            .create_token(&user.id, "old", Some(now - TimeDelta::seconds(1)))
            .await
            .unwrap();
        let valid = db
            .create_token(&user.id, "new", Some(now + TimeDelta::hours(1)))
            .await
            .unwrap();
        assert!(
            db.authenticate(&expired.secret).await.unwrap().is_none(),
            "{backend}"
        );
        let (_, token) = db
            .authenticate(&valid.secret)
            .await
            .unwrap()
            .expect("valid token");
        assert_eq!(token.expires_at, valid.token.expires_at, "{backend}");

        db.delete_token(&valid.token.id).await.unwrap();
        assert!(
            db.authenticate(&valid.secret).await.unwrap().is_none(),
            "{backend}"
        );
        assert_eq!(
            db.delete_token(&valid.token.id).await.unwrap_err(),
            DbError::NotFound
        );
    }
}

#[tokio::test]
async fn user_names_are_unique_and_checked() {
    for test_db in TestDb::all().await {
        let backend = test_db.backend();
        let db = test_db.migrated().await;
        db.create_user("dave", false).await.unwrap();
        let error = db.create_user("dave", true).await.unwrap_err();
        assert!(
            matches!(error, DbError::Conflict(_)),
            "{backend}: {error:?}"
        );
        for bad in ["", " dave", "line\nbreak", &"n".repeat(65)] {
            let error = db.create_user(bad, false).await.unwrap_err();
            assert!(
                matches!(error, DbError::InvalidInput(_)),
                "{backend}: {bad:?}: {error:?}"
            );
        }
        assert_eq!(db.list_users().await.unwrap().len(), 1, "{backend}");
    }
}

#[tokio::test]
async fn ping_succeeds_on_a_reachable_database() {
    for test_db in TestDb::all().await {
        test_db.connect().await.ping().await.unwrap();
    }
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_and_no_message_shows_the_password() {
    // Port 1 on the loopback refuses connections at once.
    let url = "postgres://keywire:hunter2-very-secret@127.0.0.1:1/keywire?sslmode=disable";
    let options = DbOptions {
        acquire_timeout: Duration::from_secs(3),
        ..DbOptions::default()
    };
    let db = Db::connect_with(url, options)
        .await
        .expect("pools connect lazily");
    assert_eq!(db.backend(), Backend::Postgres);
    assert!(
        !db.redacted_url().contains("hunter2"),
        "{}",
        db.redacted_url()
    );
    assert!(!format!("{db:?}").contains("hunter2"), "{db:?}");

    for error in [
        db.ping().await.unwrap_err(),
        db.migrate().await.unwrap_err(),
        db.authenticate("kw_whatever-token").await.unwrap_err(),
    ] {
        assert!(matches!(error, DbError::Unavailable(_)), "{error:?}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
    }

    let error = Db::connect("mysql://root:hunter2@db/keywire")
        .await
        .unwrap_err();
    assert!(matches!(error, DbError::Config(_)), "{error:?}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[tokio::test]
async fn sqlite_creates_its_directory_and_refuses_memory_databases() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("data").join("keywire.db");
    let db = Db::connect(path.to_str().unwrap()).await.unwrap();
    assert_eq!(db.backend(), Backend::Sqlite);
    assert!(path.exists(), "the database file was not created");
    db.migrate().await.unwrap();
    db.ping().await.unwrap();
    // The journal mode is stored in the file: the write-ahead log sits beside it.
    db.create_user("erin", false).await.unwrap();
    assert!(path.with_extension("db-wal").exists(), "not in WAL mode");

    for url in [
        ":memory:",
        "sqlite://:memory:",
        "file::memory:?cache=shared",
        "sqlite://",
    ] {
        let error = Db::connect(url).await.unwrap_err();
        assert!(matches!(error, DbError::Config(_)), "{url}: {error:?}");
    }
}
