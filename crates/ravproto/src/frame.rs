//! Frames: a JSON header and binary values in one message, and the byte stuffing that lets
//! a binary message through the Rust socket.io client.
//!
//! Assignments and results ([`crate::provider`]), checkpoints and fitted models
//! ([`crate::blob`]) all travel as frames: the structure stays readable JSON and the numbers
//! travel as bytes, never as JSON text.

use crate::tensor::{TensorError, Value};
use serde::Serialize;

/// A binary message: a JSON header and binary values.
///
/// Layout: header length (`u32` LE), the header's JSON, the value count (`u32` LE), then each
/// value as its length (`u64` LE) and [`Value::encode_binary`].
#[derive(Clone, Debug, PartialEq)]
pub struct Frame<H> {
    pub header: H,
    /// The values, in the order the header lists them.
    pub values: Vec<Value>,
}

/// Why a frame could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The layout is broken.
    #[error("bad frame: {0}")]
    Layout(&'static str),
    /// The header is not the expected JSON.
    #[error("bad frame header: {0}")]
    Header(#[from] serde_json::Error),
    /// A value is malformed.
    #[error("bad frame value: {0}")]
    Value(#[from] TensorError),
}

impl<H: Serialize + serde::de::DeserializeOwned> Frame<H> {
    /// Encodes the frame.
    pub fn encode(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).expect("protocol headers serialize to JSON");
        let mut out = Vec::with_capacity(header.len() + 8);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&(self.values.len() as u32).to_le_bytes());
        for value in &self.values {
            let encoded = value.encode_binary();
            out.extend_from_slice(&(encoded.len() as u64).to_le_bytes());
            out.extend_from_slice(&encoded);
        }
        out
    }

    /// Decodes a frame written by [`Frame::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Frame<H>, FrameError> {
        let take = |rest: &[u8], n: usize| -> Result<(Vec<u8>, usize), FrameError> {
            rest.get(..n).map(|b| (b.to_vec(), n)).ok_or(FrameError::Layout("truncated"))
        };
        let (len, _) = take(bytes, 4)?;
        let header_len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        let rest = &bytes[4..];
        let header_bytes = rest.get(..header_len).ok_or(FrameError::Layout("truncated header"))?;
        let header: H = serde_json::from_slice(header_bytes)?;
        let mut rest = &rest[header_len..];
        let (count, _) = take(rest, 4)?;
        let count = u32::from_le_bytes(count.try_into().expect("4 bytes")) as usize;
        rest = &rest[4..];
        let mut values = Vec::with_capacity(count.min(1 << 16));
        for _ in 0..count {
            let (len, _) = take(rest, 8)?;
            let len = usize::try_from(u64::from_le_bytes(len.try_into().expect("8 bytes")))
                .map_err(|_| FrameError::Layout("value too long"))?;
            rest = &rest[8..];
            let encoded = rest.get(..len).ok_or(FrameError::Layout("truncated value"))?;
            values.push(Value::decode_binary(encoded)?);
            rest = &rest[len..];
        }
        if !rest.is_empty() {
            return Err(FrameError::Layout("trailing bytes"));
        }
        Ok(Frame { header, values })
    }
}

/// Escape byte of [`stuff`].
const STUFF_ESCAPE: u8 = 0x1d;
/// The byte [`stuff`] removes: engine.io's record separator.
const RECORD_SEPARATOR: u8 = 0x1e;

/// Removes every `0x1e` byte from a server-to-provider binary message, reversibly.
///
/// rust_engineio 0.6 (under the rust_socketio client) splits every received message on
/// `0x1e`, the separator of engine.io's *polling* payloads, even websocket binary messages, so a
/// tensor containing that byte arrives corrupted and the client drops the connection. Byte
/// stuffing (`0x1e` → `0x1d 0x01`, `0x1d` → `0x1d 0x02`) costs one pass and two bytes per
/// escaped byte, and keeps the message binary. Undo with [`unstuff`].
pub fn stuff(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 64);
    for &b in bytes {
        match b {
            RECORD_SEPARATOR => out.extend_from_slice(&[STUFF_ESCAPE, 0x01]),
            STUFF_ESCAPE => out.extend_from_slice(&[STUFF_ESCAPE, 0x02]),
            other => out.push(other),
        }
    }
    out
}

/// Reverses [`stuff`].
pub fn unstuff(bytes: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut iter = bytes.iter();
    while let Some(&b) = iter.next() {
        if b == STUFF_ESCAPE {
            match iter.next() {
                Some(0x01) => out.push(RECORD_SEPARATOR),
                Some(0x02) => out.push(STUFF_ESCAPE),
                _ => return Err(FrameError::Layout("bad escape in a stuffed message")),
            }
        } else {
            out.push(b);
        }
    }
    Ok(out)
}
