//! Graceful server drain: in-flight exchanges finish, stragglers are aborted at the deadline.

use std::sync::OnceLock;
use std::time::Duration;

use loomwork::bytes::{Bytes, BytesMut};
use loomwork::stream::{Config, Protocol, Transport};
use loomwork::{Reason, TimerId};

use super::policies::OneShot;
use super::{any_port, connector, wait_for};
use crate::protocols::{fnv1a, lock, pattern, LoggingFactory, Shared};
use crate::Harness;

/// Response size: far more than loopback socket buffers absorb for a peer that does not read
/// (the receive window only grows as the reader reads), so a straggler cannot drain.
const RESPONSE: usize = 12 * 1024 * 1024;

/// Two clients each ask for a 12 MiB response. Shutdown (1 s drain) starts once both requests
/// are in: the client that reads (after a 300 ms pause) gets every byte and a clean close; the
/// one that reads nothing for 3 s is aborted at the deadline (and sees the reset once it reads
/// again). The report says one drained, one aborted.
pub fn drain_finishes_in_flight_exchanges_and_aborts_stragglers<H: Harness>(h: &H) {
    let requests = Shared::<usize>::default();
    let seen = requests.clone();
    let (factory, server_log) = LoggingFactory::new(move || {
        Some(Responder {
            requests: seen.clone(),
        })
    });
    let server = h.listen(any_port(), factory, Config::default());
    let reader = Shared::<RequesterLog>::default();
    let straggler = Shared::<RequesterLog>::default();
    let reading = h.connect(
        server.local_addr(),
        OneShot::new(Requester::new(Duration::from_millis(300), reader.clone())),
        connector(),
    );
    let stalled = h.connect(
        server.local_addr(),
        OneShot::new(Requester::new(Duration::from_secs(3), straggler.clone())),
        connector(),
    );
    wait_for(h, || *lock(&requests) == 2);
    assert_eq!(*lock(&requests), 2, "{}: both requests in", H::NAME);

    let (drained, aborted) = server.shutdown(Duration::from_secs(1));
    assert_eq!((drained, aborted), (1, 1), "{}", H::NAME);
    reading.join();
    stalled.join();

    let reader = lock(&reader);
    assert_eq!(
        reader.received,
        RESPONSE,
        "{}: in-flight exchange finished",
        H::NAME
    );
    assert_eq!(reader.hash, fnv1a(0, &response()), "{}", H::NAME);
    assert_eq!(reader.lost, [Reason::Done], "{}", H::NAME);
    let straggler = lock(&straggler);
    assert!(straggler.received < RESPONSE, "{}", H::NAME);
    assert_eq!(straggler.lost, [Reason::Reset], "{}: aborted", H::NAME);
    let mut closed = lock(&server_log).closed.clone();
    closed.sort_by_key(|r| r.to_string());
    assert_eq!(closed, [Reason::Aborted, Reason::Done], "{}", H::NAME);
}

/// The response, made once and shared without copying: generating 12 MiB inside a callback
/// would stall the runtime's executor for every other test in the process.
fn response() -> Bytes {
    static RESPONSE_BYTES: OnceLock<Bytes> = OnceLock::new();
    RESPONSE_BYTES.get_or_init(|| pattern(0, RESPONSE)).clone()
}

/// Answers the first bytes it gets with one big response, then waits to be closed.
struct Responder {
    requests: Shared<usize>,
}

impl Protocol for Responder {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        data.clear();
        *lock(&self.requests) += 1;
        let _ = tx.write(response());
    }
}

#[derive(Debug, Default)]
struct RequesterLog {
    received: usize,
    hash: u64,
    lost: Vec<Reason>,
}

/// Sends a request, reads nothing for `pause`, then reads until the server closes.
struct Requester {
    pause: Duration,
    log: Shared<RequesterLog>,
}

impl Requester {
    fn new(pause: Duration, log: Shared<RequesterLog>) -> Self {
        Requester { pause, log }
    }
}

impl Protocol for Requester {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        let _ = tx.write_slice(b"GET\r\n");
        tx.pause_reading();
        tx.call_later(self.pause);
    }
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        let chunk = data.split();
        let mut log = lock(&self.log);
        log.received += chunk.len();
        log.hash = fnv1a(log.hash, &chunk);
    }
    fn timer_fired(&mut self, _: TimerId, tx: &mut Transport<'_>) {
        tx.resume_reading();
    }
    fn connection_lost(&mut self, reason: &Reason) {
        lock(&self.log).lost.push(reason.clone());
    }
}
