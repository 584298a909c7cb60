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
