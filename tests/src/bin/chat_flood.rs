//! Fan-out flood against `chat_server` (issue 12): `--idle` members join with a 2 KB receive
//! buffer and never read again, `--readers` members read everything, and one member sends
//! `--bytes` of `--line`-byte lines. Samples the server's RSS from /proc throughout, then
//! checks that every reader got every line in order and that every idle member was evicted.
//!
//! ```sh
//! chat_flood --connect 127.0.0.1:8123 --server-pid PID --idle 60 --readers 2 --bytes 42000000
//! ```
//!
//! Prints one `key=value` summary line; exits 1 when a check fails. Loopback only; every wait
//! is bounded by `--timeout-s`.

use clap::Parser;
use loomwork_conformance::cli::{loopback, seconds};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loomwork_conformance::procfs::rss_kib;
use socket2::{Domain, Socket, Type};

/// Flags (see the module docs).
#[derive(Parser, Debug)]
#[command(name = "chat_flood")]
struct Args {
    /// The chat server (loopback only).
    #[arg(long, default_value = "127.0.0.1:8123", value_parser = loopback)]
    connect: SocketAddr,
    /// The server's process id, to sample its RSS from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Members that join with a 2 KB receive buffer and never read.
    #[arg(long, default_value_t = 60)]
    idle: usize,
    /// Members that read everything.
    #[arg(long, default_value_t = 2)]
    readers: usize,
    /// Bytes the flooding member sends.
    #[arg(long, default_value_t = 42_000_000)]
    bytes: usize,
    /// Bytes per line (at least 12: a sequence number fits).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(12..))]
    line: u64,
    /// Every wait's limit, in seconds.
    #[arg(long = "timeout-s", default_value = "180", value_parser = seconds)]
    timeout: Duration,
}

/// Connects (with a receive buffer of `rcvbuf` bytes when given) and joins as `name`.
fn join(addr: SocketAddr, name: &str, rcvbuf: Option<usize>, timeout: Duration) -> TcpStream {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
    }
    socket
        .connect_timeout(&addr.into(), timeout)
        .expect("connect");
    let mut stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(timeout)).expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("prompt");
    assert_eq!(line, "What's your name?\r\n");
    stream
        .write_all(format!("{name}\n").as_bytes())
        .expect("name");
    line.clear();
    reader.read_line(&mut line).expect("welcome");
    assert_eq!(line, format!("Welcome, {name}!\r\n"));
    stream
}

/// What a reader saw.
#[derive(Default)]
struct Seen {
    lines: usize,
    in_order: bool,
    left_notices: usize,
}

fn main() {
    let args = Args::parse();
    let deadline = Instant::now() + args.timeout;
    let line_len = usize::try_from(args.line).expect("--line fits in memory");
    let lines = args.bytes / line_len;
    let base_kib = args.server_pid.and_then(rss_kib).unwrap_or(0);

    let idle: Vec<TcpStream> = (0..args.idle)
        .map(|i| join(args.connect, &format!("idle{i}"), Some(2048), args.timeout))
        .collect();
    let readers: Vec<TcpStream> = (0..args.readers)
        .map(|i| join(args.connect, &format!("reader{i}"), None, args.timeout))
        .collect();
    let mut sender = join(args.connect, "sender", None, args.timeout);

    // RSS sampler, every 10 ms until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        let pid = args.server_pid;
        std::thread::spawn(move || {
            let mut peak = 0u64;
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                if let Some(kib) = pid.and_then(rss_kib) {
                    peak = peak.max(kib);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        })
    };

    let reader_threads: Vec<_> = readers
        .into_iter()
        .map(|stream| {
            std::thread::spawn(move || {
                let mut seen = Seen {
                    in_order: true,
                    ..Seen::default()
                };
                let mut reader = BufReader::with_capacity(256 * 1024, stream);
                let mut line = String::new();
                while seen.lines < lines && Instant::now() < deadline {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    if let Some(body) = line.strip_prefix("sender: ") {
                        let seq: usize = body[..10].parse().unwrap_or(usize::MAX);
                        if seq != seen.lines {
                            seen.in_order = false;
                        }
                        seen.lines += 1;
                    } else if line.ends_with("has left (too slow to keep up).\r\n") {
                        seen.left_notices += 1;
                    } else {
                        seen.in_order = false;
                    }
                }
                seen
            })
        })
        .collect();

    // The flood: `lines` lines of `line` bytes each (newline included), sequence-numbered.
    let started = Instant::now();
    let filler = "x".repeat(line_len - 11);
    let mut batch = Vec::with_capacity(64 * 1024);
    for seq in 0..lines {
        batch.extend_from_slice(format!("{seq:010}{filler}\n").as_bytes());
        if batch.len() >= 60 * 1024 || seq + 1 == lines {
            sender.write_all(&batch).expect("flood write");
            batch.clear();
        }
        if Instant::now() > deadline {
            break;
        }
    }
    let sent_in = started.elapsed();
    let seen: Vec<Seen> = reader_threads
        .into_iter()
        .map(|t| t.join().expect("reader"))
        .collect();
    let received_in = started.elapsed();

    // Every idle member must have been cut off: its socket ends (EOF or reset) once the few
    // bytes buffered for it are read.
    let mut evicted = 0;
    for mut stream in idle {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut sink = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        loop {
            match stream.read(&mut sink) {
                // Still open after 5 s of silence: not evicted.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Ok(0) | Err(_) => {
                    evicted += 1;
                    break;
                }
                Ok(n) if total < 64 * 1024 * 1024 => total += n,
                Ok(_) => break,
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    let peak_kib = sampler.join().expect("sampler");
    let growth_mib = peak_kib.saturating_sub(base_kib) as f64 / 1024.0;
    let all_lines = seen.iter().all(|s| s.lines == lines && s.in_order);
    let notices: Vec<usize> = seen.iter().map(|s| s.left_notices).collect();
    println!(
        "idle={} readers={} lines={lines} line_bytes={} sent_s={:.2} received_s={:.2} \
         base_mib={:.1} peak_mib={:.1} growth_mib={growth_mib:.1} readers_got_all_in_order={all_lines} \
         reader_lines={:?} idle_evicted={evicted}/{} left_notices={notices:?}",
        args.idle,
        args.readers,
        args.line,
        sent_in.as_secs_f64(),
        received_in.as_secs_f64(),
        base_kib as f64 / 1024.0,
        peak_kib as f64 / 1024.0,
        seen.iter().map(|s| s.lines).collect::<Vec<_>>(),
        args.idle,
    );
    drop(sender);
    if !all_lines || evicted != args.idle {
        std::process::exit(1);
    }
}
