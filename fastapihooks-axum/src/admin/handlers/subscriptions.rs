//! `/subscriptions`: create, list, show, change, delete, enable, disable, rotate the secret,
//! send a test event.

use std::time::Duration;

use crate::admin::extract::{Body, Params};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use fastapihooks_core::{Delivery, Event, Secret, Subscription, SubscriptionId, SubscriptionQuery};
use serde::Deserialize;
use utoipa::IntoParams;

use super::visible_subscription;
use crate::Problem;
use crate::admin::AdminState;
use crate::admin::page::{self, Page};
use crate::admin::problems::invalid;
use crate::admin::scope::Scope;
use crate::admin::views::{
    CreatedSubscription, NewSubscription, RotateSecret, SubscriptionPatch, SubscriptionView,
    TestDelivery,
};

/// The default grace period of a rotated-out secret: a day.
const DEFAULT_GRACE: Duration = Duration::from_secs(86_400);

/// The query of `GET /subscriptions`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListSubscriptions {
    /// The `next` of the previous page.
    after: Option<String>,
    /// Page size, 1 to 500 (default 50).
    limit: Option<usize>,
    /// Only this owner's (an operator's API; an owner-scoped one lists its own).
    owner: Option<String>,
}

/// Lists subscriptions, oldest first.
#[utoipa::path(get, path = "/subscriptions", tag = "subscriptions", params(ListSubscriptions),
    responses((status = 200, body = Page<SubscriptionView>), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn list(
    State(state): State<AdminState>,
    scope: Scope,
    Params(q): Params<ListSubscriptions>,
) -> Result<Json<Page<SubscriptionView>>, Problem> {
    let limit = page::limit(q.limit)?;
    let after = match q.after {
        Some(after) => Some(
            after
                .parse::<SubscriptionId>()
                .map_err(|_| invalid(format!("`after` is `{after}`: not a subscription id")))?,
        ),
        None => None,
    };
    let query = SubscriptionQuery {
        owner: scope.owner_filter(q.owner),
        after,
        limit: limit + 1,
    };
    let found = state.store.list_subscriptions(&query).await?;
    Ok(Json(Page::of(found, limit, SubscriptionView::from, |s| {
        s.id.to_string()
    })))
}

/// Creates a subscription; its secret (given, or generated) is in the answer, once.
#[utoipa::path(post, path = "/subscriptions", tag = "subscriptions", request_body = NewSubscription,
    responses((status = 201, body = CreatedSubscription), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn create(
    State(state): State<AdminState>,
    scope: Scope,
    Body(new): Body<NewSubscription>,
) -> Result<(StatusCode, Json<CreatedSubscription>), Problem> {
    let owner = scope.owner_of_new(new.owner)?;
    let secret = match new.secret {
        Some(secret) => Secret::new(secret)?,
        None => Secret::generate()?,
    };
    let mut subscription = Subscription::new(&new.filter, &new.url)?.with_secret(secret.clone());
    subscription.owner = owner;
    subscription.metadata = new.metadata.unwrap_or(serde_json::Value::Null);
    subscription.enabled = new.enabled.unwrap_or(true);
    state.store.add_subscription(subscription.clone()).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedSubscription {
            subscription: subscription.into(),
            secret: secret.expose().to_owned(),
        }),
    ))
}

