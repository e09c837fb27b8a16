//! Secrets and variables at the database level, on SQLite and (when
//! `KEYWIRE_TEST_DATABASE_URL` is set) PostgreSQL: versions, reveal, bulk atomicity, rollback,
//! deletion, events, a ciphertext moved to another row, and concurrent writers.

use std::collections::BTreeMap;
use std::sync::Arc;

use keywire_core::Actor;
use keywire_db::{
    Backend, Cipher, Db, DbError, EntryInput, EntryKind, EventFilter, NewEnvironment, PageRequest,
    Project,
};
use keywire_test_support::TestDb;

/// A user, a workspace and a project with `dev` and `prod`.
async fn project(db: &Db) -> (Project, Actor) {
    let user = db.create_user("owner", false).await.unwrap();
    let actor = Actor {
        id: user.id.clone(),
        name: user.name.clone(),
    };
    let workspace = db.create_workspace("Shop", &actor).await.unwrap();
    let environments = ["dev", "prod"].map(|name| NewEnvironment {
        name: name.to_owned(),
        description: None,
    });
    let (project, _) = db
        .create_project(&workspace, "Api", None, &environments, &actor)
        .await
        .unwrap();
    (project, actor)
}

fn input(key: &str, values: &[(&str, &str)]) -> EntryInput {
    EntryInput {
        key: key.to_owned(),
        values: values
            .iter()
            .map(|(env, value)| ((*env).to_owned(), (*value).to_owned()))
            .collect(),
        note: None,
    }
}

fn cipher() -> Cipher {
    Cipher::from_bytes(&[7; 32]).unwrap()
}

fn all() -> PageRequest {
    PageRequest {
        limit: Some(200),
        after: None,
    }
}

/// (type, payload) of the project's events, oldest first.
async fn events(db: &Db, project: &Project) -> Vec<(String, String)> {
    let page = db
        .list_events(&project.workspace_id, &EventFilter::default(), &all())
        .await
        .unwrap();
    let mut out: Vec<(String, String)> = page
        .items
        .into_iter()
        .filter(|e| e.event_type.starts_with("SECRET") || e.event_type.starts_with("VARIABLE"))
        .map(|e| (e.event_type, e.payload))
        .collect();
    out.reverse();
    out
}

