//! The conductor: starts the parts, runs the measurements, prints and writes the report.

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, ValueEnum};

use crate::durable::Services;
use crate::report::{Machine, Report, load_average};
use crate::scenario::part::{LOAD_CORE, Pinning, taskset_works};
use crate::scenario::receiver::Receiver;
use crate::scenario::{
    Sizes, delivery, fan_out, idle_latency, publish, receive, route_cost, sidecar,
};

/// Which measurements to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Measurement {
    /// Hooked vs unhooked route; with the services, also the publish into Redis alone.
    RouteCost,
    /// The receive route (`InboxRoute`): webhooks acknowledged/s, the inbox in SQLite and
    /// PostgreSQL (`--postgres`), beside a route that only verifies.
    Receive,
    /// Deliveries/s against the raw loop.
    Delivery,
    /// 1 event → 1,000 subscribers.
    FanOut,
    /// The durable path: the sidecar draining Redis and the PostgreSQL outbox (throughput,
    /// idle latency). Needs PostgreSQL and Redis (`--postgres`, `--redis`).
    Sidecar,
}

/// Options of a run.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Small counts, one run each, in well under a minute: checks completion and exact counts
    /// (exits non-zero on a lost delivery or a failed request); its timings mean nothing.
    #[arg(long)]
    quick: bool,
    /// Runs of each figure (the median is reported). Default 3 (1 with --quick).
    #[arg(long)]
    repeat: Option<usize>,
    /// Only these measurements (repeatable). Default: all.
    #[arg(long, value_enum)]
    only: Vec<Measurement>,
    /// Where to write the JSON report (the markdown goes beside it, `.md`).
    #[arg(long, default_value = "target/fastapihooks-bench.json")]
    out: PathBuf,
    /// Do not pin the parts to cores.
    #[arg(long)]
    no_pin: bool,
    /// The services of the durable path (the sidecar, the route-cost rows in PostgreSQL).
    #[command(flatten)]
    services: Services,
    /// Skip everything that needs PostgreSQL or Redis (the sidecar rows, the route-cost rows
    /// in PostgreSQL and the receive row in PostgreSQL).
    #[arg(long)]
    without_services: bool,
}

/// Runs the benchmark.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(conduct(args))
}

async fn conduct(args: RunArgs) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let pinning = if args.no_pin {
        Pinning::Unpinned
    } else if cores < 2 || !taskset_works() {
        eprintln!("warning: cannot pin (needs 2 cores and taskset): the parts run unpinned");
        Pinning::Unpinned
    } else {
        pin_self_to(LOAD_CORE);
        Pinning::Pinned
    };
    let sizes = if args.quick {
        Sizes::quick()
    } else {
        Sizes::full(args.repeat.unwrap_or(3).max(1))
    };
    let sizes = Sizes {
        repeat: args.repeat.unwrap_or(sizes.repeat).max(1),
        ..sizes
    };
    let wanted = |m| args.only.is_empty() || args.only.contains(&m);
    let services = (!args.without_services).then_some(&args.services);
    let scratch = std::env::temp_dir().join(format!("fastapihooks-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let mut report = Report::new(
        Machine::probe(cores, pinning == Pinning::Pinned),
        sizes.clone(),
        args.quick,
    );
    let receiver = Receiver::start(pinning).await?;
    let measured = async {
        if wanted(Measurement::RouteCost) {
            report.route_cost = route_cost::measure(&receiver, pinning, &sizes, services).await?;
            if let Some(services) = services {
                report.publish = publish::measure(pinning, &sizes, services).await?;
            }
        }
        if wanted(Measurement::Receive) {
            report.receive = receive::measure(pinning, &sizes, services, &scratch).await?;
        }
        if wanted(Measurement::Delivery) {
            report.delivery = delivery::measure(&receiver, pinning, &sizes, &scratch).await?;
        }
        if let Some(services) = services.filter(|_| wanted(Measurement::Sidecar)) {
            report.sidecar = sidecar::measure(&receiver, pinning, &sizes, services).await?;
            report.sidecar_idle_latency =
                idle_latency::measure(&receiver, pinning, &sizes, services).await?;
        }
        if wanted(Measurement::FanOut) {
            report.fan_out = fan_out::measure(&receiver, pinning, &sizes, &scratch).await?;
        }
        anyhow::Ok(())
    }
    .await;
    receiver.stop().await;
    let _ = std::fs::remove_dir_all(&scratch);
    measured?;
    report.machine.load_average_end = load_average();
    report.judge();
    let markdown = report.markdown();
    println!("{markdown}");
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    std::fs::write(args.out.with_extension("md"), &markdown)?;
    eprintln!(
        "wrote {} and {}",
        args.out.display(),
        args.out.with_extension("md").display()
    );
    let failures = report.count_failures();
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("COUNT FAILURE: {f}");
        }
        bail!(
            "{} count failure(s): deliveries lost, requests failed or inbox rows miscounted",
            failures.len()
        );
    }
    eprintln!("counts exact: no delivery lost, no request failed");
    Ok(())
}

/// Keeps the conductor itself (mostly idle: it polls the receiver) off the service's core.
fn pin_self_to(core: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes within it, and
    // sched_setaffinity only reads it. Failure leaves the affinity as it was.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}
