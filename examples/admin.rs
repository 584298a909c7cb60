//! The management API and console behind the application's own authentication, one tenant per
//! API key: each customer manages their own endpoints and sees their own deliveries only.
//!
//! ```sh
//! cargo run --example admin --features admin
//! curl -s -H 'authorization: Bearer acme-key' 127.0.0.1:3000/webhooks/subscriptions \
//!      -H 'content-type: application/json' -d '{"filter":"order.*","url":"https://example.com/hooks"}'
//! open http://127.0.0.1:3000/webhooks/console/   # the console (the same key, asked for once)
//! ```

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fastapihooks::admin::AdminApi;
use fastapihooks::prelude::*;
use serde_json::{Value, json};

/// The tenant a request acts for: what the application's auth decided.
#[derive(Clone, Debug)]
pub struct Tenant(pub String);

/// The application's auth layer (here: a fixed table of API keys). Everything under it sees
/// a [`Tenant`] in the request's extensions, or never runs.
async fn authenticate(mut request: Request, next: Next) -> Response {
    let key = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let tenant = match key {
        Some("acme-key") => "acme",
        Some("globex-key") => "globex",
        _ => return StatusCode::UNAUTHORIZED.into_response(),
    };
    request.extensions_mut().insert(Tenant(tenant.to_owned()));
    next.run(request).await
}

/// The application: the management API and console under `/webhooks`, behind `authenticate`,
/// scoped to the tenant it found.
pub fn app(hooks: &Hooks) -> Router {
    let admin = AdminApi::for_hooks(hooks)
        .owner_from(|req| req.extensions.get::<Tenant>().map(|t| t.0.clone()))
        .router();
    Router::new()
        .nest("/webhooks", admin)
        .layer(axum::middleware::from_fn(authenticate))
}

/// What the demo saw: acme's created subscription id, and what each tenant lists.
#[derive(Debug)]
pub struct Seen {
    pub created: String,
    pub acme_lists: Vec<String>,
    pub globex_lists: Vec<String>,
    pub globex_reads_acmes: StatusCode,
}

/// acme creates a subscription through the API; each tenant lists theirs; globex tries to read
/// acme's.
pub async fn demo(hooks: &Hooks) -> anyhow::Result<Seen> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/webhooks", listener.local_addr()?);
    let router = app(hooks);
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{base}/subscriptions"))
        .bearer_auth("acme-key")
        .json(&json!({"filter": "order.*", "url": "https://example.com/hooks"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = created["subscription"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let list = |key: &'static str| {
        let client = client.clone();
        let url = format!("{base}/subscriptions");
        async move {
            let page: Value = client
                .get(url)
                .bearer_auth(key)
                .send()
                .await?
                .json()
                .await?;
            let ids = page["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect::<Vec<_>>();
            anyhow::Ok(ids)
        }
    };
    let globex_reads_acmes = client
        .get(format!("{base}/subscriptions/{id}"))
        .bearer_auth("globex-key")
        .send()
        .await?
        .status();
    Ok(Seen {
        created: id,
        acme_lists: list("acme-key").await?,
        globex_lists: list("globex-key").await?,
        globex_reads_acmes,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let hooks = Hooks::builder()
        .store(fastapihooks::SqlStore::connect("sqlite://admin-example.db?mode=rwc").await?)
        .secret(Secret::new("change-me")?)
        .build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("console: http://127.0.0.1:3000/webhooks/console/ (API key acme-key or globex-key)");
    axum::serve(listener, app(&hooks)).await?;
    Ok(())
}