#[tokio::test]
async fn versions_reveal_rollback_delete_and_events() {
    for test_db in TestDb::all().await {
        let backend = test_db.backend();
        let db = test_db.migrated().await;
        let (project, actor) = project(&db).await;
        let cipher = cipher();
        let secret = EntryKind::Secret;

        let first = db
            .set_entries(
                &project,
                secret,
                &[input("API_KEY", &[("dev", "one-111"), ("prod", "p-111")])],
                &cipher,
                &actor,
            )
            .await
            .unwrap();
        assert!(first[0].created, "{backend}");
        assert_eq!(
            first[0].versions,
            BTreeMap::from([("dev".into(), 1), ("prod".into(), 1)]),
            "{backend}"
        );
        let second = db
            .set_entries(
                &project,
                secret,
                &[input("API_KEY", &[("dev", "two-222"), ("prod", "p-111")])],
                &cipher,
                &actor,
            )
            .await
            .unwrap();
        assert!(!second[0].created, "{backend}");
        assert_eq!(
            second[0].versions,
            BTreeMap::from([("dev".into(), 2)]),
            "{backend}: same prod value, no version"
        );
        let same = db
            .set_entries(
                &project,
                secret,
                &[input("API_KEY", &[("dev", "two-222")])],
                &cipher,
                &actor,
            )
            .await
            .unwrap();
        assert!(!same[0].changed(), "{backend}: nothing changed");

        let listed = db
            .list_entries(&project, secret, false, &cipher, &all())
            .await
            .unwrap();
        assert_eq!(listed.items.len(), 1);
        assert_eq!(listed.items[0].values["dev"].version, 2, "{backend}");
        assert_eq!(
            listed.items[0].values["dev"].value, None,
            "{backend}: not revealed"
        );
        let revealed = db
            .get_entry(&project, secret, "API_KEY", true, &cipher)
            .await
            .unwrap();
        assert_eq!(
            revealed.values["dev"].value.as_deref(),
            Some("two-222"),
            "{backend}"
        );
        assert_eq!(
            revealed.values["prod"].value.as_deref(),
            Some("p-111"),
            "{backend}"
        );

        let rolled = db
            .rollback_entry(&project, secret, "API_KEY", "dev", 1, &cipher, &actor)
            .await
            .unwrap();
        assert_eq!(
            rolled.versions,
            BTreeMap::from([("dev".into(), 3)]),
            "{backend}"
        );
        let history = db
            .entry_versions(&project, secret, "API_KEY", "dev", true, &cipher, &all())
            .await
            .unwrap();
        let seen: Vec<(i64, Option<&str>)> = history
            .items
            .iter()
            .map(|v| (v.version, v.value.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                (3, Some("one-111")),
                (2, Some("two-222")),
                (1, Some("one-111"))
            ],
            "{backend}"
        );
        let page = db
            .entry_versions(
                &project,
                secret,
                "API_KEY",
                "dev",
                false,
                &cipher,
                &PageRequest {
                    limit: Some(2),
                    after: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            page.items.iter().map(|v| v.version).collect::<Vec<_>>(),
            [3, 2]
        );
        assert!(page.items.iter().all(|v| v.value.is_none()));
        let rest = db
            .entry_versions(
                &project,
                secret,
                "API_KEY",
                "dev",
                false,
                &cipher,
                &PageRequest {
                    limit: Some(2),
                    after: page.next_cursor,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            rest.items.iter().map(|v| v.version).collect::<Vec<_>>(),
            [1],
            "{backend}"
        );
        assert_eq!(rest.next_cursor, None);

        // Bulk: one unknown environment rejects every item.
        let error = db
            .set_entries(
                &project,
                secret,
                &[
                    input("A_NEW", &[("dev", "x")]),
                    input("B_NEW", &[("staging", "y")]),
                ],
                &cipher,
                &actor,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&error, DbError::InvalidInput(m) if m.contains("staging")),
            "{backend}: {error:?}"
        );
        assert!(
            matches!(
                db.get_entry(&project, secret, "A_NEW", false, &cipher)
                    .await,
                Err(DbError::NotFound)
            ),
            "{backend}"
        );

        db.delete_entry_value(&project, secret, "API_KEY", "dev", &actor)
            .await
            .unwrap();
        let left = db
            .get_entry(&project, secret, "API_KEY", false, &cipher)
            .await
            .unwrap();
        assert_eq!(
            left.values.keys().collect::<Vec<_>>(),
            ["prod"],
            "{backend}"
        );
        assert!(matches!(
            db.delete_entry_value(&project, secret, "API_KEY", "dev", &actor)
                .await,
            Err(DbError::NotFound)
        ));
        db.delete_entry(&project, secret, "API_KEY", &actor)
            .await
            .unwrap();
        assert!(matches!(
            db.get_entry(&project, secret, "API_KEY", false, &cipher)
                .await,
            Err(DbError::NotFound)
        ));

        let events = events(&db, &project).await;
        let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            types,
            [
                "SECRET_ADDED",
                "SECRET_UPDATED",
                "SECRET_UPDATED",
                "SECRET_DELETED",
                "SECRET_DELETED"
            ],
            "{backend}"
        );
        assert!(
            events[2].1.contains("\"rolledBackTo\":1"),
            "{backend}: {}",
            events[2].1
        );
        for (_, payload) in &events {
            for value in ["one-111", "two-222", "p-111"] {
                assert!(
                    !payload.contains(value),
                    "{backend}: a value in an event: {payload}"
                );
            }
        }
    }
}

