//! The few git commands the local forge needs, run as the `git` binary.
//!
//! Never through a shell, and every ref a person typed goes after
//! `--end-of-options`, so a ref such as `--output=x` is a ref, not an option.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

use crate::domain::Sha;
use crate::forge::ForgeError;

/// The largest `deploy.yml` the local forge reads; GitHub's contents API
/// stops at 1 MiB too, and no honest deploy config comes near it.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// What one git command produced.
struct Output {
    success: bool,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs `git -C <repo> <args>`. Hooks are switched off: reading a repository
/// must never run code from it.
async fn git<I, S>(repo: &Path, args: I) -> Result<Output, ForgeError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "core.hooksPath=/dev/null"])
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| ForgeError::Unavailable {
            detail: format!("cannot run git: {e}"),
        })?;
    Ok(Output {
        success: output.status.success(),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    })
}

fn failed(repo: &Path, what: &str, output: &Output) -> ForgeError {
    ForgeError::Unavailable {
        detail: format!(
            "git could not {what} in {}: {}",
            repo.display(),
            output.stderr
        ),
    }
}

fn stdout_line(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The full name of the branch HEAD points at (`refs/heads/main`).
pub(super) async fn head_branch(repo: &Path) -> Result<String, ForgeError> {
    let output = git(repo, ["symbolic-ref", "--quiet", "HEAD"]).await?;
    if !output.success {
        return Err(failed(
            repo,
            "find the default branch (is HEAD detached?)",
            &output,
        ));
    }
    Ok(stdout_line(&output))
}

/// How many commits of branch `base` are not in `head`.
pub(super) async fn behind_by(repo: &Path, base: &str, head: &Sha) -> Result<u64, ForgeError> {
    // `head..refs/heads/base`: a `Sha` is hex and the branch is read as a
    // full ref name after --end-of-options, so neither can be an option.
    let range = format!("{}..refs/heads/{base}", head.as_str());
    let output = git(repo, ["rev-list", "--count", "--end-of-options", &range]).await?;
    if !output.success {
        return Err(failed(
            repo,
            &format!("compare {} with {base}", head.short()),
            &output,
        ));
    }
    stdout_line(&output)
        .parse()
        .map_err(|_| failed(repo, "count the commits behind", &output))
}

/// The object id `spec` names (`main^{commit}`, `main:path`), or `None`
/// when it names nothing.
async fn rev_parse(repo: &Path, spec: &str) -> Result<Option<String>, ForgeError> {
    let output = git(
        repo,
        ["rev-parse", "--verify", "--quiet", "--end-of-options", spec],
    )
    .await?;
    // `--verify --quiet` exits 1 with no message for "no such object".
    Ok(output.success.then(|| stdout_line(&output)))
}

/// The commit a branch, tag or sha names, or `None`.
pub(super) async fn resolve_commit(repo: &Path, git_ref: &str) -> Result<Option<Sha>, ForgeError> {
    // An empty ref would make `^{commit}` peel HEAD: not what anyone asked.
    if git_ref.is_empty() {
        return Ok(None);
    }
    match rev_parse(repo, &format!("{git_ref}^{{commit}}")).await? {
        None => Ok(None),
        Some(id) => Sha::new(&id)
            .map(Some)
            .ok_or_else(|| ForgeError::Unavailable {
                detail: format!("git answered `{id}` for a commit id"),
            }),
    }
}

/// The text of `path` at the tip of `branch` (a full ref name), or `None`
/// when the file does not exist there.
pub(super) async fn read_file(
    repo: &Path,
    branch: &str,
    path: &str,
) -> Result<Option<String>, ForgeError> {
    let Some(blob) = rev_parse(repo, &format!("{branch}:{path}")).await? else {
        return Ok(None);
    };
    let size = git(repo, ["cat-file", "-s", &blob]).await?;
    if !size.success {
        return Err(failed(repo, "read a file's size", &size));
    }
    let bytes: u64 = stdout_line(&size).parse().unwrap_or(u64::MAX);
    if bytes > MAX_CONFIG_BYTES {
        return Err(ForgeError::Rejected {
            message: format!("{path} is {bytes} bytes; the limit is {MAX_CONFIG_BYTES}"),
        });
    }
    let output = git(repo, ["cat-file", "blob", &blob]).await?;
    if !output.success {
        return Err(failed(repo, "read a file", &output));
    }
    String::from_utf8(output.stdout)
        .map(Some)
        .map_err(|_| ForgeError::Rejected {
            message: format!("{path} is not valid UTF-8"),
        })
}
