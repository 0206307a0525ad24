//! gzip (RFC 1952) members inflated without their CRC-32, for layer
//! streams whose inflated bytes are hashed with SHA-256 and compared to a
//! known digest (a layer's diff ID) anyway.
//!
//! Why: profiling a pull showed the CRC-32 of every inflated byte at a
//! twentieth of the whole pull's CPU time, buying nothing that the diff ID
//! check does not already give (it covers every byte, and a mismatch
//! discards everything unpacked). The framing is still checked: magic,
//! method, reserved flags, the length trailer (ISIZE) of every member, and
//! a stream cut off inside a member is an error.
//!
//! Several members in a row are one stream, as `gzip -d` and Docker read
//! them.
//!
//! The DEFLATE engine is ISA-L's ([`berth_sys::inflate`], 1.6x zlib-rs on
//! layers). It reads its input eight bytes at a time, so at a member's end
//! it has taken up to eight bytes of what follows (the trailer, perhaps the
//! next header) from buffers already consumed; they are given back through
//! [`Rewound`], which the framing reads before the stream.

use berth_sys::inflate::RawInflate;
use std::io::{self, BufRead, Read};

const FHCRC: u8 = 1 << 1;
const FEXTRA: u8 = 1 << 2;
const FNAME: u8 = 1 << 3;
const FCOMMENT: u8 = 1 << 4;
const RESERVED: u8 = 0b1110_0000;

enum State {
    /// Before a member's header (or at the end of the stream).
    Header,
    /// Inside a member's deflate data; its inflated length so far.
    Body(u64),
    /// After the last member.
    Done,
}

/// A buffered reader with up to eight bytes given back in front of it.
struct Rewound<R> {
    back: [u8; 8],
    start: usize,
    end: usize,
    inner: R,
}

impl<R: BufRead> Rewound<R> {
    fn give_back(&mut self, bytes: &[u8]) {
        debug_assert_eq!(self.start, self.end, "given back twice");
        self.back[..bytes.len()].copy_from_slice(bytes);
        (self.start, self.end) = (0, bytes.len());
    }
}

impl<R: BufRead> Read for Rewound<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = {
            let avail = self.fill_buf()?;
            let n = avail.len().min(buf.len());
            buf[..n].copy_from_slice(&avail[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Rewound<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.start < self.end {
            Ok(&self.back[self.start..self.end])
        } else {
            self.inner.fill_buf()
        }
    }

    fn consume(&mut self, n: usize) {
        if self.start < self.end {
            self.start += n.min(self.end - self.start);
        } else {
            self.inner.consume(n);
        }
    }
}

/// A reader of the inflated bytes of a gzip stream (one or more members)
/// that checks the framing but not the CRC-32; see the module doc for when
/// that is sound.
pub(crate) struct UncheckedGzDecoder<R> {
    inner: Rewound<R>,
    inflate: RawInflate,
    state: State,
}

fn bad(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

fn skip_zero_terminated(r: &mut impl BufRead, what: &str) -> io::Result<()> {
    let mut skipped = Vec::new();
    r.read_until(0, &mut skipped)?;
    if skipped.last() != Some(&0) {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("gzip header cut off inside its {what}"),
        ));
    }
    Ok(())
}

impl<R: BufRead> UncheckedGzDecoder<R> {
    /// Wraps a buffered gzip stream.
    pub(crate) fn new(inner: R) -> Self {
        UncheckedGzDecoder {
            inner: Rewound {
                back: [0; 8],
                start: 0,
                end: 0,
                inner,
            },
            inflate: RawInflate::new(),
            state: State::Header,
        }
    }

    /// Reads a member's header; false at the end of the stream.
    fn header(&mut self) -> io::Result<bool> {
        if self.inner.fill_buf()?.is_empty() {
            return Ok(false);
        }
        let mut fixed = [0u8; 10];
        self.inner
            .read_exact(&mut fixed)
            .map_err(|e| io::Error::new(e.kind(), format!("gzip header cut off: {e}")))?;
        if fixed[0..2] != [0x1f, 0x8b] {
            return Err(bad("not a gzip member (bad magic bytes)"));
        }
        if fixed[2] != 8 {
            return Err(bad(format!(
                "gzip member uses compression method {}; only deflate (8) exists",
                fixed[2]
            )));
        }
        let flags = fixed[3];
        if flags & RESERVED != 0 {
            return Err(bad("gzip header sets reserved flag bits"));
        }
        if flags & FEXTRA != 0 {
            let mut len = [0u8; 2];
            self.inner.read_exact(&mut len)?;
            let len = u64::from(u16::from_le_bytes(len));
            let skipped = io::copy(&mut (&mut self.inner).take(len), &mut io::sink())?;
            if skipped != len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "gzip header cut off inside its extra field",
                ));
            }
        }
        if flags & FNAME != 0 {
            skip_zero_terminated(&mut self.inner, "file name")?;
        }
        if flags & FCOMMENT != 0 {
            skip_zero_terminated(&mut self.inner, "comment")?;
        }
        if flags & FHCRC != 0 {
            let mut crc = [0u8; 2];
            self.inner.read_exact(&mut crc)?;
        }
        Ok(true)
    }

    /// Reads a member's trailer, checking its length field.
    fn trailer(&mut self, inflated: u64) -> io::Result<()> {
        let mut trailer = [0u8; 8];
        self.inner.read_exact(&mut trailer).map_err(|e| {
            io::Error::new(e.kind(), format!("gzip member cut off in its trailer: {e}"))
        })?;
        let isize = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
        // ISIZE is the length modulo 2^32.
        if isize != inflated as u32 {
            return Err(bad(format!(
                "gzip member inflated to {inflated} bytes but its trailer says {isize} (mod 2^32)"
            )));
        }
        Ok(())
    }
}