#[tokio::test]
async fn variables_are_stored_plain_and_secrets_sealed() {
    for test_db in TestDb::all().await {
        let backend = test_db.backend();
        let db = test_db.migrated().await;
        let (project, actor) = project(&db).await;
        let cipher = cipher();
        db.set_entries(
            &project,
            EntryKind::Secret,
            &[input("S", &[("dev", "sealed-value-1")])],
            &cipher,
            &actor,
        )
        .await
        .unwrap();
        db.set_entries(
            &project,
            EntryKind::Variable,
            &[input("V", &[("dev", "plain-value-1")])],
            &cipher,
            &actor,
        )
        .await
        .unwrap();
        let stored = raw_values(&test_db).await;
        assert!(
            stored.iter().any(|v| v == "plain-value-1"),
            "{backend}: {stored:?}"
        );
        assert!(
            stored.iter().all(|v| !v.contains("sealed-value-1")),
            "{backend}"
        );
        assert!(
            stored
                .iter()
                .any(|v| v.starts_with(&format!("kw1:{}:", cipher.key_id()))),
            "{backend}"
        );
        // Kinds are separate name spaces.
        assert!(matches!(
            db.get_entry(&project, EntryKind::Variable, "S", false, &cipher)
                .await,
            Err(DbError::NotFound)
        ));
    }
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_row_does_not_decrypt() {
    for test_db in TestDb::all().await {
        let backend = test_db.backend();
        let db = test_db.migrated().await;
        let (project, actor) = project(&db).await;
        let cipher = cipher();
        db.set_entries(
            &project,
            EntryKind::Secret,
            &[
                input("FIRST", &[("dev", "first-secret-value")]),
                input("SECOND", &[("dev", "second-secret-value")]),
            ],
            &cipher,
            &actor,
        )
        .await
        .unwrap();
        let row = |key: &'static str| {
            let db = db.clone();
            let project = project.clone();
            let cipher = cipher.clone();
            async move {
                db.entry_versions(
                    &project,
                    EntryKind::Secret,
                    key,
                    "dev",
                    false,
                    &cipher,
                    &all(),
                )
                .await
                .unwrap()
                .items[0]
                    .id
                    .clone()
            }
        };
        let (first, second) = (row("FIRST").await, row("SECOND").await);
        execute(
            &test_db,
            &format!("UPDATE entry_versions SET value = (SELECT value FROM entry_versions WHERE id = '{first}') WHERE id = '{second}'"),
        )
        .await;

        let error = db
            .get_entry(&project, EntryKind::Secret, "SECOND", true, &cipher)
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(keywire_db::is_undecryptable(&error), "{backend}: {error:?}");
        assert!(
            message.contains("the value of SECOND in dev (version 1) cannot be decrypted with the configured master key"),
            "{backend}: {message}"
        );
        assert!(
            !message.contains("first-secret-value") && !message.contains("second-secret-value"),
            "{backend}: {message}"
        );
        assert!(
            db.list_entries(&project, EntryKind::Secret, true, &cipher, &all())
                .await
                .is_err(),
            "{backend}"
        );
        // Names and versions stay readable; the untouched row still opens.
        assert_eq!(
            db.list_entries(&project, EntryKind::Secret, false, &cipher, &all())
                .await
                .unwrap()
                .items
                .len(),
            2
        );
        let first_state = db
            .get_entry(&project, EntryKind::Secret, "FIRST", true, &cipher)
            .await
            .unwrap();
        assert_eq!(
            first_state.values["dev"].value.as_deref(),
            Some("first-secret-value"),
            "{backend}"
        );
        // Another master key is named by id, never by value.
        let other = Cipher::from_bytes(&[8; 32]).unwrap();
        let error = db
            .get_entry(&project, EntryKind::Secret, "FIRST", true, &other)
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains(cipher.key_id()),
            "{backend}: {error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_get_unique_gap_free_versions() {
    const TASKS: usize = 16;
    const WRITES: usize = 10;
    for test_db in TestDb::all().await {
        let backend = test_db.backend();
        let db = test_db.migrated().await;
        let (project, actor) = project(&db).await;
        let project = Arc::new(project);
        let cipher = cipher();
        let started = std::time::Instant::now();
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let (db, project, cipher, actor) =
                (db.clone(), project.clone(), cipher.clone(), actor.clone());
            tasks.push(tokio::spawn(async move {
                let (mut written, mut conflicts) = (Vec::new(), 0);
                for write in 0..WRITES {
                    let value = format!("value-{task}-{write}");
                    match db
                        .set_entries(
                            &project,
                            EntryKind::Secret,
                            &[input("HOT_KEY", &[("dev", &value)])],
                            &cipher,
                            &actor,
                        )
                        .await
                    {
                        Ok(changes) => written.push(changes[0].versions["dev"]),
                        Err(DbError::Conflict(_)) => conflicts += 1,
                        Err(other) => panic!("{backend}: task {task} write {write}: {other}"),
                    }
                }
                (written, conflicts)
            }));
        }
        let (mut reported, mut conflicts) = (Vec::new(), 0);
        for task in tasks {
            let (written, lost) = task.await.unwrap();
            reported.extend(written);
            conflicts += lost;
        }
        let successes = reported.len();
        assert_eq!(successes + conflicts, TASKS * WRITES);
        let mut stored = Vec::new();
        let mut page = PageRequest {
            limit: Some(200),
            after: None,
        };
        loop {
            let got = db
                .entry_versions(
                    &project,
                    EntryKind::Secret,
                    "HOT_KEY",
                    "dev",
                    true,
                    &cipher,
                    &page,
                )
                .await
                .unwrap();
            stored.extend(got.items.iter().map(|v| v.version));
            match got.next_cursor {
                Some(cursor) => page.after = Some(cursor),
                None => break,
            }
        }
        stored.sort_unstable();
        reported.sort_unstable();
        let expected: Vec<i64> = (1..=successes as i64).collect();
        assert_eq!(
            stored, expected,
            "{backend}: stored versions are 1..={successes}"
        );
        assert_eq!(
            reported, expected,
            "{backend}: each writer was told its own version"
        );
        if backend == Backend::Sqlite {
            assert_eq!(conflicts, 0, "SQLite serialises writers");
        }
        eprintln!(
            "{backend}: {successes} concurrent writes, {conflicts} conflicts, {:?}",
            started.elapsed()
        );
    }
}

