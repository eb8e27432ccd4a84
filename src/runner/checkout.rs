//! Where a run's files come from: the repository on disk (the local
//! forge), or GitHub, fetched into a git cache per app.
//!
//! The fetch authenticates with an `Authorization` header handed to git
//! through `GIT_CONFIG_*` variables: the token is in no URL, no argument
//! (`ps` shows those to everyone) and no config file, and git prints
//! neither in its errors.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context;
use base64::Engine as _;
use secrecy::ExposeSecret;
use tokio::process::Command;

use crate::domain::Sha;
use crate::forge::GitRemote;

/// An app's files: on disk, or fetched from the forge.
#[derive(Debug, Clone)]
pub enum Source {
    /// A git repository on this machine (the local forge's).
    Local(PathBuf),
    /// The forge's repository, fetched over git into the app's cache.
    Remote,
}

/// Makes sure the commit `sha` is in the bare repository `cache`,
/// fetching it from `remote` if it is not; returns the cache, which
/// [`super::workdir::WorkDir::export`] reads the files from.
pub(super) async fn fetch(cache: &Path, remote: &GitRemote, sha: &Sha) -> anyhow::Result<()> {
    if !cache.join("HEAD").exists() {
        tokio::fs::create_dir_all(cache)
            .await
            .with_context(|| format!("cannot create the git cache {}", cache.display()))?;
        git(cache, &["init", "--quiet", "--bare"], None).await?;
    }
    let object = format!("{}^{{commit}}", sha.as_str());
    if git(cache, &["cat-file", "-e", &object], None).await.is_ok() {
        return Ok(());
    }
    // One commit, not the history: a deploy needs the files. GitHub
    // serves any reachable commit by id.
    git(
        cache,
        &[
            "fetch",
            "--quiet",
            "--no-tags",
            "--depth",
            "1",
            &remote.url,
            sha.as_str(),
        ],
        Some(remote),
    )
    .await
    .with_context(|| format!("cannot fetch {} from {}", sha.short(), remote.url))
}

/// Runs git on `dir`; `remote` adds its credentials.
async fn git(dir: &Path, args: &[&str], remote: Option<&GitRemote>) -> anyhow::Result<()> {
    let mut command = Command::new("git");
    command
        .arg("-C")
        .arg(dir)
        .args(["-c", "core.hooksPath=/dev/null"])
        .args(args)
        // Never wait for a password on a terminal.
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(remote) = remote {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("x-access-token:{}", remote.token.expose_secret()));
        command
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env(
                "GIT_CONFIG_VALUE_0",
                format!("Authorization: Basic {basic}"),
            );
    }
    let output = command.output().await.context("cannot run git")?;
    anyhow::ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}
