//! Fakes of the services hoist talks to, served over real HTTP on
//! 127.0.0.1 so the production clients run unchanged against them.

#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod discord;
pub mod discord_gateway;
pub mod github;
pub mod integration;
pub mod slack;

/// Serves `app` on a free port of 127.0.0.1 for the rest of the test.
pub async fn listen(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}
