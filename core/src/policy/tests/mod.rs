//! Fake-clock script tests for every policy: explicit times, exact deadlines.

mod idle;
mod limit;
mod throttle;

use alloc::vec::Vec;
use core::net::SocketAddr;

use bytes::BytesMut;

use crate::stream::{Config, Connection, Protocol, Transport};
use crate::time::Instant;

/// Records what reached it; writes back what it is told to on messages.
#[derive(Default, Debug)]
pub(super) struct Probe {
    pub(super) received: Vec<u8>,
    pub(super) pauses: usize,
    pub(super) resumes: usize,
    pub(super) lost: usize,
}

impl Protocol for Probe {
    type Message = &'static [u8];
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_, Self::Message>) {
        self.received.extend_from_slice(&data.split());
    }
    fn message(&mut self, message: &'static [u8], tx: &mut Transport<'_, Self::Message>) {
        let _ = tx.write_slice(message);
    }
    fn pause_producing(&mut self, _: &mut Transport<'_, Self::Message>) {
        self.pauses += 1;
    }
    fn resume_producing(&mut self, _: &mut Transport<'_, Self::Message>) {
        self.resumes += 1;
    }
    fn connection_lost(&mut self, _: &crate::Reason) {
        self.lost += 1;
    }
}

pub(super) fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

pub(super) fn connect<P: Protocol>(protocol: P) -> Connection<P> {
    let mut conn = Connection::new(protocol, Config::default());
    let a = addr("127.0.0.1:1");
    conn.handle_connected(Instant::ZERO, a, a);
    conn
}

pub(super) fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

/// Reports everything queued as written at `now`; returns the bytes.
pub(super) fn flush<P: Protocol>(conn: &mut Connection<P>, now: Instant) -> Vec<u8> {
    let out: Vec<u8> = conn.poll_write().flatten().copied().collect();
    if !out.is_empty() {
        conn.handle_written(now, out.len());
    }
    out
}

mod composed;
#[cfg(all(feature = "log", feature = "std"))]
mod traffic_log;
