//! The leasing index of both outbox-shaped tables (`fastapihooks_outbox`,
//! `fastapihooks_inbox_queue`) gets the id as its last column: `(dead, available_at_us, id)`.
//!
//! A lease takes the due rows in `available_at_us, id` order. With only `(dead,
//! available_at_us)`, PostgreSQL read every row sharing the first due time and sorted them all
//! by id before it could take a batch: rows inserted by one statement share their due time (a
//! batch published at once, the retries of one settle, the tasks that replace a fan-out), and
//! a lease behind 10,000 of them took 3.2 ms instead of 0.06 (BENCHMARKS.md, session 25).
//! MariaDB's secondary indexes end with the primary key already, SQLite's with the rowid; the
//! id named last gives every database the lease's own order.

use sea_orm_migration::prelude::*;

use super::outbox_shape::{
    drop_index, leasing_index, leasing_index_by_id, leasing_index_by_id_name, leasing_index_name,
};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

const TABLES: [&str; 2] = ["fastapihooks_outbox", "fastapihooks_inbox_queue"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES {
            // The new index first: leases never go without one.
            manager.create_index(leasing_index_by_id(table)).await?;
            manager
                .drop_index(drop_index(table, &leasing_index_name(table)))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES {
            manager.create_index(leasing_index(table)).await?;
            manager
                .drop_index(drop_index(table, &leasing_index_by_id_name(table)))
                .await?;
        }
        Ok(())
    }
}
