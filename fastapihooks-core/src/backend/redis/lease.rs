//! Leasing from Redis: due retries back into their stream, crashed consumers' leases taken
//! over, then new entries read through the consumer group — delivery tasks (the `deliveries`
//! stream) before published events to fan out (`tasks`), so the deliveries of an event fanned
//! out now do not wait behind the fan-out of the whole backlog.

use std::time::{Duration, Instant};

use redis::Value;
use redis::streams::{StreamAutoClaimReply, StreamId};

use super::read_reply::ReadReply;
use super::{RedisBackend, Stream, connection, is_nogroup, scripts};
use crate::backend::queue::{Leased, Task};
use crate::error::{Error, Result};

/// Where the last `XAUTOCLAIM` scan of each stream stopped, and when it ran.
pub(super) struct ReclaimCursor {
    next: [String; 2],
    last: Option<Instant>,
    last_prune: Option<Instant>,
}

impl ReclaimCursor {
    pub(super) fn new() -> Self {
        Self {
            next: ["0-0".to_owned(), "0-0".to_owned()],
            last: None,
            last_prune: None,
        }
    }
}

/// An entry read from one of the two streams.
type Entry = (Stream, StreamId);

/// One lease call: at most `max` tasks, waiting at most the configured block time.
pub(super) async fn lease(b: &RedisBackend, max: usize) -> Result<Vec<Leased>> {
    let max = max.max(1);
    ensure_group(b).await?;
    let next_due = promote_due(b, max).await?;
    let reclaimed = reclaim(b, max).await?;
    if !reclaimed.is_empty() {
        let leases = delivery_counts(b, &reclaimed).await?;
        return decode(b, reclaimed, |id| leases.get(id).copied().unwrap_or(0)).await;
    }
    let block = next_due
        .map_or(b.config.block, |due| due.min(b.config.block))
        .max(Duration::from_millis(1));
    let fresh = read_ready(b, max, block).await?;
    // An entry read for the first time is leased for the first time.
    decode(b, fresh, |_| 1).await
}

/// How many times each reclaimed entry has been delivered (leased), from the group's pending
/// list: one `XPENDING` per entry, in one pipeline. Retries are new entries, so this counts
/// the leases since the task was last settled.
async fn delivery_counts(
    b: &RedisBackend,
    entries: &[Entry],
) -> Result<std::collections::HashMap<String, u32>> {
    let mut pipe = redis::pipe();
    for (stream, entry) in entries {
        pipe.cmd("XPENDING")
            .arg(b.key(*stream))
            .arg(&b.config.group)
            .arg(&entry.id)
            .arg(&entry.id)
            .arg(1);
    }
    let mut conn = b.conn.clone();
    let replies: Vec<redis::streams::StreamPendingCountReply> =
        pipe.query_async(&mut conn)
            .await
            .map_err(|e| Error::storage("redis.xpending", e))?;
    Ok(replies
        .into_iter()
        .flat_map(|r| r.ids)
        .map(|p| (p.id, u32::try_from(p.times_delivered).unwrap_or(u32::MAX)))
        .collect())
}

