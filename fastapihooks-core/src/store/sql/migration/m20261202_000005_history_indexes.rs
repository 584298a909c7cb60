//! Indexes for finding what happened: events by name, owner and time, deliveries by time, each
//! newest first by keyset on the id ([`EventQuery`](crate::EventQuery),
//! [`DeliveryQuery`](crate::DeliveryQuery)).
//!
//! On MySQL/MariaDB the events' `name` and `owner` first become case-sensitive
//! (`utf8mb4_bin`), so a lookup by them agrees with Rust's `==`; `owner` stays unbounded text,
//! indexed by its first 255 characters.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;

use super::columns::{OWNER_LEN, index};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum FastapihooksEvents {
    Table,
    Id,
    Name,
    Owner,
    CreatedAtUs,
}

#[derive(DeriveIden)]
enum FastapihooksDeliveries {
    Table,
    Id,
    CreatedAtUs,
}

const EVENTS_NAME_ID: &str = "fastapihooks_events_name_id";
const EVENTS_OWNER_ID: &str = "fastapihooks_events_owner_id";
const EVENTS_CREATED_ID: &str = "fastapihooks_events_created_id";
const DELIVERIES_CREATED_ID: &str = "fastapihooks_deliveries_created_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use FastapihooksDeliveries as D;
        use FastapihooksEvents as E;
        let backend = manager.get_database_backend();
        if backend == DbBackend::MySql {
            manager
                .get_connection()
                .execute_unprepared(
                    "ALTER TABLE fastapihooks_events \
                     MODIFY name VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
                     MODIFY owner TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL",
                )
                .await?;
        }
        manager
            .create_index(index(EVENTS_NAME_ID, E::Table, [E::Name, E::Id]))
            .await?;
        let mut owner_id = index(EVENTS_OWNER_ID, E::Table, Vec::<E>::new());
        if backend == DbBackend::MySql {
            // A text column is indexed by a prefix there.
            owner_id.col((E::Owner, OWNER_LEN)).col(E::Id);
        } else {
            owner_id.col(E::Owner).col(E::Id);
        }
        manager.create_index(owner_id).await?;
        manager
            .create_index(index(EVENTS_CREATED_ID, E::Table, [E::CreatedAtUs, E::Id]))
            .await?;
        manager
            .create_index(index(
                DELIVERIES_CREATED_ID,
                D::Table,
                [D::CreatedAtUs, D::Id],
            ))
            .await?;
        Ok(())
    }

    /// Drops the indexes; on MySQL/MariaDB the events' columns keep their exact collation (the
    /// earlier migrations' queries do not depend on it).
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            (EVENTS_NAME_ID, FastapihooksEvents::Table.into_iden()),
            (EVENTS_OWNER_ID, FastapihooksEvents::Table.into_iden()),
            (EVENTS_CREATED_ID, FastapihooksEvents::Table.into_iden()),
            (
                DELIVERIES_CREATED_ID,
                FastapihooksDeliveries::Table.into_iden(),
            ),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
