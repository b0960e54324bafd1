//! Blocking std-socket runtime for loomwork.

mod resolve;
pub mod udp;

pub use resolve::resolve;
pub use udp::{
    adopt_udp, listen_multicast, listen_multicast_with, listen_udp, listen_udp_with, UdpHandle,
    UdpPoster,
};
