//! "Stop always wins" (issue 11, item 5), on both runtimes: an endpoint whose send path does
//! not drain still stops on request. `abort` ends it at once, dropping the queued sends;
//! a graceful stop ends it at its `close_timeout`.
//!
//! Each test re-runs itself as root in a fresh private network namespace (`unshare -n`, see
//! [`rerun_in_fresh_netns`]) whose `lo` sits behind a token bucket of 8 kbit/s: about one
//! 1000-byte datagram a second. The endpoint's socket has the smallest send buffer the kernel
//! allows, so after a datagram or two every send finds it full (`EAGAIN`) and forty queued
//! datagrams take some forty seconds to leave: the time a stop used to take. Where no namespace
//! can be made (not root, no iproute2) the tests say so on stderr and skip, unless
//! `LOOMWORK_REQUIRE_NETNS=1` (CI: `.ci/extra/netns-udp-stop.sh`) makes that a failure.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use loomwork::bytes::Bytes;
use loomwork::datagram::Config;
use loomwork::{Reason, Timeout};
use loomwork_conformance::netns::{loopback_backlog, rerun_in_fresh_netns, shape_loopback};
use loomwork_conformance::procfs::cpu_ticks;
use loomwork_conformance::udp::{Act, Event, Probe, Runtime, StopBy};
use socket2::{Domain, Protocol, Socket, Type};

/// Datagrams queued at start, and their size.
const QUEUED: usize = 40;
const SIZE: usize = 1000;
/// How long an abort may take to end the endpoint: generous for a loaded CI machine, and far
/// below the ~40 s the queue takes to drain.
const ABORT_BOUND: Duration = Duration::from_secs(2);
/// The graceful stop's deadline in these tests, and how late past it the end may come.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(700);
const CLOSE_SLACK: Duration = Duration::from_millis(1500);
/// The longest any join is waited for, so a runtime that ignores the stop fails (and reports
/// how long it took, up to this) instead of hanging.
const JOIN_GUARD: Duration = Duration::from_secs(60);

/// A UDP socket on 127.0.0.1 with the smallest send buffer the kernel allows.
fn small_send_buffer_socket() -> UdpSocket {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    // Clamped up to the kernel's minimum (a few KiB): room for two or three datagrams.
    socket.set_send_buffer_size(1).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.into()
}

/// Datagrams waiting in `sink`, read without blocking.
fn count_waiting(sink: &UdpSocket) -> usize {
    sink.set_nonblocking(true).unwrap();
    let mut buf = [0; 2 * SIZE];
    std::iter::from_fn(|| sink.recv_from(&mut buf).ok()).count()
}

