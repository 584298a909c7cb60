//! [`DeliveryHistory`]: the [`MemoryStore`](super::MemoryStore)'s bounded delivery history — its
//! deliveries with their attempts, in id order, the oldest dropped first past the bound.
//!
//! One ring buffer sorted by id, not a map: ids sort by their event's time, so a new delivery
//! lands at (or next to) the end and the bound drops from the front, and every lookup is a
//! binary search. The records sit in one block grown towards the bound and no further, where a
//! B-tree filled in id order left its leaves about half empty (424 bytes of nodes per delivery)
//! and allocated and freed a node every few deliveries: the hooked in-process route's peak RSS
//! fell from 30.7–31.5 to 27.5–28.0 MiB with this (BENCHMARKS.md, session 12).

use std::collections::VecDeque;

use crate::delivery::{Attempt, Delivery};
use crate::id::DeliveryId;

/// A delivery and its attempts, oldest first.
#[derive(Debug)]
pub(super) struct Record {
    pub(super) delivery: Delivery,
    pub(super) attempts: Vec<Attempt>,
}

/// At most `max` deliveries, by id (see the [module docs](self)).
#[derive(Debug)]
pub(super) struct DeliveryHistory {
    records: VecDeque<Record>,
    max: usize,
}

impl DeliveryHistory {
    /// An empty history keeping at most `max` deliveries (at least one).
    pub(super) fn new(max: usize) -> Self {
        Self {
            records: VecDeque::new(),
            max: max.max(1),
        }
    }

    fn position(&self, id: &DeliveryId) -> Result<usize, usize> {
        self.records.binary_search_by(|r| r.delivery.id.cmp(id))
    }

    /// Adds `delivery` without attempts unless a delivery of its id is kept already; says
    /// whether it was added. Past the bound the oldest delivery is dropped (the new one too,
    /// when it is the oldest).
    pub(super) fn add(&mut self, delivery: &Delivery) -> bool {
        let Err(at) = self.position(&delivery.id) else {
            return false;
        };
        if self.records.len() == self.records.capacity() {
            // Doubling, but never past the bound: the block stops growing at `max` records.
            let room = self
                .records
                .len()
                .max(4)
                .min(self.max + 1 - self.records.len());
            self.records.reserve_exact(room);
        }
        self.records.insert(
            at,
            Record {
                delivery: delivery.clone(),
                attempts: Vec::new(),
            },
        );
        if self.records.len() > self.max {
            self.records.pop_front();
        }
        true
    }

    /// The delivery of `id` with its attempts.
    pub(super) fn get(&self, id: &DeliveryId) -> Option<&Record> {
        self.position(id).ok().map(|at| &self.records[at])
    }

    /// The same, to change.
    pub(super) fn get_mut(&mut self, id: &DeliveryId) -> Option<&mut Record> {
        self.position(id).ok().map(|at| &mut self.records[at])
    }

    /// Removes the oldest `limit` deliveries that match, in one pass (removing them one by one
    /// would shift the records after each).
    pub(super) fn remove_oldest(
        &mut self,
        limit: usize,
        mut matches: impl FnMut(&Delivery) -> bool,
    ) -> Vec<Record> {
        let mut removed = Vec::new();
        let mut kept = VecDeque::with_capacity(self.records.capacity());
        for record in self.records.drain(..) {
            if removed.len() < limit && matches(&record.delivery) {
                removed.push(record);
            } else {
                kept.push_back(record);
            }
        }
        self.records = kept;
        removed
    }

    /// Every delivery, oldest id first.
    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = &Record> {
        self.records.iter()
    }

    /// The deliveries whose id is below `before` (all when `None`), oldest id first.
    pub(super) fn before(
        &self,
        before: Option<&DeliveryId>,
    ) -> impl DoubleEndedIterator<Item = &Record> {
        let end = match before {
            Some(id) => self.records.partition_point(|r| r.delivery.id < *id),
            None => self.records.len(),
        };
        self.records.range(..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::id::SubscriptionId;

    /// Deliveries of events made 2 ms apart: their ids sort in the order made.
    fn deliveries(n: usize) -> Vec<Delivery> {
        (0..n)
            .map(|_| {
                std::thread::sleep(std::time::Duration::from_millis(2));
                Delivery::new(Event::new("a", &1).unwrap(), SubscriptionId::new())
            })
            .collect()
    }

    fn ids<'a>(records: impl Iterator<Item = &'a Record>) -> Vec<DeliveryId> {
        records.map(|r| r.delivery.id.clone()).collect()
    }

    #[test]
    fn deliveries_added_out_of_order_are_kept_in_id_order() {
        let all = deliveries(4);
        let mut history = DeliveryHistory::new(10);
        for at in [2, 0, 3, 1] {
            assert!(history.add(&all[at]));
        }
        assert_eq!(ids(history.iter()), ids_of(&all));
    }

    #[test]
    fn a_delivery_added_again_is_not_replaced() {
        let all = deliveries(1);
        let mut history = DeliveryHistory::new(10);
        assert!(history.add(&all[0]));
        history.get_mut(&all[0].id).unwrap().attempts.reserve(1);
        assert!(!history.add(&all[0]));
        assert_eq!(history.iter().count(), 1);
        assert!(history.get(&all[0].id).unwrap().attempts.capacity() >= 1);
    }

    #[test]
    fn past_the_bound_the_oldest_id_goes_even_when_it_is_the_new_one() {
        let all = deliveries(4);
        let mut history = DeliveryHistory::new(2);
        for d in &all[1..3] {
            history.add(d);
        }
        history.add(&all[3]);
        assert_eq!(ids(history.iter()), ids_of(&all[2..]));
        // Older than everything kept: added, then dropped as the oldest.
        history.add(&all[0]);
        assert_eq!(ids(history.iter()), ids_of(&all[2..]));
    }

    #[test]
    fn the_block_grows_to_the_bound_and_no_further() {
        let all = deliveries(7);
        let mut history = DeliveryHistory::new(5);
        for d in &all {
            history.add(d);
        }
        assert!(
            history.records.capacity() <= 6,
            "{}",
            history.records.capacity()
        );
    }

    #[test]
    fn before_an_id_lists_the_older_ones_whether_or_not_that_id_is_kept() {
        let all = deliveries(4);
        let mut history = DeliveryHistory::new(10);
        for d in [&all[0], &all[1], &all[3]] {
            history.add(d);
        }
        assert_eq!(ids(history.before(Some(&all[3].id))), ids_of(&all[..2]));
        assert_eq!(ids(history.before(Some(&all[2].id))), ids_of(&all[..2]));
        assert_eq!(history.before(None).count(), 3);
        assert_eq!(history.before(Some(&all[0].id)).count(), 0);
    }

    #[test]
    fn the_oldest_matching_deliveries_are_removed_up_to_the_limit_and_the_rest_stay_in_order() {
        let all = deliveries(5);
        let mut history = DeliveryHistory::new(10);
        for d in &all {
            history.add(d);
        }
        let odd = [all[1].id.clone(), all[3].id.clone(), all[4].id.clone()];
        let removed = history.remove_oldest(2, |d| odd.contains(&d.id));
        assert_eq!(
            ids(removed.iter()),
            vec![all[1].id.clone(), all[3].id.clone()]
        );
        assert!(history.get(&all[1].id).is_none());
        let kept = vec![all[0].id.clone(), all[2].id.clone(), all[4].id.clone()];
        assert_eq!(ids(history.iter()), kept);
    }

    fn ids_of(deliveries: &[Delivery]) -> Vec<DeliveryId> {
        deliveries.iter().map(|d| d.id.clone()).collect()
    }
}
