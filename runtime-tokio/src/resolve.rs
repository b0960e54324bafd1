//! `resolve(host)` without blocking the runtime (Twisted RS-1, RS-2, KW-12).

use std::net::IpAddr;

use loomwork::resolve::{ip_literal, DnsError, DnsErrorKind};

/// Resolves `host` with the system resolver (`getaddrinfo`) on tokio's blocking thread pool,
/// so the runtime's workers keep running; every address, IPv4 and IPv6, without duplicates.
/// An IP literal (`127.0.0.1`, `::1`, `[::1]`) is answered at once, without a thread hop.
///
/// # Panics
/// When a name must be looked up outside a tokio runtime.
///
/// ```
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let addrs = rt.block_on(loomwork_tokio::resolve("::1")).unwrap();
/// assert_eq!(addrs, ["::1".parse::<std::net::IpAddr>().unwrap()]);
/// ```
pub async fn resolve(host: &str) -> Result<Vec<IpAddr>, DnsError> {
    if let Some(ip) = ip_literal(host) {
        return Ok(vec![ip]);
    }
    let owned = host.to_owned();
    match tokio::task::spawn_blocking(move || loomwork_net::resolve(&owned)).await {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // The runtime is shutting down: the lookup never ran.
        Err(err) => Err(DnsError::new(
            host,
            DnsErrorKind::Failed,
            Some(err.to_string()),
        )),
    }
}
