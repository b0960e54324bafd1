//! Netstrings: Twisted's `NetstringReceiver` framing, `<length>:<payload>,` (NS-1..NS-9).

use bytes::{Buf, Bytes, BytesMut};

use crate::framing::{Decoder, EncodeError, Encoded, Encoder, FrameError, FrameHeader, Recovery};

/// Twisted's default maximum netstring length (DF-3).
pub const DEFAULT_MAX_NETSTRING_LENGTH: usize = 99_999;

/// More length digits than this cannot be a `usize` and are malformed whatever the maximum.
const MAX_DIGITS: usize = 20;

const INVALID_LENGTH: FrameError = FrameError::malformed("netstring: invalid length");
const MISSING_LENGTH: FrameError = FrameError::malformed("netstring: missing length");
const LEADING_ZERO: FrameError = FrameError::malformed("netstring: length has a leading zero");
const LENGTH_TOO_LONG: FrameError = FrameError::malformed("netstring: length field too long");
const MISSING_COMMA: FrameError = FrameError::malformed("netstring: missing comma");

/// Netstrings (`3:abc,`), at most 99,999 payload bytes by default.
///
/// The length follows Twisted's grammar (NS-2): `0`, or a non-zero digit followed by digits;
/// leading zeros, signs, spaces and an empty length are [`FrameError::Malformed`]. Bad input
/// is rejected as early as the bytes allow (NS-3, NS-4): a non-digit at once, and a length
/// whose digits already exceed the maximum before its colon arrives, so an attacker cannot make
/// the receiver wait for a payload it will refuse. A payload not followed by `,` is
/// `"netstring: missing comma"` (NS-5).
///
/// ```
/// use bytes::BytesMut;
/// use loomwork::framing::{Decoder, FrameError, NetstringCodec};
///
/// let mut codec = NetstringCodec::new();
/// let mut buf = BytesMut::from(&b"3:abc,0:,"[..]);
/// assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), "abc");
/// assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), "");
///
/// // NS-3: six digits already exceed 99,999, no need to wait for the colon.
/// let mut buf = BytesMut::from(&b"100000"[..]);
/// assert_eq!(
///     codec.decode(&mut buf),
///     Err(FrameError::TooLong { max: 99_999, seen: 100_000 })
/// );
/// ```
#[derive(Clone, Debug)]
pub struct NetstringCodec {
    max_length: usize,
    on_too_long: Recovery,
    state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading length digits; the first `digits` bytes of the buffer are digits worth `value`.
    /// `oversize` is set once the value passed the maximum under `Recovery::Skip`.
    Length {
        digits: usize,
        value: usize,
        oversize: bool,
    },
    /// The header (`digits` and the colon) is complete; waiting for `len` bytes and the comma.
    Payload {
        header: usize,
        len: usize,
    },
    /// Dropping `remaining` bytes of a skipped netstring (payload and comma).
    Discarding {
        remaining: usize,
    },
    Failed(FrameError),
}

const START: State = State::Length {
    digits: 0,
    value: 0,
    oversize: false,
};

impl NetstringCodec {
    /// Netstrings of at most 99,999 bytes (Twisted's default).
    pub fn new() -> Self {
        NetstringCodec {
            max_length: DEFAULT_MAX_NETSTRING_LENGTH,
            on_too_long: Recovery::Close,
            state: START,
        }
    }

    /// Sets the maximum payload length.
    pub fn with_max_length(mut self, max_length: usize) -> Self {
        self.max_length = max_length;
        self
    }

    /// Sets what happens to an over-long netstring (default: [`Recovery::Close`]).
    pub fn with_recovery(mut self, on_too_long: Recovery) -> Self {
        self.on_too_long = on_too_long;
        self
    }

