//! `/deliveries`: each event's way to each subscription, and its attempts.

use crate::admin::extract::Params;
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use fastapihooks_core::{DeliveryId, DeliveryQuery, EventId, SubscriptionId};
use serde::Deserialize;
use utoipa::IntoParams;

use super::visible_delivery;
use crate::Problem;
use crate::admin::AdminState;
use crate::admin::page::{self, Page};
use crate::admin::problems::invalid;
use crate::admin::scope::Scope;
use crate::admin::views::{self, AttemptView, DeliveryView};

/// The filters of `GET /deliveries` and `POST /replay`: the CLI's.
#[derive(Debug, Default, Deserialize, IntoParams, utoipa::ToSchema)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeliveryFilter {
    /// `pending`, `delivered`, `failed` or `dead`.
    pub(crate) status: Option<String>,
    /// Only deliveries to this subscription (`sub_…`).
    pub(crate) subscription: Option<String>,
    /// Only deliveries of events whose name passes this filter (`order.*`).
    pub(crate) event: Option<String>,
    /// Only the deliveries of this event (`evt_…`).
    pub(crate) event_id: Option<String>,
    /// Only deliveries made at or after this time (RFC 3339).
    pub(crate) since: Option<DateTime<Utc>>,
    /// Only deliveries made before this time (RFC 3339).
    pub(crate) until: Option<DateTime<Utc>>,
    /// Only this owner's (an operator's API; an owner-scoped one sees its own).
    pub(crate) owner: Option<String>,
}

impl DeliveryFilter {
    /// The store query of these filters, in `scope`.
    pub(crate) fn query(self, scope: &Scope) -> Result<DeliveryQuery, Problem> {
        let mut query = DeliveryQuery::default();
        if let Some(status) = &self.status {
            query.status = Some(views::status(status)?);
        }
        if let Some(sub) = self.subscription {
            query.subscription_id = Some(sub.parse::<SubscriptionId>().map_err(|_| {
                invalid(format!("`subscription` is `{sub}`: not a subscription id"))
            })?);
        }
        if let Some(event) = &self.event {
            query = query.event(event)?;
        }
        if let Some(id) = self.event_id {
            query.event_id = Some(
                id.parse::<EventId>()
                    .map_err(|_| invalid(format!("`event_id` is `{id}`: not an event id")))?,
            );
        }
        query.since = self.since;
        query.until = self.until;
        query.owner = scope.owner_filter(self.owner);
        Ok(query)
    }
}

/// The page of `GET /deliveries`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeliveryPage {
    /// The `next` of the previous page.
    before: Option<String>,
    /// Page size, 1 to 500 (default 50).
    limit: Option<usize>,
}

/// Lists deliveries, newest first.
#[utoipa::path(get, path = "/deliveries", tag = "deliveries", params(DeliveryFilter, DeliveryPage),
    responses((status = 200, body = Page<DeliveryView>), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn list(
    State(state): State<AdminState>,
    scope: Scope,
    Params(filter): Params<DeliveryFilter>,
    Params(p): Params<DeliveryPage>,
) -> Result<Json<Page<DeliveryView>>, Problem> {
    let limit = page::limit(p.limit)?;
    let mut query = filter.query(&scope)?.limit(limit + 1);
    if let Some(before) = p.before {
        query.before = Some(
            before
                .parse::<DeliveryId>()
                .map_err(|_| invalid(format!("`before` is `{before}`: not a delivery id")))?,
        );
    }
    let found = state.store.list_deliveries(&query).await?;
    Ok(Json(Page::of(found, limit, DeliveryView::from, |d| {
        d.id.to_string()
    })))
}

/// Shows a delivery.
#[utoipa::path(get, path = "/deliveries/{id}", tag = "deliveries", params(("id" = String, Path, description = "`dlv_…`")),
    responses((status = 200, body = DeliveryView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn show(
    State(state): State<AdminState>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<Json<DeliveryView>, Problem> {
    Ok(Json(visible_delivery(&state, &scope, &id).await?.into()))
}

/// A delivery's attempts, first to last.
#[utoipa::path(get, path = "/deliveries/{id}/attempts", tag = "deliveries", params(("id" = String, Path, description = "`dlv_…`")),
    responses((status = 200, body = Vec<AttemptView>), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn attempts(
    State(state): State<AdminState>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<Json<Vec<AttemptView>>, Problem> {
    let delivery = visible_delivery(&state, &scope, &id).await?;
    let attempts = state.store.list_attempts(&delivery.id).await?;
    Ok(Json(attempts.into_iter().map(AttemptView::from).collect()))
}