/// Starts an endpoint on `rt` that queues [`QUEUED`] datagrams to a sink in the shaped
/// namespace, and waits until its send path is backed up: packets wait in `lo`'s qdisc,
/// which a socket with a full send buffer keeps full.
fn backed_up_endpoint(
    rt: Runtime,
    config: Config,
) -> (loomwork_conformance::udp::Running<Probe>, UdpSocket) {
    shape_loopback("8kbit");
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = sink.local_addr().unwrap();
    let probe = Probe {
        on_start: vec![Act::SendTo(Bytes::from(vec![7u8; SIZE]), to); QUEUED],
        ..Probe::default()
    };
    let endpoint = rt.adopt_udp(small_send_buffer_socket(), probe, config);
    let waited = Instant::now();
    while loopback_backlog() < 1 {
        assert!(
            waited.elapsed() < Duration::from_secs(5),
            "the endpoint's datagrams never queued on lo"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let the endpoint run into the full buffer and settle into waiting for it.
    std::thread::sleep(Duration::from_millis(200));
    (endpoint, sink)
}

fn abort_with_a_full_send_buffer_ends_at_once(rt: Runtime, by: StopBy, name: &str) {
    if !rerun_in_fresh_netns(name) {
        return;
    }
    let (endpoint, sink) = backed_up_endpoint(rt, Config::default());
    let asked = Instant::now();
    endpoint.request_stop(by);
    let probe = endpoint.join_within(JOIN_GUARD);
    let took = asked.elapsed();
    println!("{rt:?} {by:?}: join returned {took:?} after the request");
    let probe = probe.unwrap_or_else(|| panic!("{rt:?}: still running {took:?} after {by:?}"));
    assert!(
        took < ABORT_BOUND,
        "{rt:?}: join took {took:?} after {by:?}"
    );
    assert_eq!(
        probe.events.last(),
        Some(&Event::Stopped(Reason::Aborted)),
        "{:?}",
        probe.events
    );
    // What was still queued was dropped, not sent. (The qdisc may still hold a few of the
    // sent ones; the rest can never come.)
    std::thread::sleep(Duration::from_millis(50));
    let arrived = count_waiting(&sink) + loopback_backlog() as usize;
    assert!(
        arrived < QUEUED / 2,
        "{arrived} of {QUEUED} datagrams were sent or are on their way after the abort"
    );
}

fn stop_with_a_full_send_buffer_ends_at_the_close_timeout(rt: Runtime, by: StopBy, name: &str) {
    if !rerun_in_fresh_netns(name) {
        return;
    }
    let config = Config {
        close_timeout: Some(CLOSE_TIMEOUT),
        ..Config::default()
    };
    let (endpoint, _sink) = backed_up_endpoint(rt, config);
    let cpu_before = cpu_ticks(std::process::id()).expect("/proc/self/stat");
    let asked = Instant::now();
    endpoint.request_stop(by);
    let probe = endpoint.join_within(JOIN_GUARD);
    let took = asked.elapsed();
    let cpu = cpu_ticks(std::process::id()).expect("/proc/self/stat") - cpu_before;
    println!(
        "{rt:?} {by:?}: join returned {took:?} after the request (close_timeout \
         {CLOSE_TIMEOUT:?}); {cpu} CPU ticks meanwhile"
    );
    // Waiting for a full send buffer sleeps: a driver that spun (retrying the send, or
    // waking for a socket it could not use) would burn the whole wait, some 70 ticks.
    assert!(
        cpu < 20,
        "{rt:?}: {cpu} CPU ticks while waiting {took:?} for a full send buffer"
    );
    let probe = probe.unwrap_or_else(|| panic!("{rt:?}: still running {took:?} after {by:?}"));
    assert!(
        took >= CLOSE_TIMEOUT,
        "{rt:?}: a graceful stop gave up before its deadline ({took:?})"
    );
    assert!(
        took < CLOSE_TIMEOUT + CLOSE_SLACK,
        "{rt:?}: join took {took:?} after {by:?}, past the {CLOSE_TIMEOUT:?} close timeout"
    );
    assert_eq!(
        probe.events.last(),
        Some(&Event::Stopped(Reason::TimedOut(Timeout::Close))),
        "{:?}",
        probe.events
    );
}

macro_rules! on_every_runtime {
    ($($scenario:ident($by:ident) as $test:ident),* $(,)?) => {
        mod on_std {
            $(#[test]
              fn $test() {
                  super::$scenario(
                      super::Runtime::Std,
                      super::StopBy::$by,
                      concat!("on_std::", stringify!($test)),
                  )
              })*
        }
        mod on_smol {
            $(#[test]
              fn $test() {
                  super::$scenario(
                      super::Runtime::Smol,
                      super::StopBy::$by,
                      concat!("on_smol::", stringify!($test)),
                  )
              })*
        }
        mod on_tokio {
            $(#[test]
              fn $test() {
                  super::$scenario(
                      super::Runtime::Tokio,
                      super::StopBy::$by,
                      concat!("on_tokio::", stringify!($test)),
                  )
              })*
        }
    };
}

on_every_runtime!(
    abort_with_a_full_send_buffer_ends_at_once(OwnerAbort) as owner_abort_ends_at_once,
    abort_with_a_full_send_buffer_ends_at_once(HandleAbort) as handle_abort_ends_at_once,
    stop_with_a_full_send_buffer_ends_at_the_close_timeout(OwnerStop)
        as owner_stop_ends_at_the_close_timeout,
    stop_with_a_full_send_buffer_ends_at_the_close_timeout(HandleClose)
        as handle_close_ends_at_the_close_timeout,
);