/// Every stored value of `entry_versions`, read with SQL.
async fn raw_values(test_db: &TestDb) -> Vec<String> {
    use diesel::sql_types::Text;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        value: String,
    }
    let sql = "SELECT value FROM entry_versions";
    let rows: Vec<Row> = match test_db.backend() {
        Backend::Sqlite => {
            use diesel::{Connection as _, RunQueryDsl as _};
            let mut conn = diesel::SqliteConnection::establish(sqlite_path(test_db)).unwrap();
            diesel::sql_query(sql).load(&mut conn).unwrap()
        }
        Backend::Postgres => {
            use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
            let mut conn = diesel_async::AsyncPgConnection::establish(test_db.url())
                .await
                .unwrap();
            diesel::sql_query(sql).load(&mut conn).await.unwrap()
        }
    };
    rows.into_iter().map(|row| row.value).collect()
}

/// Runs one SQL statement on the test database, outside keywire-db.
async fn execute(test_db: &TestDb, sql: &str) {
    let changed = match test_db.backend() {
        Backend::Sqlite => {
            use diesel::{Connection as _, RunQueryDsl as _};
            let mut conn = diesel::SqliteConnection::establish(sqlite_path(test_db)).unwrap();
            diesel::sql_query(sql).execute(&mut conn).unwrap()
        }
        Backend::Postgres => {
            use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
            let mut conn = diesel_async::AsyncPgConnection::establish(test_db.url())
                .await
                .unwrap();
            diesel::sql_query(sql).execute(&mut conn).await.unwrap()
        }
    };
    assert_eq!(changed, 1, "{sql}");
}

fn sqlite_path(test_db: &TestDb) -> &str {
    test_db
        .url()
        .strip_prefix("sqlite://")
        .expect("a sqlite:// URL")
}
