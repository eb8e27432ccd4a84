//! A fresh directory per run holding the deployed commit's files, so a run
//! never sees another run's leftovers and never touches the source
//! repository's HEAD, index or work tree.
//!
//! Layout: `<tmp>/hoist-run-<uuid>/` holds `checkout/` (the files, where
//! the command runs), `index` (git's index for the export) and
//! `payload.json` (`HOIST_PAYLOAD_FILE`), the latter two outside the
//! checkout so the command's files are exactly the commit's.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context;
use tokio::process::Command;

use crate::domain::Sha;

pub(super) struct WorkDir {
    root: PathBuf,
}

impl WorkDir {
    /// Makes a new private directory under the system's temp directory.
    pub(super) async fn create() -> anyhow::Result<Self> {
        let root = std::env::temp_dir().join(format!("hoist-run-{}", uuid::Uuid::new_v4()));
        let mut builder = tokio::fs::DirBuilder::new();
        // The checkout may hold secrets of the app: keep it to hoist's user.
        builder.mode(0o700);
        builder
            .create(&root)
            .await
            .with_context(|| format!("cannot create {}", root.display()))?;
        let dir = Self { root };
        tokio::fs::create_dir(dir.checkout())
            .await
            .with_context(|| format!("cannot create {}", dir.checkout().display()))?;
        Ok(dir)
    }

    /// Where the commit's files are and the command runs.
    pub(super) fn checkout(&self) -> PathBuf {
        self.root.join("checkout")
    }

    /// Writes `sha`'s files from the repository at `source` into
    /// [`Self::checkout`], through a private index so that the source's own
    /// index, HEAD and work tree stay as they are.
    pub(super) async fn export(&self, source: &Path, sha: &Sha) -> anyhow::Result<()> {
        let output = Command::new("git")
            .arg("-C")
            .arg(source)
            // Exporting files must not run the repository's hooks.
            .args(["-c", "core.hooksPath=/dev/null"])
            .arg(work_tree_option(&self.checkout()))
            // `sha` is 40 hex digits (a `Sha`), so it cannot be an option.
            .args(["checkout", "--force", sha.as_str(), "--", "."])
            .env("GIT_INDEX_FILE", self.root.join("index"))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .context("cannot run git")?;
        anyhow::ensure!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(())
    }

    /// Writes the payload where `HOIST_PAYLOAD_FILE` points, and returns
    /// that path.
    pub(super) async fn write_payload(&self, payload: &str) -> anyhow::Result<PathBuf> {
        let path = self.root.join("payload.json");
        tokio::fs::write(&path, payload)
            .await
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    /// Deletes the directory. Dropping does the same, blocking; this is the
    /// polite way on the async path.
    pub(super) async fn remove(mut self) {
        // Taken, so that Drop finds nothing left to do.
        let root = std::mem::take(&mut self.root);
        if let Err(error) = tokio::fs::remove_dir_all(&root).await {
            tracing::warn!(%error, dir = %root.display(), "cannot remove a run directory");
        }
    }
}

/// `--work-tree=<dir>`, kept as an OS string so an unusual temp path
/// reaches git byte for byte.
fn work_tree_option(dir: &Path) -> OsString {
    let mut option = OsString::from("--work-tree=");
    option.push(dir);
    option
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        // Only does anything when a run was cancelled midway.
        if !self.root.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}
