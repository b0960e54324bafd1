//! The small-write cap measured on the real runtimes (issue 12): `core/tests/queue_footprint.rs`
//! counts allocations to show that a million 100-byte writes stop at the 16 MiB cap with the
//! queue holding about the cap; here a server on each of `loomwork-std`, `loomwork-smol` and
//! `loomwork-tokio` does those writes to a loopback peer that never reads, and the server
//! process's resident memory is read from `/proc`. It must grow by at most 1.25 times the cap plus [`SLACK_KIB`].
//!
//! Its own test binary: the server runs in a child copy of it, so that the RSS measured is the
//! server's alone (not the test harness's, nor the other runtime's).

use std::io::Write;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::Duration;

use loomwork::bytes::{Bytes, BytesMut};
use loomwork::stream::{Config, Protocol, Transport};
use loomwork_conformance::child::{serve_until_stdin_closes, ChildServer};
use loomwork_conformance::procfs::rss_kib;
use loomwork_conformance::runtimes::{Smol, Std, Tokio};
use loomwork_conformance::Harness;
use socket2::{Domain, Socket, Type};

/// The default `max_queued`, set explicitly: the cap the measurement is held to.
const CAP: usize = 16 * 1024 * 1024;
/// Writes attempted: far more than fit (about 160,000 do).
const WRITES: usize = 1_000_000;
/// What the runtime may add on top of the queue, in KiB: what one more connection costs with
/// nothing queued, plus the imprecision of VmRSS. The first is measured below as the growth an
/// idle connection causes (about 30 KiB on std: a thread, the stack pages it touches and its
/// receive buffer; 65-70 KiB on smol: a task and its receive buffer; measured on Linux 6.18) and
/// asserted to stay under this. The second: kernels that batch RSS accounting per thread
/// (`SPLIT_RSS_COUNTING`, before 6.2) let VmRSS lag by up to 64 pages (256 KiB) per thread.
/// Socket buffers are kernel memory, not RSS, and the peer's small receive buffer keeps them
/// small anyway.
const SLACK_KIB: u64 = 512;
/// The peers' receive buffer (the kernel doubles it and keeps a minimum): the server's socket
/// can hand off little, so nearly all of what it accepted stays in its queue.
const PEER_RCVBUF: usize = 4096;
/// Time for the runtime to settle (finish accepting, write what the socket takes) before RSS
/// is read.
const SETTLE: Duration = Duration::from_millis(300);
/// An upper bound on any one wait for the child, so that a broken runtime fails, not hangs.
const PATIENCE: Duration = Duration::from_secs(60);
/// Set in the child, to the name of the runtime it serves on.
const CHILD_ENV: &str = "LOOMWORK_SMALL_WRITE_CHILD";

/// One child at a time: two children writing a million times each on a busy machine would
/// only slow each other down.
static ALONE: Mutex<()> = Mutex::new(());

#[test]
fn std_a_million_small_writes_to_a_peer_that_never_reads_grow_rss_by_at_most_a_quarter_over_the_cap(
) {
    measure(
        &Std,
        "std_a_million_small_writes_to_a_peer_that_never_reads_grow_rss_by_at_most_a_quarter_over_the_cap",
    );
}

#[test]
fn smol_a_million_small_writes_to_a_peer_that_never_reads_grow_rss_by_at_most_a_quarter_over_the_cap(
) {
    measure(
        &Smol,
        "smol_a_million_small_writes_to_a_peer_that_never_reads_grow_rss_by_at_most_a_quarter_over_the_cap",
    );
}

#[test]
fn tokio_a_million_small_writes_to_a_peer_that_never_reads_grow_rss_by_at_most_a_quarter_over_the_cap(
) {
    measure(
        &Tokio::new(),
        "tokio_a_million_small_writes_to_a_peer_that_never_reads_grow_rss_by_at_most_a_quarter_over_the_cap",
    );
}

/// Writes `writes` fresh 100-byte buffers in `connection_made`, then says on stdout what
/// happened; never reads.
struct SmallWriter {
    writes: usize,
}

impl Protocol for SmallWriter {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        let (mut accepted, mut refused, mut first_refused) = (0, 0, None);
        for i in 0..self.writes {
            // A fresh allocation each time, as a protocol formatting small replies makes.
            match tx.write(Bytes::from(vec![(i % 251) as u8; 100])) {
                Ok(()) => accepted += 1,
                Err(_) => {
                    refused += 1;
                    first_refused.get_or_insert(i);
                }
            }
        }
        let report = Report {
            accepted,
            refused,
            first_refused,
            queued_bytes: tx.queued_bytes(),
            queued_memory: tx.queued_memory(),
        };
        println!("made {}", report.to_line());
        std::io::stdout().flush().unwrap();
    }
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        data.clear();
    }
}

/// What the child's [`SmallWriter`] reports, one line on stdout.
#[derive(Debug, PartialEq, Eq)]
struct Report {
    accepted: usize,
    refused: usize,
    first_refused: Option<usize>,
    queued_bytes: usize,
    queued_memory: usize,
}

