//! The PROXY protocol (HAProxy's, v1 and v2): how a server behind a load balancer learns who
//! the client really is (Twisted's `twisted.protocols.haproxy`).
//!
//! - Receiving: [`AcceptProxy`] wraps any protocol, [`AcceptProxyFactory`] any factory under
//!   a listener's policy ([`AcceptConfig`]: required, or only from trusted [`Cidr`] ranges).
//!   The wrapped protocol sees the real client in [`Transport::peer`] from its very first
//!   callback, `connection_made` included (Twisted's wrapper shows the proxy's address
//!   there), and the header with its TLVs in [`Transport::proxy_header`].
//! - Parsing: [`decode`] takes a [`Header`] off a receive buffer, v1 or v2, zero-copy, with
//!   the `Ok(None)` = "need more" contract of the framers; a header split anywhere, down to one
//!   byte per read, parses the same as a whole one, and an invalid one is refused as soon as
//!   the bytes prove it.
//! - Sending: [`encode_v1`] and [`encode_v2`] write a header for an upstream.
//!
//! Memory is bounded: a v1 header is at most [`MAX_V1_LEN`] bytes, a v2 header at most
//! [`MAX_V2_LEN`] (or the configured maximum), and a header that never finishes is evicted by
//! the header timeout ([`DEFAULT_HEADER_TIMEOUT`]).
//!
//! [`Transport::peer`]: crate::stream::Transport::peer
//! [`Transport::proxy_header`]: crate::stream::Transport::proxy_header

mod accept;
mod decode;
mod encode;
mod error;
mod factory;
#[cfg(any(test, feature = "testing"))]
pub mod fuzzing;
mod header;
mod tlv;
mod v1;
mod v2;

pub use accept::{AcceptProxy, Expect, DEFAULT_HEADER_TIMEOUT};
pub use decode::{decode, detect, Detected};
pub use encode::{encode_v1, encode_v2};
pub use error::{EncodeError, ParseError};
pub use factory::{AcceptConfig, AcceptProxyFactory, Cidr, CidrError};
pub use header::{kind, Addresses, Command, Header, SocketKind, Version};
pub use tlv::{Ssl, Tlv, Tlvs};
pub use v1::MAX_V1_LEN;
pub use v2::{MAX_V2_LEN, SIGNATURE};

#[cfg(test)]
mod tests;
