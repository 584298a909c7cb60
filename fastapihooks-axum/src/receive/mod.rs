//! Receiving webhooks: verify the signature over the raw body before anything is parsed.

mod layer;
mod verify;

pub use layer::{VerifyLayer, VerifyService};
pub use verify::{Verified, VerifyRejection, WebhookVerifier};
