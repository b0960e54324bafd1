//! The AMP fuzz target's check (feature `testing`), kept in core so that a plain `cargo test`
//! replays the committed corpus (`fuzz/corpus/amp/`) through exactly the code `cargo fuzz` runs.
//!
//! Each input is read twice:
//!
//! | bytes | meaning |
//! |---|---|
//! | `data[0]` | the box decoder's bound: `8 + 4 * data[0]` bytes |
//! | `data[1..5]` | chunk sizes, each `1 + b % 16` |
//! | `data[5..]` | the decoder's input, and the AMP machine's script |
//!
//! The decoder must never panic, never buffer past its bound, leave the buffer alone on "need
//! more", give the same boxes and error however the input is chunked, and every box it yields
//! must serialize and decode back to the same pairs.
//!
//! The machine runs a client connection through a script of calls, answers and errors for
//! any tag (made or not, answered already or not, in any order), inbound commands, raw bytes,
//! time jumps past the call timeout, handle messages and the connection's end: it must never
//! panic, and every call it accepted must see its callback exactly once by the end.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::net::SocketAddr;
use core::time::Duration;

use alloc::rc::Rc;
use alloc::sync::Arc;
use bytes::{Bytes, BytesMut};
use core::sync::atomic::{AtomicU64, Ordering};

use crate::amp::{Amp, AmpBox, AmpHandler, AmpTransport, BoxCodec, Command, Config};
use crate::amp::{NoError, Responders};
use crate::framing::{Decoder, FrameError};
use crate::stream::{Config as StreamConfig, Connection};
use crate::{Instant, Reason};

const HEADER: usize = 5;

/// Runs both checks on one fuzz input.
pub fn check_amp(data: &[u8]) -> Result<(), String> {
    let Some((head, input)) = data.split_at_checked(HEADER) else {
        return Ok(());
    };
    let max = 8 + 4 * usize::from(head[0]);
    let chunks: Vec<usize> = head[1..].iter().map(|b| 1 + usize::from(b % 16)).collect();
    check_decoder(input, max, &chunks)?;
    check_machine(input)
}

type Outcome = (Vec<Bytes>, Option<FrameError>);

fn decode_in_chunks(input: &[u8], max: usize, chunks: &[usize]) -> Result<Outcome, String> {
    let mut codec = BoxCodec::new().with_max_length(max);
    let mut buf = BytesMut::new();
    let mut boxes = Vec::new();
    let mut rest = input;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = sizes.next().copied().unwrap_or(1).clamp(1, rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            let before = buf.clone();
            match codec.decode(&mut buf) {
                Ok(Some(pairs)) => {
                    let amp_box = AmpBox::parse(pairs.clone())
                        .map_err(|e| format!("decoded box does not parse: {e}"))?;
                    let mut again = BytesMut::from(&amp_box.to_wire()[..]);
                    let back = BoxCodec::new()
                        .with_max_length(usize::MAX)
                        .decode(&mut again)
                        .map_err(|e| format!("re-serialized box rejected: {e}"))?
                        .ok_or("re-serialized box incomplete")?;
                    let back = AmpBox::parse(back).map_err(|e| format!("{e}"))?;
                    for (key, _) in amp_box.iter() {
                        if back.get(key) != amp_box.get(key) {
                            return Err(format!("key {key:?} changed on re-serialization"));
                        }
                    }
                    boxes.push(pairs);
                }
                Ok(None) => {
                    if buf != before {
                        return Err("need more changed the buffer".into());
                    }
                    if buf.len() > max {
                        return Err(format!("buffered {} bytes past the bound {max}", buf.len()));
                    }
                    break;
                }
                Err(error) => return Ok((boxes, Some(error))),
            }
        }
    }
    Ok((boxes, None))
}

