//! `fastapihooks subscriptions update`.

use std::io::Write;

use anyhow::Context as _;
use clap::{ArgGroup, Args};
use fastapihooks_core::health::EndpointHealth;
use fastapihooks_core::subscription::WebhookUrl;
use fastapihooks_core::{Auth, EventFilter, RetryPolicy, Secret, Store, SubscriptionId};

use super::{fields, reachability};
use crate::commands::database::DatabaseArgs;
use crate::output::{self, SubscriptionView};

/// `subscriptions update` arguments: only the fields given change.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("auth").args(["bearer", "basic", "header", "no_auth"])))]
#[command(group(ArgGroup::new("signing").args(["secret", "generate_secret", "clear_secret"])))]
#[command(group(ArgGroup::new("owner_change").args(["owner", "clear_owner"])))]
#[command(group(ArgGroup::new("state").args(["enable", "disable"])))]
#[command(group(ArgGroup::new("retry").args(["retry_schedule", "default_retry_schedule"])))]
pub struct UpdateArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The subscription, `sub_…`.
    #[arg(value_name = "ID", value_parser = fields::subscription_id)]
    id: SubscriptionId,
    /// New event filter: a name, a prefix (order.*) or all (*).
    #[arg(long, value_name = "FILTER", value_parser = fields::event_filter)]
    event: Option<EventFilter>,
    /// New delivery URL.
    #[arg(long, value_parser = fields::webhook_url)]
    url: Option<WebhookUrl>,
    /// New signing secret.
    #[arg(long, value_parser = fields::secret)]
    secret: Option<Secret>,
    /// Generate a new signing secret and print it once.
    #[arg(long)]
    generate_secret: bool,
    /// Drop its own secret (the service's secret signs).
    #[arg(long)]
    clear_secret: bool,
    /// Send `Authorization: Bearer TOKEN`.
    #[arg(long, value_name = "TOKEN", value_parser = fields::bearer)]
    bearer: Option<Auth>,
    /// Send HTTP basic credentials.
    #[arg(long, value_name = "USER:PASSWORD", value_parser = fields::basic)]
    basic: Option<Auth>,
    /// Send a custom header, such as X-Api-Key:abc.
    #[arg(long, value_name = "NAME:VALUE", value_parser = fields::header)]
    header: Option<Auth>,
    /// Send no credentials.
    #[arg(long)]
    no_auth: bool,
    /// New owner (tenant).
    #[arg(long)]
    owner: Option<String>,
    /// Make it receive every owner's events.
    #[arg(long)]
    clear_owner: bool,
    /// New application metadata, as JSON.
    #[arg(long, value_name = "JSON", value_parser = fields::metadata)]
    metadata: Option<serde_json::Value>,
    /// A retry schedule of its own, instead of the sidecar's: a preset (`standard-webhooks`,
    /// `fastapihooks`, `none`) or delays such as `1m,10m,1h` (±20 % jitter unless given).
    #[arg(long, value_name = "SCHEDULE", value_parser = crate::commands::retry::retry_policy)]
    retry_schedule: Option<RetryPolicy>,
    /// Drop its own retry schedule: the sidecar's applies.
    #[arg(long)]
    default_retry_schedule: bool,
    /// Enable it (clearing why it was disabled and its failure streak, as `subscriptions
    /// enable`, which can also replay its dead letters).
    #[arg(long)]
    enable: bool,
    /// Disable it.
    #[arg(long)]
    disable: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Applies the changes given and prints the result. Warns on stderr when the sidecar's SSRF
/// guard will refuse a new URL (the change is saved all the same).
pub async fn run(args: UpdateArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = args.database.connect_migrated().await?;
    let mut sub = store
        .get_subscription(&args.id)
        .await?
        .with_context(|| format!("subscription {} not found", args.id))?;
    if let Some(filter) = args.event {
        sub.filter = filter;
    }
    let new_url = args.url.clone();
    if let Some(url) = args.url {
        sub.url = url;
    }
    if let Some(secret) = args.secret {
        sub.secret = Some(secret);
    } else if args.generate_secret {
        sub.secret = Some(Secret::generate()?);
    } else if args.clear_secret {
        sub.secret = None;
    }
    if let Some(auth) = args.bearer.or(args.basic).or(args.header) {
        sub.auth = auth;
    } else if args.no_auth {
        sub.auth = Auth::None;
    }
    if let Some(owner) = args.owner {
        sub.owner = Some(owner);
    } else if args.clear_owner {
        sub.owner = None;
    }
    if let Some(metadata) = args.metadata {
        sub.metadata = metadata;
    }
    if let Some(policy) = args.retry_schedule {
        sub.retry = Some(Box::new(policy));
    } else if args.default_retry_schedule {
        sub.retry = None;
    }
    if args.enable {
        // As `subscriptions enable`: it starts afresh, without the reason the engine disabled
        // it for or the failure streak that led there.
        sub.enabled = true;
        sub.disabled = None;
        sub.health = EndpointHealth::default();
    } else if args.disable {
        sub.enabled = false;
    }
    store.update_subscription(sub.clone()).await?;
    if args.enable {
        // The store keeps the streak through an update: enabling is what clears it.
        store.set_enabled(&sub.id, true).await?;
    }
    if let Some(url) = &new_url {
        reachability::warn_if_refused(url, &mut std::io::stderr()).await;
    }
    let mut view = SubscriptionView::new(&sub, false);
    if args.generate_secret {
        // A generated secret exists nowhere else: show it this once.
        view = view.reveal_secret(&sub);
    }
    if args.json {
        output::json(out, &view)
    } else {
        output::details(out, &view)
    }
}
