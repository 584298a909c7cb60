//! [`DeliveryHistory`]: the [`MemoryStore`](super::MemoryStore)'s bounded delivery history — its
//! deliveries with their attempts, in id order, the oldest dropped first past the bound.
//!
//! A ring buffer of record keys sorted by id, not a map: ids sort by their event's time, so a
//! fan-out's deliveries are merged in at (or near) the end, the bound drops from the front, and
//! every lookup searches from the back, where the recent records are. The records themselves sit
//! in a slab, one block grown towards the bound and no further, each where it was written (the
//! slot a dropped record leaves is the next one's): a delivery that lands among the others —
//! events made in the same millisecond sort at random, and a burst makes hundreds — moves
//! 8-byte keys, not ~240-byte records. A B-tree filled in id order left its leaves about half
//! empty (424 bytes of nodes per delivery) and allocated and freed a node every few deliveries:
//! the hooked in-process route's peak RSS fell from 30.7–31.5 to 27.5–28.4 MiB with the one
//! block (BENCHMARKS.md, session 12).

use std::collections::VecDeque;

use slab::Slab;
use smallvec::SmallVec;

use crate::delivery::{Attempt, Delivery};
use crate::id::DeliveryId;

/// A delivery and its attempts, oldest first.
#[derive(Debug)]
pub(super) struct Record {
    pub(super) delivery: Delivery,
    /// Most deliveries take one attempt: it is kept in the record itself, not in a block of its
    /// own beside it.
    pub(super) attempts: SmallVec<[Attempt; 1]>,
}

