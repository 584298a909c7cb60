//! Receiving webhooks: verify the signature over the raw body before anything is parsed.

mod verify;

pub use verify::{Verified, VerifyRejection, WebhookVerifier};
