//! `WrapFactory`: wraps every protocol a factory builds (Twisted `WrappingFactory`, PO-2).

use core::net::SocketAddr;

use crate::reason::Reason;
use crate::stream::{Protocol, ServerFactory};

/// A factory that wraps each protocol `inner` builds with `wrap(protocol, peer)`: the way to put
/// per-connection policies ([`IdleTimeout`](crate::policy::IdleTimeout),
/// [`Throttled`](crate::policy::Throttled), ...) around an existing factory.
///
/// Refusals pass through untouched (Twisted wraps a refused `None` and crashes, PO-2, KW-9),
/// and `connection_closed` reaches the wrapped factory.
///
/// ```
/// use core::time::Duration;
/// use loomwork::policy::{IdleTimeout, WrapFactory};
/// use loomwork::stream::ServerFactory;
/// # use loomwork::stream::{Protocol, Transport};
/// # struct Echo;
/// # impl Protocol for Echo {
/// #     type Message = ();
/// #     fn data_received(&mut self, d: &mut bytes::BytesMut, _: &mut Transport<'_>) { d.clear(); }
/// # }
/// let mut factory = WrapFactory::new(|_peer| Echo, |echo, _peer| {
///     IdleTimeout::new(echo, Duration::from_secs(60))
/// });
/// assert!(factory.build_protocol("127.0.0.1:9".parse().unwrap()).is_some());
/// ```
#[derive(Debug)]
pub struct WrapFactory<F, W> {
    inner: F,
    wrap: W,
}

impl<F, W, Q> WrapFactory<F, W>
where
    F: ServerFactory,
    W: FnMut(F::Protocol, SocketAddr) -> Q,
    Q: Protocol,
{
    /// Wraps what `inner` builds with `wrap`.
    pub fn new(inner: F, wrap: W) -> Self {
        WrapFactory { inner, wrap }
    }

    /// The wrapped factory.
    pub fn inner(&self) -> &F {
        &self.inner
    }

    /// The wrapped factory, mutably.
    pub fn inner_mut(&mut self) -> &mut F {
        &mut self.inner
    }
}

impl<F, W, Q> ServerFactory for WrapFactory<F, W>
where
    F: ServerFactory,
    W: FnMut(F::Protocol, SocketAddr) -> Q,
    Q: Protocol,
{
    type Protocol = Q;

    fn build_protocol(&mut self, peer: SocketAddr) -> Option<Q> {
        let protocol = self.inner.build_protocol(peer)?;
        Some((self.wrap)(protocol, peer))
    }

    fn connection_closed(&mut self, peer: SocketAddr, reason: &Reason) {
        self.inner.connection_closed(peer, reason);
    }
}
