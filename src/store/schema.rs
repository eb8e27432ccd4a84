//! Which migrations a database has had, against the ones this hoist
//! knows: a database migrated by a newer hoist is refused (its tables may
//! mean things this one does not know), and on PostgreSQL pending
//! migrations wait for `hoist migrate`.

use anyhow::Context;
use sqlx::migrate::{Migrate, Migrator};

/// How a database's schema stands against a migrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaState {
    /// Known migrations not applied yet, oldest first.
    pub pending: Vec<i64>,
    /// Applied migrations this hoist does not know: a newer hoist's.
    pub unknown: Vec<i64>,
}

impl SchemaState {
    pub fn compare(migrator: &Migrator, applied: &[i64]) -> Self {
        let known: Vec<i64> = migrator.iter().map(|m| m.version).collect();
        Self {
            pending: known
                .iter()
                .copied()
                .filter(|v| !applied.contains(v))
                .collect(),
            unknown: applied
                .iter()
                .copied()
                .filter(|v| !known.contains(v))
                .collect(),
        }
    }

    /// An error unless this hoist knows every migration the database had.
    pub fn refuse_newer(&self, shown_url: &str) -> anyhow::Result<()> {
        match self.unknown.last() {
            None => Ok(()),
            Some(newest) => anyhow::bail!(
                "the store at {shown_url} has schema version {newest}, newer than this hoist \
                 knows ({} migration{} it does not have): run the hoist that migrated it, or a newer one",
                self.unknown.len(),
                if self.unknown.len() == 1 { "" } else { "s" }
            ),
        }
    }
}

/// The versions of the migrations applied to the database behind
/// `connection` (creating sqlx's bookkeeping table if it is missing).
pub async fn applied_versions<C: Migrate>(connection: &mut C) -> anyhow::Result<Vec<i64>> {
    connection
        .ensure_migrations_table()
        .await
        .context("cannot read the store's schema version")?;
    let applied = connection
        .list_applied_migrations()
        .await
        .context("cannot read the store's schema version")?;
    Ok(applied.into_iter().map(|m| m.version).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_is_compared_version_by_version() {
        let migrator = &crate::store::postgres::MIGRATOR;
        let known: Vec<i64> = migrator.iter().map(|m| m.version).collect();
        let first = known[0];
        let state = SchemaState::compare(migrator, &[first, 99_990_101_000_000]);
        assert_eq!(state.pending, known[1..].to_vec());
        assert_eq!(state.unknown, vec![99_990_101_000_000]);
        let refusal = state.refuse_newer("postgres://db").unwrap_err().to_string();
        assert!(
            refusal.contains("schema version 99990101000000, newer than this hoist knows"),
            "{refusal}"
        );
        let current = SchemaState::compare(migrator, &known);
        assert!(current.pending.is_empty() && current.unknown.is_empty());
        current.refuse_newer("postgres://db").unwrap();
    }
}
