//! The chat server's conversation, over loopback on every runtime: names, authentication,
//! broadcast fan-out, a chatter leaving mid-broadcast, idle eviction.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use loomwork_examples::chat::{ChatConfig, ChatFactory, Room};

/// A chat server running in this process.
enum Server {
    Std(loomwork_std::Server<loomwork_examples::chat::ChatMessage>),
    Smol(loomwork_smol::Server<loomwork_examples::chat::ChatMessage>),
    Tokio(loomwork_tokio::Server<loomwork_examples::chat::ChatMessage>),
}

impl Server {
    fn start(runtime: &str, config: ChatConfig) -> (Self, SocketAddr, Room) {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let factory = ChatFactory::new(config);
        let room = factory.room();
        let server = match runtime {
            "std" => Server::Std(loomwork_std::listen_tcp(any, factory).expect("listen")),
            "tokio" => Server::Tokio(
                loomwork_tokio::listen_tcp_on(
                    loomwork_examples::tokio_runtime().handle(),
                    any,
                    factory,
                    Default::default(),
                )
                .expect("listen"),
            ),
            _ => Server::Smol(loomwork_smol::listen_tcp(any, factory).expect("listen")),
        };
        let addr = match &server {
            Server::Std(s) => s.local_addr(),
            Server::Smol(s) => s.local_addr(),
            Server::Tokio(s) => s.local_addr(),
        };
        (server, addr, room)
    }

    /// The live connections' counters, as their handles report them.
    fn stats(&self) -> Vec<loomwork::stream::Stats> {
        let handles = match self {
            Server::Std(s) => s.handles(),
            Server::Smol(s) => s.handles(),
            Server::Tokio(s) => s.handles(),
        };
        handles.iter().filter_map(|h| h.stats()).collect()
    }

    fn stop(self) {
        match self {
            Server::Std(s) => drop(s.shutdown(Duration::from_secs(2))),
            Server::Smol(s) => drop(smol::block_on(s.shutdown(Duration::from_secs(2)))),
            Server::Tokio(s) => drop(
                loomwork_examples::tokio_runtime().block_on(s.shutdown(Duration::from_secs(2))),
            ),
        }
    }
}

/// A line-at-a-time client. The read timeout only stops a broken server from hanging the
/// test; nothing asserts on time.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    /// Connects and takes `name` (no secret).
    fn join(addr: SocketAddr, name: &str) -> Self {
        let mut c = Client::connect(addr);
        c.expect("What's your name?");
        c.send(name);
        c.expect(&format!("Welcome, {name}!"));
        c
    }

    fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
    }

    /// The next line without its `\r\n`; `None` at end of stream.
    fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
            Err(err) => panic!("read: {err}"),
        }
    }

    fn expect(&mut self, want: &str) {
        assert_eq!(self.line().as_deref(), Some(want));
    }

    fn expect_closed(&mut self) {
        assert_eq!(self.line(), None, "expected the server to close");
    }
}