impl Report {
    fn to_line(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.accepted,
            self.refused,
            self.first_refused.map_or(-1, |i| i as i64),
            self.queued_bytes,
            self.queued_memory
        )
    }

    fn parse(line: &str) -> Report {
        let n: Vec<i64> = line
            .split_whitespace()
            .map(|f| f.parse().expect("a number"))
            .collect();
        Report {
            accepted: n[0] as usize,
            refused: n[1] as usize,
            first_refused: usize::try_from(n[2]).ok(),
            queued_bytes: n[3] as usize,
            queued_memory: n[4] as usize,
        }
    }
}

/// The parent's side: starts the child server, connects an idle peer (no writes, to measure
/// what a connection costs), then the peer the million writes go to, reading the child's RSS
/// before and after each.
fn measure<H: Harness>(h: &H, test_name: &str) {
    if let Ok(runtime) = std::env::var(CHILD_ENV) {
        if runtime == H::NAME {
            serve(h);
        }
        return;
    }
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let child = ChildServer::spawn(test_name, CHILD_ENV, H::NAME, PATIENCE);
    let pid = child.pid();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let addr = child.listening_address();
        std::thread::sleep(SETTLE);
        let base = rss(pid);

        let idle_peer = peer(addr);
        let idle = Report::parse(&child.wait_for_line("made "));
        assert_eq!(
            idle.accepted + idle.refused,
            0,
            "the first connection writes nothing"
        );
        std::thread::sleep(SETTLE);
        let with_idle = rss(pid);

        let writer_peer = peer(addr);
        let report = Report::parse(&child.wait_for_line("made "));
        std::thread::sleep(SETTLE);
        let after = rss(pid);
        (base, with_idle, after, report, idle_peer, writer_peer)
    }));
    let status = child.stop();
    let (base, with_idle, after, report, idle_peer, writer_peer) =
        result.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    drop((idle_peer, writer_peer));
    assert!(status.success(), "{}: the server failed: {status}", H::NAME);

    let idle_cost = with_idle.saturating_sub(base);
    let growth = after.saturating_sub(with_idle);
    let cap_kib = (CAP / 1024) as u64;
    eprintln!(
        "{}: {WRITES} x 100 B writes to a peer that never reads: {} accepted, {} refused \
         (the first at write #{}); queue {} B payload, account {} B; server RSS {base} KiB before, \
         +{idle_cost} KiB for an idle connection, +{growth} KiB for the writing one = {:.3}x \
         the {cap_kib} KiB cap (bound {:.2}x + {SLACK_KIB} KiB)",
        H::NAME,
        report.accepted,
        report.refused,
        report.first_refused.map_or(-1, |i| i as i64),
        report.queued_bytes,
        report.queued_memory,
        growth as f64 / cap_kib as f64,
        1.25,
    );

    // The writes reached the cap: refused from the first that did not fit, none after it
    // accepted, and the queue full but for the blocks' overhead.
    assert!(
        report.refused > 0,
        "{}: nothing refused: {report:?}",
        H::NAME
    );
    assert_eq!(report.accepted + report.refused, WRITES, "{}", H::NAME);
    assert_eq!(report.first_refused, Some(report.accepted), "{}", H::NAME);
    assert!(report.queued_memory <= CAP, "{}: {report:?}", H::NAME);
    assert!(
        report.queued_bytes >= CAP / 100 * 97,
        "{}: the queue kept only {report:?}",
        H::NAME
    );
    // The slack is what a connection costs with nothing queued: check that it does.
    assert!(
        idle_cost <= SLACK_KIB,
        "{}: an idle connection grew the server by {idle_cost} KiB, over the {SLACK_KIB} KiB \
         allowed for the runtime",
        H::NAME
    );
    // The measurement sees the queue: the payload held is resident.
    assert!(
        growth * 1024 >= report.queued_bytes as u64 * 9 / 10,
        "{}: RSS grew {growth} KiB while the queue holds {} B: not the server measured?",
        H::NAME,
        report.queued_bytes
    );
    assert!(
        growth <= cap_kib * 5 / 4 + SLACK_KIB,
        "{}: RSS grew {growth} KiB for a {cap_kib} KiB cap",
        H::NAME
    );
}

/// The child's side: serve [`SmallWriter`]s (the first connection writes nothing, the others a
/// million times) under the cap until the parent closes our stdin.
fn serve<H: Harness>(h: &H) {
    let mut connections = 0;
    let factory = move |_| {
        connections += 1;
        SmallWriter {
            writes: if connections == 1 { 0 } else { WRITES },
        }
    };
    let config = Config {
        max_queued: Some(CAP),
        ..Config::default()
    };
    let server = h.listen(SocketAddr::from(([127, 0, 0, 1], 0)), factory, config);
    serve_until_stdin_closes(server.local_addr());
    server.shutdown(Duration::ZERO);
}

/// A loopback peer with a small receive buffer (set before connecting, so the window it
/// advertises is small from the start) that never reads.
fn peer(addr: SocketAddr) -> Socket {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(PEER_RCVBUF).unwrap();
    socket.connect(&addr.into()).unwrap();
    socket
}

/// The child's resident memory in KiB.
fn rss(pid: u32) -> u64 {
    rss_kib(pid).expect("the child's VmRSS in /proc")
}
