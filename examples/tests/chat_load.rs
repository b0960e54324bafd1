//! Load: 1,000 concurrent chatters on the smol runtime. Every broadcast line reaches every
//! other chatter exactly once, and in order per sender.
//!
//! Bounded in count (CHATTERS x LINES) and in time (a hard deadline fails the test instead of
//! hanging it). Prints the measured figures; `LOOMWORK_CHATTERS` and `LOOMWORK_CHAT_LINES`
//! override the size, `LOOMWORK_CHAT_RUNTIME=std` runs the server on `loomwork-std`. For figures, run it in release:
//! `cargo test --release -p loomwork-examples --test chat_load -- --nocapture`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future;
use loomwork_examples::chat::{ChatConfig, ChatFactory};
use smol::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use smol::net::TcpStream;

/// The whole run must finish within this, or the test fails (a hang guard, not a measurement).
const DEADLINE: Duration = Duration::from_secs(300);

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Two sockets per chatter (both ends live in this process): lift the descriptor limit as far
/// as the process may (the `unsafe` for it lives in loomwork-net's test kit).
fn raise_nofile_limit() {
    let _ = loomwork_net::testing::raise_descriptor_limit(1 << 20);
}

/// The chat server under load, on either runtime.
enum ChatServer {
    Smol(loomwork_smol::Server<loomwork_examples::chat::ChatMessage>),
    Std(loomwork_std::Server<loomwork_examples::chat::ChatMessage>),
}

impl ChatServer {
    fn name(&self) -> &'static str {
        match self {
            ChatServer::Smol(_) => "smol",
            ChatServer::Std(_) => "std",
        }
    }

    fn local_addr(&self) -> SocketAddr {
        match self {
            ChatServer::Smol(s) => s.local_addr(),
            ChatServer::Std(s) => s.local_addr(),
        }
    }

    /// Graceful shutdown: (drained, aborted).
    fn shutdown(self, drain: Duration) -> (usize, usize) {
        match self {
            ChatServer::Smol(s) => {
                let report = smol::block_on(s.shutdown(drain));
                (report.drained, report.aborted)
            }
            ChatServer::Std(s) => {
                let report = s.shutdown(drain);
                (report.drained, report.aborted)
            }
        }
    }
}

/// What one chatter saw.
struct Seen {
    lines: usize,
    /// Lines out of order, duplicated, from itself, or malformed.
    wrong: Vec<String>,
    /// Per sender, how many of its lines arrived.
    per_sender: Vec<u32>,
}

async fn read_line(reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = String::new();
    match reader.read_line(&mut line).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
    }
}

