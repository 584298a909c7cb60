//! Settling leases on Redis: the settles of a batch (the worker's group commit) in one call of
//! the [`SETTLE`](scripts::SETTLE) script — one round trip and one script run for the acks,
//! retries and dead letters that ended together, each still fenced by its own lease. A single
//! settle is a batch of one.

use std::time::Duration;

use super::{RedisBackend, Stream, is_nogroup, scripts};
use crate::backend::{Receipt, Replacement, Settlement, Task};
use crate::error::{Error, Result};
use crate::group_commit::fail_all;

/// What the script does with a lease it still holds.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Replace,
    Retry,
    Dead,
    Each,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Replace => "replace",
            Mode::Retry => "retry",
            Mode::Dead => "dead",
            Mode::Each => "each",
        }
    }
}

/// One lease's settle, as the script's arguments.
pub(super) struct Step<'a> {
    receipt: &'a Receipt,
    mode: Mode,
    args: Vec<Vec<u8>>,
}

impl<'a> Step<'a> {
    /// Done: `next` (a fan-out's delivery tasks, or nothing) queued in the task's place.
    pub(super) fn replace(receipt: &'a Receipt, next: &[Task]) -> Result<Self> {
        let args = next
            .iter()
            .map(|task| task.encode().map(String::into_bytes))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            receipt,
            mode: Mode::Replace,
            args,
        })
    }

    /// `task` due again after `delay`, on the server's clock.
    pub(super) fn retry(receipt: &'a Receipt, task: &Task, delay: Duration) -> Result<Self> {
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        Ok(Self {
            receipt,
            mode: Mode::Retry,
            args: vec![
                delay_ms.to_string().into_bytes(),
                task.encode()?.into_bytes(),
            ],
        })
    }

    /// Kept in the dead-letter stream as `task` (its bytes as they are: an entry that is not
    /// a task is kept too), with the reason.
    pub(super) fn dead(
        b: &RedisBackend,
        receipt: &'a Receipt,
        task: Vec<u8>,
        reason: &str,
    ) -> Self {
        Self {
            receipt,
            mode: Mode::Dead,
            args: vec![
                task,
                reason.as_bytes().to_vec(),
                b.config.dead_letter_max_len.to_string().into_bytes(),
            ],
        }
    }

    /// Each of `next` in the task's place as it says: three arguments each (`now`, task JSON,
    /// nothing; `in`, task JSON, delay ms; `dead`, task JSON, reason).
    pub(super) fn each(
        b: &RedisBackend,
        receipt: &'a Receipt,
        next: &[Replacement],
    ) -> Result<Self> {
        let mut args = Vec::with_capacity(next.len() * 3 + 1);
        args.push(b.config.dead_letter_max_len.to_string().into_bytes());
        for replacement in next {
            let (kind, task, extra) = match replacement {
                Replacement::Due(task) => ("now", task, Vec::new()),
                Replacement::DueIn(task, delay) => {
                    let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                    ("in", task, delay_ms.to_string().into_bytes())
                }
                Replacement::Dead { task, reason } => ("dead", task, reason.as_bytes().to_vec()),
            };
            args.push(kind.as_bytes().to_vec());
            args.push(task.encode()?.into_bytes());
            args.push(extra);
        }
        Ok(Self {
            receipt,
            mode: Mode::Each,
            args,
        })
    }

    fn of(b: &RedisBackend, settlement: &'a Settlement) -> Result<Self> {
        match settlement {
            Settlement::Replace { receipt, next } => Self::replace(receipt, next),
            Settlement::RetryIn {
                receipt,
                task,
                delay,
            } => Self::retry(receipt, task, *delay),
            Settlement::DeadLetter {
                receipt,
                task,
                reason,
            } => Ok(Self::dead(b, receipt, task.encode()?.into_bytes(), reason)),
            Settlement::ReplaceEach { receipt, next } => Self::each(b, receipt, next),
        }
    }
}

/// One settle: `true`, or `false` when the lease is no longer this consumer's.
pub(super) async fn one(b: &RedisBackend, step: Step<'_>) -> Result<bool> {
    let settled = run(b, &[step]).await?;
    Ok(settled.first().copied().unwrap_or(false))
}

/// Every settlement in one script call; one result per settlement, in order. A settlement that
/// cannot be encoded fails alone; a failed call fails them all (none was applied: the script
/// runs whole or, when Redis cannot be reached, not at all).
pub(super) async fn many(b: &RedisBackend, settlements: &[Settlement]) -> Vec<Result<bool>> {
    let mut results: Vec<Option<Result<bool>>> = Vec::with_capacity(settlements.len());
    let mut steps = Vec::with_capacity(settlements.len());
    let mut places = Vec::with_capacity(settlements.len());
    for (at, settlement) in settlements.iter().enumerate() {
        match Step::of(b, settlement) {
            Ok(step) => {
                steps.push(step);
                places.push(at);
                results.push(None);
            }
            Err(e) => results.push(Some(Err(e))),
        }
    }
    let outcomes: Vec<Result<bool>> = match run(b, &steps).await {
        Ok(settled) => settled.into_iter().map(Ok).collect(),
        Err(e) => fail_all("redis.settle", steps.len(), &e),
    };
    for (at, outcome) in places.into_iter().zip(outcomes) {
        results[at] = Some(outcome);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(unanswered())))
        .collect()
}

/// Runs the script for `steps`; `NOGROUP` (Redis lost our data) means every lease is gone.
async fn run(b: &RedisBackend, steps: &[Step<'_>]) -> Result<Vec<bool>> {
    if steps.is_empty() {
        return Ok(Vec::new());
    }
    let mut invocation = scripts::SETTLE.prepare_invoke();
    invocation
        .key(&b.keys.tasks)
        .key(&b.keys.deliveries)
        .key(&b.keys.retries)
        .key(&b.keys.dead)
        .arg(&b.config.group)
        .arg(&b.config.consumer);
    for step in steps {
        let (stream, entry) = Stream::of(step.receipt);
        let key = match stream {
            Stream::Tasks => 1,
            Stream::Deliveries => 2,
        };
        invocation
            .arg(key)
            .arg(entry)
            .arg(step.mode.as_str())
            .arg(step.args.len());
        for arg in &step.args {
            invocation.arg(arg.as_slice());
        }
    }
    let mut conn = b.conn.clone();
    match invocation.invoke_async::<Vec<i64>>(&mut conn).await {
        Ok(settled) if settled.len() == steps.len() => {
            Ok(settled.into_iter().map(|s| s == 1).collect())
        }
        Ok(_) => Err(unanswered()),
        Err(e) if is_nogroup(&e) => {
            b.group_lost();
            Ok(vec![false; steps.len()])
        }
        Err(e) => Err(Error::storage("redis.settle", e)),
    }
}

fn unanswered() -> Error {
    Error::storage(
        "redis.settle",
        std::io::Error::other("the settle script did not answer for every lease"),
    )
}
