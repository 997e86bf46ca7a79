//! CPU time from /proc, used by the benches to state what an operation costs: unlike
//! throughput it does not depend on what else the machine is running. Linux reports it in
//! USER_HZ, 100 per second on every mainstream configuration.

/// Clock ticks used by this process (server, node and load generator alike) and by the
/// `postgres` processes of the bench's server once [`count_server_of`] named it (so the
/// database's share is counted on Postgres runs; none on SQLite runs).
pub struct CpuTicks {
    pub own: u64,
    pub postgres: u64,
}

/// Clock ticks per second (`USER_HZ`).
pub const TICKS_PER_SECOND: f64 = 100.0;

/// The postmaster whose processes are counted (see [`count_server_of`]).
static POSTMASTER: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// Counts only the Postgres server that runs backend `backend_pid` (`SELECT pg_backend_pid()`
/// on a connection to it): its postmaster and that postmaster's children. Other clusters on
/// the machine (a test suite's, say) are left out.
pub fn count_server_of(backend_pid: i32) {
    let parent = std::fs::read_to_string(format!("/proc/{backend_pid}/stat"))
        .ok()
        .and_then(|stat| field(&stat, 1));
    if let Some(postmaster) = parent {
        let _ = POSTMASTER.set(postmaster);
    }
}

impl CpuTicks {
    pub fn sample() -> Self {
        let own = proc_ticks("/proc/self/stat").unwrap_or(0);
        let mut postgres = 0;
        let Some(&postmaster) = POSTMASTER.get() else {
            return Self { own, postgres };
        };
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let dir = entry.path();
                let is_postgres =
                    std::fs::read_to_string(dir.join("comm")).is_ok_and(|c| c.trim() == "postgres");
                if !is_postgres {
                    continue;
                }
                let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
                    continue;
                };
                let pid = entry.file_name().to_string_lossy().parse::<u64>().ok();
                let ours = pid == Some(postmaster) || field(&stat, 1) == Some(postmaster);
                if ours {
                    postgres += ticks(&stat).unwrap_or(0);
                }
            }
        }
        Self { own, postgres }
    }

    pub fn since(&self, before: &CpuTicks) -> CpuTicks {
        CpuTicks {
            own: self.own.saturating_sub(before.own),
            postgres: self.postgres.saturating_sub(before.postgres),
        }
    }
}

/// utime + stime of one process, from its `/proc/<pid>/stat`.
fn proc_ticks(path: &str) -> Option<u64> {
    ticks(&std::fs::read_to_string(path).ok()?)
}

/// utime + stime in a `/proc/<pid>/stat` line.
fn ticks(stat: &str) -> Option<u64> {
    Some(field(stat, 11)? + field(stat, 12)?)
}

/// The `n`th numeric field after the parenthesised command name of a `/proc/<pid>/stat` line
/// (1: parent pid, 11: utime, 12: stime).
fn field(stat: &str, n: usize) -> Option<u64> {
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(n)?
        .parse()
        .ok()
}
