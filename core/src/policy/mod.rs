//! Policies: Twisted's `twisted.protocols.policies` as composable, sans-IO wrappers.
//!
//! Each policy is a plain generic type around any [`Protocol`](crate::stream::Protocol) or
//! [`ServerFactory`](crate::stream::ServerFactory), so they nest freely and cost nothing on
//! the hot path (no boxing, no dynamic dispatch). Time comes from the transport (`now`), and
//! every timer a policy needs is a transport timer, so it dies with the connection (TM-4).
//!
//! | Twisted | loomwork |
//! |---|---|
//! | `TimeoutMixin` | [`IdleTimer`], embedded in a protocol |
//! | `TimeoutFactory` / `TimeoutProtocol` | [`IdleTimeout`] |
//! | `ThrottlingFactory` | [`Throttled`] with a [`RateLimit`] per connection or shared by a server |
//! | `LimitTotalConnectionsFactory`, `LimitConnectionsByPeer` | [`LimitConnections`] |
//! | `WrappingFactory` | [`WrapFactory`] |
//! | `TrafficLoggingFactory` | `TrafficLog` (feature `log`) |
//!
//! An idle timeout around a throttled echo, for every peer a factory accepts:
//!
//! ```
//! use core::time::Duration;
//! use bytes::BytesMut;
//! use loomwork::policy::{IdleTimeout, Rate, Throttled, WrapFactory};
//! use loomwork::stream::{Protocol, ServerFactory, Transport};
//!
//! struct Echo;
//! impl Protocol for Echo {
//!     type Message = ();
//!     fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
//!         let _ = tx.write(data.split().freeze());
//!     }
//! }
//!
//! let mut factory = WrapFactory::new(|_peer| Echo, |echo, _peer| {
//!     let throttled = Throttled::new(echo, Some(Rate::per_second(64 * 1024)), None);
//!     IdleTimeout::new(throttled, Duration::from_secs(30))
//! });
//! assert!(factory.build_protocol("127.0.0.1:9".parse().unwrap()).is_some());
//! ```

#[cfg(feature = "fuzz")]
pub mod fuzzing;
mod idle;
mod idle_timer;
mod limit;
mod rate;
mod throttle;
#[cfg(feature = "log")]
mod traffic_log;
mod wrapping;

pub use idle::{CloseWhenIdle, IdleTimeout, OnIdle};
pub use idle_timer::IdleTimer;
pub use limit::{ConnectionLimits, LimitConnections, Limited, Overflow, PeerKey};
pub use rate::{Budget, Rate, RateLimit};
pub use throttle::Throttled;
#[cfg(feature = "log")]
pub use traffic_log::{TrafficLog, TARGET as TRAFFIC_LOG_TARGET};
pub use wrapping::WrapFactory;

#[cfg(test)]
mod tests;
