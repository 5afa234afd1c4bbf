//! One trainer per output directory: `.simclr.lock` (created exclusively) names the holder's
//! pid, host and start time. A second trainer refuses at once, naming the holder; the lock of
//! a process that no longer exists on this host is taken over with a warning. While holding
//! the lock, leftover temporary files of killed writers are removed.

use crate::{Error, Result};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = ".simclr.lock";

pub struct RunLock {
    path: PathBuf,
    record: String,
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into())
}

/// Whether `pid` names a live process on this host.
fn alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // Signal 0 checks existence; EPERM means it exists under another user.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Seconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// (pid, host, started) of a lock record `pid host unix_seconds`.
fn parse(record: &str) -> Option<(u32, String, u64)> {
    let mut it = record.split_whitespace();
    Some((
        it.next()?.parse().ok()?,
        it.next()?.into(),
        it.next()?.parse().ok()?,
    ))
}

/// The lock's record, waiting up to a second for a holder that has created the file but not yet
/// written it (two trainers started together).
fn read_holder(path: &Path) -> String {
    let mut held = String::new();
    for _ in 0..50 {
        held = std::fs::read_to_string(path).unwrap_or_default();
        if parse(&held).is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    held
}

impl RunLock {
    /// Takes the lock on `dir` or says who holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        // The count tells apart two locks one process takes in turn (an Env reopened in a test).
        static TAKEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = TAKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let record = format!("{} {} {now} {n}\n", std::process::id(), host());
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    f.write_all(record.as_bytes())
                        .and_then(|_| f.sync_all())
                        .map_err(|e| Error::io(&path, e))?;
                    remove_stale_temps(dir);
                    return Ok(RunLock { path, record });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let held = read_holder(&path);
                    match parse(&held) {
                        // This process's own earlier lock: the later Env takes it over.
                        Some((pid, h, _)) if h == host() && pid == std::process::id() => {
                            let _ = std::fs::remove_file(&path);
                        }
                        Some((pid, h, _)) if h == host() && !alive(pid) => {
                            eprintln!(
                                "warning: --out {}: taking over the lock of pid {pid}, which \
                                 no longer runs",
                                dir.display()
                            );
                            let _ = std::fs::remove_file(&path);
                        }
                        Some((pid, h, t)) => {
                            return Err(Error::Config(format!(
                                "--out {} is in use by another trainer: pid {pid} on host {h}, \
                                 started {} (lock {}). Wait for it to finish or use another \
                                 --out; if that process is gone, delete the lock file",
                                dir.display(),
                                utc(t),
                                path.display()
                            )))
                        }
                        // Still unreadable after the wait: a foreign or damaged lock file.
                        None => {
                            return Err(Error::Config(format!(
                                "--out {} is in use by another trainer (lock {} reads {held:?}); \
                                 if none runs, delete the lock file",
                                dir.display(),
                                path.display()
                            )))
                        }
                    }
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Err(Error::Config(format!(
            "--out {}: another trainer took the lock at the same moment",
            dir.display()
        )))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Only our own record: never remove a lock another process has since taken over.
        if std::fs::read_to_string(&self.path).ok().as_deref() == Some(self.record.as_str()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes `.<name>.tmp<pid>` files of `checkpoint::write_atomic` that a killed trainer left:
/// with the lock held, no live writer owns one.
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some((_, pid)) = name.rsplit_once(".tmp") else {
            continue;
        };
        if name.starts_with('.') && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) {
            eprintln!(
                "warning: removing {}, left by an interrupted write",
                e.path().display()
            );
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_764_547_200), "2025-12-01 00:00:00 UTC");
    }
}
