//! Accepting while the process is out of descriptors (EMFILE), on both runtimes alike: the
//! accept loop backs off (loomwork-net's one `AcceptBackoff`) instead of spinning or dying, and
//! serves every waiting peer within one maximum pause once descriptors are free again.
//!
//! Its own test binary: it lowers the whole process's descriptor limit.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use loomwork::bytes::BytesMut;
use loomwork::stream::{Config, Protocol, Transport};
use loomwork_conformance::runtimes::{Smol, Std};
use loomwork_conformance::Harness;
use loomwork_net::testing::set_descriptor_limit;
use loomwork_net::AcceptBackoff;
use socket2::{Domain, Socket, Type};

/// The two runtimes' scenarios take turns: the limit is process-wide.
static ALONE: Mutex<()> = Mutex::new(());

/// How long descriptors stay exhausted: long enough for the back-off to reach its maximum
/// (5 ms doubling reaches 500 ms after about 1.3 s), so that the recovery bound below tests
/// the maximum pause itself.
const EXHAUSTED: Duration = Duration::from_millis(1300);
/// Scheduling slack on top of the maximum pause.
const SLACK: Duration = Duration::from_millis(250);
/// An upper bound on any one wait, so that a broken runtime fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(30);

#[test]
fn std_backs_off_while_out_of_descriptors_and_recovers_within_one_maximum_pause() {
    backs_off_while_out_of_descriptors_and_recovers(&Std);
}

#[test]
fn smol_backs_off_while_out_of_descriptors_and_recovers_within_one_maximum_pause() {
    backs_off_while_out_of_descriptors_and_recovers(&Smol);
}

fn backs_off_while_out_of_descriptors_and_recovers<H: Harness>(h: &H) {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    const PEERS: usize = 4;
    let server = h.listen(any_port(), |_| Echo, Config::default());
    let addr = server.local_addr();
    // Made while descriptors are plenty: connecting one needs no new descriptor, and the CPU
    // clock must be readable while none is left.
    let sockets: Vec<Socket> = (0..PEERS)
        .map(|_| Socket::new(Domain::IPV4, Type::STREAM, None).unwrap())
        .collect();
    let mut stat = File::open("/proc/self/stat").unwrap();
    // Let the runtime make whatever descriptors it needs first (reactor, executor threads).
    std::thread::sleep(Duration::from_millis(50));

    // New descriptors take the lowest free number, and closed ones leave holes: only a limit
    // below every free number makes each new descriptor fail.
    let old = set_descriptor_limit(1).unwrap();
    for socket in &sockets {
        // The kernel completes the handshake into the backlog; accept(2) fails with EMFILE.
        socket.connect(&addr.into()).unwrap();
    }
    let before = cpu_time(&mut stat);
    std::thread::sleep(EXHAUSTED);
    let used = cpu_time(&mut stat) - before;
    let accepted = server.connection_count();
    set_descriptor_limit(old).unwrap();
    let restored = Instant::now();
    assert_eq!(accepted, 0, "{}: no accept can succeed yet", H::NAME);

    for (seed, socket) in sockets.into_iter().enumerate() {
        let mut stream = TcpStream::from(socket);
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let message = format!("peer {seed}");
        stream.write_all(message.as_bytes()).unwrap();
        let mut back = vec![0; message.len()];
        stream.read_exact(&mut back).unwrap();
        assert_eq!(back, message.as_bytes(), "{}", H::NAME);
    }
    let recovered = restored.elapsed();
    eprintln!(
        "{}: process CPU while out of descriptors for {EXHAUSTED:?}: {used:?}; served \
         {recovered:?} after the limit was restored",
        H::NAME
    );
    // Backing off wakes the accept loop about a dozen times in that window, for microseconds
    // each; retrying accept at once would burn the whole window.
    assert!(
        used < Duration::from_millis(150),
        "{}: {used:?} of CPU while out of descriptors",
        H::NAME
    );
    // The pause in progress when descriptors came back is at most the maximum.
    assert!(
        recovered < AcceptBackoff::MAX_PAUSE + SLACK,
        "{}: waiting peers were served only {recovered:?} after descriptors were free",
        H::NAME
    );
    server.shutdown(Duration::from_secs(1));
}

/// Twisted's Echo.
struct Echo;

impl Protocol for Echo {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let _ = tx.write(data.split().freeze());
    }
}

/// CPU time this process has used (user + system), from its already open `/proc/self/stat`.
fn cpu_time(stat: &mut File) -> Duration {
    let mut text = String::new();
    stat.seek(SeekFrom::Start(0)).unwrap();
    stat.read_to_string(&mut text).unwrap();
    // Fields after the command name (which may hold spaces, hence the last ')'): state (field
    // 3 of proc(5)) is skipped, so utime and stime (fields 14 and 15) are at 10 and 11, in
    // clock ticks (USER_HZ, 100 on Linux).
    let rest = &text[text.rfind(')').unwrap() + 1..];
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(1)
        .take(12)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    Duration::from_millis((fields[10] + fields[11]) * 10)
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}
