//! The OpenAPI document: current, served, and its examples valid.

use super::support::*;

use axum::body::Body;
use fastapihooks_testkit::TempSqlite;
use http::{Request, StatusCode};
use serde_json::Value;
use std::future::Future;
use tower::ServiceExt as _;

/// Runs a future to completion on a fresh runtime (for the tests that need no store).
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Runtime::new().unwrap().block_on(future)
}

#[test]
pub(crate) fn the_committed_openapi_document_is_the_one_the_code_generates() {
    let generated = fastapihooks::admin::openapi().to_pretty_json().unwrap() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(OPENAPI_FILE, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(OPENAPI_FILE).unwrap_or_default();
    assert!(
        committed == generated,
        "fastapihooks-axum/openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test --all-features --test admin_api the_committed_openapi` and commit it"
    );
    let document: Value = serde_json::from_str(&generated).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
}

#[test]
pub(crate) fn the_document_is_served_at_openapi_json() {
    block_on(async {
        let (_guard, store) = TempSqlite::store().await;
        let api = queued(&store, false);
        let response = api
            .app
            .clone()
            .oneshot(
                Request::get("/admin/openapi.json")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 22)
            .await
            .unwrap();
        let served: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(served, api.document);
    });
}

#[test]
pub(crate) fn every_documented_example_is_valid_against_its_schema() {
    let document: Value =
        serde_json::from_str(&std::fs::read_to_string(OPENAPI_FILE).unwrap()).unwrap();
    let schemas = document["components"]["schemas"].as_object().unwrap();
    let mut checked = 0;
    for (name, schema) in schemas {
        let Some(example) = schema
            .get("example")
            .or_else(|| schema.get("examples").and_then(|e| e.get(0)))
        else {
            continue;
        };
        let mut root = document.clone();
        root["$ref"] = Value::String(format!("#/components/schemas/{}", escape(name)));
        let validator = jsonschema::validator_for(&root).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(example)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{name}'s example: {errors:?}");
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} examples");
}