/// Creates the consumer group (and the streams) unless this backend knows it exists. It reads
/// from the start of each stream: settled entries are deleted, so whatever a stream holds is
/// unsettled work — after a data loss or a first start alike.
async fn ensure_group(b: &RedisBackend) -> Result<()> {
    if b.group_ready.load(std::sync::atomic::Ordering::Acquire) {
        return Ok(());
    }
    let mut conn = b.conn.clone();
    for stream in Stream::BOTH {
        let created = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(b.key(stream))
            .arg(&b.config.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async::<()>(&mut conn)
            .await;
        match created {
            Ok(()) => {
                tracing::info!(stream = %b.key(stream), group = %b.config.group, "created consumer group")
            }
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(Error::storage("redis.xgroup_create", e)),
        }
    }
    b.group_ready
        .store(true, std::sync::atomic::Ordering::Release);
    Ok(())
}

/// Moves due retries back into their stream; returns how long until the next one is due.
async fn promote_due(b: &RedisBackend, max: usize) -> Result<Option<Duration>> {
    let mut conn = b.conn.clone();
    let (moved, wait_ms): (u64, i64) = scripts::PROMOTE_DUE
        .key(&b.keys.tasks)
        .key(&b.keys.retries)
        .key(&b.keys.deliveries)
        .arg(max.max(100))
        .invoke_async(&mut conn)
        .await
        .map_err(|e| Error::storage("redis.promote_due", e))?;
    if moved > 0 {
        tracing::debug!(moved, "due retries moved back into the stream");
    }
    Ok(u64::try_from(wait_ms).ok().map(Duration::from_millis))
}

/// Takes over entries leased longer ago than the visibility timeout (their consumer crashed or
/// stalled), deliveries first. Runs at most every quarter of the visibility timeout.
async fn reclaim(b: &RedisBackend, max: usize) -> Result<Vec<Entry>> {
    let visibility = b.config.visibility_timeout;
    let interval = (visibility / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut cursor = b.reclaim.lock().await;
    if cursor.last.is_some_and(|last| last.elapsed() < interval) {
        return Ok(Vec::new());
    }
    cursor.last = Some(Instant::now());
    let mut conn = b.conn.clone();
    let forget_after = b.config.forget_consumers_after;
    if cursor
        .last_prune
        .is_none_or(|last| last.elapsed() >= forget_after / 4)
    {
        cursor.last_prune = Some(Instant::now());
        for stream in Stream::BOTH {
            let forgotten: u64 = scripts::PRUNE_CONSUMERS
                .key(b.key(stream))
                .arg(&b.config.group)
                .arg(u64::try_from(forget_after.as_millis()).unwrap_or(u64::MAX))
                .invoke_async(&mut conn)
                .await
                .map_err(|e| Error::storage("redis.forget_consumers", e))?;
            if forgotten > 0 {
                tracing::info!(
                    forgotten,
                    stream = %b.key(stream),
                    "removed idle consumers without leases from the group"
                );
            }
        }
    }
    let mut claimed = Vec::new();
    for (i, stream) in Stream::BOTH.into_iter().enumerate() {
        let left = max.saturating_sub(claimed.len());
        if left == 0 {
            break;
        }
        let reply = redis::cmd("XAUTOCLAIM")
            .arg(b.key(stream))
            .arg(&b.config.group)
            .arg(&b.config.consumer)
            .arg(u64::try_from(visibility.as_millis()).unwrap_or(u64::MAX))
            .arg(&cursor.next[i])
            .arg("COUNT")
            .arg(left)
            .query_async::<StreamAutoClaimReply>(&mut conn)
            .await;
        match reply {
            Ok(reply) => {
                cursor.next[i] = reply.next_stream_id;
                claimed.extend(reply.claimed.into_iter().map(|id| (stream, id)));
            }
            Err(e) if is_nogroup(&e) => {
                cursor.next[i] = "0-0".to_owned();
                b.group_lost();
            }
            Err(e) => return Err(Error::storage("redis.xautoclaim", e)),
        }
    }
    if !claimed.is_empty() {
        tracing::warn!(
            count = claimed.len(),
            "took over leases older than the visibility timeout (a consumer crashed or stalled)"
        );
        metrics::counter!(crate::metrics::QUEUE_RECLAIMED_TOTAL).increment(claimed.len() as u64);
    }
    Ok(claimed)
}

/// Reads never-delivered entries for this consumer: ready deliveries first, without waiting;
/// then events to fan out. When neither stream has anything, it waits on both (up to
/// `block`), asking each for half the batch so the two together never exceed it.
async fn read_ready(b: &RedisBackend, max: usize, block: Duration) -> Result<Vec<Entry>> {
    let mut reader = b.reader.lock().await;
    let conn = match reader.as_mut() {
        Some(conn) => conn,
        None => {
            let timeout = b.config.block + b.config.response_timeout;
            reader.insert(connection(&b.client, timeout).await?)
        }
    };
    let mut ready = read_group(b, conn, &[Stream::Deliveries], max, None).await?;
    if ready.len() < max {
        let left = max - ready.len();
        ready.extend(read_group(b, conn, &[Stream::Tasks], left, None).await?);
    }
    if !ready.is_empty() {
        return Ok(ready);
    }
    match max {
        // Half of one is nothing: wait on the events alone, briefly, and look for deliveries
        // again at the next call.
        1 => read_group(b, conn, &[Stream::Tasks], 1, Some(block.min(SINGLE_WAIT))).await,
        _ => read_group(b, conn, &Stream::BOTH, max / 2, Some(block)).await,
    }
}

/// The longest a lease of one task waits on the events stream alone.
const SINGLE_WAIT: Duration = Duration::from_millis(100);

/// One `XREADGROUP` of up to `count` entries of each of `streams`, waiting up to `block` when
/// given (returning at once otherwise).
async fn read_group(
    b: &RedisBackend,
    conn: &mut redis::aio::ConnectionManager,
    streams: &[Stream],
    count: usize,
    block: Option<Duration>,
) -> Result<Vec<Entry>> {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP")
        .arg(&b.config.group)
        .arg(&b.config.consumer)
        .arg("COUNT")
        .arg(count.max(1));
    if let Some(block) = block {
        cmd.arg("BLOCK")
            .arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX));
    }
    cmd.arg("STREAMS");
    for stream in streams {
        cmd.arg(b.key(*stream));
    }
    for _ in streams {
        cmd.arg(">");
    }
    match cmd.query_async::<ReadReply>(conn).await {
        Ok(ReadReply(streams)) => Ok(streams
            .into_iter()
            .flat_map(|(key, ids)| {
                let stream = b.stream_named(&key);
                ids.into_iter().map(move |id| (stream, id))
            })
            .collect()),
        Err(e) if is_nogroup(&e) => {
            b.group_lost();
            Ok(Vec::new())
        }
        Err(e) => Err(Error::storage("redis.xreadgroup", e)),
    }
}

/// Parses entries into tasks. An entry that is not a task (written by something else, or by an
/// incompatible version) is moved to the dead-letter stream as it is, not retried forever.
async fn decode(
    b: &RedisBackend,
    entries: Vec<Entry>,
    leases: impl Fn(&str) -> u32,
) -> Result<Vec<Leased>> {
    let mut leased = Vec::with_capacity(entries.len());
    for (stream, entry) in entries {
        let receipt = stream.receipt(&entry.id);
        let raw = match entry.map.get("task") {
            Some(Value::BulkString(bytes)) => bytes.as_slice(),
            _ => &[][..],
        };
        match serde_json::from_slice::<Task>(raw) {
            Ok(task) => leased.push(Leased {
                leases: leases(&entry.id),
                receipt,
                task,
            }),
            Err(e) => {
                tracing::error!(entry = %entry.id, error = %e, "queue entry is not a task; moving it to the dead-letter stream");
                metrics::counter!(crate::metrics::QUEUE_UNDECODABLE_TOTAL).increment(1);
                let reason = format!("undecodable task: {e}");
                let step = super::settle::Step::dead(b, &receipt, raw.to_vec(), &reason);
                super::settle::one(b, step).await?;
            }
        }
    }
    Ok(leased)
}