/// Shows a subscription.
#[utoipa::path(get, path = "/subscriptions/{id}", tag = "subscriptions", params(("id" = String, Path, description = "`sub_…`")),
    responses((status = 200, body = SubscriptionView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn show(
    State(state): State<AdminState>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionView>, Problem> {
    let (_, subscription) = visible_subscription(&state, &scope, &id).await?;
    Ok(Json(subscription.into()))
}

/// Changes a subscription's filter, URL or metadata.
#[utoipa::path(patch, path = "/subscriptions/{id}", tag = "subscriptions", params(("id" = String, Path, description = "`sub_…`")),
    request_body = SubscriptionPatch,
    responses((status = 200, body = SubscriptionView), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn update(
    State(state): State<AdminState>,
    scope: Scope,
    Path(id): Path<String>,
    Body(patch): Body<SubscriptionPatch>,
) -> Result<Json<SubscriptionView>, Problem> {
    let (_, mut subscription) = visible_subscription(&state, &scope, &id).await?;
    let filter = patch
        .filter
        .unwrap_or_else(|| subscription.filter.to_string());
    let url = patch.url.unwrap_or_else(|| subscription.url.to_string());
    // Validated as a new subscription's would be.
    let checked = Subscription::new(&filter, &url)?;
    subscription.filter = checked.filter;
    subscription.url = checked.url;
    if let Some(metadata) = patch.metadata {
        subscription.metadata = metadata;
    }
    state
        .store
        .update_subscription(subscription.clone())
        .await?;
    Ok(Json(subscription.into()))
}

/// Deletes a subscription; its delivery history stays.
#[utoipa::path(delete, path = "/subscriptions/{id}", tag = "subscriptions", params(("id" = String, Path, description = "`sub_…`")),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn delete(
    State(state): State<AdminState>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let (id, _) = visible_subscription(&state, &scope, &id).await?;
    state.store.remove_subscription(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enables a subscription (clearing why the engine disabled it, and its failure streak).
#[utoipa::path(post, path = "/subscriptions/{id}/enable", tag = "subscriptions", params(("id" = String, Path, description = "`sub_…`")),
    responses((status = 200, body = SubscriptionView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn enable(
    state: State<AdminState>,
    scope: Scope,
    id: Path<String>,
) -> Result<Json<SubscriptionView>, Problem> {
    set_enabled(state, scope, id, true).await
}

/// Disables a subscription: it receives nothing until enabled.
#[utoipa::path(post, path = "/subscriptions/{id}/disable", tag = "subscriptions", params(("id" = String, Path, description = "`sub_…`")),
    responses((status = 200, body = SubscriptionView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn disable(
    state: State<AdminState>,
    scope: Scope,
    id: Path<String>,
) -> Result<Json<SubscriptionView>, Problem> {
    set_enabled(state, scope, id, false).await
}

async fn set_enabled(
    State(state): State<AdminState>,
    scope: Scope,
    Path(id): Path<String>,
    enabled: bool,
) -> Result<Json<SubscriptionView>, Problem> {
    let (id, _) = visible_subscription(&state, &scope, &id).await?;
    state.store.set_enabled(&id, enabled).await?;
    let (_, subscription) = visible_subscription(&state, &scope, id.as_str()).await?;
    Ok(Json(subscription.into()))
}

/// Replaces the signing secret; the old one keeps signing for the grace period. The new
/// secret is in the answer, once.
#[utoipa::path(post, path = "/subscriptions/{id}/rotate-secret", tag = "subscriptions", params(("id" = String, Path, description = "`sub_…`")),
    request_body(content = Option<RotateSecret>, description = "Optional; `{}` by default"),
    responses((status = 200, body = CreatedSubscription), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn rotate_secret(
    State(state): State<AdminState>,
    scope: Scope,
    Path(id): Path<String>,
    body: Option<Body<RotateSecret>>,
) -> Result<Json<CreatedSubscription>, Problem> {
    let rotate = body.map(|Body(r)| r).unwrap_or_default();
    let (_, mut subscription) = visible_subscription(&state, &scope, &id).await?;
    let secret = match rotate.secret {
        Some(secret) => Secret::new(secret)?,
        None => Secret::generate()?,
    };
    let grace = rotate
        .grace_seconds
        .map_or(DEFAULT_GRACE, Duration::from_secs);
    subscription.rotate_secret(secret.clone(), grace);
    state
        .store
        .update_subscription(subscription.clone())
        .await?;
    Ok(Json(CreatedSubscription {
        subscription: subscription.into(),
        secret: secret.expose().to_owned(),
    }))
}

/// Queues a `fastapihooks.test` event to this subscription alone (whatever its filter):
/// follow its delivery under `/deliveries/{id}`.
#[utoipa::path(post, path = "/subscriptions/{id}/test", tag = "subscriptions", params(("id" = String, Path, description = "`sub_…`")),
    responses((status = 202, body = TestDelivery), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn test(
    State(state): State<AdminState>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<TestDelivery>), Problem> {
    let (id, subscription) = visible_subscription(&state, &scope, &id).await?;
    let mut event = Event::new(
        "fastapihooks.test",
        &serde_json::json!({ "test": true, "subscription": id.to_string() }),
    )?;
    if let Some(owner) = subscription.owner {
        event = event.with_owner(owner);
    }
    let delivery = Delivery::new(event, id);
    state
        .store
        .record_deliveries(std::slice::from_ref(&delivery))
        .await?;
    state.backend.redeliver(&delivery).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(TestDelivery {
            event_id: delivery.event.id().to_string(),
            delivery_id: delivery.id.to_string(),
        }),
    ))
}
