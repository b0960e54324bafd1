//! The datagram `Endpoint` fuzz target's check (feature `fuzz`), kept in core so that a plain
//! `cargo test` replays the committed corpus through exactly the code `cargo fuzz` runs.
//!
//! A user of the test kit's [`DatagramCheck`]: `data[0]` chooses the limits on queued outputs
//! and the socket's family, `data[1]` the limit on queued bytes; the rest is the driver's
//! schedule (datagrams from four peers, failed sends and commands, ICMP refusals, a socket that
//! stops taking sends, time, messages, close, abort, fatal errors), around a protocol that
//! itself sends, connects, disconnects, joins groups, sets timers and closes as the bytes it
//! receives tell it to. The driver checks the endpoint's invariants (queue limits, nothing
//! output after the final `Close`, sends within the family's payload limit, deadlines only
//! while open or closing, a close bounded by its deadline, `start_protocol` first and
//! `stop_protocol` once, last); the protocol's own count of its callbacks is this check's
//! invariant, a second view of the same lifecycle.

use alloc::format;
use alloc::string::{String, ToString};
use core::net::SocketAddr;
use core::time::Duration;

use bytes::Bytes;

use crate::datagram::{Command, Config, DatagramProtocol, DatagramTransport, Interface};
use crate::reason::Reason;
use crate::testing::DatagramCheck;
use crate::timer::TimerId;

/// Runs the schedule encoded in `data` against an [`Endpoint`](crate::datagram::Endpoint);
/// `Err` names the first violated invariant, with the operations that led to it.
pub fn check_endpoint(data: &[u8]) -> Result<(), String> {
    let Some((head, ops)) = data.split_at_checked(2) else {
        return Ok(());
    };
    let config = Config {
        max_queued: Some(1 + usize::from(head[0] % 16)),
        max_queued_bytes: Some(1 + usize::from(head[1]) * 1024),
        ..Config::default()
    };
    let local = if head[0] & 0x80 != 0 {
        SocketAddr::from(([0xfd00, 0, 0, 0, 0, 0, 0, 0xa], 12_345))
    } else {
        SocketAddr::from(([10, 0, 0, 1], 12_345))
    };
    DatagramCheck::protocol(Chaotic::default)
        .config(config)
        .local(local)
        .messages(|u| u.arbitrary::<u8>())
        .invariant(|p: &Chaotic| {
            if p.starts != 1 || p.stops > 1 || p.calls_after_stop > 0 {
                return Err(format!(
                    "the protocol counted {} starts, {} stops, {} calls after stop",
                    p.starts, p.stops, p.calls_after_stop
                ));
            }
            Ok(())
        })
        .fuzz_checked(ops)
        .map_err(|violation| violation.to_string())
}

/// Peer `n % 4` of the check's, of either family (bit 5 picks IPv6), so the protocol connects
/// to the peers the driver sends from and sends across families too.
fn peer(n: u8) -> SocketAddr {
    let port = 50_001 + u16::from(n % 4);
    if n & 0x20 != 0 {
        SocketAddr::from(([0xfd00, 0, 0, 0, 0, 0, 0, 1], port))
    } else {
        SocketAddr::from(([192, 168, 1, 1], port))
    }
}

/// A protocol steered by the bytes it receives and the messages it is posted.
#[derive(Default)]
struct Chaotic {
    starts: u32,
    stops: u32,
    calls_after_stop: u32,
}

impl Chaotic {
    fn called(&mut self) {
        self.calls_after_stop += u32::from(self.stops > 0);
    }

    fn act(&mut self, what: u8, tx: &mut DatagramTransport<'_>) {
        let _ = match what % 9 {
            0 => tx
                .send(Bytes::from(alloc::vec![what; usize::from(what) * 300]))
                .map_err(drop),
            1 => tx
                .send_to(
                    Bytes::from(alloc::vec![what; usize::from(what) * 40]),
                    peer(what),
                )
                .map_err(drop),
            2 => tx.connect(peer(what)).map_err(drop),
            3 => tx.disconnect().map_err(drop),
            4 => tx
                .join_group([239, 1, 1, 1].into(), Interface::Any)
                .map_err(drop),
            5 => tx.set_ttl(u32::from(what)).map_err(drop),
            6 => {
                tx.call_later(Duration::from_millis(u64::from(what)));
                Ok(())
            }
            7 => {
                tx.close();
                Ok(())
            }
            _ => tx.set_loopback(what & 1 == 1).map_err(drop),
        };
    }
}

impl DatagramProtocol for Chaotic {
    type Message = u8;

    fn start_protocol(&mut self, tx: &mut DatagramTransport<'_>) {
        self.starts += 1;
        tx.call_later(Duration::from_millis(100));
    }

    fn datagram_received(
        &mut self,
        data: Bytes,
        _: SocketAddr,
        _: bool,
        tx: &mut DatagramTransport<'_>,
    ) {
        self.called();
        if let Some(&first) = data.first() {
            self.act(first.wrapping_add(data.len() as u8), tx);
        }
    }

    fn connection_refused(&mut self, tx: &mut DatagramTransport<'_>) {
        self.called();
        self.act(0, tx);
    }

    fn send_failed(&mut self, _: Option<SocketAddr>, _: &Reason, tx: &mut DatagramTransport<'_>) {
        self.called();
        self.act(1, tx);
    }

    fn command_failed(&mut self, _: &Command, _: &Reason, tx: &mut DatagramTransport<'_>) {
        self.called();
        self.act(2, tx);
    }

    fn timer_fired(&mut self, _: TimerId, tx: &mut DatagramTransport<'_>) {
        self.called();
        self.act(1, tx);
    }

    fn message(&mut self, message: u8, tx: &mut DatagramTransport<'_>) {
        self.called();
        self.act(message, tx);
    }

    fn stop_protocol(&mut self, _: &Reason) {
        self.called();
        self.stops += 1;
    }
}
