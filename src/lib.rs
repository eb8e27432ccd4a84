//! hoist: a chat-ops deployment bot. See ARCHITECTURE.md for the tour.

pub mod actions;
pub mod app;
pub mod chat;
pub mod command;
pub mod config;
pub mod dashboard;
pub mod demo;
pub mod domain;
pub mod forge;
pub mod hooks;
pub mod http_client;
pub mod metrics;
pub mod policy;
pub mod relay;
pub mod runner;
pub mod server;
pub mod store;
pub mod suggest;
pub mod workflow;
