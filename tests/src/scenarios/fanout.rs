//! Memory under fan-out (issue 12): the chat server's broadcast with members that never read,
//! and a flood of small writes to a peer that never reads.

use std::net::SocketAddr;
use std::time::Duration;

use loomwork::bytes::{Bytes, BytesMut};
use loomwork::connector::{ClientFactory, Retry};
use loomwork::framing::{FrameHandler, FrameTransport, Framed, LineCodec};
use loomwork::stream::{Config, Protocol, ServerFactory, Transport, WriteError};
use loomwork::{Limit, Reason};
use loomwork_examples::chat::{connection_config, ChatFactory, MEMBER_QUEUE_LIMIT};

use super::{any_port, connector, wait_for};
use crate::protocols::{lock, ClientScript, ClientSpec, LoggingFactory, Shared};
use crate::Harness;

/// What a chat member does once in the room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Stops reading for good.
    Idle,
    /// Reads every line, checking the sender's sequence numbers.
    Reader,
    /// Says `lines` numbered lines of 100 bytes, all at once.
    Sender { lines: usize },
}

/// What a chat member saw.
#[derive(Debug, Default)]
struct MemberLog {
    joined: bool,
    /// Lines from the sender, and whether they came in order.
    lines: usize,
    out_of_order: usize,
    /// `<name> has left (too slow to keep up).` notices.
    left_notices: usize,
    lost: Vec<Reason>,
}

/// A chat client on the line framing.
struct Member {
    name: String,
    role: Role,
    log: Shared<MemberLog>,
}

type Tx<'t, 'a> = FrameTransport<'t, 'a, LineCodec, ()>;

impl FrameHandler for Member {
    type Codec = LineCodec;
    type Message = ();

    fn frame_received(&mut self, line: Bytes, tx: &mut Tx<'_, '_>) {
        if line == "What's your name?\r" {
            let _ = tx.write(format!("{}\n", self.name).into_bytes());
        } else if line == format!("Welcome, {}!\r", self.name).as_bytes() {
            lock(&self.log).joined = true;
            match self.role {
                Role::Idle => tx.pause_reading(),
                Role::Reader => {}
                Role::Sender { lines } => {
                    for seq in 0..lines {
                        let line = format!("{seq:010}{}\n", "x".repeat(89));
                        tx.write_slice(line.as_bytes())
                            .expect("the sender's queue holds it");
                    }
                }
            }
        } else if let Some(body) = line.strip_prefix(b"sender: ") {
            let mut log = lock(&self.log);
            let seq = std::str::from_utf8(&body[..10])
                .ok()
                .and_then(|s| s.parse().ok());
            if seq != Some(log.lines) {
                log.out_of_order += 1;
            }
            log.lines += 1;
        } else if line.ends_with(b" has left (too slow to keep up).\r") {
            lock(&self.log).left_notices += 1;
        } else {
            lock(&self.log).out_of_order += 1;
        }
    }

    fn read_closed(&mut self, tx: &mut Tx<'_, '_>) {
        tx.lose_connection();
    }

    fn connection_lost(&mut self, reason: &Reason) {
        lock(&self.log).lost.push(reason.clone());
    }
}

/// Connects one member, once.
struct MemberSpec {
    member: Option<Member>,
}

impl ClientFactory for MemberSpec {
    type Protocol = Framed<Member>;
    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<Framed<Member>> {
        let codec = LineCodec::new().with_delimiter("\n").ok()?;
        Some(Framed::new(self.member.take()?, codec))
    }
    fn connection_failed(&mut self, _reason: &Reason) -> Retry {
        Retry::Stop
    }
    fn connection_lost(&mut self, _reason: &Reason) -> Retry {
        Retry::Stop
    }
}

fn member(name: &str, role: Role) -> (MemberSpec, Shared<MemberLog>) {
    let log = Shared::default();
    let member = Member {
        name: name.to_owned(),
        role,
        log: log.clone(),
    };
    (
        MemberSpec {
            member: Some(member),
        },
        log,
    )
}

