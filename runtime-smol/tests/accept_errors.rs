//! Accept errors such as EMFILE: the server backs off and recovers instead of dying or
//! spinning. Its own test binary, because it lowers the process's descriptor limit.

mod common;

use std::time::Duration;

use common::{any_port, bounded, Echo};
use loomwork_smol::listen_tcp;
use smol::io::{AsyncReadExt, AsyncWriteExt};

fn set_fd_limit(soft: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls with a valid pointer to a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        let old = limit.rlim_cur;
        limit.rlim_cur = soft;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        old
    }
}

/// CPU time this process has used (user + system).
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

#[test]
fn accept_backs_off_on_emfile_and_recovers() {
    const CLIENTS: usize = 8;
    bounded(async {
        let server = listen_tcp(any_port(), |_| Echo).unwrap();
        // Client sockets exist before the limit drops; connecting needs no new descriptor.
        let sockets: Vec<_> = (0..CLIENTS)
            .map(|_| socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None))
            .collect::<Result<_, _>>()
            .unwrap();
        // Let the reactor and executor create whatever descriptors they need first.
        smol::Timer::after(Duration::from_millis(20)).await;
        // New descriptors take the lowest free number, and closed ones leave holes: only a
        // limit below every free number makes each new descriptor fail.
        let old = set_fd_limit(1);
        for socket in &sockets {
            socket.connect(&server.local_addr().into()).unwrap();
        }
        // The handshakes completed in the kernel; accept(2) now fails with EMFILE.
        let cpu_before = cpu_time();
        let window = Duration::from_millis(300);
        smol::Timer::after(window).await;
        let cpu_used = cpu_time() - cpu_before;
        let accepted = server.connection_count();
        set_fd_limit(old);
        eprintln!("CPU used during a {window:?} EMFILE window: {cpu_used:?}");
        assert_eq!(accepted, 0, "accept cannot succeed yet");

        // Limit restored: every waiting client is accepted and served.
        for (i, socket) in sockets.into_iter().enumerate() {
            let mut stream =
                smol::net::TcpStream::try_from(std::net::TcpStream::from(socket)).unwrap();
            let message = [i as u8; 32];
            stream.write_all(&message).await.unwrap();
            let mut echoed = [0; 32];
            stream.read_exact(&mut echoed).await.unwrap();
            assert_eq!(echoed, message);
        }
        server.shutdown(Duration::from_secs(5)).await;
    });
}
