//! Lines: Twisted's `LineReceiver` / `LineOnlyReceiver` framing (LR-1..LR-5, LR-12, LO-1..LO-5).

use core::fmt;

use bytes::{Buf, Bytes, BytesMut};
use memchr::memmem;

use crate::framing::{ConfigError, Decoder, EncodeError, Encoded, FrameError, FrameHeader};
use crate::framing::{Encoder, Recovery};

/// Twisted's default line delimiter (DF-1).
pub const DEFAULT_DELIMITER: &[u8] = b"\r\n";
/// Twisted's default maximum line length (DF-2).
pub const DEFAULT_MAX_LINE_LENGTH: usize = 16_384;

/// Lines ending in a delimiter (default `\r\n`), at most 16,384 bytes by default.
///
/// Decoding follows `LineReceiver`: a line ends at the *first* occurrence of the whole
/// delimiter, lone `\r` or `\n` are ordinary bytes, empty lines are frames (LR-3). A line of
/// exactly the maximum is accepted; a longer one is [`FrameError::TooLong`] as soon as the
/// buffer holds `max + delimiter length` bytes without a delimiter, the earliest point at which
/// no acceptable line can still complete (LR-5; `LineOnlyReceiver`'s stricter LO-5 boundary is
/// deliberately not copied, KW-5). The search is `memchr` for one-byte delimiters and
/// `memchr::memmem` for longer ones, and each call only searches the bytes it has not seen.
///
/// Line-only framing (Twisted's `LineOnlyReceiver`) is the same codec used without raw mode.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use loomwork::framing::{Decoder, Encoder, FrameError, LineCodec};
///
/// let mut codec = LineCodec::new().with_max_length(5);
/// let mut buf = BytesMut::from(&b"a\rb\nc\r\n\r\n"[..]);
/// assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), "a\rb\nc"); // LR-3
/// assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), ""); // empty line
///
/// // LR-5 with MAX 5: six buffered bytes may still be a line whose "\n" is on its way...
/// buf.extend_from_slice(b"12345\r");
/// assert_eq!(codec.decode(&mut buf).unwrap(), None);
/// // ...seven cannot be.
/// buf.extend_from_slice(b"6");
/// assert_eq!(codec.decode(&mut buf), Err(FrameError::TooLong { max: 5, seen: 7 }));
///
/// assert_eq!(codec.encode(Bytes::from_static(b"hi")).unwrap().to_vec(), b"hi\r\n");
/// assert!(codec.encode(Bytes::from_static(b"a\r\nb")).is_err());
/// ```
#[derive(Clone)]
pub struct LineCodec {
    delimiter: Bytes,
    /// Built once per delimiter: `memmem` precomputes its search tables.
    finder: memmem::Finder<'static>,
    max_length: usize,
    on_too_long: Recovery,
    state: State,
    /// The front `searched` bytes of the buffer hold no complete delimiter, so the next search
    /// starts `delimiter.len() - 1` bytes before that mark (a delimiter may straddle it).
    searched: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Lines,
    /// Dropping an over-long line until its delimiter (`Recovery::Skip`).
    Discarding,
    /// A fatal error was returned; it is returned again until `reset`.
    Failed(FrameError),
}

impl LineCodec {
    /// `\r\n`-terminated lines of at most 16,384 bytes (Twisted's defaults).
    pub fn new() -> Self {
        LineCodec::build(Bytes::from_static(DEFAULT_DELIMITER))
    }

    /// Lines ending in `delimiter`, which must not be empty.
    pub fn with_delimiter(self, delimiter: impl Into<Bytes>) -> Result<Self, ConfigError> {
        let delimiter = delimiter.into();
        if delimiter.is_empty() {
            return Err(ConfigError::new("line delimiter must not be empty"));
        }
        Ok(LineCodec {
            max_length: self.max_length,
            on_too_long: self.on_too_long,
            ..LineCodec::build(delimiter)
        })
    }

    /// Sets the maximum line length (the delimiter not counted).
    pub fn with_max_length(mut self, max_length: usize) -> Self {
        self.max_length = max_length;
        self
    }

    /// Sets what happens to an over-long line (default: [`Recovery::Close`]).
    pub fn with_recovery(mut self, on_too_long: Recovery) -> Self {
        self.on_too_long = on_too_long;
        self
    }

    /// Changes the maximum between frames (Twisted allows it on the instance, LR-1).
    pub fn set_max_length(&mut self, max_length: usize) {
        self.max_length = max_length;
    }

    /// The delimiter.
    pub fn delimiter(&self) -> &[u8] {
        &self.delimiter
    }

