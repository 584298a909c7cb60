//! The filters of [`EventQuery`] and [`DeliveryQuery`] as SQL conditions, exact on every
//! database: what [`EventQuery::matches`] and [`DeliveryQuery::matches`] accept.
//!
//! Deliveries are filtered by their event's name and owner through a subquery on
//! `fastapihooks_events` (`event_id IN (SELECT id ...)`), indexed by the fifth migration.

use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ColumnTrait, Condition, DbBackend, EntityTrait, QueryFilter, QuerySelect, QueryTrait,
};

use super::entity::{delivery, event};
use super::rows::micros;
use crate::query::{DeliveryQuery, EventQuery};
use crate::subscription::EventFilter;

/// The events whose name passes `filter` and whose owner is `owner`.
fn event_filters(backend: DbBackend, name: Option<&EventFilter>, owner: Option<&str>) -> Condition {
    let mut cond = Condition::all();
    match name {
        Some(EventFilter::Exact(name)) => cond = cond.add(event::Column::Name.eq(name.as_str())),
        Some(EventFilter::Prefix(prefix)) => {
            let prefix = prefix.as_str();
            let len = i32::try_from(prefix.len()).unwrap_or(i32::MAX);
            // `LIKE 'order.%'` can use the name index; it may match more than the prefix (`_` is
            // a wildcard, SQLite folds case), so `SUBSTR` keeps exactly the names under it.
            cond = cond
                .add(event::Column::Name.like(format!("{prefix}%")))
                .add(
                    Expr::expr(
                        Func::cust("SUBSTR")
                            .arg(Expr::col((event::Entity, event::Column::Name)))
                            .arg(1i32)
                            .arg(len),
                    )
                    .eq(prefix),
                );
        }
        Some(EventFilter::All) | None => {}
    }
    if let Some(owner) = owner {
        cond = cond.add(event::Column::Owner.eq(owner));
        if backend == DbBackend::MySql {
            // MySQL/MariaDB compare with trailing spaces ignored (PAD SPACE): `t1 ` = `t1`.
            let chars = i64::try_from(owner.chars().count()).unwrap_or(i64::MAX);
            cond = cond.add(
                Expr::expr(
                    Func::cust("CHAR_LENGTH").arg(Expr::col((event::Entity, event::Column::Owner))),
                )
                .eq(chars),
            );
        }
    }
    cond
}

/// The condition of an [`EventQuery`], its cursor included.
pub(super) fn events(backend: DbBackend, query: &EventQuery) -> Condition {
    let mut cond = event_filters(backend, query.name.as_ref(), query.owner.as_deref());
    if let Some(since) = query.since {
        cond = cond.add(event::Column::CreatedAtUs.gte(micros(since)));
    }
    if let Some(until) = query.until {
        cond = cond.add(event::Column::CreatedAtUs.lt(micros(until)));
    }
    if let Some(id) = &query.id {
        cond = cond.add(event::Column::Id.eq(id.as_str()));
    }
    if let Some(before) = &query.before {
        cond = cond.add(event::Column::Id.lt(before.as_str()));
    }
    cond
}

/// The condition of a [`DeliveryQuery`], its cursor included.
pub(super) fn deliveries(backend: DbBackend, query: &DeliveryQuery) -> Condition {
    let mut cond = Condition::all();
    if let Some(status) = query.status {
        cond = cond.add(delivery::Column::Status.eq(status.as_str()));
    }
    if let Some(sub) = &query.subscription_id {
        cond = cond.add(delivery::Column::SubscriptionId.eq(sub.as_str()));
    }
    if let Some(id) = &query.event_id {
        cond = cond.add(delivery::Column::EventId.eq(id.as_str()));
    }
    let by_event = matches!(
        query.event,
        Some(EventFilter::Exact(_) | EventFilter::Prefix(_))
    ) || query.owner.is_some();
    if by_event {
        let ids = event::Entity::find()
            .select_only()
            .column(event::Column::Id)
            .filter(event_filters(
                backend,
                query.event.as_ref(),
                query.owner.as_deref(),
            ))
            .into_query();
        cond = cond.add(delivery::Column::EventId.in_subquery(ids));
    }
    if let Some(since) = query.since {
        cond = cond.add(delivery::Column::CreatedAtUs.gte(micros(since)));
    }
    if let Some(until) = query.until {
        cond = cond.add(delivery::Column::CreatedAtUs.lt(micros(until)));
    }
    if let Some(changed) = query.changed_since {
        cond = cond.add(delivery::Column::UpdatedAtUs.gte(micros(changed)));
    }
    if let Some(before) = &query.before {
        cond = cond.add(delivery::Column::Id.lt(before.as_str()));
    }
    cond
}
