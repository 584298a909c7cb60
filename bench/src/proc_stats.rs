//! What a process costs: its own CPU time and peak resident set size, and the wall clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// User + system CPU time of this process (all threads) so far, in milliseconds.
pub fn own_cpu_ms() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer cannot fail.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return f64::NAN;
    }
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

/// Peak resident set size of this process (`VmHWM` in /proc/self/status), in KiB.
pub fn own_peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Nanoseconds since the Unix epoch: the clock every part of the run shares.
pub fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// CPU time (user + system, every thread) used so far by this machine's processes named `comm`
/// — a service's, `postgres` or `redis-server` — with what their exited children used: a
/// PostgreSQL backend that has exited is still counted, through the postmaster that reaped it.
/// Milliseconds; `None` when no such process runs here. Whatever else those processes serve in
/// the meantime is counted too.
pub fn service_cpu_ms(comm: &str) -> Option<f64> {
    // SAFETY: sysconf only reads a constant.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks_per_s <= 0 {
        return None;
    }
    let mut ticks = 0u64;
    let mut found = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let path = entry.path();
        let named =
            std::fs::read_to_string(path.join("comm")).is_ok_and(|name| name.trim_end() == comm);
        let Some(stat) = named
            .then(|| std::fs::read_to_string(path.join("stat")).ok())
            .flatten()
        else {
            continue;
        };
        // After the command's closing parenthesis: state is field 0, utime 11, stime 12,
        // cutime 13, cstime 14 (proc(5), fields 14–17).
        let Some((_, fields)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = fields.split_whitespace().collect();
        found = true;
        ticks += fields
            .get(11..15)
            .map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    }
    found.then(|| ticks as f64 * 1e3 / ticks_per_s as f64)
}

/// This machine's CPU time so far, every core: `(idle, total)` in clock ticks, from the first
/// line of `/proc/stat` (idle counts `iowait` too; total is user … steal). `None` when it cannot
/// be read.
pub fn machine_cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .take(8)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let idle = fields.get(3)? + fields.get(4)?;
    Some((idle, fields.iter().sum()))
}

/// The share of this machine's CPU time (every core) idle between two
/// [`machine_cpu_ticks`] readings, in percent.
pub fn idle_percent(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> Option<f64> {
    let ((idle_0, total_0), (idle_1, total_1)) = (before?, after?);
    let total = total_1.checked_sub(total_0).filter(|t| *t > 0)?;
    Some(idle_1.saturating_sub(idle_0) as f64 * 100.0 / total as f64)
}

/// Whether a service URL points at this machine (so its processes are the ones measured).
pub fn on_this_machine(url: &str) -> bool {
    [
        "@127.0.0.1",
        "@localhost",
        "@[::1]",
        "//127.0.0.1",
        "//localhost",
        "//[::1]",
    ]
    .iter()
    .any(|host| url.contains(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_percent_is_the_idle_share_of_the_ticks_between_two_readings() {
        assert_eq!(idle_percent(Some((100, 400)), Some((130, 500))), Some(30.0));
    }

    #[test]
    fn idle_percent_is_unknown_without_two_readings_or_time_between_them() {
        assert_eq!(idle_percent(None, Some((130, 500))), None);
        assert_eq!(idle_percent(Some((100, 400)), Some((100, 400))), None);
        assert_eq!(idle_percent(Some((100, 400)), Some((90, 300))), None);
    }

    #[test]
    fn this_machine_counts_its_idle_time_within_its_total() {
        let (idle, total) = machine_cpu_ticks().expect("/proc/stat on Linux");
        assert!(idle <= total, "idle {idle} of {total}");
    }
}
