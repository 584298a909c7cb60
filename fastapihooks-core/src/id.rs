//! Typed, prefixed, time-sortable ids: `evt_…`, `sub_…`, `dlv_…`, `att_…`.
//!
//! Each id is a prefix and a [ULID](https://github.com/ulid/spec): ids of one kind sort by
//! creation time (to the millisecond) as plain strings, which is what keyset pagination in the
//! stores relies on. The types cannot be mixed up: a `DeliveryId` is not a `SubscriptionId`.
//!
//! ```
//! use fastapihooks_core::id::EventId;
//! let id = EventId::new();
//! assert!(id.as_str().starts_with("evt_"));
//! let parsed: EventId = id.as_str().parse().unwrap();
//! assert_eq!(parsed, id);
//! assert!("sub_01HZY2Q4Z8N3V5W7X9Y1Z3A5B7".parse::<EventId>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Inline);

        const _: () = assert!($prefix.len() <= MAX_PREFIX, "an id prefix is too long");

        impl $name {
            /// The prefix every id of this kind starts with (without the `_`).
            pub const PREFIX: &'static str = $prefix;

            /// A new id, sortable after every id made before it (millisecond resolution).
            pub fn new() -> Self {
                Self(prefixed($prefix, ulid::Ulid::new()))
            }

            /// The id as a string, prefix included.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            /// The creation time encoded in the id, in milliseconds since the unix epoch.
            pub fn timestamp_ms(&self) -> u64 {
                ulid::Ulid::from_string(&self.as_str()[$prefix.len() + 1..])
                    .map(|u| u.timestamp_ms())
                    .unwrap_or(0)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                let invalid = || Error::InvalidId { input: s.to_owned(), prefix: $prefix };
                let rest = s
                    .strip_prefix($prefix)
                    .and_then(|r| r.strip_prefix('_'))
                    .ok_or_else(invalid)?;
                let ulid = ulid::Ulid::from_string(rest).map_err(|_| invalid())?;
                // Canonical form: upper-case ULID, so equal ids compare equal as strings.
                Ok(Self(prefixed($prefix, ulid)))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

typed_id!(
    /// Identifies an [`Event`](crate::Event): `evt_…`.
    EventId,
    "evt"
);
typed_id!(
    /// Identifies a [`Subscription`](crate::Subscription): `sub_…`.
    SubscriptionId,
    "sub"
);
typed_id!(
    /// Identifies a [`Delivery`](crate::Delivery): `dlv_…`. Stable across retries; it is the
    /// idempotency key receivers see.
    DeliveryId,
    "dlv"
);
typed_id!(
    /// Identifies an [`Attempt`](crate::Attempt): `att_…`.
    AttemptId,
    "att"
);
typed_id!(
    /// Identifies a received webhook in the [`Inbox`](crate::inbox::Inbox): `inb_…`.
    InboxId,
    "inb"
);

impl DeliveryId {
    /// The id of the delivery of `event` to `subscription`: the same every time it is computed,
    /// so fan-out run again for a redelivered event finds the deliveries it already recorded
    /// instead of making new ones. It keeps the event's time (ids sort by event time) and takes
    /// its 80 random bits from SHA-256 of both ids.
    pub fn for_event(event: &EventId, subscription: &SubscriptionId) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(event.as_str())
            .chain_update(b"/")
            .chain_update(subscription.as_str())
            .finalize();
        let mut random = [0u8; 16];
        random[6..].copy_from_slice(&digest[..10]);
        let ulid = ulid::Ulid::from_parts(event.timestamp_ms(), u128::from_be_bytes(random));
        Self(prefixed(Self::PREFIX, ulid))
    }
}

/// The longest prefix an id kind may have (checked at compile time by `typed_id!`).
const MAX_PREFIX: usize = 8;

/// The longest id: the longest prefix, `_`, a ULID.
const MAX_LEN: usize = MAX_PREFIX + 1 + ulid::ULID_LEN;

/// An id's text, held in place: ids are made for every delivery and attempt, kept in histories
/// and tasks, cloned, compared and hashed on every step of a delivery — inline, making or
/// cloning one allocates nothing and counts no reference, and a history record's ids do not
/// sit in small blocks of their own between short-lived ones (BENCHMARKS.md, session 21).
///
/// Compared, ordered and hashed as its bytes: the unused tail is zeros, and all ids of one kind
/// have the same length, so they order as their strings do.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Inline {
    bytes: [u8; MAX_LEN],
    len: u8,
}

