//! The management API's OpenAPI 3.1 document, generated from the handlers and the types they
//! take and answer (utoipa): the routes are registered through it, so the document cannot
//! miss one. Served at `/openapi.json`; committed as `fastapihooks-axum/openapi.json`, which a
//! test compares with [`openapi`].

use std::sync::OnceLock;

use axum::response::IntoResponse;
use http::{HeaderValue, header};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AdminState;
use super::handlers::{deliveries, events, replay, stats, subscriptions};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "fastapihooks management API",
        description = "Subscriptions, events, deliveries and replay. Errors are \
            `application/problem+json` with a stable `code`; lists page by cursor (`next`); \
            secrets are shown once, when created or rotated.",
    ),
    tags(
        (name = "subscriptions", description = "Who receives which events"),
        (name = "events", description = "What happened"),
        (name = "deliveries", description = "Each event's way to each subscription, and its attempts"),
        (name = "replay", description = "Send failed deliveries again"),
        (name = "stats", description = "Summaries of the history: deliveries by status, over time and by subscription; the event names seen"),
    ),
    components(schemas(crate::Problem))
)]
struct Document;

/// Every route of the API, with its part of the document.
pub(crate) fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::with_openapi(Document::openapi())
        .routes(routes!(subscriptions::list, subscriptions::create))
        .routes(routes!(
            subscriptions::show,
            subscriptions::update,
            subscriptions::delete
        ))
        .routes(routes!(subscriptions::enable))
        .routes(routes!(subscriptions::disable))
        .routes(routes!(subscriptions::rotate_secret))
        .routes(routes!(subscriptions::test))
        .routes(routes!(events::list))
        .routes(routes!(events::show))
        .routes(routes!(deliveries::list))
        .routes(routes!(deliveries::show))
        .routes(routes!(deliveries::attempts))
        .routes(routes!(replay::delivery))
        .routes(routes!(replay::event))
        .routes(routes!(replay::matching))
        .routes(routes!(stats::summary))
        .routes(routes!(stats::event_types))
        .route("/openapi.json", axum::routing::get(serve))
}

/// The management API's OpenAPI document.
///
/// ```
/// let document = fastapihooks_axum::admin::openapi();
/// assert!(document.paths.paths.contains_key("/subscriptions"));
/// ```
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut document = routes().split_for_parts().1;
    add_common_problems(&mut document);
    document
}

/// The problems any operation may answer, added to each: `401 owner_required` (a scope
/// without an owner), `503 unavailable` (the store or queue failed), and `400
/// invalid_request` where the operation takes a body or a query string.
fn add_common_problems(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

    let problem = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build(),
        )
    };
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            let takes_input = operation.request_body.is_some()
                || operation.parameters.iter().flatten().any(
                    |p| matches!(p, RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Query)),
                );
            let responses = &mut operation.responses.responses;
            if takes_input {
                responses.entry("400".into()).or_insert_with(|| {
                    problem("`invalid_request`: the body or query is malformed")
                });
            }
            responses
                .entry("401".into())
                .or_insert_with(|| problem("`owner_required`: the request carries no owner"));
            responses.entry("503".into()).or_insert_with(|| {
                problem("`unavailable`: the store or the queue could not be reached")
            });
        }
    }
}

/// The document as served and committed: pretty JSON, built once.
pub(crate) fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut json = openapi()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        json.push('\n');
        json
    })
}

async fn serve() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document_json(),
    )
}
