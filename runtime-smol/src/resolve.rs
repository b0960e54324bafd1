//! `resolve(host)` without blocking the executor (Twisted RS-1, RS-2, KW-12).

use std::net::IpAddr;

use loomwork::resolve::{ip_literal, DnsError};

/// Resolves `host` with the system resolver (`getaddrinfo`) on smol's blocking thread pool, so
/// the executor keeps running; every address, IPv4 and IPv6, without duplicates. An IP literal
/// (`127.0.0.1`, `::1`, `[::1]`) is answered at once, without a thread hop.
///
/// ```
/// smol::block_on(async {
///     let addrs = loomwork_smol::resolve("::1").await.unwrap();
///     assert_eq!(addrs, ["::1".parse::<std::net::IpAddr>().unwrap()]);
/// });
/// ```
pub async fn resolve(host: &str) -> Result<Vec<IpAddr>, DnsError> {
    if let Some(ip) = ip_literal(host) {
        return Ok(vec![ip]);
    }
    let host = host.to_owned();
    smol::unblock(move || loomwork_net::resolve(&host)).await
}
