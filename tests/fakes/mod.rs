//! Fakes of the services hoist talks to, served over real HTTP on
//! 127.0.0.1 so the production clients run unchanged against them.

#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod github;
pub mod slack;
