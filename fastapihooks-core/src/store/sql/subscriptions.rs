//! The subscription queries of [`SqlStore`].

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr};

use super::entity::subscription::{self, Column};
use super::rows::{subscription_from_row, subscription_row};
use super::{SqlStore, db, page_size};
use crate::error::{Error, Result};
use crate::event::EventName;
use crate::id::SubscriptionId;
use crate::store::SubscriptionQuery;
use crate::subscription::Subscription;

/// The stored filters that pass an event name: the name itself, each of its dotted prefixes as
/// `prefix.*`, and `*`. This is [`EventFilter::matches`](crate::EventFilter::matches) turned
/// into an index lookup: a prefix filter `p.` matches exactly the names that start with `p.`,
/// and a name starts with `p.` exactly when `p` is one of its leading segment runs.
pub(super) fn filters_passing(name: &EventName) -> Vec<String> {
    let name = name.as_str();
    let mut filters = Vec::with_capacity(2 + name.matches('.').count());
    filters.push(name.to_owned());
    filters.extend(
        name.match_indices('.')
            .map(|(i, _)| format!("{}*", &name[..=i])),
    );
    filters.push("*".to_owned());
    filters
}

impl SqlStore {
    pub(super) async fn insert_subscription(&self, sub: &Subscription) -> Result<()> {
        let row = subscription_row(sub)?;
        match subscription::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(Error::SubscriptionExists {
                    id: sub.id.to_string(),
                })
            }
            Err(e) => Err(Error::storage("store.add_subscription", e)),
        }
    }

    pub(super) async fn find_subscription(
        &self,
        id: &SubscriptionId,
    ) -> Result<Option<Subscription>> {
        subscription::Entity::find_by_id(id.as_str())
            .one(&self.db)
            .await
            .map_err(db("store.get_subscription"))?
            .map(subscription_from_row)
            .transpose()
    }

    pub(super) async fn replace_subscription(&self, sub: &Subscription) -> Result<()> {
        let row = subscription_row(sub)?;
        let done = subscription::Entity::update_many()
            .set(row)
            .filter(Column::Id.eq(sub.id.as_str()))
            .exec(&self.db)
            .await
            .map_err(db("store.update_subscription"))?;
        found(done.rows_affected, &sub.id)
    }

    pub(super) async fn update_enabled(&self, id: &SubscriptionId, enabled: bool) -> Result<()> {
        let done = subscription::Entity::update_many()
            .col_expr(Column::Enabled, Expr::value(enabled))
            .filter(Column::Id.eq(id.as_str()))
            .exec(&self.db)
            .await
            .map_err(db("store.set_enabled"))?;
        found(done.rows_affected, id)
    }

    pub(super) async fn delete_subscription(&self, id: &SubscriptionId) -> Result<()> {
        let done = subscription::Entity::delete_by_id(id.as_str())
            .exec(&self.db)
            .await
            .map_err(db("store.remove_subscription"))?;
        found(done.rows_affected, id)
    }

    pub(super) async fn subscription_page(
        &self,
        query: &SubscriptionQuery,
    ) -> Result<Vec<Subscription>> {
        let mut select = subscription::Entity::find();
        if let Some(owner) = &query.owner {
            select = select.filter(Column::Owner.eq(owner.as_str()));
        }
        if let Some(after) = &query.after {
            select = select.filter(Column::Id.gt(after.as_str()));
        }
        select
            .order_by_asc(Column::Id)
            .limit(page_size(query.limit))
            .all(&self.db)
            .await
            .map_err(db("store.list_subscriptions"))?
            .into_iter()
            .map(subscription_from_row)
            .collect()
    }

    pub(super) async fn subscriptions_matching(
        &self,
        name: &EventName,
        owner: Option<&str>,
    ) -> Result<Vec<Subscription>> {
        let owners = match owner {
            Some(owner) => Condition::any()
                .add(Column::Owner.is_null())
                .add(Column::Owner.eq(owner)),
            None => Condition::all().add(Column::Owner.is_null()),
        };
        let rows = subscription::Entity::find()
            .filter(Column::EventFilter.is_in(filters_passing(name)))
            .filter(Column::Enabled.eq(true))
            .filter(owners)
            .order_by_asc(Column::Id)
            .all(&self.db)
            .await
            .map_err(db("store.matching"))?;
        let mut subs = Vec::with_capacity(rows.len());
        for row in rows {
            let sub = subscription_from_row(row)?;
            // The query already selects exactly these; the check keeps `receives` the one
            // definition even where a database compares strings loosely (trailing spaces).
            if sub.receives(name, owner) {
                subs.push(sub);
            }
        }
        Ok(subs)
    }
}

fn found(rows_affected: u64, id: &SubscriptionId) -> Result<()> {
    if rows_affected == 0 {
        return Err(Error::SubscriptionNotFound { id: id.to_string() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscription::EventFilter;

    #[test]
    fn the_filters_passing_a_name_are_exactly_those_that_match_it() {
        let name = EventName::new("order.line.added").unwrap();
        let passing = filters_passing(&name);
        assert_eq!(
            passing,
            ["order.line.added", "order.*", "order.line.*", "*"]
        );
        for f in &passing {
            assert!(f.parse::<EventFilter>().unwrap().matches(&name), "{f}");
        }
        for f in [
            "order",
            "order.line",
            "orders.*",
            "order.line.added.*",
            "line.*",
        ] {
            assert!(!f.parse::<EventFilter>().unwrap().matches(&name), "{f}");
            assert!(!passing.iter().any(|p| p == f), "{f}");
        }
    }
}
