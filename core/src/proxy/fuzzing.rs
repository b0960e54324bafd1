//! The `proxy` fuzz target's check (feature `testing`), kept in core so that a plain
//! `cargo test` replays the committed corpus through exactly the same code as `cargo fuzz`.
//!
//! `data[0]` and `data[1]` give chunk sizes (each `1 + b % 16`, used in turn), `data[2]` the
//! header limit (`0`: the specification's maximum, otherwise `b * 4`), and the rest is what a
//! peer sent. Checked: [`decode`] never panics; leaves the buffer untouched on "need more";
//! never takes more than the limit (nor more than 107 bytes for v1); gives the same header,
//! rest and error whole, in the chunks and byte by byte; and a header it returns encodes back
//! to bytes that decode to the same header.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use bytes::BytesMut;

use crate::proxy::{
    decode, encode_v1, encode_v2, kind, Header, ParseError, Version, MAX_V1_LEN, MAX_V2_LEN,
};

/// What decoding a whole input came to.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Header(Header, Vec<u8>),
    Error(ParseError),
    Incomplete(usize),
}

/// The fuzz target's check; `Err` says which property broke.
pub fn check_proxy(data: &[u8]) -> Result<(), String> {
    let Some((config, input)) = data.split_at_checked(3) else {
        return Ok(());
    };
    let chunks = [
        1 + usize::from(config[0] % 16),
        1 + usize::from(config[1] % 16),
    ];
    let max = match config[2] {
        0 => MAX_V2_LEN,
        b => usize::from(b) * 4,
    };
    let whole = feed(input, &[input.len().max(1)], max)?;
    let chunked = feed(input, &chunks, max)?;
    let bytewise = feed(input, &[1], max)?;
    if whole != chunked || whole != bytewise {
        return Err(format!(
            "chunking changed the outcome: whole {whole:?}, chunked {chunked:?}, bytewise {bytewise:?}"
        ));
    }
    if let Outcome::Header(header, _) = &whole {
        round_trip(header)?;
    }
    Ok(())
}

/// Feeds `input` in chunks of the given sizes (in turn), decoding after each, as a receiver
/// would; stops at the first header or error.
fn feed(input: &[u8], sizes: &[usize], max: usize) -> Result<Outcome, String> {
    let mut buf = BytesMut::new();
    let mut at = 0;
    for size in sizes.iter().cycle() {
        let end = (at + size).min(input.len());
        buf.extend_from_slice(&input[at..end]);
        at = end;
        let before = buf.clone();
        match decode(&mut buf, max) {
            Ok(None) if buf != before => return Err("need-more changed the buffer".into()),
            Ok(None) => {}
            Ok(Some(header)) => {
                let taken = before.len() - buf.len();
                let limit = match header.version() {
                    Version::V1 => MAX_V1_LEN.min(max),
                    Version::V2 => max,
                };
                if taken > limit || before[taken..] != buf[..] {
                    return Err(format!(
                        "took {taken} bytes (limit {limit}) or not a prefix"
                    ));
                }
                buf.extend_from_slice(&input[at..]);
                return Ok(Outcome::Header(header, buf.to_vec()));
            }
            Err(error) if buf != before => return Err(format!("{error} changed the buffer")),
            Err(error) => return Ok(Outcome::Error(error)),
        }
        if at == input.len() {
            return Ok(Outcome::Incomplete(buf.len()));
        }
    }
    Ok(Outcome::Incomplete(buf.len()))
}

/// A header encodes back to bytes that decode to itself (v1 in v1; v2, when it carries no
/// checksum that re-encoding would invalidate, in v2).
fn round_trip(header: &Header) -> Result<(), String> {
    let mut out = BytesMut::new();
    match header.version() {
        Version::V1 => encode_v1(header, &mut out).map_err(|e| format!("v1 re-encode: {e}"))?,
        Version::V2 if header.tlv(kind::CRC32C).is_some() => return Ok(()),
        Version::V2 => encode_v2(header, &mut out).map_err(|e| format!("v2 re-encode: {e}"))?,
    }
    match decode(&mut out, MAX_V2_LEN) {
        Ok(Some(again)) if &again == header && out.is_empty() => Ok(()),
        other => Err(format!("round trip of {header:?} gave {other:?}")),
    }
}

/// The `accept_proxy` fuzz target's check (feature `fuzz`): `data[0]` picks what the wrapper
/// expects (`% 3`: required, if present, never) and the rest is a [`StreamCheck`] schedule
/// (sends, EOFs, stalls, time) against [`AcceptProxy`] around an echo that watches its own
/// lifecycle. Checked, besides the driver's invariants: the wrapped protocol's
/// `connection_made` comes first and once, `connection_lost` at most once and only after it,
/// nothing reaches it after; its peer never changes once it has started.
///
/// [`StreamCheck`]: crate::testing::StreamCheck
/// [`AcceptProxy`]: crate::proxy::AcceptProxy
#[cfg(feature = "fuzz")]
pub fn check_accept_proxy(data: &[u8]) -> Result<(), String> {
    use crate::proxy::{AcceptProxy, Expect};
    use crate::testing::StreamCheck;
    use alloc::string::ToString;
    let Some((&mode, schedule)) = data.split_first() else {
        return Ok(());
    };
    let expect = match mode % 3 {
        0 => Expect::Required,
        1 => Expect::IfPresent,
        _ => Expect::Never,
    };
    StreamCheck::protocol(move || AcceptProxy::new(Watched::default(), expect))
        .invariant(|p: &AcceptProxy<Watched>| p.inner().breach.clone().map_or(Ok(()), Err))
        .fuzz_checked(schedule)
        .map_err(|violation| violation.to_string())
}

/// An echo that checks the lifecycle the wrapper shows it.
#[cfg(feature = "fuzz")]
#[derive(Default)]
struct Watched {
    peer: Option<core::net::SocketAddr>,
    made: bool,
    lost: bool,
    breach: Option<String>,
}

#[cfg(feature = "fuzz")]
impl Watched {
    fn called(&mut self, what: &str, tx: &crate::stream::Transport<'_>) {
        if self.breach.is_some() {
            return;
        }
        if !self.made || self.lost {
            self.breach = Some(format!("{what} outside connection_made..connection_lost"));
        } else if tx.peer() != self.peer {
            self.breach = Some(format!("the peer changed in {what}"));
        }
    }
}

#[cfg(feature = "fuzz")]
impl crate::stream::Protocol for Watched {
    type Message = ();
    fn connection_made(&mut self, tx: &mut crate::stream::Transport<'_>) {
        if self.made {
            self.breach = Some("connection_made twice".into());
        }
        self.made = true;
        self.peer = tx.peer();
    }
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut crate::stream::Transport<'_>) {
        self.called("data_received", tx);
        let _ = tx.write(data.split().freeze());
    }
    fn read_closed(&mut self, tx: &mut crate::stream::Transport<'_>) {
        self.called("read_closed", tx);
        tx.lose_connection();
    }
    fn timer_fired(&mut self, _: crate::timer::TimerId, tx: &mut crate::stream::Transport<'_>) {
        self.called("timer_fired", tx);
    }
    fn connection_lost(&mut self, _: &crate::reason::Reason) {
        if !self.made || self.lost {
            self.breach = Some("connection_lost without connection_made, or twice".into());
        }
        self.lost = true;
    }
}