    /// The maximum payload length.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    fn fail(&mut self, error: FrameError) -> FrameError {
        self.state = State::Failed(error);
        error
    }

    /// Scans length digits from where the last call stopped. `Ok(None)`: need more.
    fn read_length(
        &mut self,
        buf: &mut BytesMut,
        mut digits: usize,
        mut value: usize,
        mut oversize: bool,
    ) -> Result<Option<()>, FrameError> {
        // Store progress on every exit, so an error in skip mode resumes after its digit.
        let result = loop {
            let Some(&byte) = buf.get(digits) else {
                break Ok(None);
            };
            match byte {
                b'0'..=b'9' => {
                    if digits == MAX_DIGITS {
                        break Err(self.fail(LENGTH_TOO_LONG));
                    }
                    if digits > 0 && value == 0 {
                        break Err(self.fail(LEADING_ZERO));
                    }
                    let next = value
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(usize::from(byte - b'0')));
                    let Some(next) = next else {
                        break Err(self.fail(LENGTH_TOO_LONG));
                    };
                    digits += 1;
                    value = next;
                    if value > self.max_length && !oversize {
                        let error = FrameError::TooLong {
                            max: self.max_length,
                            seen: value,
                        };
                        if self.on_too_long == Recovery::Close {
                            break Err(self.fail(error));
                        }
                        oversize = true;
                        self.state = State::Length {
                            digits,
                            value,
                            oversize,
                        };
                        return Err(error);
                    }
                }
                b':' if digits == 0 => break Err(self.fail(MISSING_LENGTH)),
                b':' => {
                    let header = digits + 1;
                    self.state = if oversize {
                        buf.advance(header);
                        State::Discarding {
                            remaining: value.saturating_add(1),
                        }
                    } else {
                        State::Payload { header, len: value }
                    };
                    return Ok(Some(()));
                }
                _ => break Err(self.fail(INVALID_LENGTH)),
            }
        };
        if result.is_ok() {
            self.state = State::Length {
                digits,
                value,
                oversize,
            };
        }
        result
    }
}

impl Default for NetstringCodec {
    fn default() -> Self {
        NetstringCodec::new()
    }
}

impl Decoder for NetstringCodec {
    #[inline]
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        loop {
            match self.state {
                State::Failed(error) => return Err(error),
                State::Length {
                    digits,
                    value,
                    oversize,
                } => {
                    // The buffer shrank behind our back (no `reset`): start over.
                    let (digits, value, oversize) = if digits > buf.len() {
                        (0, 0, false)
                    } else {
                        (digits, value, oversize)
                    };
                    if self.read_length(buf, digits, value, oversize)?.is_none() {
                        return Ok(None);
                    }
                }
                State::Payload { header, len } => {
                    // header + len + 1 cannot overflow: len <= max_length and the header
                    // was counted in buffered bytes.
                    let Some(end) = header.checked_add(len).and_then(|n| n.checked_add(1)) else {
                        return Err(self.fail(LENGTH_TOO_LONG));
                    };
                    if buf.len() < end {
                        return Ok(None);
                    }
                    if buf.get(end - 1) != Some(&b',') {
                        return Err(self.fail(MISSING_COMMA));
                    }
                    // One split of the whole netstring, then narrow the frame's own view to
                    // the payload: cheaper than three operations on the shared buffer.
                    let mut payload = buf.split_to(end);
                    payload.advance(header);
                    payload.truncate(len);
                    let payload = payload.freeze();
                    self.state = START;
                    return Ok(Some(payload));
                }
                State::Discarding { remaining } => {
                    let drop = remaining.min(buf.len());
                    buf.advance(drop);
                    let remaining = remaining - drop;
                    if remaining > 0 {
                        self.state = State::Discarding { remaining };
                        return Ok(None);
                    }
                    self.state = START;
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
        self.state = START;
    }
}

impl Encoder for NetstringCodec {
    fn encode(&mut self, payload: Bytes) -> Result<Encoded, EncodeError> {
        let len = payload.len();
        if len > self.max_length {
            return Err(EncodeError::TooLong {
                max: self.max_length,
                len,
            });
        }
        let mut header = FrameHeader::new();
        let mut digits = [0u8; MAX_DIGITS];
        let mut at = MAX_DIGITS;
        let mut rest = len;
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        // At most 20 digits and a colon: always fits the 32-byte header.
        header.extend(&digits[at..]);
        header.extend(b":");
        Ok(Encoded {
            header,
            payload,
            trailer: Bytes::from_static(b","),
        })
    }
}
