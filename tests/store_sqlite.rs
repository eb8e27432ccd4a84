//! What only the SQLite store does: its file, in WAL mode with foreign
//! keys, and a url it cannot open. Every other store test runs on both
//! back ends (`tests/store_core.rs`, `tests/store_coordination.rs`,
//! `tests/store_holds.rs`).

use hoist::store::sqlite::SqliteStore;

#[tokio::test]
async fn connect_creates_a_missing_file_in_wal_mode_with_foreign_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hoist.db");
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("store on a new file");
    assert!(path.exists());
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .expect("pragma");
    assert_eq!(mode, "wal");
    let (fk,): (i64,) = sqlx::query_as("PRAGMA foreign_keys")
        .fetch_one(store.pool())
        .await
        .expect("pragma");
    assert_eq!(fk, 1);
    // Opening again applies no migration twice.
    SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("store reopened");
}

#[tokio::test]
async fn connect_reports_an_unusable_url() {
    let error = SqliteStore::connect("sqlite:///nonexistent-dir/sub/hoist.db")
        .await
        .expect_err("no such directory");
    assert!(
        format!("{error:#}").starts_with("cannot open the store at `sqlite:///nonexistent-dir"),
        "{error:#}"
    );
}