/// The chat server's fan-out with members that never read (issue 12, small scale): 8 idle
/// members and 2 readers, one member says 6 MB of 100-byte lines. Every idle member is evicted
/// with `LimitExceeded { limit: WriteQueue, max: 256 KiB, .. }` (its queue refused a line at
/// the cap, so no queue grew past it), the readers get every line in order, and each hears of
/// every eviction.
pub fn chat_fan_out_evicts_idle_members_while_readers_get_every_line<H: Harness>(h: &H) {
    const IDLE: usize = 8;
    const READERS: usize = 2;
    // Enough to fill an idle member's socket buffers and its queue on a real loopback.
    const LINES: usize = 60_000;
    let mut chat = ChatFactory::new(Default::default());
    let room = chat.room();
    let (factory, server_log) = LoggingFactory::new(move || chat.build_protocol(any_port()));
    let server = h.listen(any_port(), factory, connection_config());
    let addr = server.local_addr();
    let mut clients = Vec::new();
    let mut idle_logs = Vec::new();
    for i in 0..IDLE {
        let (spec, log) = member(&format!("idle{i}"), Role::Idle);
        clients.push(h.connect(addr, spec, connector()));
        idle_logs.push(log);
    }
    let mut reader_logs = Vec::new();
    for i in 0..READERS {
        let (spec, log) = member(&format!("reader{i}"), Role::Reader);
        clients.push(h.connect(addr, spec, connector()));
        reader_logs.push(log);
    }
    wait_for(h, || room.len() == IDLE + READERS);
    assert_eq!(room.len(), IDLE + READERS, "{}: everyone joined", H::NAME);
    let (spec, sender_log) = member("sender", Role::Sender { lines: LINES });
    let sender = h.connect(addr, spec, connector());
    // Bounded: 5 s per wait, on real sockets a few MB take well under a second.
    for _ in 0..6 {
        wait_for(h, || reader_logs.iter().all(|l| lock(l).lines == LINES));
    }
    wait_for(h, || room.evictions() == IDLE);
    wait_for(h, || {
        reader_logs.iter().all(|l| lock(l).left_notices == IDLE)
    });
    for log in &reader_logs {
        let log = lock(log);
        assert_eq!(log.lines, LINES, "{}: a reader got every line", H::NAME);
        assert_eq!(log.out_of_order, 0, "{}: in order, nothing else", H::NAME);
        assert_eq!(log.left_notices, IDLE, "{}: told of each eviction", H::NAME);
    }
    assert_eq!(room.evictions(), IDLE, "{}: every idle member", H::NAME);
    assert!(lock(&sender_log).joined);
    server.shutdown(Duration::from_secs(2));
    drop((clients, sender));
    let closed = lock(&server_log).closed.clone();
    let evicted: Vec<&Reason> = closed
        .iter()
        .filter(|r| matches!(r, Reason::LimitExceeded { .. }))
        .collect();
    assert_eq!(evicted.len(), IDLE, "{}: {closed:?}", H::NAME);
    for reason in evicted {
        let Reason::LimitExceeded { limit, max, seen } = reason else {
            unreachable!()
        };
        assert_eq!(*limit, Limit::WriteQueue, "{}", H::NAME);
        assert_eq!(*max, MEMBER_QUEUE_LIMIT, "{}", H::NAME);
        // The refused line is what would have passed the limit: by at most one line's charge.
        assert!(
            *seen > *max && *seen <= *max + 1024,
            "{}: {reason}",
            H::NAME
        );
    }
    for log in idle_logs {
        assert!(lock(&log).joined, "{}", H::NAME);
    }
}

/// What [`SmallWriter`] saw.
#[derive(Debug, Default)]
struct SmallWriterLog {
    accepted: usize,
    refused: Option<(usize, WriteError)>,
    queued_bytes: usize,
    queued_memory: usize,
}

/// Writes `count` 100-byte buffers in `connection_made`, never reading.
struct SmallWriter {
    count: usize,
    log: Shared<SmallWriterLog>,
}

impl Protocol for SmallWriter {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        let mut log = lock(&self.log);
        for i in 0..self.count {
            match tx.write(vec![(i % 251) as u8; 100]) {
                Ok(()) => log.accepted += 1,
                Err(error) => {
                    log.refused.get_or_insert((i, error));
                }
            }
        }
        log.queued_bytes = tx.queued_bytes();
        log.queued_memory = tx.queued_memory();
    }
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        data.clear();
    }
}

/// 200,000 writes of 100 bytes to a peer that never reads, under a 4 MiB cap: writes are
/// refused at the cap (nothing half-queued), the queue's account stays within the cap, and the
/// payload it holds is close to the cap (the account charges what the queue holds, so the real
/// footprint stays within 1.25x the cap: see `core/tests/queue_footprint.rs`).
pub fn small_writes_to_a_peer_that_never_reads_stop_at_the_cap<H: Harness>(h: &H) {
    const CAP: usize = 4 * 1024 * 1024;
    const WRITES: usize = 200_000;
    let log = Shared::<SmallWriterLog>::default();
    let shared = log.clone();
    let mut once = Some(SmallWriter {
        count: WRITES,
        log: shared,
    });
    let (factory, _server_log) = LoggingFactory::new(move || once.take());
    let config = Config {
        max_queued: Some(CAP),
        ..Config::default()
    };
    let server = h.listen(any_port(), factory, config);
    let (spec, _client_log) =
        ClientSpec::new(ClientScript::Stall(Some(Duration::from_millis(300))));
    let client = h.connect(server.local_addr(), spec, connector());
    wait_for(h, || lock(&log).accepted > 0);
    client.join();
    server.shutdown(Duration::from_millis(300));
    let log = lock(&log);
    let (first, error) = log.refused.clone().expect("writes were refused at the cap");
    assert_eq!(
        first,
        log.accepted,
        "{}: refused from the first that did not fit",
        H::NAME
    );
    assert!(
        matches!(error, WriteError::QueueFull { max: CAP, .. }),
        "{}: {error:?}",
        H::NAME
    );
    assert_eq!(log.queued_bytes, log.accepted * 100, "{}", H::NAME);
    assert!(
        log.queued_memory <= CAP,
        "{}: account {}",
        H::NAME,
        log.queued_memory
    );
    assert!(
        log.queued_bytes >= CAP / 100 * 97,
        "{}: only {} B queued under a {CAP} B cap",
        H::NAME,
        log.queued_bytes
    );
}
