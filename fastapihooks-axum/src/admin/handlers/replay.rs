//! Replay: one delivery, an event's deliveries, or every dead letter matching a filter — the
//! core's [`Replay`], scoped to the request's owner.

use crate::admin::extract::Body;
use axum::Json;
use axum::extract::{Path, State};
use fastapihooks_core::Replay;
use serde::Deserialize;

use super::deliveries::DeliveryFilter;
use super::{visible_delivery, visible_event};
use crate::Problem;
use crate::admin::AdminState;
use crate::admin::scope::Scope;
use crate::admin::views::{ReplayRequest, ReplayResult, ReplaySummaryView};

fn replay(state: &AdminState, resend_delivered: bool) -> Replay {
    Replay::new(state.store.clone(), state.backend.clone()).resend_delivered(resend_delivered)
}

/// Replays one delivery: a failed or dead one is sent again (same id, attempts appended).
#[utoipa::path(post, path = "/deliveries/{id}/replay", tag = "replay", params(("id" = String, Path, description = "`dlv_…`")),
    request_body(content = Option<ReplayRequest>, description = "Optional; `{}` by default"),
    responses((status = 200, body = ReplayResult), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn delivery(
    State(state): State<AdminState>,
    scope: Scope,
    Path(id): Path<String>,
    body: Option<Body<ReplayRequest>>,
) -> Result<Json<ReplayResult>, Problem> {
    let request = body.map(|Body(r)| r).unwrap_or_default();
    let delivery = visible_delivery(&state, &scope, &id).await?;
    let outcome = replay(&state, request.resend_delivered)
        .delivery(&delivery.id)
        .await?;
    Ok(Json(ReplayResult {
        outcome: outcome.as_str().to_owned(),
    }))
}

/// Replays the deliveries of one event.
#[utoipa::path(post, path = "/events/{id}/replay", tag = "replay", params(("id" = String, Path, description = "`evt_…`")),
    request_body(content = Option<ReplayRequest>, description = "Optional; `{}` by default"),
    responses((status = 200, body = ReplaySummaryView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn event(
    State(state): State<AdminState>,
    scope: Scope,
    Path(id): Path<String>,
    body: Option<Body<ReplayRequest>>,
) -> Result<Json<ReplaySummaryView>, Problem> {
    let request = body.map(|Body(r)| r).unwrap_or_default();
    let event = visible_event(&state, &scope, &id).await?;
    let summary = replay(&state, request.resend_delivered)
        .event(event.id(), None)
        .await?;
    Ok(Json(summary.into()))
}

/// The body of `POST /replay`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"filter": {"status": "dead", "event": "order.*"}, "dry_run": true}))]
pub(crate) struct BulkReplay {
    /// Which deliveries: the filters of `GET /deliveries`. Without a `status`, every failed and
    /// dead one (and delivered ones too with `resend_delivered`).
    #[serde(default)]
    filter: DeliveryFilter,
    /// Send delivered deliveries again too.
    #[serde(default)]
    resend_delivered: bool,
    /// Count what would be replayed, replay nothing (`would_replay`): what a confirmation shows.
    #[serde(default)]
    dry_run: bool,
}

/// Replays every delivery matching a filter (resumable: run it again after an interruption).
#[utoipa::path(post, path = "/replay", tag = "replay", request_body = BulkReplay,
    responses((status = 200, body = ReplaySummaryView), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn matching(
    State(state): State<AdminState>,
    scope: Scope,
    Body(bulk): Body<BulkReplay>,
) -> Result<Json<ReplaySummaryView>, Problem> {
    let query = bulk.filter.query(&scope)?;
    let replay = replay(&state, bulk.resend_delivered);
    if bulk.dry_run {
        let n = replay.count(&query).await?;
        return Ok(Json(ReplaySummaryView {
            would_replay: Some(n),
            ..ReplaySummaryView::default()
        }));
    }
    Ok(Json(replay.matching(&query, |_| {}).await?.into()))
}
