//! Datagram endpoints on any runtime, for the UDP and multicast examples.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use loomwork::datagram::{Config, DatagramProtocol, Interface};

use crate::Runtime;

/// A running endpoint on the runtime chosen with `--runtime`.
pub enum Endpoint<P: DatagramProtocol> {
    /// On `loomwork-std`.
    Std(loomwork_std::UdpEndpoint<P>),
    /// On `loomwork-smol`.
    Smol(loomwork_smol::UdpEndpoint<P>),
    /// On `loomwork-tokio`.
    Tokio(loomwork_tokio::UdpEndpoint<P>),
}

impl<P> Endpoint<P>
where
    P: DatagramProtocol + Send + 'static,
    P::Message: Send + 'static,
{
    /// `listen_udp` on `runtime`.
    pub fn listen_udp(runtime: Runtime, addr: SocketAddr, protocol: P) -> io::Result<Self> {
        Ok(match runtime {
            Runtime::Std => Endpoint::Std(loomwork_std::listen_udp(addr, protocol)?),
            Runtime::Smol => Endpoint::Smol(loomwork_smol::listen_udp(addr, protocol)?),
            Runtime::Tokio => {
                let _entered = crate::tokio_runtime().enter();
                Endpoint::Tokio(loomwork_tokio::listen_udp(addr, protocol)?)
            }
        })
    }

    /// `listen_multicast_with` on `runtime`, bound to `bind`.
    pub fn listen_multicast(runtime: Runtime, bind: SocketAddr, protocol: P) -> io::Result<Self> {
        let config = Config::default();
        Ok(match runtime {
            Runtime::Std => {
                Endpoint::Std(loomwork_std::listen_multicast_with(bind, protocol, config)?)
            }
            Runtime::Smol => Endpoint::Smol(loomwork_smol::listen_multicast_with(
                bind, protocol, config,
            )?),
            Runtime::Tokio => {
                let _entered = crate::tokio_runtime().enter();
                Endpoint::Tokio(loomwork_tokio::listen_multicast_with(
                    bind, protocol, config,
                )?)
            }
        })
    }
}

impl<P: DatagramProtocol> Endpoint<P> {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        match self {
            Endpoint::Std(h) => h.local_addr(),
            Endpoint::Smol(h) => h.local_addr(),
            Endpoint::Tokio(h) => h.local_addr(),
        }
    }

    /// Asks the endpoint to close gracefully.
    pub fn stop(&self) {
        match self {
            Endpoint::Std(h) => h.stop(),
            Endpoint::Smol(h) => h.stop(),
            Endpoint::Tokio(h) => h.stop(),
        }
    }

    /// A function that asks the endpoint to close, for a signal-watching thread.
    pub fn stopper(&self) -> Box<dyn Fn() + Send>
    where
        P::Message: Send + 'static,
    {
        match self {
            Endpoint::Std(h) => {
                let handle = h.handle();
                Box::new(move || handle.close())
            }
            Endpoint::Smol(h) => {
                let handle = h.handle();
                Box::new(move || handle.close())
            }
            Endpoint::Tokio(h) => {
                let handle = h.handle();
                Box::new(move || handle.close())
            }
        }
    }

    /// Closes the endpoint when SIGINT or SIGTERM arrives (`stop` is [`crate::stop_signal`]'s
    /// receiver), so a client stops cleanly too.
    pub fn stop_on(&self, stop: std::sync::mpsc::Receiver<()>)
    where
        P::Message: Send + 'static,
    {
        let stopper = self.stopper();
        std::thread::spawn(move || {
            if stop.recv().is_ok() {
                stopper();
            }
        });
    }

    /// Waits for the endpoint to end; gives the protocol back.
    pub fn join(self) -> P {
        match self {
            Endpoint::Std(h) => h.join(),
            Endpoint::Smol(h) => smol::block_on(h.join()),
            Endpoint::Tokio(h) => crate::tokio_runtime().block_on(h.join()),
        }
    }
}

/// The wildcard address of `ip`'s family: what a socket that talks to `ip` binds to.
pub fn wildcard_for(ip: IpAddr, port: u16) -> SocketAddr {
    match ip {
        IpAddr::V4(_) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port),
        IpAddr::V6(_) => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port),
    }
}

/// Reads `--interface`: an IPv4 address, or an interface index (IPv6 groups need one).
pub fn parse_interface(text: &str) -> Result<Interface, String> {
    if let Ok(addr) = text.parse::<Ipv4Addr>() {
        return Ok(Interface::Address(addr));
    }
    text.parse::<u32>()
        .map(Interface::Index)
        .map_err(|_| format!("invalid interface {text:?}: expected an IPv4 address or an index"))
}
