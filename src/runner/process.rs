//! Runs one deploy command: no shell, its own process group, output
//! captured line by line, and a deadline after which the whole group dies.
//!
//! The process group is the point: Heaven killed only the direct child on
//! timeout, so a script's `sleep` or `rsync` lived on. Here the child starts
//! a new group (`process_group(0)`) and the timeout kills the group.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;

use super::capture::{LogSink, read_lines};
use crate::store::LogStream;

/// After the process ends, how long its output may take to drain at least.
/// A background process that inherited the pipes can keep them open for
/// ever; past this grace hoist stops reading.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// What to run.
pub(super) struct Spec<'a> {
    /// `argv`; the first word is the program. Never empty.
    pub argv: &'a [String],
    pub cwd: &'a Path,
    /// Set after hoist's own `HOIST_*` variables are removed from the
    /// inherited environment (they may carry hoist's secrets).
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    /// Cancelled when someone stops the run: the group is killed.
    pub stop: &'a CancellationToken,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    Exited(i32),
    Signalled(i32),
    TimedOut,
    /// Stopped on request (`deploy:cancel`, the Cancel button).
    Stopped,
    /// It could not be started or watched; the text says why.
    Broken(String),
}

/// Runs `spec`, sending its output to `log`.
pub(super) async fn execute(spec: &Spec<'_>, log: &LogSink) -> Outcome {
    let Some((program, args)) = spec.argv.split_first() else {
        return Outcome::Broken("the command is empty".to_owned());
    };
    let deadline = Instant::now() + spec.timeout;
    let mut command = Command::new(program_path(program, spec.cwd));
    command
        .args(args)
        .current_dir(spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("HOIST_") {
            command.env_remove(key);
        }
    }
    command.envs(spec.env.iter().map(|(k, v)| (k, v)));

    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            return Outcome::Broken(format!("cannot run `{program}`: {}", io_reason(&error)));
        }
    };
    log.note(format!("started `{}`", spec.argv.join(" "))).await;
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let mut readers: Vec<JoinHandle<()>> = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        readers.push(tokio::spawn(read_lines(
            stdout,
            LogStream::Stdout,
            log.sender(),
        )));
    }
    if let Some(stderr) = child.stderr.take() {
        readers.push(tokio::spawn(read_lines(
            stderr,
            LogStream::Stderr,
            log.sender(),
        )));
    }

    let outcome = tokio::select! {
        waited = timeout_at(deadline, child.wait()) => match waited {
            Ok(Ok(status)) => match (status.code(), status.signal()) {
                (Some(code), _) => Outcome::Exited(code),
                (None, Some(signal)) => Outcome::Signalled(signal),
                (None, None) => Outcome::Broken(format!("`{program}` ended in an unknown way")),
            },
            Ok(Err(error)) => {
                kill_group(group);
                Outcome::Broken(format!("cannot watch `{program}`: {}", io_reason(&error)))
            }
            Err(_) => {
                kill_group(group);
                // Reap the child; the kill makes this prompt.
                let _ = child.wait().await;
                Outcome::TimedOut
            }
        },
        () = spec.stop.cancelled() => {
            kill_group(group);
            let _ = child.wait().await;
            Outcome::Stopped
        }
    };
    // Whatever the end, nothing the command started outlives it: a
    // background `sleep &` that kept the group alive goes too.
    kill_group(group);

    let drain_until = Instant::now() + DRAIN_GRACE;
    for mut reader in readers {
        if timeout_at(drain_until, &mut reader).await.is_err() {
            reader.abort();
            log.note("stopped reading output still held open by a background process")
                .await;
        }
    }
    outcome
}

/// A relative program path with a slash (`./deploy.sh`) means a file in
/// the checkout; where std resolves it relative to is platform specific,
/// so make it absolute. A bare name (`make`) is looked up in `PATH`.
fn program_path(program: &str, cwd: &Path) -> OsString {
    let path = Path::new(program);
    if path.is_relative() && program.contains('/') {
        cwd.join(path).into_os_string()
    } else {
        PathBuf::from(program).into_os_string()
    }
}

/// Kills every process in the group the command leads, grandchildren too.
fn kill_group(group: Option<Pid>) {
    if let Some(group) = group
        && let Err(error) = killpg(group, Signal::SIGKILL)
    {
        // ESRCH: everything is already gone, which is the goal.
        if error != nix::errno::Errno::ESRCH {
            tracing::warn!(%error, "cannot kill a deploy command's process group");
        }
    }
}

/// An I/O error as a person reads it: "No such file or directory", without
/// the "(os error 2)" suffix.
fn io_reason(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(cut) => text.get(..cut).unwrap_or(&text).to_owned(),
        None => text,
    }
}
