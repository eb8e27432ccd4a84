//! Lints and rehearses the migrations in `migrations/` (as rust-lang/bors
//! does): each applies, in order, to a fresh database, and none adds a
//! `NOT NULL` column to an existing table without a `DEFAULT`, which would
//! fail on any database that already has rows.

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
    for migration in MIGRATOR.iter() {
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
