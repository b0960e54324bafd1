//! The network's own loop: admitting and accepting connections, one step of a connection
//! (mail, bytes, faults), reporting ends, finding and firing the next deadline.

use alloc::boxed::Box;
use core::net::SocketAddr;

use super::erased::{Closed, Endpoint};
use super::{Client, ConnId, Link, StreamNetwork, CLIENT, MAX_SETTLE_STEPS, SERVER};
use crate::reason::Reason;
use crate::testing::{StreamEnd, Wire};
use crate::time::Instant;

impl StreamNetwork {
    pub(super) fn end(&self, id: ConnId) -> Option<&dyn Endpoint> {
        self.links.get(id.link())?.ends[id.side()].as_deref()
    }

    pub(super) fn end_mut(&mut self, id: ConnId) -> Option<&mut (dyn Endpoint + 'static)> {
        self.links.get_mut(id.link())?.ends[id.side()].as_deref_mut()
    }

    pub(super) fn next_port(&mut self) -> u16 {
        self.next_port = self.next_port.wrapping_add(1).max(1);
        self.next_port
    }

    pub(super) fn open_listener(&self, addr: SocketAddr) -> Option<usize> {
        self.listeners.iter().position(|l| l.open && l.addr == addr)
    }

    /// Decides an attempt to `addr`: the listener that accepts it, or why it is refused.
    pub(super) fn admit(&mut self, addr: SocketAddr) -> Result<usize, Reason> {
        let listener = self
            .open_listener(addr)
            .filter(|&l| !self.listeners[l].refusing);
        let injected = listener.is_some() && self.draw(self.config.faults.refuse);
        match listener {
            Some(l) if !injected => Ok(l),
            _ => {
                self.stats.refusals += 1;
                self.stats.refusals_injected += u64::from(injected);
                Err(Reason::Refused)
            }
        }
    }

    /// Connects a new client end, built by `client_end`, to a server end that `listener`'s
    /// factory builds (first, as a kernel completes the accept before the dialer hears).
    pub(super) fn accept(
        &mut self,
        listener: usize,
        client: Option<usize>,
        client_end: impl FnOnce(Instant, u64, SocketAddr, SocketAddr) -> Option<Box<dyn Endpoint>>,
    ) -> ConnId {
        let now = self.now;
        let index = self.links.len();
        let (client_id, server_id) = (ConnId::new(index, CLIENT), ConnId::new(index, SERVER));
        let client_addr = SocketAddr::from(([127, 0, 0, 2], self.next_port()));
        let l = &mut self.listeners[listener];
        let server_addr = l.addr;
        let server = l
            .factory
            .build(now, server_id.0, server_addr, client_addr, &l.config);
        if server.is_some() {
            l.connections.push(server_id);
        }
        let client_end = client_end(now, client_id.0, client_addr, server_addr);
        let mut wires = [Wire::default(), Wire::default()];
        // An end whose factory refused was accepted and closed at once: the other reads EOF.
        if server.is_none() {
            wires[SERVER].shut();
        }
        if client_end.is_none() {
            wires[CLIENT].shut();
        }
        let reported = [client_end.is_none(), server.is_none()];
        self.links.push(Link {
            client,
            listener,
            client_addr,
            ends: [client_end, server],
            wires,
            stalled_until: [None, None],
            bytes: 0,
            reported,
        });
        self.stats.connects += 1;
        client_id
    }

    /// Carries out a connector's dial.
    pub(super) fn dial_for(&mut self, client: usize) {
        let now = self.now;
        let addr = self.clients[client].addr;
        let listener = match self.admit(addr) {
            Ok(listener) => listener,
            Err(reason) => {
                if let Some(c) = self.clients[client].connector.as_mut() {
                    c.failed(now, reason);
                }
                return;
            }
        };
        let Client {
            connector, config, ..
        } = &mut self.clients[client];
        let Some(mut connector) = connector.take() else {
            return;
        };
        let config = config.clone();
        let id = self.accept(listener, Some(client), |now, id, local, peer| {
            connector.connected(now, id, local, peer, &config)
        });
        let slot = &mut self.clients[client];
        slot.connector = Some(connector);
        slot.connections.push(id);
    }