/// Waits (bounded) until the room has `n` members.
fn wait_members(room: &Room, n: usize) {
    for _ in 0..500 {
        if room.len() == n {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(room.len(), n, "room size");
}

fn names_are_unique(runtime: &str) {
    let (server, addr, _) = Server::start(runtime, ChatConfig::default());
    let _alice = Client::join(addr, "alice");
    let mut other = Client::connect(addr);
    other.expect("What's your name?");
    other.send("alice");
    other.expect("Name taken, please choose another.");
    other.send("bob");
    other.expect("Welcome, bob!");
    drop((_alice, other));
    server.stop();
}

fn auth_success_and_failure(runtime: &str) {
    let config = ChatConfig {
        secret: Some("s3cret".into()),
        ..Default::default()
    };
    let (server, addr, room) = Server::start(runtime, config);
    let mut good = Client::connect(addr);
    good.send("AUTH s3cret");
    good.expect("What's your name?");
    good.send("carol");
    good.expect("Welcome, carol!");
    let mut bad = Client::connect(addr);
    bad.send("AUTH wrong");
    bad.expect("ERROR bad credentials");
    bad.expect_closed();
    let mut skipped = Client::connect(addr);
    skipped.send("dave");
    skipped.expect("ERROR bad credentials");
    skipped.expect_closed();
    assert_eq!(room.len(), 1);
    drop((good, bad, skipped));
    server.stop();
}

fn broadcast_reaches_every_other_chatter(runtime: &str) {
    let (server, addr, room) = Server::start(runtime, ChatConfig::default());
    let mut a = Client::join(addr, "a");
    let mut b = Client::join(addr, "b");
    let mut c = Client::join(addr, "c");
    wait_members(&room, 3);
    a.send("hello all");
    b.expect("a: hello all");
    c.expect("a: hello all");
    // The sender does not hear itself: its next line is b's.
    b.send("hi a");
    a.expect("b: hi a");
    c.expect("b: hi a");
    // The counters are readable from the runtime's handles: a and b each sent a name and a
    // line; every member got a prompt, a welcome and the others' lines.
    let frames = |stats: &[loomwork::stream::Stats]| {
        let mut frames: Vec<_> = stats
            .iter()
            .map(|s| (s.frames_received, s.frames_sent))
            .collect();
        frames.sort();
        frames
    };
    let mut seen = frames(&server.stats());
    for _ in 0..500 {
        if seen == [(1, 4), (2, 3), (2, 3)] {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        seen = frames(&server.stats());
    }
    assert_eq!(
        seen,
        [(1, 4), (2, 3), (2, 3)],
        "(frames in, frames out) per member"
    );
    assert!(server
        .stats()
        .iter()
        .all(|s| s.bytes_received > 0 && s.bytes_sent > 0));
    // Clients hang up first: a graceful close waits (bounded) for the peer's end of stream.
    drop((a, b, c));
    server.stop();
}

fn chatter_leaving_mid_broadcast(runtime: &str) {
    const LINES: usize = 200;
    let (server, addr, room) = Server::start(runtime, ChatConfig::default());
    let mut talker = Client::join(addr, "talker");
    let mut listeners: Vec<Client> = (0..3)
        .map(|i| Client::join(addr, &format!("l{i}")))
        .collect();
    let leaver = Client::join(addr, "leaver");
    wait_members(&room, 5);
    for i in 0..LINES {
        talker.send(&format!("line {i}"));
        if i == LINES / 2 {
            // Gone without a word, in the middle of the stream.
            drop(leaver_take(&leaver));
        }
    }
    for listener in &mut listeners {
        for i in 0..LINES {
            listener.expect(&format!("talker: line {i}"));
        }
    }
    drop(leaver);
    wait_members(&room, 4);
    // The name is free again, and the room still works.
    let mut back = Client::join(addr, "leaver");
    talker.send("welcome back");
    back.expect("talker: welcome back");
    drop((talker, listeners, back));
    server.stop();
}

/// Shuts the leaver's socket down both ways (a `drop` of the clone alone would not close it).
fn leaver_take(leaver: &Client) -> std::io::Result<()> {
    leaver.writer.shutdown(std::net::Shutdown::Both)
}

fn idle_chatters_are_evicted(runtime: &str) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let config = ChatConfig {
        idle_timeout: Some(Duration::from_millis(300)),
        ..Default::default()
    };
    let (server, addr, room) = Server::start(runtime, config);
    let mut silent = Client::join(addr, "silent");
    let mut active = Client::join(addr, "active");
    let stop = Arc::new(AtomicBool::new(false));
    let ticking = stop.clone();
    // Talks every 50 ms until told to stop (bounded: 400 ticks at most).
    let ticker = std::thread::spawn(move || {
        for i in 0..400 {
            if ticking.load(Ordering::SeqCst) {
                break;
            }
            active.send(&format!("tick {i}"));
            std::thread::sleep(Duration::from_millis(50));
        }
        active
    });
    // The silent member hears the ticks but says nothing: it is evicted all the same.
    let mut heard = 0;
    while let Some(line) = silent.line() {
        assert!(line.starts_with("active: tick"), "{line}");
        heard += 1;
    }
    // The one still talking is still there.
    let still_there = room.len();
    stop.store(true, Ordering::SeqCst);
    let mut active = ticker.join().expect("ticker");
    assert_eq!(still_there, 1, "only the silent member was evicted");
    assert!(
        heard >= 1,
        "the silent member was sent lines before its eviction"
    );
    // Now quiet too: evicted in turn.
    active.expect_closed();
    wait_members(&room, 0);
    drop((silent, active));
    server.stop();
}

macro_rules! on_every_runtime {
    ($($name:ident),* $(,)?) => {
        mod smol_runtime {
            $( #[test] fn $name() { super::$name("smol"); } )*
        }
        mod std_runtime {
            $( #[test] fn $name() { super::$name("std"); } )*
        }
        mod tokio_runtime {
            $( #[test] fn $name() { super::$name("tokio"); } )*
        }
    };
}

on_every_runtime!(
    names_are_unique,
    auth_success_and_failure,
    broadcast_reaches_every_other_chatter,
    chatter_leaving_mid_broadcast,
    idle_chatters_are_evicted,
);