fn check_decoder(input: &[u8], max: usize, chunks: &[usize]) -> Result<(), String> {
    let whole = decode_in_chunks(input, max, &[usize::MAX])?;
    for sizes in [chunks, &[1]] {
        let chunked = decode_in_chunks(input, max, sizes)?;
        if chunked != whole {
            return Err(format!(
                "chunks {sizes:?} give {chunked:?}, whole input {whole:?}"
            ));
        }
    }
    Ok(())
}

crate::amp_fields! {
    /// The fuzzed command's arguments.
    pub(crate) struct Pair { pub(crate) a: i64, pub(crate) b: i64 }
}
crate::amp_fields! {
    /// The fuzzed command's response.
    pub(crate) struct Total { pub(crate) total: i64 }
}

/// The command the fuzzed client calls and answers.
struct Add;
impl Command for Add {
    const NAME: &'static str = "Add";
    type Arguments = Pair;
    type Response = Total;
    type Error = NoError;
}

/// Callbacks seen per call, and the first violation.
#[derive(Default)]
struct Ledger {
    answered: BTreeMap<u64, u32>,
    accepted: Vec<u64>,
    violation: Option<String>,
}

struct Client {
    ledger: Rc<RefCell<Ledger>>,
}

impl Client {
    fn add(&mut self, args: Pair, _: &mut AmpTransport<'_, '_, Self>) -> Result<Total, NoError> {
        Ok(Total {
            total: args.a.wrapping_add(args.b),
        })
    }
}

impl AmpHandler for Client {
    type Message = i64;
    fn responders(r: &mut Responders<Self>) {
        r.add::<Add>(Self::add);
    }
    fn message(&mut self, a: i64, amp: &mut AmpTransport<'_, '_, Self>) {
        call_counted(self, a, amp);
    }
    /// Every call accepted has had its callback by now (they ran just before this).
    fn connection_lost(&mut self, _reason: &Reason) {
        let mut ledger = self.ledger.borrow_mut();
        let unanswered = ledger
            .accepted
            .iter()
            .find(|tag| ledger.answered.get(tag) != Some(&1))
            .copied();
        if let (Some(tag), None) = (unanswered, &ledger.violation) {
            ledger.violation = Some(format!("call {tag} not answered exactly once at the end"));
        }
    }
}

/// The AMP machine as a server under the test kit's fuzz driver (feature `fuzz`): peers
/// connect, send arbitrary bytes in any chunking, stall, half-close and reset; messages posted
/// through handles make calls to the peer. Every invariant of
/// [`StreamCheck`](crate::testing::StreamCheck) must hold, and no call may be answered twice
/// (nor, once its connection ends, fewer than once).
#[cfg(feature = "fuzz")]
pub fn check_amp_server(data: &[u8]) -> Result<(), String> {
    use crate::testing::StreamCheck;
    StreamCheck::protocol(|| {
        let config = Config::default()
            .with_call_timeout(Duration::from_secs(1))
            .with_max_outstanding(16);
        let client = Client {
            ledger: Rc::default(),
        };
        Amp::with_config(client, config)
    })
    .messages(|u| u.arbitrary::<i64>())
    .invariant(
        |amp: &Amp<Client>| match &amp.handler().ledger.borrow().violation {
            Some(violation) => Err(violation.clone()),
            None => Ok(()),
        },
    )
    .fuzz_checked(data)
    .map_err(|violation| format!("{violation}"))
}

/// Makes a call whose callback counts itself in the ledger under its call's tag.
fn call_counted(client: &mut Client, a: i64, amp: &mut AmpTransport<'_, '_, Client>) {
    // The callback learns its own tag once the call is accepted (unset: `u64::MAX`).
    let slot = Arc::new(AtomicU64::new(u64::MAX));
    let seen = slot.clone();
    let sent = amp.call::<Add>(Pair { a, b: 1 }, move |me, _outcome, _| {
        let tag = seen.load(Ordering::Relaxed);
        let mut ledger = me.ledger.borrow_mut();
        let count = ledger.answered.entry(tag).or_insert(0);
        *count += 1;
        if *count > 1 && ledger.violation.is_none() {
            ledger.violation = Some(format!("call {tag} answered twice"));
        }
    });
    if let Ok(id) = sent {
        slot.store(id.get(), Ordering::Relaxed);
        client.ledger.borrow_mut().accepted.push(id.get());
    }
}

