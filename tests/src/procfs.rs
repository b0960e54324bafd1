//! What a process holds, read from Linux's `/proc`: for the load tools that watch a server
//! process from outside (`echo_load`, the bench suite's memory measurement). `None` where
//! `/proc` is not there.

/// Resident memory of process `pid` in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Open descriptors of process `pid`.
pub fn fd_count(pid: u32) -> Option<usize> {
    entries(pid, "fd")
}

/// Threads of process `pid`.
pub fn thread_count(pid: u32) -> Option<usize> {
    entries(pid, "task")
}

/// CPU time process `pid` has used so far, user and system, in clock ticks (`utime + stime`
/// of `/proc/PID/stat`; usually 100 a second).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its `)` are plain.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    // utime and stime are fields 14 and 15, so the 12th and 13th after the name.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn entries(pid: u32, dir: &str) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/{dir}"))
        .ok()
        .map(|d| d.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_kib(me).is_some_and(|kib| kib > 0));
        // Other tests open and close descriptors in parallel: only what always holds.
        assert!(
            fd_count(me).is_some_and(|n| n >= 3),
            "stdin, stdout, stderr at least"
        );
        assert!(thread_count(me).is_some_and(|n| n >= 1));
        assert_eq!(rss_kib(u32::MAX), None, "no such process");
    }
}
