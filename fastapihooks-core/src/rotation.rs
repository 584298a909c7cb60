//! Secret rotation of a [`Subscription`]: the new secret signs at once, the old one keeps
//! signing beside it for a grace period so receivers can switch without losing a delivery.
//!
//! With [`StandardWebhooks`](crate::signing::StandardWebhooks) every live secret signs (one
//! `v1,` entry each in `webhook-signature`); [`Sha256Hex`](crate::signing::Sha256Hex) carries
//! one signature, the newest secret's.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use crate::subscription::Subscription;

/// The most superseded secrets a subscription keeps signing with; rotating again drops the
/// oldest.
pub const MAX_PREVIOUS_SECRETS: usize = 4;

/// A secret replaced by a rotation, still signing until `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousSecret {
    /// The superseded secret.
    pub secret: Secret,
    /// When it stops signing.
    pub expires_at: DateTime<Utc>,
}

impl Subscription {
    /// Replaces the signing secret with `new`; the secret it had keeps signing too for `grace`
    /// (zero: it stops at once). Persist the result with
    /// [`Store::update_subscription`](crate::Store::update_subscription).
    ///
    /// A subscription without a secret of its own was signed with the emitter's secret, which is
    /// not its to keep: it signs with `new` alone from now on.
    ///
    /// ```
    /// use std::time::Duration;
    /// use fastapihooks_core::{Secret, Subscription};
    ///
    /// let mut sub = Subscription::new("*", "https://example.com/hooks")?
    ///     .with_secret(Secret::generate()?);
    /// let new = Secret::generate()?;
    /// sub.rotate_secret(new.clone(), Duration::from_secs(24 * 3600));
    /// let now = chrono::Utc::now();
    /// assert_eq!(sub.signing_secrets(now).len(), 2);
    /// assert_eq!(sub.signing_secrets(now)[0], &new);
    /// # Ok::<(), fastapihooks_core::Error>(())
    /// ```
    pub fn rotate_secret(&mut self, new: Secret, grace: Duration) {
        self.rotate_secret_at(new, grace, Utc::now());
    }

    /// [`rotate_secret`](Self::rotate_secret) as of `now`.
    pub fn rotate_secret_at(&mut self, new: Secret, grace: Duration, now: DateTime<Utc>) {
        self.prune_expired_secrets(now);
        let old = self.secret.replace(new);
        if let Some(secret) = old.filter(|_| !grace.is_zero()) {
            let expires_at = chrono::Duration::from_std(grace)
                .ok()
                .and_then(|g| now.checked_add_signed(g))
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            self.previous_secrets
                .insert(0, PreviousSecret { secret, expires_at });
            self.previous_secrets.truncate(MAX_PREVIOUS_SECRETS);
        }
    }

    /// The secrets that sign a delivery made at `now`, newest first: its own secret, then the
    /// superseded ones still in their grace period. Empty when it has no secret of its own.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&Secret> {
        self.secret
            .iter()
            .chain(
                self.previous_secrets
                    .iter()
                    .filter(|p| p.expires_at > now)
                    .map(|p| &p.secret),
            )
            .collect()
    }

    /// Forgets superseded secrets whose grace period ended by `now`; says whether any was
    /// forgotten (and so whether the subscription needs saving).
    pub fn prune_expired_secrets(&mut self, now: DateTime<Utc>) -> bool {
        let before = self.previous_secrets.len();
        self.previous_secrets.retain(|p| p.expires_at > now);
        self.previous_secrets.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::new(s).unwrap()
    }

    fn sub_with(s: &str) -> Subscription {
        Subscription::new("*", "https://example.com/h")
            .unwrap()
            .with_secret(secret(s))
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn during_the_grace_period_old_and_new_secrets_sign_newest_first() {
        let now = Utc::now();
        let mut sub = sub_with("old");
        sub.rotate_secret_at(secret("new"), DAY, now);
        assert_eq!(
            sub.signing_secrets(now + chrono::Duration::hours(23)),
            [&secret("new"), &secret("old")]
        );
    }

    #[test]
    fn after_the_grace_period_only_the_new_secret_signs() {
        let now = Utc::now();
        let mut sub = sub_with("old");
        sub.rotate_secret_at(secret("new"), DAY, now);
        let later = now + chrono::Duration::hours(25);
        assert_eq!(sub.signing_secrets(later), [&secret("new")]);
        assert!(sub.prune_expired_secrets(later));
        assert!(sub.previous_secrets.is_empty());
        assert!(!sub.prune_expired_secrets(later));
    }

    #[test]
    fn a_zero_grace_drops_the_old_secret_at_once() {
        let now = Utc::now();
        let mut sub = sub_with("old");
        sub.rotate_secret_at(secret("new"), Duration::ZERO, now);
        assert_eq!(sub.signing_secrets(now), [&secret("new")]);
        assert!(sub.previous_secrets.is_empty());
    }

    #[test]
    fn repeated_rotations_keep_a_bounded_number_of_old_secrets() {
        let now = Utc::now();
        let mut sub = sub_with("s0");
        for i in 1..=10 {
            sub.rotate_secret_at(secret(&format!("s{i}")), DAY, now);
        }
        assert_eq!(sub.previous_secrets.len(), MAX_PREVIOUS_SECRETS);
        assert_eq!(sub.signing_secrets(now)[0], &secret("s10"));
        assert_eq!(sub.signing_secrets(now)[1], &secret("s9"));
    }

    #[test]
    fn a_subscription_without_its_own_secret_starts_signing_with_the_new_one_alone() {
        let now = Utc::now();
        let mut sub = Subscription::new("*", "https://example.com/h").unwrap();
        assert!(sub.signing_secrets(now).is_empty());
        sub.rotate_secret_at(secret("new"), DAY, now);
        assert_eq!(sub.signing_secrets(now), [&secret("new")]);
    }

    #[test]
    fn rotation_state_round_trips_through_json_and_old_json_still_reads() {
        let mut sub = sub_with("old")
            .with_signature_scheme(crate::signing::SignatureScheme::StandardWebhooks);
        sub.rotate_secret_at(secret("new"), DAY, Utc::now());
        let json = serde_json::to_string(&sub).unwrap();
        let back: Subscription = serde_json::from_str(&json).unwrap();
        assert_eq!(back, sub);

        let mut plain = serde_json::to_value(sub_with("s")).unwrap();
        let fields = plain.as_object_mut().unwrap();
        assert!(!fields.contains_key("previous_secrets"));
        assert!(!fields.contains_key("signature_scheme"));
        let read: Subscription = serde_json::from_value(plain).unwrap();
        assert!(read.previous_secrets.is_empty() && read.signature_scheme.is_none());
    }
}
