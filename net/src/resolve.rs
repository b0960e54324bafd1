//! `resolve(host)`: the blocking system resolver (`getaddrinfo`), all addresses, IP literals
//! answered without a lookup (Twisted RS-1, RS-2, KW-12).

use std::net::{IpAddr, ToSocketAddrs};

use loomwork::resolve::{ip_literal, DnsError, DnsErrorKind};

/// Resolves `host` to every address the system resolver knows, IPv4 and IPv6, in the
/// resolver's order and without duplicates. Blocks the calling thread for the lookup.
///
/// An IP literal (`127.0.0.1`, `::1`, `[::1]`) is answered at once. Unlike Twisted's
/// `reactor.resolve` (IPv4 only, first address only) every address comes back.
///
/// ```
/// let addrs = loomwork_net::resolve("127.0.0.1").unwrap();
/// assert_eq!(addrs, ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
/// let err = loomwork_net::resolve("").unwrap_err();
/// assert_eq!(err.to_string(), "DNS lookup failed: ");
/// ```
pub fn resolve(host: &str) -> Result<Vec<IpAddr>, DnsError> {
    if let Some(ip) = ip_literal(host) {
        return Ok(vec![ip]);
    }
    if host.is_empty() || host.contains('\0') {
        return Err(DnsError::new(host, DnsErrorKind::InvalidName, None));
    }
    // std's getaddrinfo wrapper does not expose the EAI_* code, so a failed lookup is
    // `Failed` with the resolver's message; an empty answer is `NotFound`.
    let addrs = (host, 0u16)
        .to_socket_addrs()
        .map_err(|err| DnsError::new(host, DnsErrorKind::Failed, Some(err.to_string())))?;
    let mut ips: Vec<IpAddr> = Vec::new();
    for addr in addrs {
        if !ips.contains(&addr.ip()) {
            ips.push(addr.ip());
        }
    }
    if ips.is_empty() {
        return Err(DnsError::new(host, DnsErrorKind::NotFound, None));
    }
    Ok(ips)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_answered_without_a_lookup() {
        assert_eq!(resolve("::1").unwrap(), ["::1".parse::<IpAddr>().unwrap()]);
        assert_eq!(
            resolve("[::1]").unwrap(),
            ["::1".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn localhost_resolves_to_loopback() {
        let addrs = resolve("localhost").unwrap();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(IpAddr::is_loopback), "{addrs:?}");
    }

    #[test]
    fn an_invalid_name_is_a_typed_error() {
        let err = resolve("bad\0name").unwrap_err();
        assert_eq!(err.kind(), DnsErrorKind::InvalidName);
        assert_eq!(err.name(), "bad\0name");
        // Names that reach a real resolver are not tested here: tests stay on loopback, and a
        // lookup of an unknown name may leave the host.
    }
}
