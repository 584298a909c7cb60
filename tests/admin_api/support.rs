//! What every management API test shares: the application (the API nested behind a test
//! auth layer), each answer checked against the committed OpenAPI document, and the stores.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use fastapihooks::admin::AdminApi;
use fastapihooks::prelude::*;
use fastapihooks::{Backend, Emitter, SqlStore};
use fastapihooks_testkit::{SECRET, TempSqlite};
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// The committed document.
pub(crate) const OPENAPI_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fastapihooks-axum/openapi.json"
);

/// The header the test's own "auth layer" reads the owner from.
pub(crate) const TENANT: &str = "x-test-tenant";

#[derive(Clone)]
pub(crate) struct Tenant(String);

/// The application: the API nested under `/admin`, behind an auth layer of the test's own that
/// puts the request's tenant into an extension — or, without tenancy, an operator's API.
pub(crate) struct Api {
    pub(crate) app: Router,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) document: Value,
}

impl Api {
    pub(crate) fn new(store: Arc<dyn Store>, backend: Arc<dyn Backend>, tenancy: bool) -> Self {
        let mut admin = AdminApi::new(store.clone(), backend);
        if tenancy {
            admin = admin.owner_from(|parts| parts.extensions.get::<Tenant>().map(|t| t.0.clone()));
        }
        let app = Router::new()
            .nest("/admin", admin.router())
            .layer(axum::middleware::from_fn(
                |mut request: axum::extract::Request, next: axum::middleware::Next| async move {
                    let tenant = request
                        .headers()
                        .get(TENANT)
                        .and_then(|v| v.to_str().ok())
                        .map(|t| Tenant(t.to_owned()));
                    if let Some(tenant) = tenant {
                        request.extensions_mut().insert(tenant);
                    }
                    next.run(request).await
                },
            ));
        let document = serde_json::from_str(&std::fs::read_to_string(OPENAPI_FILE).unwrap())
            .expect("the committed document is JSON");
        Self {
            app,
            store,
            document,
        }
    }

    /// `method /admin{path}` as `tenant` (if any) with a JSON `body`: the status and the JSON
    /// answer, checked against the document.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        tenant: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("/admin{path}"));
        if let Some(tenant) = tenant {
            request = request.header(TENANT, tenant);
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
            .await
            .unwrap();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
        };
        self.check_against_document(&method, path, status, content_type.as_deref(), &json);
        (status, json)
    }

    pub(crate) async fn get(&self, path: &str, tenant: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, tenant, None).await
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        tenant: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        self.call(Method::POST, path, tenant, Some(body)).await
    }

    /// Creates a subscription to `url` for `owner`: its id and secret.
    pub(crate) async fn subscribe(&self, url: &str, owner: Option<&str>) -> (String, String) {
        let (status, body) = self
            .post(
                "/subscriptions",
                owner,
                json!({"filter": "order.*", "url": url}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["subscription"]["id"].as_str().unwrap().to_owned(),
            body["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// The answer must be one the document lists for this operation, with its content type,
    /// and its body must validate against the schema it gives.
    pub(crate) fn check_against_document(
        &self,
        method: &Method,
        path: &str,
        status: StatusCode,
        content_type: Option<&str>,
        body: &Value,
    ) {
        let path = path.split('?').next().unwrap();
        let template = self.document["paths"]
            .as_object()
            .unwrap()
            .keys()
            .find(|template| matches_template(template, path))
            .unwrap_or_else(|| panic!("{path} is not in the OpenAPI document"))
            .clone();
        let operation = &self.document["paths"][&template][method.as_str().to_lowercase()];
        assert!(
            operation.is_object(),
            "{method} {template} is not documented"
        );
        let response = &operation["responses"][status.as_str()];
        assert!(
            response.is_object(),
            "{method} {template} answered {status}, which the document does not list: {body}"
        );
        let Some(content) = response["content"].as_object() else {
            assert!(
                body.is_null(),
                "{method} {template} {status}: a body not documented"
            );
            return;
        };
        let content_type = content_type.expect("a content type");
        let (media, schema) = content.iter().next().unwrap();
        assert_eq!(content_type, media, "{method} {template} {status}");
        let pointer = format!(
            "#/paths/{}/{}/responses/{}/content/{}/schema",
            escape(&template),
            method.as_str().to_lowercase(),
            status.as_str(),
            escape(media)
        );
        let _ = schema;
        let mut root = self.document.clone();
        root["$ref"] = Value::String(pointer);
        let validator = jsonschema::validator_for(&root).expect("a valid schema");
        let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{method} {template} {status}: {errors:?} in {body:#}"
        );
    }
}

/// A JSON pointer segment as a URI fragment (`/` → `~1`, `~` → `~0`, braces escaped).
pub(crate) fn escape(segment: &str) -> String {
    segment
        .replace('~', "~0")
        .replace('/', "~1")
        .replace('{', "%7B")
        .replace('}', "%7D")
}

/// Whether `/subscriptions/sub_1/enable` is an instance of `/subscriptions/{id}/enable`.
pub(crate) fn matches_template(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}')))
}

/// A store of one kind for one test, with what keeps it alive.
pub(crate) struct TestStore {
    pub(crate) store: SqlStore,
    _guard: Box<dyn std::any::Any + Send>,
}

pub(crate) async fn sqlite(_test: &str) -> Option<TestStore> {
    let (guard, store) = TempSqlite::store().await;
    Some(TestStore {
        store,
        _guard: Box::new(guard),
    })
}

#[cfg(feature = "postgres")]
pub(crate) async fn postgres(test: &str) -> Option<TestStore> {
    let schema = fastapihooks_testkit::TempSchema::create(test).await?;
    let store = fastapihooks::SqlStoreOptions::new(schema.url())
        .postgres_schema(schema.name())
        .connect()
        .await
        .unwrap();
    Some(TestStore {
        store,
        _guard: Box::new(schema),
    })
}

/// The API over `store` with the outbox in its database as the backend (replays are queued,
/// nothing is sent).
pub(crate) fn queued(store: &SqlStore, tenancy: bool) -> Api {
    let store_arc: Arc<dyn Store> = Arc::new(store.clone());
    Api::new(store_arc, fastapihooks_testkit::outbox(store), tenancy)
}

/// The API over `store` delivering in-process with no retries: a failed attempt is final.
pub(crate) fn delivering(store: &SqlStore) -> Api {
    let store_arc: Arc<dyn Store> = Arc::new(store.clone());
    let backend = Emitter::builder()
        .shared_store(store_arc.clone())
        .secret(Secret::new(SECRET).unwrap())
        .http(HttpConfig::default().allow_loopback())
        .retry(RetryPolicy::none())
        .build_backend()
        .unwrap();
    Api::new(store_arc, Arc::new(backend), false)
}
