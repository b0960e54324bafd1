//! Tests of the framings: script tests citing Twisted behaviour ids (docs/twisted-behaviour.md),
//! chunking properties against the reference oracles, and `Framed` over a `Connection` with
//! explicit times.

mod framed;
mod length;
mod line;
mod netstring;
mod props;

use alloc::vec::Vec;

use bytes::BytesMut;

use crate::framing::{Decoder, FrameError};

/// Decodes everything `input` holds as one chunk: the frames, then the error if any.
fn decode_all<D: Decoder>(decoder: &mut D, input: &[u8]) -> (Vec<Vec<u8>>, Option<FrameError>) {
    let mut buf = BytesMut::from(input);
    let mut frames = Vec::new();
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(frame)) => frames.push(frame.to_vec()),
            Ok(None) => return (frames, None),
            Err(error) => return (frames, Some(error)),
        }
    }
}

/// `frames` as byte vectors, for comparing with `decode_all`.
fn owned(frames: &[&[u8]]) -> Vec<Vec<u8>> {
    frames.iter().map(|f| f.to_vec()).collect()
}
