//! Real git repositories in temp dirs, for the local forge and runner tests.
//! Git runs with a fixed identity and no global or system config, so the
//! tests do not depend on the machine's git setup.

#![allow(
    dead_code,
    reason = "shared by several test crates; each uses a part of it"
)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use hoist::domain::Sha;

pub struct GitRepo {
    dir: tempfile::TempDir,
}

impl GitRepo {
    /// An empty repository whose default branch is `main`.
    pub fn new() -> Self {
        let repo = Self {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        repo.git(&["init", "--quiet", "--initial-branch=main"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs git in the repository and returns its trimmed stdout.
    pub fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .arg("-C")
            .arg(self.path())
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .output()
            .expect("git runs");
        assert!(
            output.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .expect("utf-8")
            .trim()
            .to_owned()
    }

    pub fn write(&self, path: &str, text: &str) -> PathBuf {
        let full = self.path().join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&full, text).expect("write");
        full
    }

    /// Writes an executable script.
    pub fn write_script(&self, path: &str, text: &str) {
        let full = self.write(path, text);
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    /// Commits everything and returns the new commit.
    pub fn commit(&self, message: &str) -> Sha {
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message]);
        self.head()
    }

    pub fn head(&self) -> Sha {
        Sha::new(&self.git(&["rev-parse", "HEAD"])).expect("a sha")
    }
}
