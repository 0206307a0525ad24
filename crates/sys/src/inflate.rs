//! Raw DEFLATE (RFC 1951) decoding with Intel's ISA-L (`isal_inflate`, the system's
//! `libisal`), for the image store's layer streams.
//!
//! Why ISA-L and not zlib-rs: on a pull, inflating the layers was the largest single cost
//! (about 40 % of the CPU time; the rest is SHA-256 and the kernel's copies). ISA-L's
//! hand-written x86-64 decoder inflates the bench's layers 1.6× faster than zlib-rs (65 vs
//! 104 ms for a 60 MB layer on this machine), and no Rust crate comes close; libdeflate is
//! as fast only on whole buffers, which a layer unpacked while it downloads never is.
//!
//! This is only the DEFLATE engine: the gzip framing (headers, trailers, several members)
//! stays in the caller, which is why [`RawInflate::unused_tail`] exists: at the end of a
//! stream ISA-L has already read up to eight bytes past it (the trailer) into its bit
//! buffer, and the caller needs them back.

use isal_sys::igzip_lib as isal;

/// Why a DEFLATE stream could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InflateError {
    /// A block header is malformed (a bad block type, stored-length check or code table).
    #[error("invalid deflate block")]
    InvalidBlock,
    /// A code decodes to no valid literal, length or distance.
    #[error("invalid deflate symbol")]
    InvalidSymbol,
    /// A match refers back past the start of the stream.
    #[error("invalid deflate back-reference (before the start of the data)")]
    InvalidLookback,
    /// Any other status ISA-L returned.
    #[error("ISA-L inflate failed with status {0}")]
    Other(i32),
}

/// What one [`RawInflate::inflate`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Bytes of the input taken (including any read past the stream's end:
    /// see [`RawInflate::unused_tail`]).
    pub consumed: usize,
    /// Bytes written to the output.
    pub produced: usize,
    /// The stream's final block has been decoded and all of it written out.
    pub finished: bool,
}

/// A streaming raw DEFLATE decoder. The 85 KiB state lives on the heap; one decoder serves
/// any number of streams in turn ([`RawInflate::reset`]).
pub struct RawInflate {
    state: Box<isal::inflate_state>,
}

// SAFETY: the state's only pointers (`next_in`, `next_out`) are set for the duration of one
// `inflate` call, to slices borrowed by that call, and cleared before it returns; ISA-L keeps
// no thread-local or global state, so the decoder may move between threads.
unsafe impl Send for RawInflate {}

impl Default for RawInflate {
    fn default() -> Self {
        Self::new()
    }
}

impl RawInflate {
    /// A decoder ready for a stream, with the full 32 KiB window.
    pub fn new() -> Self {
        let state = Box::<isal::inflate_state>::new_zeroed();
        // SAFETY: inflate_state is a plain C struct of integers, arrays and raw pointers, for
        // which all-zero bytes are a valid value; isal_inflate_init then sets it up.
        let mut state = unsafe { state.assume_init() };
        // SAFETY: `state` is a valid, exclusively borrowed inflate_state.
        unsafe { isal::isal_inflate_init(&mut *state) };
        state.crc_flag = isal::ISAL_DEFLATE;
        RawInflate { state }
    }

    /// Forgets the stream in progress, ready for a new one.
    pub fn reset(&mut self) {
        // SAFETY: `state` is a valid, exclusively borrowed inflate_state.
        unsafe { isal::isal_inflate_reset(&mut *self.state) };
        self.state.crc_flag = isal::ISAL_DEFLATE;
    }

    /// Decodes from `input` into `output`, as far as either allows. Call again with more
    /// input (what was consumed is not offered again) or more room until a step reports
    /// `finished`; a call that consumes and produces nothing needs more input.
    pub fn inflate(&mut self, input: &[u8], output: &mut [u8]) -> Result<Step, InflateError> {
        // ISA-L counts in u32: offer at most that much per call (the caller loops).
        let in_len = input.len().min(u32::MAX as usize);
        let out_len = output.len().min(u32::MAX as usize);
        let s = &mut *self.state;
        // ISA-L only reads through next_in and writes through next_out, within the lengths.
        s.next_in = input.as_ptr().cast_mut();
        s.avail_in = in_len as u32;
        s.next_out = output.as_mut_ptr();
        s.avail_out = out_len as u32;
        // SAFETY: next_in/avail_in describe `input`, readable for the call; next_out/
        // avail_out describe `output`, writable and exclusively borrowed for the call; the
        // state was set up by isal_inflate_init.
        let status = unsafe { isal::isal_inflate(s) };
        let consumed = in_len - s.avail_in as usize;
        let produced = out_len - s.avail_out as usize;
        s.next_in = std::ptr::null_mut();
        s.avail_in = 0;
        s.next_out = std::ptr::null_mut();
        s.avail_out = 0;
        match status {
            0 => Ok(Step {
                consumed,
                produced,
                // ISA-L sets FINISH only once the final block is decoded and its own
                // output buffer (what did not fit in `output`) is empty.
                finished: s.block_state == isal::isal_block_state_ISAL_BLOCK_FINISH,
            }),
            -1 => Err(InflateError::InvalidBlock),
            -2 => Err(InflateError::InvalidSymbol),
            -3 => Err(InflateError::InvalidLookback),
            other => Err(InflateError::Other(other)),
        }
    }

    /// After a step reported `finished`: the whole bytes ISA-L read past the stream's end
    /// into its bit buffer (counted in that step's `consumed` or an earlier one's), in
    /// stream order, and how many there are (at most 8). The bits left of the stream's last
    /// byte are padding and are not included.
    pub fn unused_tail(&self) -> ([u8; 8], usize) {
        let bits = u32::try_from(self.state.read_in_length)
            .unwrap_or(0)
            .min(64);
        let whole = (bits / 8) as usize;
        let partial = bits % 8;
        let rest = if partial == 0 {
            self.state.read_in
        } else {
            self.state.read_in >> partial
        };
        (rest.to_le_bytes(), whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored (uncompressed) final block holding `data`, then `tail`.
    fn stored(data: &[u8], tail: &[u8]) -> Vec<u8> {
        let len = data.len() as u16;
        let mut v = vec![0x01];
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(&(!len).to_le_bytes());
        v.extend_from_slice(data);
        v.extend_from_slice(tail);
        v
    }

    #[test]
    fn decodes_a_stored_block_and_gives_back_what_follows() {
        let stream = stored(b"hello, layer", b"TRAILER!");
        let mut d = RawInflate::new();
        let mut out = [0u8; 64];
        let step = d.inflate(&stream, &mut out).expect("inflate");
        assert!(step.finished);
        assert_eq!(&out[..step.produced], b"hello, layer");
        let (tail, n) = d.unused_tail();
        // Where the stream really ends: what follows is the trailer, whole.
        let end = step.consumed - n;
        assert_eq!(&stream[end..], b"TRAILER!");
        assert_eq!(&tail[..n], &stream[end..step.consumed]);
    }

    #[test]
    fn bad_streams_are_errors_and_reset_recovers() {
        let mut d = RawInflate::new();
        let mut out = [0u8; 64];
        // Block type 3 is reserved.
        assert_eq!(
            d.inflate(&[0x07, 0, 0, 0], &mut out),
            Err(InflateError::InvalidBlock)
        );
        d.reset();
        let stream = stored(b"again", b"");
        let step = d.inflate(&stream, &mut out).expect("after reset");
        assert!(step.finished);
        assert_eq!(&out[..step.produced], b"again");
    }
}
