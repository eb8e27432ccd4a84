//! Rebuilds when a migration is added: `sqlx::migrate!` embeds the files of
//! `migrations/` but cannot ask cargo to watch the directory itself.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
