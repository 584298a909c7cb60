//! Exact accounting: every delivery the receiver got, matched by id against what was sent.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use super::receiver::Arrival;
use crate::wire::Signature;

/// What arrived, against what was expected.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Accounting {
    /// Deliveries expected.
    pub expected: u64,
    /// Expected ids received (with a valid signature, when signed).
    pub delivered: u64,
    /// Expected ids never received: must be 0.
    pub lost: u64,
    /// Ids received more than once (at least once delivery allows it; counted, not lost).
    pub duplicates: u64,
    /// Ids received that were never sent: must be 0.
    pub unexpected: u64,
    /// Expected ids whose signature did not verify: must be 0.
    pub bad_signature: u64,
    /// Unix ns of the last arrival.
    pub last_arrival_ns: u64,
    /// End-to-end latency (emitted → received) of the delivered ids, in ms.
    pub latency_p50_ms: f64,
    /// 99th percentile.
    pub latency_p99_ms: f64,
    /// Slowest.
    pub latency_max_ms: f64,
}

impl Accounting {
    /// Whether every count is what it must be.
    pub fn exact(&self) -> bool {
        self.lost == 0 && self.unexpected == 0 && self.bad_signature == 0
    }
}

/// Reads the `<id>\t<emitted unix ns>` lines an emitter wrote.
pub fn read_expected(path: &Path) -> anyhow::Result<Vec<(String, u64)>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    text.lines()
        .map(|line| {
            let (id, at) = line.split_once('\t').context("an id line")?;
            Ok((id.to_owned(), at.parse().context("an emit time")?))
        })
        .collect()
}

/// Matches `arrivals` to `expected` (`(id, emitted unix ns)`); with `signed`, a delivery only
/// counts with a valid signature.
pub fn account(expected: &[(String, u64)], arrivals: &[Arrival], signed: bool) -> Accounting {
    let mut pending: HashMap<&str, (u64, bool)> = expected
        .iter()
        .map(|(id, at)| (id.as_str(), (*at, false)))
        .collect();
    let mut a = Accounting {
        expected: expected.len() as u64,
        ..Accounting::default()
    };
    let mut latencies_ns = Vec::with_capacity(expected.len());
    for arrival in arrivals {
        a.last_arrival_ns = a.last_arrival_ns.max(arrival.at_ns);
        let Some((emitted_ns, seen)) = pending.get_mut(arrival.id.as_str()) else {
            a.unexpected += 1;
            continue;
        };
        if *seen {
            a.duplicates += 1;
            continue;
        }
        *seen = true;
        if signed && arrival.signature != Signature::Valid {
            a.bad_signature += 1;
            continue;
        }
        a.delivered += 1;
        latencies_ns.push(arrival.at_ns.saturating_sub(*emitted_ns));
    }
    a.lost = a.expected - a.delivered - a.bad_signature;
    latencies_ns.sort_unstable();
    let at = |q: f64| {
        latencies_ns
            .get(
                ((latencies_ns.len() as f64 * q) as usize)
                    .min(latencies_ns.len().saturating_sub(1)),
            )
            .map_or(0.0, |ns| *ns as f64 / 1e6)
    };
    a.latency_p50_ms = at(0.50);
    a.latency_p99_ms = at(0.99);
    a.latency_max_ms = latencies_ns.last().map_or(0.0, |ns| *ns as f64 / 1e6);
    a
}

/// Counts of a run whose ids are not known in advance (route cost: the service makes the
/// events): distinct ids received with a valid signature, against the number expected.
pub fn account_unknown_ids(expected: u64, arrivals: &[Arrival]) -> Accounting {
    let mut seen: HashMap<&str, ()> = HashMap::with_capacity(arrivals.len());
    let mut a = Accounting {
        expected,
        ..Accounting::default()
    };
    for arrival in arrivals {
        a.last_arrival_ns = a.last_arrival_ns.max(arrival.at_ns);
        if seen.insert(arrival.id.as_str(), ()).is_some() {
            a.duplicates += 1;
        } else if arrival.signature == Signature::Valid {
            a.delivered += 1;
        } else {
            a.bad_signature += 1;
        }
    }
    a.unexpected = (a.delivered + a.bad_signature).saturating_sub(expected);
    a.lost = expected.saturating_sub(a.delivered + a.bad_signature);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(id: &str, at_ns: u64, signature: Signature) -> Arrival {
        Arrival {
            id: id.to_owned(),
            at_ns,
            signature,
        }
    }

    #[test]
    fn lost_duplicate_unexpected_and_badly_signed_ids_are_told_apart() {
        let expected: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|id| (id.to_string(), 0))
            .collect();
        let arrivals = [
            arrival("a", 1_000_000, Signature::Valid),
            arrival("a", 2_000_000, Signature::Valid),
            arrival("b", 3_000_000, Signature::Invalid),
            arrival("z", 4_000_000, Signature::Valid),
            arrival("c", 5_000_000, Signature::Valid),
        ];
        let a = account(&expected, &arrivals, true);
        assert_eq!(
            (
                a.delivered,
                a.lost,
                a.duplicates,
                a.unexpected,
                a.bad_signature
            ),
            (2, 1, 1, 1, 1)
        );
        assert_eq!(a.latency_max_ms, 5.0);
        assert!(!a.exact());
    }

    #[test]
    fn unsigned_arrivals_count_when_no_signature_is_required() {
        let expected = vec![("raw_0".to_owned(), 0)];
        let a = account(&expected, &[arrival("raw_0", 1, Signature::Absent)], false);
        assert_eq!((a.delivered, a.lost), (1, 0));
        assert!(a.exact());
    }

    #[test]
    fn with_unknown_ids_missing_deliveries_are_lost() {
        let a = account_unknown_ids(
            3,
            &[
                arrival("x", 1, Signature::Valid),
                arrival("x", 2, Signature::Valid),
            ],
        );
        assert_eq!((a.delivered, a.duplicates, a.lost), (1, 1, 2));
    }
}
