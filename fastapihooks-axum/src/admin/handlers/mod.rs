//! The management API's handlers, thin: parse, scope, call the store or the replay, answer a
//! view. One file per resource.

pub(crate) mod deliveries;
pub(crate) mod events;
pub(crate) mod replay;
pub(crate) mod stats;
pub(crate) mod subscriptions;

use super::AdminState;
use super::problems::not_found;
use super::scope::Scope;
use crate::Problem;
use fastapihooks_core::{Delivery, DeliveryId, Event, EventId, Subscription, SubscriptionId};

/// The subscription `id` if this scope sees it: a malformed id, an unknown one and another
/// owner's are all 404.
pub(crate) async fn visible_subscription(
    state: &AdminState,
    scope: &Scope,
    id: &str,
) -> Result<(SubscriptionId, Subscription), Problem> {
    let Ok(parsed) = id.parse::<SubscriptionId>() else {
        return Err(not_found("subscription", id));
    };
    match state.store.get_subscription(&parsed).await? {
        Some(s) if scope.sees(s.owner.as_deref()) => Ok((parsed, s)),
        _ => Err(not_found("subscription", id)),
    }
}

/// The delivery `id` if this scope sees it (its event's owner): 404 otherwise.
pub(crate) async fn visible_delivery(
    state: &AdminState,
    scope: &Scope,
    id: &str,
) -> Result<Delivery, Problem> {
    let Ok(parsed) = id.parse::<DeliveryId>() else {
        return Err(not_found("delivery", id));
    };
    match state.store.get_delivery(&parsed).await? {
        Some(d) if scope.sees(d.event.owner()) => Ok(d),
        _ => Err(not_found("delivery", id)),
    }
}

/// The event `id` if this scope sees it (its owner): 404 otherwise.
pub(crate) async fn visible_event(
    state: &AdminState,
    scope: &Scope,
    id: &str,
) -> Result<Event, Problem> {
    let Ok(parsed) = id.parse::<EventId>() else {
        return Err(not_found("event", id));
    };
    match state.store.get_event(&parsed).await? {
        Some(e) if scope.sees(e.owner()) => Ok(e),
        _ => Err(not_found("event", id)),
    }
}