fn addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 1))
}

fn answer_box(tag: u64, total: &[u8]) -> Bytes {
    let mut b = AmpBox::new();
    let _ = b.insert("_answer", Bytes::from(format!("{tag:x}")));
    let _ = b.insert("total", Bytes::copy_from_slice(total));
    b.to_wire()
}

fn check_machine(script: &[u8]) -> Result<(), String> {
    let ledger = Rc::new(RefCell::new(Ledger::default()));
    let client = Client {
        ledger: ledger.clone(),
    };
    let config = Config::default()
        .with_call_timeout(Duration::from_secs(1))
        .with_max_outstanding(16)
        .with_max_box_length(1024);
    let mut conn = Connection::new(Amp::with_config(client, config), StreamConfig::default());
    let mut now = Instant::ZERO;
    conn.handle_connected(now, addr(), addr());
    let mut bytes = script.iter().copied();
    while let Some(op) = bytes.next() {
        let arg = bytes.next().unwrap_or(0);
        match op % 8 {
            0 | 6 => conn.handle_message(now, i64::from(arg)),
            1 => {
                let tag = u64::from(arg % 20);
                let total: &[u8] = if arg & 0x80 == 0 { b"7" } else { b"x" };
                conn.handle_data(now, &answer_box(tag, total));
            }
            2 => {
                let mut b = AmpBox::new();
                let _ = b.insert("_error", Bytes::from(format!("{:x}", arg % 20)));
                let code: &[u8] = match arg % 3 {
                    0 => b"UNKNOWN",
                    1 => b"UNHANDLED",
                    _ => b"ZERO_DIVISION",
                };
                let _ = b.insert("_error_code", Bytes::copy_from_slice(code));
                if arg & 0x40 == 0 {
                    let _ = b.insert("_error_description", "why");
                }
                conn.handle_data(now, &b.to_wire());
            }
            3 => {
                now += Duration::from_millis(100 * u64::from(arg));
                conn.handle_timeout(now);
            }
            4 => {
                let raw: Vec<u8> = bytes.by_ref().take(usize::from(arg % 64)).collect();
                conn.handle_data(now, &raw);
            }
            5 => {
                let mut b = AmpBox::new();
                let name: &[u8] = if arg & 1 == 0 { b"Add" } else { b"Nope" };
                let _ = b.insert("_command", Bytes::copy_from_slice(name));
                if arg & 2 == 0 {
                    let _ = b.insert("_ask", Bytes::from(format!("{arg}")));
                }
                let _ = b.insert("a", if arg & 4 == 0 { "1" } else { "one" });
                let _ = b.insert("b", "2");
                conn.handle_data(now, &b.to_wire());
            }
            _ => match arg % 3 {
                0 => conn.handle_error(now, Reason::Reset),
                1 => conn.handle_read_closed(now),
                _ => conn.close(now),
            },
        }
        // The peer reads everything: the write queue never holds the script back.
        let written: usize = conn.poll_write().map(<[u8]>::len).sum();
        conn.handle_written(now, written);
        while conn.poll_action().is_some() {}
    }
    if !conn.is_ended() {
        conn.handle_error(now, Reason::Reset);
    }
    if conn.protocol().outstanding() != 0 {
        return Err(format!(
            "{} calls still pending after the connection ended",
            conn.protocol().outstanding()
        ));
    }
    let ledger = ledger.borrow();
    if let Some(violation) = &ledger.violation {
        return Err(violation.clone());
    }
    for tag in &ledger.accepted {
        match ledger.answered.get(tag) {
            Some(1) => {}
            other => return Err(format!("call {tag} answered {other:?} times")),
        }
    }
    Ok(())
}
