//! Private network namespaces for tests. The multicast tests run inside the one that
//! `scripts/netns-test.sh` creates, and guard against running anywhere else (they fail loudly,
//! never skip). Tests that need a namespace of their own (a shaped `lo`, say) re-run
//! themselves in a fresh one with [`rerun_in_fresh_netns`].

/// The interfaces `scripts/netns-setup.sh` creates, and nothing else.
pub const EXPECTED_INTERFACES: [&str; 3] = ["lo", "mc0", "mc1"];

/// The network interfaces of this process's namespace (`/proc/net/dev` is per namespace,
/// unlike `/sys/class/net` without a fresh sysfs mount).
pub fn interfaces() -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/dev").expect("read /proc/net/dev");
    let mut names: Vec<String> = table
        .lines()
        .skip(2)
        .filter_map(|line| line.split(':').next())
        .map(|name| name.trim().to_owned())
        .collect();
    names.sort();
    names
}

/// Panics unless this process is in the namespace netns-test.sh sets up, so a multicast test
/// run by mistake on a host (whose real interfaces it must never use) fails instead of
/// skipping silently.
pub fn assert_private_netns() {
    let found = interfaces();
    assert_eq!(
        found, EXPECTED_INTERFACES,
        "multicast tests must run inside the private network namespace of \
         scripts/netns-test.sh (interfaces lo, mc0, mc1 only); found {found:?}"
    );
}

/// The index of interface `name`, from `/proc/net/if_inet6` (every interface of the
/// namespace has an IPv6 link-local or loopback address there).
pub fn interface_index(name: &str) -> u32 {
    let table = std::fs::read_to_string("/proc/net/if_inet6").expect("read /proc/net/if_inet6");
    table
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.get(5) == Some(&name))
        .and_then(|fields| u32::from_str_radix(fields.get(1)?, 16).ok())
        .unwrap_or_else(|| panic!("no interface {name} with an IPv6 address"))
}

/// Set (to `1`) in a test process that [`rerun_in_fresh_netns`] started inside its namespace.
pub const INSIDE_FRESH_NETNS: &str = "LOOMWORK_IN_FRESH_NETNS";

/// Set (to `1`) where a test that needs a fresh namespace must run rather than skip: CI sets
/// it (`.ci/extra/netns-udp-stop.sh`), so a runner without root or iproute2 fails loudly.
pub const REQUIRE_NETNS: &str = "LOOMWORK_REQUIRE_NETNS";

/// Runs the test `name` (its full libtest name, e.g. `on_std::abort_ends_at_once`) again, alone,
/// in a fresh private network namespace (`unshare -n`, as `scripts/netns-test.sh` does), and
/// fails if it fails there.
///
/// Returns true in the re-run process, which is inside the namespace: the caller goes on with
/// the test body there. Returns false in the outer process, once the re-run has passed or the
/// test was skipped. It is skipped only when this process cannot create a namespace or lacks
/// `tc` or `ip` (iproute2); the skip is written straight to stderr, past libtest's capture, so it
/// never passes unnoticed, and it is a failure when [`REQUIRE_NETNS`] is set.
///
/// The namespace is the re-run's alone and vanishes with it: whatever the test does to its
/// network (a shaped `lo`, see [`shape_loopback`]) never touches the host's.
pub fn rerun_in_fresh_netns(name: &str) -> bool {
    use std::io::Write;
    use std::process::{Command, Stdio};

    if flag(INSIDE_FRESH_NETNS) {
        return true;
    }
    let works = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    let missing: Vec<&str> = [
        ("unshare -n (root)", works("unshare", &["-n", "true"])),
        ("tc (iproute2)", works("tc", &["-V"])),
        ("ip (iproute2)", works("ip", &["-V"])),
    ]
    .into_iter()
    .filter_map(|(what, ok)| (!ok).then_some(what))
    .collect();
    if !missing.is_empty() {
        let message = format!(
            "SKIPPED {name}: needs a fresh network namespace; missing: {}",
            missing.join(", ")
        );
        assert!(
            !flag(REQUIRE_NETNS),
            "{message} ({REQUIRE_NETNS}=1 forbids skipping)"
        );
        // Straight to the process's stderr: libtest captures only `print!` and `eprint!`.
        let _ = writeln!(std::io::stderr(), "{message}");
        return false;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let output = Command::new("unshare")
        .arg("-n")
        .arg("--")
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE_FRESH_NETNS, "1")
        .stdin(Stdio::null())
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Shown with the outer test's output (`--nocapture`, or when it fails).
    println!("--- {name} inside its namespace ---\n{stdout}{stderr}");
    assert!(
        output.status.success(),
        "{name} failed inside its namespace ({})",
        output.status
    );
    // A name that matched no test would "pass" silently.
    assert!(
        stdout.contains("1 passed"),
        "{name} did not run inside its namespace"
    );
    false
}

/// Brings up `lo` of a fresh namespace (see [`rerun_in_fresh_netns`]) behind a slow
/// token-bucket qdisc, `rate` (in `tc` notation, e.g. `8kbit`) with a 1600-byte burst and room
/// for 100 kB of backlog: datagrams sent over it queue in the qdisc, and a socket with a small
/// send buffer soon finds it full (`EAGAIN`) and stays so.
///
/// Panics unless `lo` is the namespace's only interface, so it can never shape a host's.
pub fn shape_loopback(rate: &str) {
    let found = interfaces();
    assert_eq!(
        found,
        ["lo"],
        "shape_loopback runs only in a fresh namespace; found {found:?}"
    );
    run("ip", &["link", "set", "lo", "up"]);
    run(
        "tc",
        &[
            "qdisc", "add", "dev", "lo", "root", "tbf", "rate", rate, "burst", "1600", "limit",
            "100000",
        ],
    );
}

/// Packets waiting in `lo`'s root qdisc (the `backlog ...b Np` of `tc -s qdisc show`).
pub fn loopback_backlog() -> u64 {
    let output = std::process::Command::new("tc")
        .args(["-s", "qdisc", "show", "dev", "lo"])
        .output()
        .expect("run tc");
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .skip_while(|word| *word != "backlog")
        .nth(2)
        .and_then(|packets| packets.strip_suffix('p')?.parse().ok())
        .unwrap_or_else(|| panic!("no backlog in tc's answer: {text}"))
}

fn run(program: &str, args: &[&str]) {
    let status = std::process::Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|err| panic!("{program}: {err}"));
    assert!(status.success(), "{program} {args:?}: {status}");
}

/// True when the environment variable `name` is `1`.
fn flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| v == "1")
}
