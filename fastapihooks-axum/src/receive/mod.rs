//! Receiving webhooks: verify the signature over the raw body before anything is parsed
//! ([`Verified<T>`], [`VerifyLayer`]); store each webhook once, acknowledge at once and queue its
//! processing ([`InboxRoute`]); process it by re-entering the application's router with a fresh
//! internal request ([`Redispatch`], [`Redispatched`]).

mod inbox_route;
mod layer;
mod redispatch;
mod verify;

pub use inbox_route::InboxRoute;
pub use layer::{VerifyLayer, VerifyService};
pub use redispatch::{Redispatch, Redispatched};
pub use verify::{Verified, VerifyRejection, WebhookVerifier};
