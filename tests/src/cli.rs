//! Flag types shared by the load tools in `src/bin/` (their flags are parsed with clap).

use std::net::SocketAddr;
use std::time::Duration;

/// A `--connect` address, refused unless it is on loopback: the load tools send traffic to
/// this machine only.
pub fn loopback(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text.parse().map_err(|e| format!("{e}"))?;
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err("loopback addresses only".into())
    }
}

/// A duration given in whole seconds (`--timeout-s 30`).
pub fn seconds(text: &str) -> Result<Duration, String> {
    text.parse()
        .map(Duration::from_secs)
        .map_err(|e| format!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_accepted() {
        assert!(loopback("127.0.0.1:1").is_ok());
        assert!(loopback("[::1]:1").is_ok());
        assert_eq!(
            loopback("10.0.0.1:1"),
            Err("loopback addresses only".into())
        );
        assert!(loopback("nonsense").is_err());
        assert_eq!(seconds("3"), Ok(Duration::from_secs(3)));
    }
}
