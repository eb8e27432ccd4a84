//! Lints and rehearses the migrations in `migrations/sqlite/` and
//! `migrations/postgres/` (as rust-lang/bors does): each applies, in order,
//! to a fresh database; none adds a `NOT NULL` column to an existing table
//! without a `DEFAULT`, which would fail on any database that already has
//! rows; and the two back ends' migrations stay in step, version for
//! version. A database migrated by a newer hoist is refused.

mod stores;

use hoist::store::postgres::MIGRATOR as POSTGRES;
use hoist::store::sqlite::MIGRATOR;
use sqlx::Executor;
use sqlx::sqlite::SqlitePoolOptions;

/// Statements of `sql`, without comments, whitespace collapsed, upper case.
fn statements(sql: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .map(|line| line.split_once("--").map_or(line, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(|s| {
            s.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_uppercase()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// The statements that add a `NOT NULL` column without a `DEFAULT`.
fn unsafe_column_additions(sql: &str) -> Vec<String> {
    statements(sql)
        .into_iter()
        .filter(|s| {
            s.starts_with("ALTER TABLE")
                && s.contains(" ADD ")
                && s.contains("NOT NULL")
                && !s.contains("DEFAULT")
        })
        .collect()
}

#[test]
fn the_lint_catches_a_not_null_column_without_default() {
    let bad = "-- adds a column\nALTER TABLE outbox\n  ADD COLUMN owner TEXT NOT NULL;";
    assert_eq!(
        unsafe_column_additions(bad),
        ["ALTER TABLE OUTBOX ADD COLUMN OWNER TEXT NOT NULL"]
    );
    let good = "ALTER TABLE outbox ADD COLUMN owner TEXT NOT NULL DEFAULT ''; \
                ALTER TABLE outbox ADD COLUMN note TEXT; -- NOT NULL later";
    assert!(unsafe_column_additions(good).is_empty());
}

#[test]
fn no_migration_adds_a_not_null_column_without_default() {
    assert!(MIGRATOR.iter().next().is_some(), "no migrations embedded");
    for migration in MIGRATOR.iter().chain(POSTGRES.iter()) {
        let bad = unsafe_column_additions(&migration.sql);
        assert!(
            bad.is_empty(),
            "migration {} ({}) adds a NOT NULL column without DEFAULT: {bad:?}",
            migration.version,
            migration.description
        );
    }
}

#[tokio::test]
async fn every_migration_applies_in_order_to_a_fresh_database() {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .expect("fresh database");
    let mut versions: Vec<i64> = Vec::new();
    for migration in MIGRATOR.iter() {
        assert!(
            versions.last().is_none_or(|last| *last < migration.version),
            "migration {} is out of order",
            migration.version
        );
        pool.execute(&*migration.sql).await.unwrap_or_else(|e| {
            panic!(
                "migration {} ({}) fails: {e}",
                migration.version, migration.description
            )
        });
        versions.push(migration.version);
    }
    // And the shared migrator, which the store uses, agrees.
    let fresh = SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .expect("fresh database");
    MIGRATOR.run(&fresh).await.expect("MIGRATOR applies");
    let applied: Vec<(i64,)> =
        sqlx::query_as("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&fresh)
            .await
            .expect("migration table");
    assert_eq!(
        applied.into_iter().map(|(v,)| v).collect::<Vec<_>>(),
        versions
    );
}

#[test]
fn both_back_ends_have_the_same_migrations_version_for_version() {
    let versions = |migrator: &sqlx::migrate::Migrator| -> Vec<(i64, String)> {
        migrator
            .iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect()
    };
    assert_eq!(
        versions(&MIGRATOR),
        versions(&POSTGRES),
        "every migration needs its twin: migrations/sqlite and migrations/postgres"
    );
}

#[tokio::test]
async fn every_postgres_migration_applies_in_order_to_a_fresh_schema() {
    let Some(url) = stores::postgres_url().await else {
        return;
    };
    let applied = hoist::store::migrate(&url).await.expect("migrations apply");
    let known: Vec<i64> = POSTGRES.iter().map(|m| m.version).collect();
    assert_eq!(applied, known, "each applied once, in order");
    assert!(
        hoist::store::migrate(&url).await.unwrap().is_empty(),
        "a second run has nothing to do"
    );
    hoist::store::open(&url)
        .await
        .expect("a migrated store opens");
}

#[tokio::test]
async fn postgres_refuses_to_serve_before_migrate_and_a_newer_schema_after() {
    let Some(url) = stores::postgres_url().await else {
        return;
    };
    let error = hoist::store::open(&url).await.err().expect("not migrated");
    assert!(
        format!("{error:#}").contains("run `hoist migrate` first"),
        "{error:#}"
    );
    hoist::store::migrate(&url).await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from the future', TRUE, '\\x00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    for refused in [
        hoist::store::open(&url).await.err(),
        hoist::store::migrate(&url).await.err(),
    ] {
        let error = format!("{:#}", refused.expect("a newer schema is refused"));
        assert!(
            error.contains("has schema version 99990101000000, newer than this hoist knows"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn sqlite_refuses_a_newer_schema_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("hoist.db").display());
    assert_eq!(
        hoist::store::migrate(&url).await.unwrap().len(),
        MIGRATOR.iter().count()
    );
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from the future', TRUE, x'00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let error = format!("{:#}", hoist::store::open(&url).await.err().unwrap());
    assert!(
        error.contains("has schema version 99990101000000, newer than this hoist knows"),
        "{error}"
    );
}

#[test]
fn a_store_url_is_shown_without_its_password() {
    assert_eq!(
        hoist::store::shown_url("postgres://hoist:hunter2@db:5432/hoist"),
        "postgres://hoist:***@db:5432/hoist"
    );
    assert_eq!(
        hoist::store::shown_url("postgres://db/hoist?user=hoist&password=hunter2"),
        "postgres://db/hoist?user=hoist&password=***"
    );
    assert_eq!(
        hoist::store::shown_url("sqlite://hoist.db"),
        "sqlite://hoist.db"
    );
    let error = hoist::store::Kind::of("mysql://root:hunter2@db/x").unwrap_err();
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

/// The history migration gives deployments recorded before it their
/// actor, from the origin each kept.
#[tokio::test]
async fn deployments_from_before_the_history_migration_get_their_actor() {
    const HISTORY: i64 = 20261206000000;
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .expect("fresh database");
    for migration in MIGRATOR.iter().filter(|m| m.version < HISTORY) {
        pool.execute(&*migration.sql).await.unwrap();
    }
    pool.execute(
        "INSERT INTO deployments (forge, repo, deployment_id, app, environment, git_ref, sha, task, origin, request_key, created_at) \
         VALUES ('github', 'acme/api', 7, 'api', 'staging', 'main', '1111111111111111111111111111111111111111', 'deploy', \
         '{\"platform\":\"slack\",\"conversation\":\"C1\",\"message\":null,\"actor\":{\"id\":\"U1\",\"name\":\"ada\",\"login\":null}}', 'k7', 0)",
    )
    .await
    .unwrap();
    for migration in MIGRATOR.iter().filter(|m| m.version >= HISTORY) {
        pool.execute(&*migration.sql).await.unwrap();
    }
    let (actor, decision): (String, Option<String>) =
        sqlx::query_as("SELECT actor, decision FROM deployments WHERE deployment_id = 7")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((actor.as_str(), decision), ("ada", None));
}

const LATEST_STATUS: i64 = 20261207000000;

/// A deployment and two statuses, as a store before the latest-status
/// migration kept them: the migration must give the deployment the
/// newer one.
const BEFORE_LATEST_STATUS: [&str; 3] = [
    "INSERT INTO deployments (forge, repo, deployment_id, app, environment, git_ref, sha, task, origin, request_key, created_at) \
     VALUES ('github', 'acme/api', 7, 'api', 'staging', 'main', '1111111111111111111111111111111111111111', 'deploy', \
     '{\"platform\":\"slack\",\"conversation\":\"C1\",\"message\":null,\"actor\":{\"id\":\"U1\",\"name\":\"ada\",\"login\":null}}', 'k7', 0)",
    "INSERT INTO deployment_statuses (forge, repo, deployment_id, state, at) VALUES ('github', 'acme/api', 7, 'success', 20)",
    "INSERT INTO deployment_statuses (forge, repo, deployment_id, state, at) VALUES ('github', 'acme/api', 7, 'in_progress', 10)",
];

/// The latest-status migration gives deployments recorded before it
/// their latest status, on SQLite.
#[tokio::test]
async fn deployments_from_before_the_latest_status_migration_get_their_latest_status() {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .expect("fresh database");
    for migration in MIGRATOR.iter().filter(|m| m.version < LATEST_STATUS) {
        pool.execute(&*migration.sql).await.unwrap();
    }
    for sql in BEFORE_LATEST_STATUS {
        pool.execute(sql).await.unwrap();
    }
    for migration in MIGRATOR.iter().filter(|m| m.version >= LATEST_STATUS) {
        pool.execute(&*migration.sql).await.unwrap();
    }
    let latest: (Option<String>, Option<i64>) =
        sqlx::query_as("SELECT latest_state, latest_at FROM deployments WHERE deployment_id = 7")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(latest, (Some("success".into()), Some(20)));
}

/// The same on PostgreSQL, whose backfill is written differently.
#[tokio::test]
async fn postgres_deployments_from_before_the_latest_status_migration_get_their_latest_status() {
    let Some(url) = stores::postgres_url().await else {
        return;
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("the test schema");
    for migration in POSTGRES.iter().filter(|m| m.version < LATEST_STATUS) {
        pool.execute(&*migration.sql).await.unwrap();
    }
    for sql in BEFORE_LATEST_STATUS {
        pool.execute(sql).await.unwrap();
    }
    for migration in POSTGRES.iter().filter(|m| m.version >= LATEST_STATUS) {
        pool.execute(&*migration.sql).await.unwrap();
    }
    let latest: (Option<String>, Option<i64>) =
        sqlx::query_as("SELECT latest_state, latest_at FROM deployments WHERE deployment_id = 7")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(latest, (Some("success".into()), Some(20)));
}
