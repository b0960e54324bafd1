//! `AcceptProxyFactory`: a listener's PROXY policy (required, or trusted ranges only).

use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, SocketAddr};
use core::str::FromStr;
use core::time::Duration;

use crate::proxy::{AcceptProxy, Expect, DEFAULT_HEADER_TIMEOUT, MAX_V2_LEN};
use crate::reason::Reason;
use crate::stream::ServerFactory;

/// A listener's PROXY protocol policy, for [`AcceptProxyFactory`].
///
/// | peer | `required` | not `required` |
/// |---|---|---|
/// | in a trusted range (or no ranges given) | must send a header | header read if present |
/// | outside every trusted range | refused (`Reason::Rejected`) | passed through, any header left as data |
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptConfig {
    /// Whether a header is required (true) or read only when present.
    pub required: bool,
    /// The peers allowed to send headers; `None`: every peer.
    pub trusted: Option<Vec<Cidr>>,
    /// How long the header may take ([`DEFAULT_HEADER_TIMEOUT`] by default; `None`: forever).
    pub header_timeout: Option<Duration>,
    /// The longest header accepted (the specification's maximum by default).
    pub max_header_len: usize,
}

impl AcceptConfig {
    /// Every connection must start with a header, from any peer (HAProxy's `accept-proxy`).
    pub fn required() -> Self {
        AcceptConfig {
            required: true,
            trusted: None,
            header_timeout: Some(DEFAULT_HEADER_TIMEOUT),
            max_header_len: MAX_V2_LEN,
        }
    }

    /// A header is read when present, and only from peers in `trusted`; others are served
    /// as they are.
    pub fn if_present_from(trusted: Vec<Cidr>) -> Self {
        AcceptConfig {
            required: false,
            trusted: Some(trusted),
            ..Self::required()
        }
    }

    /// What a connection from `peer` is expected to send; `None`: refuse it.
    pub fn expect(&self, peer: SocketAddr) -> Option<Expect> {
        let ip = peer.ip().to_canonical();
        let trusted = self
            .trusted
            .as_ref()
            .map_or(true, |ranges| ranges.iter().any(|range| range.contains(ip)));
        match (trusted, self.required) {
            (true, true) => Some(Expect::Required),
            (true, false) => Some(Expect::IfPresent),
            (false, true) => None,
            (false, false) => Some(Expect::Never),
        }
    }
}

/// Wraps every protocol a factory builds in [`AcceptProxy`], under one [`AcceptConfig`]
/// (Twisted's `HAProxyWrappingFactory`).
///
/// The wrapped factory sees the connection's own peer (the proxy) in `build_protocol` and
/// `connection_closed`; the protocols it builds see the real client through their transport.
///
/// ```
/// use loomwork::proxy::{AcceptConfig, AcceptProxyFactory};
/// use loomwork::stream::ServerFactory;
/// # use loomwork::stream::{Protocol, Transport};
/// # struct Echo;
/// # impl Protocol for Echo {
/// #     type Message = ();
/// #     fn data_received(&mut self, d: &mut bytes::BytesMut, _: &mut Transport<'_>) { d.clear(); }
/// # }
/// let ranges = vec!["10.0.0.0/8".parse().unwrap()];
/// let mut factory = AcceptProxyFactory::new(|_peer| Echo, AcceptConfig {
///     required: true,
///     ..AcceptConfig::if_present_from(ranges)
/// });
/// assert!(factory.build_protocol("10.1.2.3:5000".parse().unwrap()).is_some());
/// assert!(factory.build_protocol("192.0.2.1:5000".parse().unwrap()).is_none());
/// ```
#[derive(Debug)]
pub struct AcceptProxyFactory<F> {
    inner: F,
    config: AcceptConfig,
}

impl<F: ServerFactory> AcceptProxyFactory<F> {
    /// Wraps what `inner` builds under `config`.
    pub fn new(inner: F, config: AcceptConfig) -> Self {
        AcceptProxyFactory { inner, config }
    }

    /// The wrapped factory.
    pub fn inner(&self) -> &F {
        &self.inner
    }

    /// The wrapped factory, mutably.
    pub fn inner_mut(&mut self) -> &mut F {
        &mut self.inner
    }

    /// The policy.
    pub fn config(&self) -> &AcceptConfig {
        &self.config
    }
}

impl<F: ServerFactory> ServerFactory for AcceptProxyFactory<F> {
    type Protocol = AcceptProxy<F::Protocol>;

    fn build_protocol(&mut self, peer: SocketAddr) -> Option<Self::Protocol> {
        let expect = self.config.expect(peer)?;
        let inner = self.inner.build_protocol(peer)?;
        Some(
            AcceptProxy::new(inner, expect)
                .header_timeout(self.config.header_timeout)
                .max_header_len(self.config.max_header_len),
        )
    }

    fn connection_closed(&mut self, peer: SocketAddr, reason: &Reason) {
        self.inner.connection_closed(peer, reason);
    }
}

/// An IP address range in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or one address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The range of `network`'s first `prefix` bits; `None` if `prefix` is longer than the
    /// address.
    pub fn new(network: IpAddr, prefix: u8) -> Option<Self> {
        let bits = if network.is_ipv4() { 32 } else { 128 };
        (prefix <= bits).then_some(Cidr { network, prefix })
    }

    /// True when `ip` is in the range (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let shift = |bits: u32| bits - u32::from(self.prefix);
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(shift(32)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(shift(128)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Why a [`Cidr`] could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CidrError;

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an IP address range (ADDRESS or ADDRESS/PREFIX)")
    }
}

impl core::error::Error for CidrError {}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, CidrError> {
        let (ip, prefix) = match text.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = ip.parse().map_err(|_| CidrError)?;
        let full = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse().map_err(|_| CidrError)?,
            None => full,
        };
        Cidr::new(network, prefix).ok_or(CidrError)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}