/// Joins as `c<me>`, reports it, waits for the start, says `lines` lines, then reads every
/// other chatter's lines and checks their order.
async fn chatter(
    addr: SocketAddr,
    me: usize,
    chatters: usize,
    lines: usize,
    joined: Arc<AtomicUsize>,
    start: smol::channel::Receiver<()>,
) -> Result<Seen, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("c{me}: connect: {e}"))?;
    let mut writer = stream.clone();
    let mut reader = BufReader::new(stream);
    let name = format!("c{me}");
    let greet = read_line(&mut reader).await;
    if greet.as_deref() != Some("What's your name?") {
        return Err(format!("{name}: greeting {greet:?}"));
    }
    writer
        .write_all(format!("{name}\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let welcome = read_line(&mut reader).await;
    if welcome.as_deref() != Some(format!("Welcome, {name}!").as_str()) {
        return Err(format!("{name}: welcome {welcome:?}"));
    }
    joined.fetch_add(1, Ordering::SeqCst);
    // Nobody speaks before everyone is in the room, or late joiners would miss lines.
    let _ = start.recv().await;
    let mut out = String::new();
    for seq in 0..lines {
        out.push_str(&format!("m{seq}\r\n"));
    }
    writer
        .write_all(out.as_bytes())
        .await
        .map_err(|e| format!("{name}: write: {e}"))?;
    let expected = (chatters - 1) * lines;
    let mut seen = Seen {
        lines: 0,
        wrong: Vec::new(),
        per_sender: vec![0; chatters],
    };
    while seen.lines < expected {
        let Some(line) = read_line(&mut reader).await else {
            return Err(format!(
                "{name}: closed after {} of {expected} lines",
                seen.lines
            ));
        };
        seen.lines += 1;
        let Some((sender, seq)) = parse(&line) else {
            seen.wrong.push(line);
            continue;
        };
        if sender == me || sender >= chatters || seen.per_sender[sender] != seq {
            seen.wrong.push(line);
            continue;
        }
        seen.per_sender[sender] += 1;
    }
    Ok(seen)
}

/// `c<sender>: m<seq>` into its numbers.
fn parse(line: &str) -> Option<(usize, u32)> {
    let (sender, message) = line.split_once(": ")?;
    let sender = sender.strip_prefix('c')?.parse().ok()?;
    let seq = message.strip_prefix('m')?.parse().ok()?;
    Some((sender, seq))
}

#[test]
fn a_thousand_chatters_each_get_every_line_once_and_in_order() {
    let chatters = setting("LOOMWORK_CHATTERS", 1000);
    let lines = setting("LOOMWORK_CHAT_LINES", 2);
    raise_nofile_limit();
    let factory = ChatFactory::new(ChatConfig::default());
    let room = factory.room();
    // The server runs on smol unless LOOMWORK_CHAT_RUNTIME=std asks for a thread per chatter;
    // the chatters themselves are smol tasks either way.
    let any = "127.0.0.1:0".parse().unwrap();
    let on_std = std::env::var("LOOMWORK_CHAT_RUNTIME").is_ok_and(|r| r == "std");
    let server = if on_std {
        ChatServer::Std(loomwork_std::listen_tcp(any, factory).expect("listen on loopback"))
    } else {
        ChatServer::Smol(loomwork_smol::listen_tcp(any, factory).expect("listen on loopback"))
    };
    let addr = server.local_addr();
    let joined = Arc::new(AtomicUsize::new(0));
    let (go, start) = smol::channel::bounded::<()>(1);

    let began = Instant::now();
    let tasks: Vec<_> = (0..chatters)
        .map(|me| {
            smol::spawn(chatter(
                addr,
                me,
                chatters,
                lines,
                joined.clone(),
                start.clone(),
            ))
        })
        .collect();
    // Wait (bounded) for everyone to be in the room.
    while joined.load(Ordering::SeqCst) < chatters && began.elapsed() < DEADLINE {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(joined.load(Ordering::SeqCst), chatters, "all joined");
    assert_eq!(room.len(), chatters);
    let join_time = began.elapsed();

    let talking = Instant::now();
    drop(go); // closing the channel starts everyone at once
    let results = smol::block_on(future::or(
        async {
            let mut results = Vec::with_capacity(chatters);
            for task in tasks {
                results.push(task.await);
            }
            Some(results)
        },
        async {
            smol::Timer::after(DEADLINE.saturating_sub(began.elapsed())).await;
            None
        },
    ))
    .expect("the chat finished before the deadline");
    let talk_time = talking.elapsed();

    let mut delivered = 0;
    for (me, result) in results.into_iter().enumerate() {
        let seen = result.unwrap_or_else(|err| panic!("{err}"));
        assert!(
            seen.wrong.is_empty(),
            "c{me}: unexpected {:?}",
            &seen.wrong[..seen.wrong.len().min(5)]
        );
        for (sender, count) in seen.per_sender.iter().enumerate() {
            let want = if sender == me { 0 } else { lines as u32 };
            assert_eq!(*count, want, "c{me} got {count} lines from c{sender}");
        }
        delivered += seen.lines;
    }
    assert_eq!(delivered, chatters * (chatters - 1) * lines);
    let runtime = server.name();
    let (drained, aborted) = server.shutdown(Duration::from_secs(10));
    eprintln!(
        "chat load ({runtime}): {chatters} chatters joined in {join_time:.2?}; {} lines said, {delivered} \
         delivered exactly once and in order in {talk_time:.2?} ({:.0} deliveries/s); \
         shutdown: {} drained, {} aborted",
        chatters * lines,
        delivered as f64 / talk_time.as_secs_f64(),
        drained,
        aborted,
    );
}
