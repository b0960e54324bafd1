//! Twisted's classic `LineReceiver` chat, on loomwork's line framing, connection handles and
//! idle-timeout policy. Shared by the `chat_server` example and its tests.
//!
//! The conversation (docs/examples.md): the server asks `What's your name?`; a name already in use
//! gets `Name taken, please choose another.`; otherwise `Welcome, <name>!`, and every later line
//! goes to every other chatter as `<name>: <line>`. With a secret, the first line must be
//! `AUTH <secret>`; anything else gets `ERROR bad credentials` and the connection is closed.
//!
//! Lines end in `\n` with an optional `\r` before it, so `nc` works as well as Twisted's
//! `\r\n` clients; the server always sends `\r\n`.
//!
//! Memory (issue 12): a line said in the room is encoded once, as a [`WireFrame`], and every
//! member's write queue holds a reference to the same bytes. A member that does not read is
//! evicted once its queue passes [`MEMBER_QUEUE_LIMIT`]: its connection is aborted with
//! `Reason::LimitExceeded { limit: Limit::WriteQueue, .. }` (logged to stderr, and what its
//! `connection_lost` sees), and the others get `<name> has left (too slow to keep up).`.
//! Members that read go on receiving every line, in order.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use loomwork::bytes::{Bytes, BytesMut};
use std::sync::atomic::{AtomicUsize, Ordering};

use loomwork::framing::SendError;
use loomwork::framing::{FrameHandler, FrameTransport, Framed, LineCodec, WireFrame};
use loomwork::policy::{CloseWhenIdle, IdleTimeout};
use loomwork::stream::{Config, Handle, ServerFactory, WriteError};
use loomwork::{Limit, Reason};

/// How much a member's send queue may hold (its account: bytes plus per-entry overhead, see
/// [`Config`]) before the member is evicted as too slow.
///
/// 256 KiB is about 1,100 queued 100-byte lines (each charged 228 bytes), or 15 lines of the
/// longest (16 KiB): minutes of a lively room for a person, and far more than a client that reads
/// ever falls behind on a local network, where the kernel's socket buffers (hundreds of KiB) take
/// the bursts first. Since lines are shared, an evicted member's queue held mostly references: 60
/// members that never read cost about 60 x 1,100 x 40 bytes of queue entries, plus the lines
/// themselves once. The general default of 16 MiB per connection would let each idle member pin
/// 16 MiB of line references and delay its eviction by minutes.
pub const MEMBER_QUEUE_LIMIT: usize = 256 * 1024;

/// The connection settings a chat server should run with: the defaults, with the send queue
/// capped at [`MEMBER_QUEUE_LIMIT`].
pub fn connection_config() -> Config {
    Config {
        max_queued: Some(MEMBER_QUEUE_LIMIT),
        ..Config::default()
    }
}

/// What members post to each other: a line encoded once, shared by every queue it goes to.
pub type ChatMessage = WireFrame;

/// What one chat connection is: the chat on line framing, inside an idle timeout (off when no
/// period is configured) that only the member's own lines reset.
pub type ChatProtocol = IdleTimeout<Framed<Chat>, CloseWhenIdle>;

/// The transport a [`Chat`] sees.
type Tx<'t, 'a> = FrameTransport<'t, 'a, LineCodec, ChatMessage>;

/// The chatters, by name: one shared table that every connection's broadcast goes through.
#[derive(Clone, Default)]
pub struct Room {
    members: Arc<Mutex<HashMap<String, Handle<ChatMessage>>>>,
    evicted: Arc<AtomicUsize>,
}

