//! `fastapihooks subscriptions add`.

use std::io::Write;

use clap::{ArgGroup, Args};
use fastapihooks_core::subscription::WebhookUrl;
use fastapihooks_core::{Auth, EventFilter, RetryPolicy, Secret, Store, Subscription};

use super::{fields, reachability};
use crate::commands::database::DatabaseArgs;
use crate::output::{self, SubscriptionView};

/// `subscriptions add` arguments.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("auth").args(["bearer", "basic", "header"])))]
#[command(group(ArgGroup::new("signing").args(["secret", "generate_secret"])))]
pub struct AddArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Which events: a name (order.created), a prefix (order.*) or all (*).
    #[arg(long, value_name = "FILTER", value_parser = fields::event_filter)]
    event: EventFilter,
    /// Where deliveries are POSTed (http or https).
    #[arg(long, value_parser = fields::webhook_url)]
    url: WebhookUrl,
    /// Its own signing secret (otherwise the service's secret signs).
    #[arg(long, value_parser = fields::secret)]
    secret: Option<Secret>,
    /// Generate a signing secret (whsec_…) and print it once.
    #[arg(long)]
    generate_secret: bool,
    /// Send `Authorization: Bearer TOKEN`.
    #[arg(long, value_name = "TOKEN", value_parser = fields::bearer)]
    bearer: Option<Auth>,
    /// Send HTTP basic credentials.
    #[arg(long, value_name = "USER:PASSWORD", value_parser = fields::basic)]
    basic: Option<Auth>,
    /// Send a custom header, such as X-Api-Key:abc.
    #[arg(long, value_name = "NAME:VALUE", value_parser = fields::header)]
    header: Option<Auth>,
    /// The owner (tenant): it then receives only that owner's events.
    #[arg(long)]
    owner: Option<String>,
    /// Application metadata, as JSON.
    #[arg(long, value_name = "JSON", value_parser = fields::metadata)]
    metadata: Option<serde_json::Value>,
    /// Its own retry schedule, instead of the sidecar's: a preset (`standard-webhooks`,
    /// `fastapihooks`, `none`) or delays such as `1m,10m,1h` (±20 % jitter unless given).
    #[arg(long, value_name = "SCHEDULE", value_parser = crate::commands::retry::retry_policy)]
    retry_schedule: Option<RetryPolicy>,
    /// Add it disabled.
    #[arg(long)]
    disabled: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Adds the subscription and prints it. Warns on stderr when the sidecar's SSRF guard will
/// refuse its URL (the subscription is added all the same).
pub async fn run(args: AddArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = args.database.connect_migrated().await?;
    let mut sub = Subscription::new(&args.event.to_string(), args.url.as_str())?;
    sub.auth = args
        .bearer
        .or(args.basic)
        .or(args.header)
        .unwrap_or_default();
    sub.secret = match (args.secret, args.generate_secret) {
        (Some(secret), _) => Some(secret),
        (None, true) => Some(Secret::generate()?),
        (None, false) => None,
    };
    sub.owner = args.owner;
    sub.metadata = args.metadata.unwrap_or(serde_json::Value::Null);
    sub.enabled = !args.disabled;
    sub.retry = args.retry_schedule.map(Box::new);
    store.add_subscription(sub.clone()).await?;
    reachability::warn_if_refused(&args.url, &mut std::io::stderr()).await;
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