    /// Mail, then bytes, then faults, for one connection.
    pub(super) fn step_link(&mut self, index: usize, now: Instant) -> bool {
        let max_deliveries = self.config.deliveries_per_step.max(1);
        let (capacity, max_read) = (self.config.wire_capacity, self.config.max_read.max(1));
        let link = &mut self.links[index];
        let mut delivered = 0;
        // Mail first, so that what a delivery queues leaves in the same round.
        for end in link.ends.iter_mut().flatten() {
            delivered += end.deliver(now, max_deliveries);
        }
        for stall in &mut link.stalled_until {
            if stall.is_some_and(|until| until <= now) {
                *stall = None;
            }
        }
        let gates = link.stalled_until.map(|s| s.is_none());
        let (mut closed_client, mut closed_server) = (Closed, Closed);
        let [client, server] = &mut link.ends;
        let client: &mut dyn StreamEnd = match client {
            Some(end) => end.stream(),
            None => &mut closed_client,
        };
        let server: &mut dyn StreamEnd = match server {
            Some(end) => end.stream(),
            None => &mut closed_server,
        };
        let [to_server, to_client] = &mut link.wires;
        let pumped = Wire::pump_gated(
            client,
            server,
            [to_server, to_client],
            now,
            capacity,
            max_read,
            gates,
        );
        let before = link.bytes;
        let sent = pumped.sent.map(|n| n as u64);
        link.bytes += sent[0] + sent[1];
        let after = link.bytes;
        self.stats.bytes_moved += sent[0] + sent[1];
        self.stats.deliveries += delivered as u64;
        if after > before {
            self.draw_faults(index, before, after, sent);
        }
        pumped.moved || delivered > 0
    }

    /// The random faults for a connection that just moved bytes.
    pub(super) fn draw_faults(&mut self, index: usize, before: u64, after: u64, sent: [u64; 2]) {
        let faults = self.config.faults.clone();
        let mut reset = self.draw(faults.reset_per_step);
        if faults.reset_per_block > 0.0 && faults.reset_block > 0 {
            let block = faults.reset_block as u64;
            for _ in before / block..after / block {
                reset |= self.draw(faults.reset_per_block);
            }
        }
        if reset {
            self.reset_link(index);
            return;
        }
        // Index 0 is `Direction::ToServer`, written by the client end; 1 the other way.
        for (direction, sent) in sent.into_iter().enumerate() {
            let stalled = self.links[index].stalled_until[direction].is_some();
            if sent > 0 && !stalled && self.draw(faults.stall) {
                self.links[index].stalled_until[direction] = Some(self.now + faults.stall_for);
                self.stats.stalls_injected += 1;
            }
        }
    }

    /// True with probability `p`; draws nothing when `p` is 0.
    pub(super) fn draw(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.next_f64() < p
    }

    pub(super) fn reset_link(&mut self, index: usize) -> bool {
        let now = self.now;
        let Some(link) = self.links.get_mut(index) else {
            return false;
        };
        let mut reset = false;
        for end in link.ends.iter_mut().flatten() {
            if !end.is_closed() {
                end.handle_error(now, Reason::Reset);
                reset = true;
            }
        }
        if reset {
            // What was in flight is gone with the connection.
            link.wires = [Wire::default(), Wire::default()];
            self.stats.resets_injected += 1;
        }
        reset
    }

    /// Tells connectors and server factories about ends that have closed; frees the wires of
    /// connections that are over. True if anything was reported.
    pub(super) fn report_closed(&mut self) -> bool {
        let now = self.now;
        let mut progressed = false;
        for link in self.links.iter_mut().filter(|l| !l.is_done()) {
            for side in [CLIENT, SERVER] {
                let Some(end) = link.ends[side].as_ref() else {
                    continue;
                };
                if link.reported[side] || !end.is_closed() {
                    continue;
                }
                link.reported[side] = true;
                progressed = true;
                let reason = end.reason().cloned().unwrap_or(Reason::Lost);
                if side == CLIENT {
                    let connector = link
                        .client
                        .and_then(|c| self.clients.get_mut(c))
                        .and_then(|c| c.connector.as_mut());
                    if let Some(connector) = connector {
                        connector.lost(now, reason);
                    }
                } else if let Some(l) = self.listeners.get_mut(link.listener) {
                    l.factory.closed(link.client_addr, &reason);
                }
            }
            if link.is_done() {
                link.wires = [Wire::default(), Wire::default()];
            }
        }
        progressed
    }

    /// Steps until nothing moves (bounded).
    pub(super) fn settle(&mut self) {
        for _ in 0..MAX_SETTLE_STEPS {
            if !self.step() {
                break;
            }
        }
    }

    /// The earliest connection timer, connector deadline or stall end.
    pub(super) fn next_event(&self) -> Option<Instant> {
        let now = self.now;
        let links = self.links.iter().filter(|l| !l.is_done()).flat_map(|l| {
            let timers = l.ends.iter().flatten().filter_map(|e| e.next_timeout());
            let stalls = l.stalled_until.iter().flatten().copied();
            timers.chain(stalls.filter(move |&until| until > now))
        });
        let connectors = self
            .clients
            .iter()
            .filter_map(|c| c.connector.as_ref()?.next_timeout());
        links.chain(connectors).min()
    }

    /// Tells every connection and connector the time.
    pub(super) fn fire_due(&mut self) {
        let now = self.now;
        for link in self.links.iter_mut().filter(|l| !l.is_done()) {
            for end in link.ends.iter_mut().flatten() {
                if end.next_timeout().is_some_and(|t| t <= now) {
                    end.handle_timeout(now);
                }
            }
        }
        for c in self.clients.iter_mut().filter_map(|c| c.connector.as_mut()) {
            if c.next_timeout().is_some_and(|t| t <= now) {
                c.handle_timeout(now);
            }
        }
    }
}