impl Room {
    /// How many chatters have a name.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nobody has joined.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// How many members have been evicted for not keeping up with the room.
    pub fn evictions(&self) -> usize {
        self.evicted.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Handle<ChatMessage>>> {
        // Every update is a single insert or remove, so a poisoned table is still consistent.
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `name` for `handle`; false if it is in use.
    fn join(&self, name: &str, handle: Handle<ChatMessage>) -> bool {
        let mut members = self.lock();
        if members.contains_key(name) {
            return false;
        }
        members.insert(name.to_owned(), handle);
        true
    }

    /// Frees `name`, if `id` still holds it.
    fn leave(&self, name: &str, id: u64) {
        let mut members = self.lock();
        if members.get(name).is_some_and(|h| h.id() == id) {
            members.remove(name);
        }
    }

    /// Posts `line` to everyone but `from`: each gets a reference to the same bytes. A
    /// chatter that has just left is skipped: its mailbox hands the line back and it is
    /// simply not delivered.
    fn broadcast(&self, from: u64, line: &ChatMessage) {
        for handle in self.lock().values().filter(|h| h.id() != from) {
            let _ = handle.send(line.clone());
        }
    }
}

/// Settings of a chat server.
#[derive(Clone, Debug, Default)]
pub struct ChatConfig {
    /// Required first line `AUTH <secret>`, when set.
    pub secret: Option<String>,
    /// Close connections silent both ways for this long.
    pub idle_timeout: Option<Duration>,
}

/// Builds a [`ChatProtocol`] per connection, all in one [`Room`].
pub struct ChatFactory {
    room: Room,
    config: ChatConfig,
}

impl ChatFactory {
    /// A factory for a fresh room.
    pub fn new(config: ChatConfig) -> Self {
        ChatFactory {
            room: Room::default(),
            config,
        }
    }

    /// The room, to look at from outside.
    pub fn room(&self) -> Room {
        self.room.clone()
    }
}

impl ServerFactory for ChatFactory {
    type Protocol = ChatProtocol;

    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<ChatProtocol> {
        let chat = Chat {
            room: self.room.clone(),
            secret: self.config.secret.clone(),
            state: State::Fresh,
        };
        let framed = Framed::new(chat, LineCodec::new().with_delimiter("\n").ok()?);
        // A member who only listens is still silent: only their own lines count.
        let idle = IdleTimeout::with_hook(framed, self.config.idle_timeout, CloseWhenIdle);
        Some(idle.resetting_on_writes(false))
    }
}

/// One chatter's side of the conversation.
pub struct Chat {
    room: Room,
    secret: Option<String>,
    state: State,
}

/// Where a chatter is in the conversation.
enum State {
    /// Connected; nothing said yet.
    Fresh,
    /// Authenticated (or no secret needed); waiting for a free name.
    Naming,
    /// In the room under this name, as connection `id`.
    Chatting { name: String, id: u64 },
}

impl Chat {
    fn say(&self, text: &str, tx: &mut Tx<'_, '_>) {
        let mut line = Vec::with_capacity(text.len() + 1);
        line.extend_from_slice(text.as_bytes());
        line.push(b'\r');
        send(Bytes::from(line), tx);
    }

    fn ask_name(&mut self, tx: &mut Tx<'_, '_>) {
        self.state = State::Naming;
        self.say("What's your name?", tx);
    }
}

/// Queues one line for this chatter alone.
fn send(line: Bytes, tx: &mut Tx<'_, '_>) {
    if let Err(error) = tx.send_frame(line) {
        evict(&error, tx);
    }
}

/// A chatter too slow to take its share of the room is evicted rather than allowed to grow the
/// server's memory: aborted, so that its queue (which it is not reading) is dropped at once
/// instead of being flushed for the close timeout, with a reason that says which limit.
fn evict(error: &SendError, tx: &mut Tx<'_, '_>) {
    if !tx.is_closing() {
        // What the queue would have held with the refused line: past the limit.
        let (max, seen) = match error {
            SendError::Write(WriteError::QueueFull { queued, max, len }) => (*max, queued + len),
            _ => (tx.config().max_queued.unwrap_or(0), tx.queued_memory()),
        };
        tx.abort_connection_with(Reason::LimitExceeded {
            limit: Limit::WriteQueue,
            max,
            seen,
        });
    }
}

/// The notice the room gets when `name` is evicted.
fn left_notice(name: &str) -> ChatMessage {
    WireFrame::from_wire_bytes(Bytes::from(format!(
        "{name} has left (too slow to keep up).\r\n"
    )))
}

impl FrameHandler for Chat {
    type Codec = LineCodec;
    type Message = ChatMessage;

    fn connection_made(&mut self, tx: &mut Tx<'_, '_>) {
        if self.secret.is_none() {
            self.ask_name(tx);
        }
    }

    fn frame_received(&mut self, line: Bytes, tx: &mut Tx<'_, '_>) {
        let line = line
            .strip_suffix(b"\r")
            .map_or(line.clone(), |l| line.slice(..l.len()));
        match &self.state {
            State::Fresh => {
                let expected = self.secret.as_deref().unwrap_or_default();
                if line.strip_prefix(b"AUTH ") == Some(expected.as_bytes()) {
                    self.ask_name(tx);
                } else {
                    self.say("ERROR bad credentials", tx);
                    tx.lose_connection();
                }
            }
            State::Naming => {
                let Some(handle) = tx.handle().cloned() else {
                    // A runtime without handles cannot broadcast: nothing to join.
                    tx.lose_connection();
                    return;
                };
                let name = String::from_utf8_lossy(&line).trim().to_owned();
                if name.is_empty() {
                    self.say("What's your name?", tx);
                } else if self.room.join(&name, handle.clone()) {
                    self.say(&format!("Welcome, {name}!"), tx);
                    self.state = State::Chatting {
                        name,
                        id: handle.id(),
                    };
                } else {
                    self.say("Name taken, please choose another.", tx);
                }
            }
            State::Chatting { name, id } => {
                let mut out = Vec::with_capacity(name.len() + 3 + line.len());
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(&line);
                out.push(b'\r');
                // Encoded once here; every member's queue shares these bytes.
                match tx.encode_wire(out) {
                    Ok(frame) => self.room.broadcast(*id, &frame),
                    // Only a name near the line limit can make the line too long to send.
                    Err(_) => self.say("ERROR line too long", tx),
                }
            }
        }
    }

    fn message(&mut self, line: ChatMessage, tx: &mut Tx<'_, '_>) {
        if let Err(error) = tx.send_wire(&line) {
            evict(&error, tx);
        }
    }

    fn raw_data_received(&mut self, data: &mut BytesMut, _: &mut Tx<'_, '_>) {
        data.clear();
    }

    fn connection_lost(&mut self, reason: &Reason) {
        if let State::Chatting { name, id } = &self.state {
            self.room.leave(name, *id);
            if matches!(
                reason,
                Reason::LimitExceeded {
                    limit: Limit::WriteQueue,
                    ..
                }
            ) {
                self.room.evicted.fetch_add(1, Ordering::SeqCst);
                eprintln!("chat: evicted {name}: {reason}");
                self.room.broadcast(*id, &left_notice(name));
            }
        }
    }
}
