//! Accepting while the process is out of file descriptors (EMFILE): the accept loop must back
//! off instead of spinning or dying, and serve the waiting peers once descriptors are free.
//!
//! Alone in its test binary on purpose: it exhausts the process's descriptor table.

#[allow(dead_code)]
mod common;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{any_port, Echo, PATIENCE};
use loomwork_std::listen_tcp;
use socket2::{Domain, Socket, Type};

/// The `/proc` schedstat file of the first thread whose name starts with `prefix`, opened now so
/// that it can be read while the process has no descriptor to spare.
/// A new thread names itself once it runs, so look a few times (bounded) before giving up.
fn thread_status(prefix: &str) -> File {
    for _ in 0..500 {
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let dir = task.unwrap().path();
            let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if name.starts_with(prefix) {
                return File::open(dir.join("schedstat")).unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no thread named {prefix}*");
}

/// CPU time the thread has used so far, from its open schedstat file (first field, in ns).
fn cpu_time(schedstat: &mut File) -> Duration {
    let mut text = String::new();
    schedstat.seek(SeekFrom::Start(0)).unwrap();
    schedstat.read_to_string(&mut text).unwrap();
    let nanos = text.split_whitespace().next().unwrap().parse().unwrap();
    Duration::from_nanos(nanos)
}

#[test]
fn the_accept_loop_backs_off_while_out_of_descriptors_and_recovers() {
    const PEERS: usize = 3;
    let server = listen_tcp(any_port(), |_| Echo).unwrap();
    let addr = server.local_addr();
    // Client sockets are created first: connecting one needs no new descriptor.
    let sockets: Vec<Socket> = (0..PEERS)
        .map(|_| Socket::new(Domain::IPV4, Type::STREAM, None).unwrap())
        .collect();

    let mut accept_thread = thread_status("loomwork-accep");
    let mut hoard = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(file) => hoard.push(file),
            Err(err) if err.raw_os_error() == Some(libc::EMFILE) => break,
            Err(err) => panic!("unexpected error while exhausting descriptors: {err}"),
        }
        assert!(hoard.len() < 1_000_000, "bounded");
    }
    for socket in &sockets {
        // The kernel completes the handshake into the backlog; accept(2) then fails with EMFILE.
        socket.connect(&addr.into()).unwrap();
    }
    let before = cpu_time(&mut accept_thread);
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_time(&mut accept_thread) - before;
    drop(hoard);
    eprintln!("accept thread CPU in one second without descriptors: {used:?}");
    // Backing off (5 ms doubling to 500 ms) wakes the thread about ten times in that second,
    // for microseconds each; a loop retrying accept at once would burn the whole second.
    assert!(
        used < Duration::from_millis(100),
        "the accept thread used {used:?} of CPU in one second"
    );

    for (seed, socket) in sockets.into_iter().enumerate() {
        let mut stream = TcpStream::from(socket);
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let message = format!("peer {seed}");
        stream.write_all(message.as_bytes()).unwrap();
        let mut back = vec![0; message.len()];
        stream.read_exact(&mut back).unwrap();
        assert_eq!(
            back,
            message.as_bytes(),
            "served once descriptors were free"
        );
    }
    let report = server.shutdown(PATIENCE);
    assert_eq!(report.aborted, 0);
}
