//! [`Store::count_deliveries`](crate::Store::count_deliveries) and
//! [`Store::count_events`](crate::Store::count_events) for [`SqlStore`]: one
//! `SELECT group, status, COUNT(*) … GROUP BY group, status` with the filters of
//! `list_deliveries`, one `SELECT name, COUNT(*), MAX(created_at_us) … GROUP BY name` with
//! those of `list_events`. A bucket of time is integer arithmetic on `created_at_us`
//! (`created_at_us - created_at_us % width`), the same on SQLite, PostgreSQL and MariaDB.

use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{EntityTrait, QueryFilter, QuerySelect};

use super::entity::{delivery, event};
use super::{SqlStore, db, query};
use crate::delivery::DeliveryStatus;
use crate::delivery_counts::{CountBy, CountGroup, DeliveryCount, EventNameCount, bucket_start};
use crate::error::{Error, Result};
use crate::event::EventName;
use crate::query::DeliveryQuery;
use crate::query::EventQuery;

pub(super) async fn count_deliveries(
    store: &SqlStore,
    q: &DeliveryQuery,
    by: CountBy,
) -> Result<Vec<DeliveryCount>> {
    let what = "store.count_deliveries";
    let mut q = q.clone();
    q.before = None;
    let filter = query::deliveries(store.db.get_database_backend(), &q);
    let select = delivery::Entity::find().select_only().filter(filter);
    let status = |text: &str| -> Result<DeliveryStatus> {
        text.parse().map_err(|_| Error::CorruptRecord {
            table: "fastapihooks_deliveries",
            id: String::new(),
            column: "status",
            reason: format!("`{text}` is not a delivery status"),
        })
    };
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let mut counts = Vec::new();
    match by.bucket_micros()? {
        Some(width) => {
            // `width` is a checked integer of our own, never input text.
            let bucket = Expr::cust(format!("created_at_us - (created_at_us % {width})"));
            let rows: Vec<(i64, String, i64)> = select
                .column_as(bucket.clone(), "bucket_us")
                .column(delivery::Column::Status)
                .column_as(Expr::col(delivery::Column::Id).count(), "n")
                .group_by(bucket)
                .group_by(delivery::Column::Status)
                .into_tuple()
                .all(&store.db)
                .await
                .map_err(db(what))?;
            for (start, text, n) in rows {
                counts.push(DeliveryCount {
                    group: CountGroup::Bucket(bucket_start(start)),
                    status: status(&text)?,
                    count: count(n),
                });
            }
        }
        None => {
            let rows: Vec<(String, String, i64)> = select
                .column(delivery::Column::SubscriptionId)
                .column(delivery::Column::Status)
                .column_as(Expr::col(delivery::Column::Id).count(), "n")
                .group_by(delivery::Column::SubscriptionId)
                .group_by(delivery::Column::Status)
                .into_tuple()
                .all(&store.db)
                .await
                .map_err(db(what))?;
            for (sub, text, n) in rows {
                let id = sub.parse().map_err(|_| Error::CorruptRecord {
                    table: "fastapihooks_deliveries",
                    id: String::new(),
                    column: "subscription_id",
                    reason: format!("`{sub}` is not a subscription id"),
                })?;
                counts.push(DeliveryCount {
                    group: CountGroup::Subscription(id),
                    status: status(&text)?,
                    count: count(n),
                });
            }
        }
    }
    counts.sort();
    Ok(counts)
}

pub(super) async fn count_events(store: &SqlStore, q: &EventQuery) -> Result<Vec<EventNameCount>> {
    let mut q = q.clone();
    q.before = None;
    let rows: Vec<(String, i64, i64)> = event::Entity::find()
        .select_only()
        .column(event::Column::Name)
        .column_as(Expr::col(event::Column::Id).count(), "n")
        .column_as(Expr::col(event::Column::CreatedAtUs).max(), "last_us")
        .filter(query::events(store.db.get_database_backend(), &q))
        .group_by(event::Column::Name)
        .into_tuple()
        .all(&store.db)
        .await
        .map_err(db("store.count_events"))?;
    let mut names = rows
        .into_iter()
        .map(|(name, n, last)| {
            Ok(EventNameCount {
                name: EventName::new(&name).map_err(|e| Error::CorruptRecord {
                    table: "fastapihooks_events",
                    id: String::new(),
                    column: "name",
                    reason: e.to_string(),
                })?,
                events: u64::try_from(n).unwrap_or(0),
                last_seen: bucket_start(last),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    names.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(names)
}
