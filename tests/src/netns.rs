//! Guards for tests that must run inside the private network namespace that
//! `scripts/netns-test.sh` creates: they fail loudly anywhere else, never skip.

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
