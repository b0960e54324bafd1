//! `Server::serve_until_signal` on every runtime: a server program's main loop serves until
//! SIGTERM, then closes its connections gracefully (the peer reads an end of stream, not a
//! reset) and returns its shutdown report. Each runtime's server runs in a child copy of this
//! test binary, since the signal handler is process-wide.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use loomwork_conformance::child::{announce_listening, wait_for_stdin_to_close, ChildServer};
use loomwork_conformance::protocols::Echo;

const CHILD_ENV: &str = "LOOMWORK_SIGNAL_CHILD";
const PATIENCE: Duration = Duration::from_secs(30);
const DRAIN: Duration = Duration::from_secs(5);

#[test]
fn std_serves_until_sigterm_then_drains() {
    serves_until_sigterm("std", "std_serves_until_sigterm_then_drains");
}

#[test]
fn smol_serves_until_sigterm_then_drains() {
    serves_until_sigterm("smol", "smol_serves_until_sigterm_then_drains");
}

#[test]
fn tokio_serves_until_sigterm_then_drains() {
    serves_until_sigterm("tokio", "tokio_serves_until_sigterm_then_drains");
}

fn serves_until_sigterm(runtime: &str, test_name: &str) {
    if let Ok(role) = std::env::var(CHILD_ENV) {
        if role == runtime {
            serve(runtime);
        }
        return;
    }
    let child = ChildServer::spawn(test_name, CHILD_ENV, runtime, PATIENCE);
    let addr = child.listening_address();
    let mut peer = TcpStream::connect(addr).unwrap();
    peer.set_read_timeout(Some(PATIENCE)).unwrap();
    peer.write_all(b"hi").unwrap();
    let mut echo = [0; 2];
    peer.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"hi");

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // The connection is closed gracefully: an end of stream, not a reset.
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{runtime}: unexpected bytes {rest:?}");
    drop(peer);

    let report = child.wait_for_line("stopped: ");
    let status = child.stop();
    assert!(
        status.success(),
        "{runtime}: the server exited with {status}"
    );
    assert_eq!(report.trim(), "1 drained, 0 aborted", "{runtime}");
}

/// The child's side: a server program's whole main loop.
fn serve(runtime: &str) {
    // Before the server listens: the parent sends SIGTERM as soon as its echo comes back, and
    // a handler installed only by `serve_until_signal` (on smol, from a blocking-pool thread
    // that may not exist yet) can come too late on a loaded machine: the default action then
    // kills the child, and no report is printed (seen once in CI).
    loomwork_net::install_stop_signal().unwrap();
    let any = "127.0.0.1:0".parse().unwrap();
    let (drained, aborted) = match runtime {
        "std" => {
            let server = loomwork_std::listen_tcp(any, |_| Echo).unwrap();
            announce_listening(server.local_addr());
            let report = server.serve_until_signal(DRAIN).unwrap();
            (report.drained, report.aborted)
        }
        "tokio" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let report = rt.block_on(async {
                let server = loomwork_tokio::listen_tcp(any, |_| Echo).unwrap();
                announce_listening(server.local_addr());
                server.serve_until_signal(DRAIN).await.unwrap()
            });
            (report.drained, report.aborted)
        }
        _ => {
            let server = loomwork_smol::listen_tcp(any, |_| Echo).unwrap();
            announce_listening(server.local_addr());
            let report = smol::block_on(server.serve_until_signal(DRAIN)).unwrap();
            (report.drained, report.aborted)
        }
    };
    println!("stopped: {drained} drained, {aborted} aborted");
    std::io::stdout().flush().unwrap();
    // Wait for the parent's cue, as every child server does.
    wait_for_stdin_to_close();
}
