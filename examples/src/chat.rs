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

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use loomwork::bytes::{Bytes, BytesMut};
use loomwork::framing::{FrameHandler, FrameTransport, Framed, LineCodec};
use loomwork::policy::{CloseWhenIdle, IdleTimeout};
use loomwork::stream::{Handle, ServerFactory};
use loomwork::{Limit, Reason};

/// What one chat connection is: the chat on line framing, inside an idle timeout (off when no
/// period is configured) that only the member's own lines reset.
pub type ChatProtocol = IdleTimeout<Framed<Chat>, CloseWhenIdle>;

/// The transport a [`Chat`] sees.
type Tx<'t, 'a> = FrameTransport<'t, 'a, LineCodec, Bytes>;

/// The chatters, by name: one shared table that every connection's broadcast goes through.
#[derive(Clone, Default)]
pub struct Room {
    members: Arc<Mutex<HashMap<String, Handle<Bytes>>>>,
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

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Handle<Bytes>>> {
        // Every update is a single insert or remove, so a poisoned table is still consistent.
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `name` for `handle`; false if it is in use.
    fn join(&self, name: &str, handle: Handle<Bytes>) -> bool {
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

    /// Posts `line` to everyone but `from`. A chatter that has just left is skipped: its
    /// mailbox hands the line back and it is simply not delivered.
    fn broadcast(&self, from: u64, line: &Bytes) {
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

/// Queues one line; a chatter too slow to take its share of the room is closed rather than
/// allowed to grow the server's memory.
fn send(line: Bytes, tx: &mut Tx<'_, '_>) {
    if tx.send_frame(line).is_err() && !tx.is_closing() {
        let (max, seen) = (tx.config().max_queued.unwrap_or(0), tx.queued_bytes());
        tx.lose_connection_with(Reason::LimitExceeded {
            limit: Limit::WriteQueue,
            max,
            seen,
        });
    }
}

impl FrameHandler for Chat {
    type Codec = LineCodec;
    type Message = Bytes;

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
                self.room.broadcast(*id, &Bytes::from(out));
            }
        }
    }

    fn message(&mut self, line: Bytes, tx: &mut Tx<'_, '_>) {
        send(line, tx);
    }

    fn raw_data_received(&mut self, data: &mut BytesMut, _: &mut Tx<'_, '_>) {
        data.clear();
    }

    fn connection_lost(&mut self, _reason: &Reason) {
        if let State::Chatting { name, id } = &self.state {
            self.room.leave(name, *id);
        }
    }
}