impl<R: BufRead> Read for UncheckedGzDecoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.state {
                State::Done => return Ok(0),
                State::Header => {
                    if self.header()? {
                        self.inflate.reset();
                        self.state = State::Body(0);
                    } else {
                        self.state = State::Done;
                    }
                }
                State::Body(so_far) => {
                    let input = self.inner.fill_buf()?;
                    let at_eof = input.is_empty();
                    let step = self
                        .inflate
                        .inflate(input, buf)
                        .map_err(|e| bad(format!("inflating gzip data: {e}")))?;
                    self.inner.consume(step.consumed);
                    let inflated = so_far + step.produced as u64;
                    self.state = State::Body(inflated);
                    if step.finished {
                        let (tail, n) = self.inflate.unused_tail();
                        self.inner.give_back(&tail[..n]);
                        self.trailer(inflated)?;
                        self.state = State::Header;
                    }
                    if step.produced > 0 {
                        return Ok(step.produced);
                    }
                    if !step.finished && step.consumed == 0 && at_eof {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "gzip stream cut off inside a member",
                        ));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::{Compression, GzBuilder};
    use std::io::{BufReader, Write};

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).expect("compress");
        e.finish().expect("finish")
    }

    fn inflate(data: &[u8], buf_size: usize) -> io::Result<Vec<u8>> {
        let mut d = UncheckedGzDecoder::new(BufReader::with_capacity(buf_size, data));
        let mut out = Vec::new();
        let mut buf = vec![0u8; buf_size];
        loop {
            let n = d.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    fn sample() -> Vec<u8> {
        let mut x: u32 = 7;
        (0..300_000u32)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if i % 3 == 0 {
                    (x >> 24) as u8
                } else {
                    b'a' + (i % 7) as u8
                }
            })
            .collect()
    }

    #[test]
    fn inflates_members_with_every_header_field() {
        let data = sample();
        let mut stream = gz(&data[..1000]);
        let mut e = GzBuilder::new()
            .filename("layer.tar")
            .comment("a comment")
            .extra(vec![1, 2, 3, 4])
            .write(Vec::new(), Compression::best());
        e.write_all(&data[1000..]).expect("compress");
        let mut second = e.finish().expect("finish");
        // FHCRC: a header CRC of two bytes after the comment, not checked.
        second[3] |= FHCRC;
        let header_end = 10 + 2 + 4 + "layer.tar\0".len() + "a comment\0".len();
        second.splice(header_end..header_end, [0xaa, 0xbb]);
        stream.extend_from_slice(&second);
        stream.extend_from_slice(&gz(b""));
        for size in [1, 7, 512, 64 << 10] {
            assert_eq!(
                inflate(&stream, size).expect("inflate"),
                data,
                "buffers of {size}"
            );
        }
        assert_eq!(inflate(&[], 512).expect("empty stream"), Vec::<u8>::new());
    }

    #[test]
    fn member_ends_fall_anywhere_in_the_input_buffers() {
        // ISA-L reads ahead past a member's end; what it took from earlier
        // buffers is given back wherever the buffer boundaries fall.
        let data = sample();
        let pieces = [&data[..1], &data[1..3000], &data[3000..3001], &data[3001..]];
        let stream: Vec<u8> = pieces.iter().flat_map(|p| gz(p)).collect();
        for size in (1..=24).chain([4093, 1 << 20]) {
            let mut d = UncheckedGzDecoder::new(BufReader::with_capacity(size, &stream[..]));
            let mut out = Vec::new();
            d.read_to_end(&mut out).expect("inflate");
            assert!(out == data, "input buffers of {size}");
        }
    }

    #[test]
    fn framing_errors_are_refused() {
        let data = sample();
        let stream = gz(&data);
        for cut in [5, 20, stream.len() - 4, stream.len() - 1] {
            let err = inflate(&stream[..cut], 4096).expect_err("a cut stream must fail");
            assert_eq!(
                err.kind(),
                io::ErrorKind::UnexpectedEof,
                "cut at {cut}: {err}"
            );
        }
        let mut wrong_len = stream.clone();
        let n = wrong_len.len();
        wrong_len[n - 1] ^= 1;
        let err = inflate(&wrong_len, 4096).expect_err("a wrong ISIZE must fail");
        assert!(err.to_string().contains("trailer says"), "{err}");
        let mut garbage = stream.clone();
        garbage.extend_from_slice(b"not gzip at all");
        let err = inflate(&garbage, 4096).expect_err("garbage after a member must fail");
        assert!(err.to_string().contains("magic"), "{err}");
        let mut reserved = stream;
        reserved[3] |= 0x80;
        assert!(inflate(&reserved, 4096).is_err());
    }
}
