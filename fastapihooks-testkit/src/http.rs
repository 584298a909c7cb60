//! Serving an app under test on 127.0.0.1 and calling it.

use std::net::SocketAddr;

use axum::Router;

/// Serves `app` on 127.0.0.1:0 (in a task of the current runtime) and returns its address.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("a local address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A plain HTTP client for calling the app under test.
pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// POSTs an empty body to `http://{addr}{path}`.
pub async fn post(addr: SocketAddr, path: &str) -> reqwest::Response {
    client()
        .post(format!("http://{addr}{path}"))
        .send()
        .await
        .expect("the app answers")
}
