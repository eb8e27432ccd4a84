//! Deploy hooks: an authenticated HTTP trigger for CI, after Shipmight's
//! (`POST /api/v1/dh` with `X-Deploy-Hook-Token`). A hook deploys one app
//! to one environment, through the same workflow as a chat command (the
//! rules, the audit log, the announcement), as `hook NAME`.
//!
//! - `token.rs`: the token (`dh_<id>_<secret>`), its hash, the check.
//! - `request.rs`: a call's body and `Idempotency-Key`, checked.
//! - `limit.rs`: the count of failed calls per source address.
//! - `http.rs`: the route, and the answer for each outcome.
//! - `admin.rs`: `hoist hooks create | list | delete`.
//!
//! The deployment itself is `Hoist::deploy_by_hook` (`workflow/hook.rs`).

pub mod admin;
mod http;
pub mod limit;
pub mod request;
pub mod token;

pub use http::route;
