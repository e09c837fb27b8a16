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

const TABLES: [&str; 18] = [
    "api_tokens",
    "encryption_keys",
    "entries",
    "entry_versions",
    "environments",
    "events",
    "integration_environments",
    "integration_sync",
    "integrations",
    "member_roles",
    "projects",
    "run_attempts",
    "runs",
    "sync_records",
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

fn actor_of(user: &keywire_db::User) -> keywire_core::Actor {
    keywire_core::Actor {
        id: user.id.clone(),
        name: user.name.clone(),
    }
}

async fn event_types(db: &Db, workspace_id: &str) -> Vec<String> {
    db.list_events(
        workspace_id,
        &keywire_db::EventFilter::default(),
        &keywire_db::PageRequest {
            limit: Some(200),
            after: None,
        },
    )
    .await
    .unwrap()
    .items
    .into_iter()
    .map(|event| event.event_type)
    .collect()
}

#[tokio::test]
async fn limited_tokens_keep_their_authorities_and_only_owners_revoke_them() {
    use keywire_db::{Authority, PageRequest};
    for test_db in TestDb::all().await {
        let backend = test_db.backend();
        let db = test_db.migrated().await;
        let (alice, first) = db
            .create_user_with_token("alice", false, "first")
            .await
            .unwrap();
        assert_eq!(first.token.authority_limit(), None, "{backend}");
        let bob = db.create_user("bob", false).await.unwrap();
        let limit = [Authority::ReadProject, Authority::ReadSecret]
            .into_iter()
            .collect();
        let limited = db
            .create_limited_token(&alice.id, "ci", None, Some(&limit))
            .await
            .unwrap();
        assert_eq!(
            limited.token.authorities.as_deref(),
            Some(r#"["READ_PROJECT","READ_SECRET"]"#)
        );
        let (_, seen) = db.authenticate(&limited.secret).await.unwrap().unwrap();
        assert_eq!(seen.authority_limit(), Some(limit), "{backend}");

        // Pages of one token each, oldest first, and a foreign cursor is refused.
        let one = PageRequest {
            limit: Some(1),
            after: None,
        };
        let page = db.list_tokens_page(&alice.id, &one).await.unwrap();
        assert_eq!(page.items[0].id, first.token.id, "{backend}");
        let next = PageRequest {
            limit: Some(1),
            after: page.next_cursor.clone(),
        };
        let page = db.list_tokens_page(&alice.id, &next).await.unwrap();
        assert_eq!(page.items[0].id, limited.token.id, "{backend}");
        assert_eq!(page.next_cursor, None, "{backend}");
        let forged = PageRequest {
            limit: None,
            after: Some("???".into()),
        };
        assert!(matches!(
            db.list_tokens_page(&alice.id, &forged).await,
            Err(DbError::InvalidInput(_))
        ));

        // Bob cannot revoke Alice's token; Alice can, and it stops at once.
        assert_eq!(
            db.revoke_token(&bob.id, &limited.token.id).await,
            Err(DbError::NotFound)
        );
        db.revoke_token(&alice.id, &limited.token.id).await.unwrap();
        assert!(db.authenticate(&limited.secret).await.unwrap().is_none());
        assert!(db.authenticate(&first.secret).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn users_page_by_name_and_the_last_admin_stays() {
    use keywire_db::PageRequest;
    for test_db in TestDb::all().await {
        let backend = test_db.backend();
        let db = test_db.migrated().await;
        db.bootstrap_admin(None).await.unwrap();
        let admin = db.user_by_name(BOOTSTRAP_ADMIN_NAME).await.unwrap();
        for name in ["carol", "bob", "alice"] {
            db.create_user_with_token(name, false, "first")
                .await
                .unwrap();
        }
        assert!(matches!(
            db.create_user_with_token("alice", false, "first").await,
            Err(DbError::Conflict(_))
        ));
        assert!(matches!(
            db.create_user_with_token("al ice", false, "first").await,
            Err(DbError::InvalidInput(_))
        ));
        let mut names = Vec::new();
        let mut after = None;
        loop {
            let page = db
                .list_users_page(&PageRequest {
                    limit: Some(2),
                    after,
                })
                .await
                .unwrap();
            names.extend(page.items.into_iter().map(|u| u.name));
            match page.next_cursor {
                Some(cursor) => after = Some(cursor),
                None => break,
            }
        }
        assert_eq!(names, ["admin", "alice", "bob", "carol"], "{backend}");

        // The only administrator cannot be removed; with a second one, it can.
        let error = db
            .remove_user(&admin.id, &actor_of(&admin))
            .await
            .unwrap_err();
        assert!(
            matches!(error, DbError::Conflict(_)),
            "{backend}: {error:?}"
        );
        let root = db.create_user("root", true).await.unwrap();
        db.remove_user(&admin.id, &actor_of(&root)).await.unwrap();
        assert_eq!(
            db.remove_user(&admin.id, &actor_of(&root)).await,
            Err(DbError::NotFound)
        );
    }
}

#[tokio::test]
async fn roles_and_memberships_keep_their_rules_and_record_events() {
    use keywire_db::{Authority, NewRole, PageRequest, RoleChanges};
    for test_db in TestDb::all().await {
        let backend = test_db.backend();
        let db = test_db.migrated().await;
        let owner = db.create_user("owner", false).await.unwrap();
        let alice = db.create_user("alice", false).await.unwrap();
        let bob = db.create_user("bob", false).await.unwrap();
        let workspace = db
            .create_workspace("Acme", &actor_of(&owner))
            .await
            .unwrap();
        let (project, _) = db
            .create_project(&workspace, "Shop", None, &[], &actor_of(&owner))
            .await
            .unwrap();
        let (other, _) = db
            .create_project(&workspace, "Blog", None, &[], &actor_of(&owner))
            .await
            .unwrap();

        let viewer = db
            .create_role(
                &workspace,
                &NewRole {
                    name: "Shop viewer".into(),
                    description: Some("reads the shop".into()),
                    authorities: [Authority::ReadWorkspace, Authority::ReadProject]
                        .into_iter()
                        .collect(),
                    project_ids: Some(vec![project.id.clone()]),
                },
                &actor_of(&owner),
            )
            .await
            .unwrap();
        assert_eq!(viewer.slug, "shop-viewer", "{backend}");
        assert_eq!(
            viewer.project_slugs.as_deref(),
            Some(&[project.slug.clone()][..])
        );
        let duplicate = NewRole {
            name: "Shop viewer".into(),
            description: None,
            authorities: Default::default(),
            project_ids: None,
        };
        assert!(matches!(
            db.create_role(&workspace, &duplicate, &actor_of(&owner))
                .await,
            Err(DbError::Conflict(_))
        ));
        let renamed = db
            .update_role(
                &workspace,
                &viewer,
                &RoleChanges {
                    name: Some("Shop reader".into()),
                    ..RoleChanges::default()
                },
                &actor_of(&owner),
            )
            .await
            .unwrap();
        assert_eq!(
            (renamed.slug.as_str(), renamed.name.as_str()),
            ("shop-viewer", "Shop reader")
        );
        assert_eq!(
            renamed.authorities, viewer.authorities,
            "{backend}: untouched"
        );

        // The built-in admin role keeps WORKSPACE_ADMIN, every project, and exists.
        let admin_role = db.role_by_slug(&workspace.id, "admin").await.unwrap();
        assert!(admin_role.is_admin_role);
        for changes in [
            RoleChanges {
                authorities: Some([Authority::ReadWorkspace].into_iter().collect()),
                ..RoleChanges::default()
            },
            RoleChanges {
                project_ids: Some(Some(vec![project.id.clone()])),
                ..RoleChanges::default()
            },
        ] {
            assert!(matches!(
                db.update_role(&workspace, &admin_role, &changes, &actor_of(&owner))
                    .await,
                Err(DbError::Conflict(_))
            ));
        }
        assert!(matches!(
            db.delete_role(&workspace, &admin_role, &actor_of(&owner))
                .await,
            Err(DbError::Conflict(_))
        ));
        let roles = db
            .list_roles(&workspace.id, &PageRequest::default())
            .await
            .unwrap();
        let slugs: Vec<&str> = roles.items.iter().map(|r| r.slug.as_str()).collect();
        assert_eq!(slugs, ["admin", "shop-viewer"], "{backend}");

        // Membership: Alice reads the shop only.
        let member = db
            .add_member(
                &workspace,
                &alice,
                std::slice::from_ref(&renamed),
                &actor_of(&owner),
            )
            .await
            .unwrap();
        assert_eq!(member.roles, ["shop-viewer"], "{backend}");
        assert!(matches!(
            db.add_member(&workspace, &alice, &[], &actor_of(&owner))
                .await,
            Err(DbError::Conflict(_))
        ));
        let access = db.access(&alice.id, &workspace.id, false).await.unwrap();
        assert!(access.can(Authority::ReadProject, Some(&project.id)));
        assert!(!access.can(Authority::ReadProject, Some(&other.id)));
        assert!(access.can(Authority::ReadWorkspace, None));
        assert!(!access.can(Authority::UpdateWorkspace, None));

        // The owner is the only admin-role holder: may neither lose it nor go.
        assert!(matches!(
            db.set_member_roles(
                &workspace,
                &owner,
                std::slice::from_ref(&renamed),
                &actor_of(&owner)
            )
            .await,
            Err(DbError::Conflict(_))
        ));
        assert!(matches!(
            db.remove_member(&workspace, &owner, &actor_of(&owner))
                .await,
            Err(DbError::Conflict(_))
        ));
        let promoted = db
            .set_member_roles(
                &workspace,
                &alice,
                &[admin_role.clone(), renamed.clone()],
                &actor_of(&owner),
            )
            .await
            .unwrap();
        assert_eq!(promoted.roles, ["admin", "shop-viewer"], "{backend}");
        db.remove_member(&workspace, &owner, &actor_of(&owner))
            .await
            .unwrap();
        assert_eq!(
            db.member(&workspace.id, &owner.id).await,
            Err(DbError::NotFound)
        );
        assert!(matches!(
            db.set_member_roles(&workspace, &bob, &[], &actor_of(&alice))
                .await,
            Err(DbError::NotFound)
        ));
        db.add_member(&workspace, &bob, &[], &actor_of(&alice))
            .await
            .unwrap();
        let members = db
            .list_members(
                &workspace.id,
                &PageRequest {
                    limit: Some(1),
                    after: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(members.items[0].user_name, "alice", "{backend}");
        let rest = db
            .list_members(
                &workspace.id,
                &PageRequest {
                    limit: Some(5),
                    after: members.next_cursor,
                },
            )
            .await
            .unwrap();
        assert_eq!(rest.items.len(), 1, "{backend}");
        assert_eq!(
            (rest.items[0].user_name.as_str(), rest.items[0].roles.len()),
            ("bob", 0)
        );
        db.remove_member(&workspace, &bob, &actor_of(&alice))
            .await
            .unwrap();

        // Deleting the role takes it from its holders.
        db.delete_role(&workspace, &renamed, &actor_of(&alice))
            .await
            .unwrap();
        assert_eq!(
            db.member(&workspace.id, &alice.id).await.unwrap().roles,
            ["admin"]
        );

        let types = event_types(&db, &workspace.id).await;
        for expected in [
            "WORKSPACE_ROLE_CREATED",
            "WORKSPACE_ROLE_UPDATED",
            "WORKSPACE_ROLE_DELETED",
            "INVITED_TO_WORKSPACE",
            "WORKSPACE_MEMBERSHIP_UPDATED",
            "LEFT_WORKSPACE",
            "REMOVED_FROM_WORKSPACE",
        ] {
            assert!(
                types.iter().any(|t| t == expected),
                "{backend}: no {expected} in {types:?}"
            );
        }
        // Refused changes wrote nothing: one role creation, one update, one deletion.
        let count = |name: &str| types.iter().filter(|t| *t == name).count();
        assert_eq!(count("WORKSPACE_ROLE_CREATED"), 1, "{backend}");
        assert_eq!(count("WORKSPACE_ROLE_UPDATED"), 1, "{backend}");
        assert_eq!(count("INVITED_TO_WORKSPACE"), 2, "{backend}");

        // Deleting a user tells each of its workspaces.
        db.remove_user(&alice.id, &actor_of(&owner)).await.unwrap();
        let events = db
            .list_events(
                &workspace.id,
                &keywire_db::EventFilter::default(),
                &PageRequest::default(),
            )
            .await
            .unwrap();
        let newest = &events.items[0];
        assert_eq!(newest.event_type, "REMOVED_FROM_WORKSPACE", "{backend}");
        let payload: serde_json::Value = serde_json::from_str(&newest.payload).unwrap();
        assert_eq!(
            payload,
            serde_json::json!({"user": "alice", "roles": ["admin"], "userDeleted": true})
        );
    }
}

/// Servers spawn these futures: keep them `Send` (checked at compile time).
#[test]
fn member_and_token_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    #[expect(dead_code, reason = "only type-checked")]
    fn check(
        db: &Db,
        workspace: &keywire_db::Workspace,
        role: &keywire_db::Role,
        user: &keywire_db::User,
        actor: &keywire_core::Actor,
    ) {
        let page = keywire_db::PageRequest::default();
        assert_send(&db.create_user_with_token("", false, ""));
        assert_send(&db.user_by_name(""));
        assert_send(&db.list_users_page(&page));
        assert_send(&db.remove_user("", actor));
        assert_send(&db.create_limited_token("", "", None, None));
        assert_send(&db.list_tokens_page("", &page));
        assert_send(&db.revoke_token("", ""));
        let new = keywire_db::NewRole {
            name: String::new(),
            description: None,
            authorities: Default::default(),
            project_ids: None,
        };
        assert_send(&db.create_role(workspace, &new, actor));
        assert_send(&db.list_roles("", &page));
        assert_send(&db.role_by_slug("", ""));
        assert_send(&db.roles_by_slugs("", &[]));
        assert_send(&db.update_role(workspace, role, &Default::default(), actor));
        assert_send(&db.delete_role(workspace, role, actor));
        assert_send(&db.add_member(workspace, user, &[], actor));
        assert_send(&db.list_members("", &page));
        assert_send(&db.member("", ""));
        assert_send(&db.set_member_roles(workspace, user, &[], actor));
        assert_send(&db.remove_member(workspace, user, actor));
    }
}