/// How many of the indices `0..n` pass, `passes` holding for a prefix of them: galloping (1, 2,
/// 4, … on), then a binary search in the last step — a comparison per doubling of the answer,
/// so a short answer costs a few comparisons wherever `n` ends.
fn gallop(n: usize, passes: impl Fn(usize) -> bool) -> usize {
    // `0..lo` pass, `hi..` do not.
    let (mut lo, mut hi) = (0, n);
    let mut step = 1;
    while lo + step <= hi {
        if passes(lo + step - 1) {
            lo += step;
            step *= 2;
        } else {
            hi = lo + step - 1;
            break;
        }
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if passes(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

impl Record {
    fn new(delivery: &Delivery) -> Self {
        Self {
            delivery: delivery.clone(),
            attempts: SmallVec::new(),
        }
    }
}

/// At most `max` deliveries, by id (see the [module docs](self)).
#[derive(Debug)]
pub(super) struct DeliveryHistory {
    /// The records' keys in `records`, in id order.
    order: VecDeque<usize>,
    records: Slab<Record>,
    max: usize,
}

impl DeliveryHistory {
    /// An empty history keeping at most `max` deliveries (at least one).
    pub(super) fn new(max: usize) -> Self {
        Self {
            order: VecDeque::new(),
            records: Slab::new(),
            max: max.max(1),
        }
    }

    fn position(&self, id: &DeliveryId) -> Result<usize, usize> {
        let at = self.partition(id);
        match self.order.get(at) {
            Some(&key) if self.records[key].delivery.id == *id => Ok(at),
            _ => Err(at),
        }
    }

    /// Where `id` goes: the index of the first record whose id is not below it.
    ///
    /// Searched from the back ([`gallop`] over the records from the last one): a new delivery's
    /// id lands at or near the end, and an attempt is recorded shortly after its delivery, so the few records compared are recent ones, still in cache.
    /// A binary search from the middle of a full history compares ~14 records spread over
    /// megabytes — each a cache miss or two (the record, then its id) — on every write.
    fn partition(&self, id: &DeliveryId) -> usize {
        let len = self.order.len();
        let not_below = |back: usize| self.records[self.order[len - 1 - back]].delivery.id >= *id;
        len - gallop(len, not_below)
    }

    /// Adds each delivery without attempts unless a delivery of its id is kept already; past the
    /// bound the oldest deliveries are dropped (new ones too, when they are the oldest).
    ///
    /// Merged in one pass: the deliveries of one event share its time and differ in random bits
    /// (and those of events made in the same millisecond interleave), so added one by one each
    /// would land among the others and shift them. Sorted, then merged with the records from the
    /// smallest of their ids onwards, a batch costs one pass over that tail — of record keys,
    /// galloping past the runs of it that fall between two new ids. Says, in the order given,
    /// whether each was added (a delivery given twice is added once).
    pub(super) fn add_all(&mut self, deliveries: &[Delivery]) -> Vec<bool> {
        if let [one] = deliveries {
            return vec![self.add(one)];
        }
        let mut added = vec![false; deliveries.len()];
        let mut order: Vec<usize> = (0..deliveries.len()).collect();
        // Stable: of a delivery given twice, the first given is the one added.
        order.sort_by(|&a, &b| deliveries[a].id.cmp(&deliveries[b].id));
        let Some(&first) = order.first() else {
            return added;
        };
        let from = self.partition(&deliveries[first].id);
        let tail: Vec<usize> = self.order.drain(from..).collect();
        self.make_room(from + tail.len() + deliveries.len());
        // `tail[placed..]` is still to be put back.
        let mut placed = 0;
        for i in order {
            let d = &deliveries[i];
            let below = gallop(tail.len() - placed, |j| {
                self.records[tail[placed + j]].delivery.id < d.id
            });
            self.order.extend(&tail[placed..placed + below]);
            placed += below;
            let is_d = |k: &usize| self.records[*k].delivery.id == d.id;
            if !(tail.get(placed).is_some_and(is_d) || self.order.back().is_some_and(is_d)) {
                let key = self.records.insert(Record::new(d));
                self.order.push_back(key);
                added[i] = true;
            }
        }
        self.order.extend(&tail[placed..]);
        self.drop_oldest();
        added
    }

    /// One delivery, inserted in place unless its id is kept already: it lands at or near the
    /// end, so only the few records after it move (the merge would move them twice, through a
    /// list of their own). Past the bound the oldest goes, as in [`add_all`](Self::add_all).
    fn add(&mut self, delivery: &Delivery) -> bool {
        let Err(at) = self.position(&delivery.id) else {
            return false;
        };
        self.make_room(self.order.len() + 1);
        let key = self.records.insert(Record::new(delivery));
        self.order.insert(at, key);
        self.drop_oldest();
        true
    }

    fn drop_oldest(&mut self) {
        while self.order.len() > self.max {
            if let Some(key) = self.order.pop_front() {
                self.records.remove(key);
            }
        }
    }

    /// Capacity for `needed` records: doubling, but not past the bound unless a batch needs it.
    fn make_room(&mut self, needed: usize) {
        let capacity = self.records.capacity();
        if needed > capacity {
            let target = needed.max((capacity * 2).min(self.max + 1)).max(4);
            self.records.reserve_exact(target - self.records.len());
            self.order.reserve_exact(target - self.order.len());
        }
    }

    /// The delivery of `id` with its attempts.
    pub(super) fn get(&self, id: &DeliveryId) -> Option<&Record> {
        self.position(id)
            .ok()
            .map(|at| &self.records[self.order[at]])
    }

    /// The same, to change.
    pub(super) fn get_mut(&mut self, id: &DeliveryId) -> Option<&mut Record> {
        let key = self.order[self.position(id).ok()?];
        Some(&mut self.records[key])
    }

    /// Removes the oldest `limit` deliveries that match, in one pass (removing them one by one
    /// would shift the records after each).
    pub(super) fn remove_oldest(
        &mut self,
        limit: usize,
        mut matches: impl FnMut(&Delivery) -> bool,
    ) -> Vec<Record> {
        let mut removed = Vec::new();
        let records = &mut self.records;
        self.order.retain(|&key| {
            if removed.len() < limit && matches(&records[key].delivery) {
                removed.push(records.remove(key));
                false
            } else {
                true
            }
        });
        removed
    }

    /// Every delivery, oldest id first.
    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = &Record> {
        self.order.iter().map(|&key| &self.records[key])
    }

    /// The deliveries whose id is below `before` (all when `None`), oldest id first.
    pub(super) fn before(
        &self,
        before: Option<&DeliveryId>,
    ) -> impl DoubleEndedIterator<Item = &Record> {
        let end = match before {
            Some(id) => self.partition(id),
            None => self.order.len(),
        };
        self.order.range(..end).map(|&key| &self.records[key])
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
            assert!(add(&mut history, &all[at]));
        }
        assert_eq!(ids(history.iter()), ids_of(&all));
    }

    #[test]
    fn a_batch_is_added_in_id_order_and_answered_in_the_order_given() {
        let event = Event::new("a", &1).unwrap();
        let batch: Vec<Delivery> = (0..50)
            .map(|_| Delivery::new(event.clone(), SubscriptionId::new()))
            .collect();
        let mut given = batch.clone();
        given.push(batch[7].clone());
        let mut history = DeliveryHistory::new(100);
        let added = history.add_all(&given);
        assert_eq!(added.iter().filter(|&&a| a).count(), 50);
        assert!(!added[50], "given twice: added once");
        let mut sorted = ids_of(&batch);
        sorted.sort();
        assert_eq!(ids(history.iter()), sorted);
    }

    #[test]
    fn a_batch_is_merged_among_the_deliveries_kept_and_finds_those_given_again() {
        let all = deliveries(6);
        let mut history = DeliveryHistory::new(100);
        history.add_all(&[all[0].clone(), all[2].clone(), all[4].clone()]);
        let again = [
            all[5].clone(),
            all[1].clone(),
            all[2].clone(),
            all[3].clone(),
        ];
        assert_eq!(history.add_all(&again), vec![true, true, false, true]);
        assert_eq!(ids(history.iter()), ids_of(&all));
    }

    #[test]
    fn gallop_counts_the_passing_prefix_wherever_it_ends() {
        for n in 0..=100 {
            assert_eq!(gallop(100, |i| i < n), n);
        }
        assert_eq!(gallop(0, |_| true), 0);
    }

    #[test]
    fn a_batch_merged_into_a_long_tail_keeps_the_id_order() {
        // Two events' deliveries, the same millisecond: the second batch lands all over the
        // first one's.
        let event = Event::new("a", &1).unwrap();
        let batch = |n| -> Vec<Delivery> {
            (0..n)
                .map(|_| Delivery::new(event.clone(), SubscriptionId::new()))
                .collect()
        };
        let (first, second) = (batch(300), batch(40));
        let mut history = DeliveryHistory::new(1_000);
        history.add_all(&first);
        assert!(history.add_all(&second).iter().all(|&added| added));
        let mut sorted = ids_of(&first);
        sorted.extend(ids_of(&second));
        sorted.sort();
        assert_eq!(ids(history.iter()), sorted);
        assert_eq!(history.add_all(&second), vec![false; 40], "known already");
    }

    #[test]
    fn every_delivery_kept_is_found_and_one_not_kept_is_not() {
        // One event's deliveries: the same time, random order.
        let event = Event::new("a", &1).unwrap();
        let all: Vec<Delivery> = (0..300)
            .map(|_| Delivery::new(event.clone(), SubscriptionId::new()))
            .collect();
        let (kept, missing) = all.split_at(250);
        let history = added_one_by_one(1_000, kept);
        let mut sorted = ids_of(kept);
        sorted.sort();
        assert_eq!(ids(history.iter()), sorted, "kept in id order");
        for d in kept {
            assert_eq!(history.get(&d.id).map(|r| &r.delivery.id), Some(&d.id));
        }
        for d in missing {
            assert!(history.get(&d.id).is_none(), "{} is not kept", d.id);
            let older = sorted.iter().filter(|id| **id < d.id).count();
            assert_eq!(history.before(Some(&d.id)).count(), older);
        }
    }

    #[test]
    fn a_delivery_added_again_is_not_replaced() {
        let all = deliveries(1);
        let mut history = DeliveryHistory::new(10);
        assert!(add(&mut history, &all[0]));
        history.get_mut(&all[0].id).unwrap().attempts.reserve(2);
        assert!(!add(&mut history, &all[0]));
        assert_eq!(history.iter().count(), 1);
        assert!(history.get(&all[0].id).unwrap().attempts.capacity() >= 2);
    }

    #[test]
    fn past_the_bound_the_oldest_id_goes_even_when_it_is_the_new_one() {
        let all = deliveries(4);
        let mut history = DeliveryHistory::new(2);
        for d in &all[1..3] {
            add(&mut history, d);
        }
        add(&mut history, &all[3]);
        assert_eq!(ids(history.iter()), ids_of(&all[2..]));
        // Older than everything kept: added, then dropped as the oldest.
        add(&mut history, &all[0]);
        assert_eq!(ids(history.iter()), ids_of(&all[2..]));
    }

    #[test]
    fn the_block_grows_to_the_bound_and_no_further() {
        let all = deliveries(7);
        let history = added_one_by_one(5, &all);
        assert!(
            history.records.capacity() <= 6 && history.order.capacity() <= 6,
            "{} records, {} keys",
            history.records.capacity(),
            history.order.capacity()
        );
    }

    #[test]
    fn before_an_id_lists_the_older_ones_whether_or_not_that_id_is_kept() {
        let all = deliveries(4);
        let mut history = DeliveryHistory::new(10);
        for d in [&all[0], &all[1], &all[3]] {
            add(&mut history, d);
        }
        assert_eq!(ids(history.before(Some(&all[3].id))), ids_of(&all[..2]));
        assert_eq!(ids(history.before(Some(&all[2].id))), ids_of(&all[..2]));
        assert_eq!(history.before(None).count(), 3);
        assert_eq!(history.before(Some(&all[0].id)).count(), 0);
    }

    #[test]
    fn the_oldest_matching_deliveries_are_removed_up_to_the_limit_and_the_rest_stay_in_order() {
        let all = deliveries(5);
        let mut history = added_one_by_one(10, &all);
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

    /// A history bounded at `max` with each of `deliveries` added alone, in turn.
    fn added_one_by_one(max: usize, deliveries: &[Delivery]) -> DeliveryHistory {
        let mut history = DeliveryHistory::new(max);
        for d in deliveries {
            add(&mut history, d);
        }
        history
    }

    fn add(history: &mut DeliveryHistory, delivery: &Delivery) -> bool {
        history.add_all(std::slice::from_ref(delivery))[0]
    }

    fn ids_of(deliveries: &[Delivery]) -> Vec<DeliveryId> {
        deliveries.iter().map(|d| d.id.clone()).collect()
    }
}
