//! The multiplexed stream framing of attach, exec and logs when the container has no TTY.
//!
//! Each frame is an 8-byte header — the stream (0 stdin, 1 stdout, 2 stderr), three zero bytes,
//! the payload length as a big-endian u32 — followed by the payload. With a TTY there is one
//! stream and no framing at all.

/// Which standard stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StdStream {
    /// Standard input (only echoed back by some clients; servers do not send it).
    Stdin = 0,
    /// Standard output.
    Stdout = 1,
    /// Standard error.
    Stderr = 2,
}

/// A frame header that is not one of the three streams followed by three zero bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The first byte names no stream.
    #[error("multiplexed stream header names stream {0}, expected 0, 1 or 2")]
    UnknownStream(u8),
    /// Bytes 1 to 3 are not zero.
    #[error("multiplexed stream header has non-zero padding {0:?}")]
    BadPadding([u8; 3]),
    /// A payload longer than a u32 can describe was given to the encoder.
    #[error("a frame payload of {0} bytes does not fit the 32-bit length of the header")]
    TooLong(usize),
}

/// The 8-byte header of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The stream the payload belongs to.
    pub stream: StdStream,
    /// The payload length in bytes.
    pub len: u32,
}

impl FrameHeader {
    /// The header's size on the wire.
    pub const SIZE: usize = 8;

    /// The header's wire bytes.
    pub fn encode(self) -> [u8; 8] {
        let len = self.len.to_be_bytes();
        [self.stream as u8, 0, 0, 0, len[0], len[1], len[2], len[3]]
    }

    /// Reads a header from its wire bytes.
    pub fn decode(bytes: [u8; 8]) -> Result<Self, FrameError> {
        let stream = match bytes[0] {
            0 => StdStream::Stdin,
            1 => StdStream::Stdout,
            2 => StdStream::Stderr,
            other => return Err(FrameError::UnknownStream(other)),
        };
        let padding = [bytes[1], bytes[2], bytes[3]];
        if padding != [0, 0, 0] {
            return Err(FrameError::BadPadding(padding));
        }
        let len = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        Ok(Self { stream, len })
    }
}

/// Appends one frame (header and payload) for `payload` on `stream` to `out`.
pub fn encode_frame(
    stream: StdStream,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let len = u32::try_from(payload.len()).map_err(|_| FrameError::TooLong(payload.len()))?;
    out.reserve(FrameHeader::SIZE + payload.len());
    out.extend_from_slice(&FrameHeader { stream, len }.encode());
    out.extend_from_slice(payload);
    Ok(())
}

/// Splits a multiplexed byte stream back into frames, whatever the chunking of its input.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// A decoder with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes read from the wire.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, or `None` until more bytes arrive.
    pub fn next_frame(&mut self) -> Result<Option<(StdStream, Vec<u8>)>, FrameError> {
        let Some(head) = self.buf.first_chunk::<8>() else {
            return Ok(None);
        };
        let header = FrameHeader::decode(*head)?;
        let end = FrameHeader::SIZE + header.len as usize;
        if self.buf.len() < end {
            return Ok(None);
        }
        let payload = self.buf[FrameHeader::SIZE..end].to_vec();
        self.buf.drain(..end);
        Ok(Some((header.stream, payload)))
    }

    /// Bytes received that do not yet make a whole frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_bytes_exact() {
        let mut out = Vec::new();
        encode_frame(StdStream::Stderr, b"hi\n", &mut out).expect("encode");
        assert_eq!(out, [2, 0, 0, 0, 0, 0, 0, 3, b'h', b'i', b'\n']);
        let big = FrameHeader {
            stream: StdStream::Stdout,
            len: 0x0102_0304,
        };
        assert_eq!(big.encode(), [1, 0, 0, 0, 1, 2, 3, 4]);
        assert_eq!(FrameHeader::decode(big.encode()), Ok(big));
    }

    #[test]
    fn decoder_reassembles_split_frames() {
        let mut wire = Vec::new();
        encode_frame(StdStream::Stdout, b"hello", &mut wire).expect("encode");
        encode_frame(StdStream::Stderr, b"", &mut wire).expect("encode");
        encode_frame(StdStream::Stderr, b"oops", &mut wire).expect("encode");
        let mut dec = FrameDecoder::new();
        let mut frames = Vec::new();
        for byte in wire {
            dec.push(&[byte]);
            while let Some(frame) = dec.next_frame().expect("decode") {
                frames.push(frame);
            }
        }
        assert_eq!(
            frames,
            [
                (StdStream::Stdout, b"hello".to_vec()),
                (StdStream::Stderr, Vec::new()),
                (StdStream::Stderr, b"oops".to_vec()),
            ]
        );
        assert_eq!(dec.pending(), 0);
    }

    #[test]
    fn rejects_bad_headers() {
        assert_eq!(
            FrameHeader::decode([7, 0, 0, 0, 0, 0, 0, 0]),
            Err(FrameError::UnknownStream(7))
        );
        assert_eq!(
            FrameHeader::decode([1, 0, 1, 0, 0, 0, 0, 0]),
            Err(FrameError::BadPadding([0, 1, 0]))
        );
    }
}