    /// The maximum line length.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    fn build(delimiter: Bytes) -> Self {
        let finder = memmem::Finder::new(&delimiter[..]).into_owned();
        LineCodec {
            delimiter,
            finder,
            max_length: DEFAULT_MAX_LINE_LENGTH,
            on_too_long: Recovery::Close,
            state: State::Lines,
            searched: 0,
        }
    }

    /// Where the first delimiter starts, searching only bytes not searched before.
    #[inline]
    fn find_delimiter(&mut self, buf: &[u8]) -> Option<usize> {
        let overlap = self.delimiter.len() - 1;
        let mut start = self.searched.saturating_sub(overlap);
        if start > buf.len() {
            // The buffer shrank behind our back: search it all again.
            start = 0;
        }
        let haystack = &buf[start..];
        let found = match *self.delimiter {
            [byte] => memchr::memchr(byte, haystack),
            [first, last] => find_pair(first, last, haystack),
            _ => self.finder.find(haystack),
        };
        match found {
            Some(at) => {
                self.searched = 0;
                Some(start + at)
            }
            None => {
                self.searched = buf.len();
                None
            }
        }
    }

    /// Buffered bytes without a delimiter at which a line is certainly too long (LR-5).
    fn too_long_bound(&self) -> usize {
        self.max_length.saturating_add(self.delimiter.len())
    }

    /// The over-length error. `seen` is the number of bytes buffered without a line ending at
    /// the moment the line could no longer fit, `max + delimiter length`: reading byte by byte
    /// always stops there, so reporting it whatever the chunking keeps the error identical
    /// for every split of the same input (PR-4).
    fn too_long(&mut self) -> FrameError {
        let error = FrameError::TooLong {
            max: self.max_length,
            seen: self.too_long_bound(),
        };
        self.state = match self.on_too_long {
            Recovery::Close => State::Failed(error),
            Recovery::Skip => State::Discarding,
        };
        error
    }

    /// Drops the bytes of a skipped line up to and including its delimiter. True when the
    /// delimiter was found (back to reading lines).
    fn discard(&mut self, buf: &mut BytesMut) -> bool {
        match self.find_delimiter(buf) {
            Some(at) => {
                buf.advance(at + self.delimiter.len());
                self.state = State::Lines;
                true
            }
            None => {
                // Keep only what could be the start of the delimiter.
                let keep = self.delimiter.len() - 1;
                let drop = buf.len().saturating_sub(keep);
                buf.advance(drop);
                self.searched = buf.len();
                false
            }
        }
    }
}

impl Default for LineCodec {
    fn default() -> Self {
        LineCodec::new()
    }
}

impl fmt::Debug for LineCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineCodec")
            .field("delimiter", &self.delimiter)
            .field("max_length", &self.max_length)
            .field("on_too_long", &self.on_too_long)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Decoder for LineCodec {
    #[inline]
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        loop {
            match self.state {
                State::Failed(error) => return Err(error),
                State::Discarding => {
                    if !self.discard(buf) {
                        return Ok(None);
                    }
                }
                State::Lines => {
                    return match self.find_delimiter(buf) {
                        Some(at) if at > self.max_length => {
                            // Reported as if found byte by byte (see `too_long`), so the error
                            // is the same however the input was chunked.
                            let error = self.too_long();
                            if self.on_too_long == Recovery::Skip {
                                buf.advance(at + self.delimiter.len());
                                self.state = State::Lines;
                            }
                            Err(error)
                        }
                        Some(at) => {
                            // One split for line and delimiter, then drop the delimiter from
                            // the frame: cheaper than a second `advance` on the buffer.
                            let mut line = buf.split_to(at + self.delimiter.len());
                            line.truncate(at);
                            Ok(Some(line.freeze()))
                        }
                        None => {
                            // LR-5: with `max + len(delimiter)` bytes and no delimiter, no line
                            // of at most `max` bytes can still end here.
                            if buf.len() >= self.too_long_bound() {
                                Err(self.too_long())
                            } else {
                                Ok(None)
                            }
                        }
                    };
                }
            }
        }
    }

    fn recovery(&self, error: &FrameError) -> Recovery {
        match error {
            FrameError::TooLong { .. } => self.on_too_long,
            _ => Recovery::Close,
        }
    }

    fn reset(&mut self) {
        self.state = State::Lines;
        self.searched = 0;
    }
}

impl Encoder for LineCodec {
    fn encode(&mut self, payload: Bytes) -> Result<Encoded, EncodeError> {
        if payload.len() > self.max_length {
            return Err(EncodeError::TooLong {
                max: self.max_length,
                len: payload.len(),
            });
        }
        if self.would_split(&payload) {
            return Err(EncodeError::ContainsDelimiter);
        }
        Ok(Encoded {
            header: FrameHeader::new(),
            payload,
            trailer: self.delimiter.clone(),
        })
    }
}

/// Where `first` followed by `last` first occurs: `\r\n`, the default delimiter, found by a
/// `memchr` for its rarer last byte and a look back. Measured faster than `memmem` on short
/// lines, whose per-call set-up dominates there (`cargo bench -p loomwork-bench --bench
/// decoders`); still linear, since each position is looked back from at most once.
fn find_pair(first: u8, last: u8, haystack: &[u8]) -> Option<usize> {
    memchr::memchr_iter(last, haystack)
        .find(|&end| end > 0 && haystack[end - 1] == first)
        .map(|end| end - 1)
}

impl LineCodec {
    /// True when the peer would not read `payload + delimiter` back as exactly `payload`: the
    /// delimiter occurs inside it, or starts in its tail (with `aba`, `xab` + `aba` = `xababa`
    /// ends a line after `x`).
    fn would_split(&self, payload: &[u8]) -> bool {
        let d = &self.delimiter[..];
        let inside = match *d {
            [byte] => memchr::memchr(byte, payload).is_some(),
            _ => self.finder.find(payload).is_some(),
        };
        inside || (1..d.len()).any(|k| payload.ends_with(&d[..k]) && d[k..] == d[..d.len() - k])
    }
}
