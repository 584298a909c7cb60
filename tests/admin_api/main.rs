//! The management API (`fastapihooks::admin`), driven through a real axum `Router` against
//! SQLite and PostgreSQL: every endpoint's status codes and problem bodies, pagination,
//! tenancy (owner A sees nothing of owner B's: 404, as for ids that do not exist), replay of a
//! delivery that failed against a real receiver — and every answer checked against the
//! committed OpenAPI document.
#![cfg(all(feature = "admin", feature = "sqlite"))]

mod document;
mod history;
mod stats;
mod subscriptions;
mod support;
mod tenancy;

/// Runs `behaviour` on a SQLite store, and on a PostgreSQL one where it answers.
macro_rules! on_each_store {
    ($($module:ident::$behaviour:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    if let Some(db) = super::support::sqlite(stringify!($behaviour)).await {
                        super::$module::$behaviour(&db.store).await;
                    }
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    if let Some(db) = super::support::postgres(stringify!($behaviour)).await {
                        super::$module::$behaviour(&db.store).await;
                    }
                }
            )*
        }
    };
}

on_each_store!(
    subscriptions::a_created_subscription_shows_its_secret_once,
    subscriptions::a_malformed_subscription_is_a_400_problem_naming_the_field,
    subscriptions::subscriptions_page_by_cursor_without_skipping_or_repeating,
    subscriptions::a_subscription_is_changed_disabled_enabled_and_deleted,
    subscriptions::rotating_a_secret_shows_the_new_one_once_and_keeps_the_old_for_the_grace,
    subscriptions::a_secret_rotated_without_a_body_keeps_the_old_one_for_a_day,
    tenancy::owner_a_can_neither_read_nor_change_nor_replay_owner_bs_objects,
    history::a_failed_delivery_is_found_replayed_and_delivered_through_the_api,
    history::a_bulk_replay_dry_run_counts_and_changes_nothing,
    subscriptions::a_test_event_reaches_that_subscription_alone,
    history::deliveries_and_events_page_by_cursor_and_filter,
    history::an_events_deliveries_are_replayed_together,
    history::a_delivery_made_between_two_pages_neither_repeats_nor_hides_a_row,
    stats::stats_count_deliveries_by_status_bucket_and_subscription,
    stats::stats_of_one_owner_count_none_of_anothers,
    stats::a_stats_range_too_long_is_a_400_problem,
    stats::event_types_list_each_name_once_with_its_count,
);
