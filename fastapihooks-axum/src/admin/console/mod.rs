//! The web console: a page of plain HTML, CSS and JavaScript embedded in the binary (no
//! JavaScript build step), served under `console/` beside the API it calls. Subscriptions
//! (create, enable, disable, rotate, send a test event), deliveries with filters and status
//! colours, a delivery's attempts, replay of one or of a filtered set (after a confirmation
//! showing the count), and a chart of deliveries and failures over time. Usable by keyboard
//! (native links, buttons and dialogs), readable at phone width.
//!
//! The page runs no inline script and loads nothing from elsewhere; its Content Security
//! Policy says so.

use axum::Router;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use http::{HeaderValue, header};

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");

/// What the page may load: its own script, style and API only.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// The console's routes: `/console` (redirected to `/console/`), `/console/` and its assets.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        // Relative, so it works under whatever path the API is nested.
        .route(
            "/console",
            get(|| async { Redirect::permanent("console/") }),
        )
        .route(
            "/console/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/console/console.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/console/console.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
