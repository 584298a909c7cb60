//! What [`SqlStore`](super::SqlStore)'s subscription queries share: the filters an event name
//! passes, and the not-found check of statements by id.

use crate::error::{Error, Result};
use crate::event::EventName;
use crate::id::SubscriptionId;

/// The stored filters that pass an event name: the name itself, each of its dotted prefixes as
/// `prefix.*`, and `*` (except for an operational event). This is [`EventFilter::matches`](crate::EventFilter::matches) turned
/// into an index lookup: a prefix filter `p.` matches exactly the names that start with `p.`,
/// and a name starts with `p.` exactly when `p` is one of its leading segment runs.
pub(super) fn filters_passing(event: &EventName) -> Vec<String> {
    let name = event.as_str();
    let mut filters = Vec::with_capacity(2 + name.matches('.').count());
    filters.push(name.to_owned());
    filters.extend(
        name.match_indices('.')
            .map(|(i, _)| format!("{}*", &name[..=i])),
    );
    if !event.is_operational() {
        filters.push("*".to_owned());
    }
    filters
}

/// `SubscriptionNotFound` unless a statement by id touched a row.
pub(super) fn found(rows_affected: u64, id: &SubscriptionId) -> Result<()> {
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