impl Inline {
    fn as_str(&self) -> &str {
        // Every byte is ASCII: the prefix and the ULID's alphabet.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

/// `<prefix>_<ulid>`.
fn prefixed(prefix: &str, ulid: ulid::Ulid) -> Inline {
    let mut bytes = [0u8; MAX_LEN];
    let len = prefix.len() + 1 + ulid::ULID_LEN;
    bytes[..prefix.len()].copy_from_slice(prefix.as_bytes());
    bytes[prefix.len()] = b'_';
    let mut encoded = [0u8; ulid::ULID_LEN];
    bytes[prefix.len() + 1..len].copy_from_slice(ulid.array_to_str(&mut encoded).as_bytes());
    Inline {
        bytes,
        // At most `MAX_LEN` (35): the prefix is checked at compile time.
        len: u8::try_from(len).unwrap_or(u8::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_round_trip() {
        let id = DeliveryId::new();
        assert!(id.as_str().starts_with("dlv_"));
        assert_eq!(id.as_str().len(), 4 + 26);
        assert_eq!(id.as_str().parse::<DeliveryId>().unwrap(), id);
    }

    #[test]
    fn an_id_of_another_kind_is_rejected_with_its_prefix_named() {
        let sub = SubscriptionId::new();
        let err = sub.as_str().parse::<DeliveryId>().unwrap_err();
        assert!(err.to_string().contains("dlv_"), "{err}");
    }

    #[test]
    fn garbage_after_the_prefix_is_rejected() {
        assert!("evt_".parse::<EventId>().is_err());
        assert!("evt_not-a-ulid".parse::<EventId>().is_err());
        assert!("evt01HZY2Q4Z8N3V5W7X9Y1Z3A5B7".parse::<EventId>().is_err());
    }

    #[test]
    fn lower_case_ulids_parse_to_the_canonical_form() {
        let id = EventId::new();
        let lower = format!("evt_{}", id.as_str()[4..].to_ascii_lowercase());
        assert_eq!(lower.parse::<EventId>().unwrap(), id);
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let a = EventId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = EventId::new();
        assert!(a < b);
        assert!(a.timestamp_ms() <= b.timestamp_ms());
    }

    #[test]
    fn ids_order_as_their_strings_do() {
        let (e, other) = (EventId::new(), EventId::new());
        let mut ids: Vec<DeliveryId> = (0..200)
            .map(|i| {
                let event = if i % 2 == 0 { &e } else { &other };
                DeliveryId::for_event(event, &SubscriptionId::new())
            })
            .collect();
        let mut strings: Vec<String> = ids.iter().map(ToString::to_string).collect();
        ids.sort();
        strings.sort();
        let sorted: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(sorted, strings);
    }

    #[test]
    fn delivery_ids_are_derived_from_event_and_subscription() {
        let (e, s) = (EventId::new(), SubscriptionId::new());
        let id = DeliveryId::for_event(&e, &s);
        assert_eq!(id, DeliveryId::for_event(&e, &s));
        assert_ne!(id, DeliveryId::for_event(&e, &SubscriptionId::new()));
        assert_ne!(id, DeliveryId::for_event(&EventId::new(), &s));
        assert_eq!(id.timestamp_ms(), e.timestamp_ms());
        assert_eq!(id.as_str().parse::<DeliveryId>().unwrap(), id);
    }

    #[test]
    fn ids_serialize_as_plain_strings() {
        let id = SubscriptionId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        let back: SubscriptionId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<SubscriptionId>("\"evt_x\"").is_err());
    }
}
