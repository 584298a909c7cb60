//! `/events`: what happened, newest first.

use crate::admin::extract::Params;
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use fastapihooks_core::{EventId, EventQuery};
use serde::Deserialize;
use utoipa::IntoParams;

use super::visible_event;
use crate::Problem;
use crate::admin::AdminState;
use crate::admin::page::{self, Page};
use crate::admin::problems::invalid;
use crate::admin::scope::Scope;
use crate::admin::views::EventView;

/// The query of `GET /events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListEvents {
    /// Only events whose name passes this filter (`order.created`, `order.*`).
    name: Option<String>,
    /// Only events made at or after this time (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// Only events made before this time (RFC 3339).
    until: Option<DateTime<Utc>>,
    /// Only this owner's (an operator's API; an owner-scoped one lists its own).
    owner: Option<String>,
    /// The `next` of the previous page.
    before: Option<String>,
    /// Page size, 1 to 500 (default 50).
    limit: Option<usize>,
}

/// Lists events, newest first (an event is kept with its deliveries).
#[utoipa::path(get, path = "/events", tag = "events", params(ListEvents),
    responses((status = 200, body = Page<EventView>), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn list(
    State(state): State<AdminState>,
    scope: Scope,
    Params(q): Params<ListEvents>,
) -> Result<Json<Page<EventView>>, Problem> {
    let limit = page::limit(q.limit)?;
    let mut query = EventQuery::default().limit(limit + 1);
    if let Some(name) = &q.name {
        query = query.name(name)?;
    }
    query.owner = scope.owner_filter(q.owner);
    query.since = q.since;
    query.until = q.until;
    if let Some(before) = q.before {
        query.before = Some(
            before
                .parse::<EventId>()
                .map_err(|_| invalid(format!("`before` is `{before}`: not an event id")))?,
        );
    }
    let found = state.store.list_events(&query).await?;
    Ok(Json(Page::of(
        found,
        limit,
        |e| EventView::from(&e),
        |e| e.id().to_string(),
    )))
}

/// Shows an event.
#[utoipa::path(get, path = "/events/{id}", tag = "events", params(("id" = String, Path, description = "`evt_…`")),
    responses((status = 200, body = EventView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn show(
    State(state): State<AdminState>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<Json<EventView>, Problem> {
    let event = visible_event(&state, &scope, &id).await?;
    Ok(Json(EventView::from(&event)))
}
