//! Accepting while the process is out of descriptors (EMFILE), on every runtime alike: the
//! accept loop backs off (loomwork-net's one `AcceptBackoff`) instead of spinning or dying,
//! serves every waiting peer within one maximum pause once descriptors are free again, and
//! never resets a peer for want of a descriptor of its own (issue 12, item 4).
//!
//! Its own test binary: it lowers the whole process's descriptor limit, or runs a server in a
//! child copy of itself with a lowered limit.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use loomwork::stream::Config;
use loomwork_conformance::backlog::flood;
use loomwork_conformance::child::{serve_until_stdin_closes, ChildServer};
use loomwork_conformance::protocols::Echo;
use loomwork_conformance::runtimes::{Smol, Std, Tokio};
use loomwork_conformance::Harness;
use loomwork_net::testing::set_descriptor_limit;
use loomwork_net::AcceptBackoff;
use socket2::{Domain, Socket, Type};

/// The runtimes' scenarios take turns: the limit is process-wide.
static ALONE: Mutex<()> = Mutex::new(());

/// How long descriptors stay exhausted: long enough for the back-off to reach its maximum
/// (5 ms doubling reaches 500 ms after about 1.3 s), so that the recovery bound below tests
/// the maximum pause itself.
const EXHAUSTED: Duration = Duration::from_millis(1300);
/// Scheduling slack on top of the maximum pause.
const SLACK: Duration = Duration::from_millis(250);
/// An upper bound on any one wait, so that a broken runtime fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(30);
/// Set in the child process of the backlog scenario, to the name of the runtime to serve on.
const CHILD_ENV: &str = "LOOMWORK_BACKLOG_CHILD";
/// The child server's descriptor limit, and how many peers fill its backlog: the numbers of
/// the probe in issue 12 (`ulimit -n 64`, 150 clients).
const CHILD_LIMIT: u64 = 64;
const FLOOD_PEERS: usize = 150;
/// How long the answered peers keep the server out of descriptors while its CPU is measured.
const HOLD: Duration = Duration::from_secs(5);
/// The CPU the server may use in [`HOLD`]: a quarter of one core, far above what backing off
/// costs (a dozen wake-ups a second) and far below a loop retrying accept at once (all of it;
/// checked by setting the back-off to zero).
const CPU_BOUND: Duration = Duration::from_millis(1250);

#[test]
fn std_backs_off_while_out_of_descriptors_and_recovers_within_one_maximum_pause() {
    backs_off_while_out_of_descriptors_and_recovers(&Std);
}

#[test]
fn smol_backs_off_while_out_of_descriptors_and_recovers_within_one_maximum_pause() {
    backs_off_while_out_of_descriptors_and_recovers(&Smol);
}

#[test]
fn tokio_backs_off_while_out_of_descriptors_and_recovers_within_one_maximum_pause() {
    backs_off_while_out_of_descriptors_and_recovers(&Tokio::new());
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

#[test]
fn std_resets_no_peer_while_out_of_descriptors_and_serves_all_as_they_free() {
    serves_a_backlog_larger_than_its_descriptors(
        &Std,
        "std_resets_no_peer_while_out_of_descriptors_and_serves_all_as_they_free",
    );
}

#[test]
fn smol_resets_no_peer_while_out_of_descriptors_and_serves_all_as_they_free() {
    serves_a_backlog_larger_than_its_descriptors(
        &Smol,
        "smol_resets_no_peer_while_out_of_descriptors_and_serves_all_as_they_free",
    );
}

#[test]
fn tokio_resets_no_peer_while_out_of_descriptors_and_serves_all_as_they_free() {
    serves_a_backlog_larger_than_its_descriptors(
        &Tokio::new(),
        "tokio_resets_no_peer_while_out_of_descriptors_and_serves_all_as_they_free",
    );
}

/// A child copy of this test binary serves [`Echo`] on `h` with at most [`CHILD_LIMIT`]
/// descriptors; [`FLOOD_PEERS`] peers connect at once and each sends `ping`. The server can
/// hold only some of them; the rest wait in its backlog while the answered peers hold on for
/// [`HOLD`], then are served as the answered peers close. No peer may be reset or see an end
/// of stream before its echo (a runtime that accepts a socket and then cannot make what the
/// connection needs must not drop it), every peer is served, and the server's accept loop must
/// not spin while it waits for descriptors.
fn serves_a_backlog_larger_than_its_descriptors<H: Harness>(h: &H, test_name: &str) {
    if let Ok(runtime) = std::env::var(CHILD_ENV) {
        if runtime == H::NAME {
            serve_with_few_descriptors(h);
        }
        return;
    }
    // The other scenarios lower this process's limit, which the peers here would run into.
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let child = ChildServer::spawn(test_name, CHILD_ENV, H::NAME, PATIENCE);
    let addr = child.listening_address();

    let report = flood(addr, FLOOD_PEERS, HOLD, child.pid(), PATIENCE);
    if let Ok(report) = &report {
        eprintln!("{}: {report:?}", H::NAME);
    }
    let status = child.stop();
    let report = report.unwrap();
    assert!(
        status.success(),
        "{}: the server process failed: {status}",
        H::NAME
    );
    assert!(
        report.echoed_while_held < FLOOD_PEERS,
        "{}: every peer was served at once, so descriptors never ran out: {report:?}",
        H::NAME
    );
    assert_eq!(
        (report.resets, report.eofs, report.failures),
        (0, 0, 0),
        "{}: peers were dropped before their echo: {report:?}",
        H::NAME
    );
    assert!(
        report.all_served(),
        "{}: not every peer was served: {report:?}",
        H::NAME
    );
    let cpu = report
        .server_cpu_while_held
        .expect("the server's CPU time in /proc");
    assert!(
        cpu < CPU_BOUND,
        "{}: the server used {cpu:?} of CPU in {:?} out of descriptors",
        H::NAME,
        report.held
    );
}

/// The child's side: listen, lower the limit, serve until the parent closes our stdin.
fn serve_with_few_descriptors<H: Harness>(h: &H) {
    let server = h.listen(any_port(), |_| Echo, Config::default());
    // After listening, so that the runtime's own setup (listener, reactor) is not what fails.
    set_descriptor_limit(CHILD_LIMIT).unwrap();
    let _taken = leave_an_odd_number_free();
    serve_until_stdin_closes(server.local_addr());
    server.shutdown(Duration::ZERO);
}

/// Takes descriptors so that an odd number is left free under the limit, and returns them
/// (the caller keeps them open). A connection that needs two descriptors (loomwork-std's
/// socket and wake-up) then always meets the moment when only one is left, and accepting a
/// socket it cannot complete would show as a reset; with an even number free, every accept
/// would fail cleanly with EMFILE and hide that.
fn leave_an_odd_number_free() -> Vec<File> {
    let mut taken = Vec::new();
    for _ in 0..CHILD_LIMIT {
        match File::open("/dev/null") {
            Ok(file) => taken.push(file),
            Err(_) => break,
        }
    }
    let free = taken.len();
    // Give back all but one when `free` is even, all when it is odd.
    taken.truncate(1 - free % 2);
    taken
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
