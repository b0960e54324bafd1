//! The AMP rows of issue 16: `Sum` calls per second over loopback, many connections each
//! keeping a window of calls in flight, against loomwork's `Amp` on every adapter and Twisted's
//! own AMP (`interop/twisted_amp.py server`, a child process, when python3 with Twisted is
//! there).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command as Process, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use loomwork::amp::{fields, Amp, AmpBox, AmpHandler, AmpTransport, Command, NoError, Responders};

use crate::load::Run;
use crate::servers::{loopback, smol_executor, tokio_runtime};

fields! {
    /// `Sum`'s arguments.
    struct SumArgs { a: i64, b: i64 }
}
fields! {
    /// `Sum`'s response.
    struct Total { total: i64 }
}
/// Twisted's `Sum`.
struct Sum;
impl Command for Sum {
    const NAME: &'static str = "Sum";
    type Arguments = SumArgs;
    type Response = Total;
    type Error = NoError;
}

/// The server every loomwork contender runs: `Sum`, as `ampserver.py`.
struct Math;
impl Math {
    fn sum(&mut self, args: SumArgs, _: &mut AmpTransport<'_, '_, Self>) -> Result<Total, NoError> {
        Ok(Total {
            total: args.a.wrapping_add(args.b),
        })
    }
}
impl AmpHandler for Math {
    type Message = ();
    fn responders(r: &mut Responders<Self>) {
        r.add::<Sum>(Self::sum);
    }
}

/// Which AMP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AmpServer {
    LoomworkSmol,
    LoomworkStd,
    LoomworkTokio,
    Twisted,
}

impl AmpServer {
    pub(crate) const ALL: [AmpServer; 4] = [
        AmpServer::LoomworkSmol,
        AmpServer::LoomworkStd,
        AmpServer::LoomworkTokio,
        AmpServer::Twisted,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            AmpServer::LoomworkSmol => "loomwork-smol",
            AmpServer::LoomworkStd => "loomwork-std",
            AmpServer::LoomworkTokio => "loomwork-tokio",
            AmpServer::Twisted => "twisted",
        }
    }

    /// Starts the server (loomwork's run until the process ends; Twisted's until the returned
    /// guard is dropped). `None` when Twisted cannot be started.
    pub(crate) fn start(self) -> Option<(SocketAddr, Option<ChildGuard>)> {
        let addr = match self {
            AmpServer::LoomworkSmol => {
                let server = loomwork_smol::listen_tcp_on(
                    smol_executor(),
                    loopback(),
                    |_| Amp::new(Math),
                    loomwork_smol::ListenConfig::default(),
                )
                .expect("listen");
                let addr = server.local_addr();
                std::mem::forget(server);
                addr
            }
            AmpServer::LoomworkStd => {
                let server =
                    loomwork_std::listen_tcp(loopback(), |_| Amp::new(Math)).expect("listen");
                let addr = server.local_addr();
                std::mem::forget(server);
                addr
            }
            AmpServer::LoomworkTokio => {
                let server = loomwork_tokio::listen_tcp_on(
                    tokio_runtime().handle(),
                    loopback(),
                    |_| Amp::new(Math),
                    loomwork_tokio::ListenConfig::default(),
                )
                .expect("listen");
                let addr = server.local_addr();
                std::mem::forget(server);
                addr
            }
            AmpServer::Twisted => return start_twisted(),
        };
        Some((addr, None))
    }
}

/// Kills (and reaps) the Twisted child when dropped.
pub(crate) struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_twisted() -> Option<(SocketAddr, Option<ChildGuard>)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../interop/twisted_amp.py");
    let child = Process::new("python3")
        .args([script, "server", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(child) => ChildGuard(child),
        Err(error) => {
            eprintln!("warning: no Twisted AMP row: cannot run python3: {error}");
            return None;
        }
    };
    let stdout = child.0.stdout.take()?;
    let mut line = String::new();
    // The script prints its one line once bound; a missing Twisted ends it at once instead.
    if BufReader::new(stdout).read_line(&mut line).is_err() || !line.starts_with("listening on") {
        eprintln!("warning: no Twisted AMP row: is Twisted installed? ({line:?})");
        return None;
    }
    let addr = line.split_whitespace().nth(3)?.parse().ok()?;
    Some((addr, Some(child)))
}

/// `count` `Sum` calls with tags `first..`, serialized as Twisted would write them.
fn calls(first: u64, count: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for tag in first..first + count {
        let mut call = AmpBox::new();
        for (key, value) in [
            ("_ask", format!("{tag:x}")),
            ("_command", "Sum".to_owned()),
            ("a", format!("{}", tag % 1000)),
            ("b", "81".to_owned()),
        ] {
            call.insert(key, value).expect("small pairs");
        }
        out.extend_from_slice(&call.to_wire());
    }
    out
}

/// Counts whole boxes at the front of `buf` (pairs ended by an empty key) and drops them.
fn take_boxes(buf: &mut Vec<u8>) -> u64 {
    let (mut at, mut boxes, mut consumed) = (0usize, 0u64, 0usize);
    while let Some(len) = buf.get(at..at + 2) {
        let key = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if key == 0 {
            at += 2;
            boxes += 1;
            consumed = at;
            continue;
        }
        let Some(len) = buf.get(at + 2 + key..at + 4 + key) else {
            break;
        };
        let value = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if buf.len() < at + 4 + key + value {
            break;
        }
        at += 4 + key + value;
    }
    buf.drain(..consumed);
    boxes
}

/// `connections` connections, each writing `window` calls at a time and reading their
/// answers before the next batch, for `duration`. Rate: answered calls per second.
pub(crate) fn calls_per_second(
    addr: SocketAddr,
    connections: usize,
    window: u64,
    duration: Duration,
) -> Run {
    let start = Arc::new(Barrier::new(connections + 1));
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let start = Arc::clone(&start);
            thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).expect("connect to a loopback server");
                stream.set_nodelay(true).expect("nodelay");
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("timeout");
                // The server answers each tag as it comes: one batch, sent again and again.
                let batch = calls(1, window);
                let mut answered = 0u64;
                let mut buf = Vec::with_capacity(64 * 1024);
                let mut chunk = vec![0u8; 64 * 1024];
                start.wait();
                let deadline = Instant::now() + duration;
                while Instant::now() < deadline && answered < 100_000_000 {
                    if stream.write_all(&batch).is_err() {
                        break;
                    }
                    let mut got = 0;
                    while got < window {
                        match stream.read(&mut chunk) {
                            Ok(n @ 1..) => {
                                buf.extend_from_slice(&chunk[..n]);
                                got += take_boxes(&mut buf);
                            }
                            _ => return answered,
                        }
                    }
                    answered += got;
                }
                answered
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let answered: u64 = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    Run {
        rate: answered as f64 / began.elapsed().as_secs_f64(),
        ..Run::default()
    }
}
