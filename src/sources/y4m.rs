//! YUV4MPEG2 (Y4M) streams from a file, stdin or a FIFO: what
//! `gst-launch-1.0 ... ! y4menc ! filesink location=/dev/stdout` and
//! `ffmpeg -f yuv4mpegpipe` write. 4:2:0 (C420jpeg, C420, C420mpeg2,
//! C420paldv), 4:2:2 (C422), 4:4:4 (C444) and monochrome (Cmono).
//!
//! Y4M frames are `FRAME[ params]\n` + a fixed number of bytes. A frame of
//! the wrong size shows as a `FRAME` marker missing where the next one
//! should start; the source then reports which frame was bad and scans to
//! the next marker, so one damaged frame never ends the stream.

use std::io::{BufRead, BufReader, ErrorKind, Read};

use image::RgbImage;

use super::Frame;
use super::capture::{FrameSource, SourceError};
use super::frame::{MAX_FRAME_MEMORY, MAX_SIDE, frame_memory};
use super::raw::{Planes, Range, StreamInput, planar_to_rgb, read_frame_bytes};

const MAGIC: &[u8] = b"YUV4MPEG2 ";
const FRAME: &[u8] = b"FRAME";
/// Headers are a few dozen bytes; a longer "line" is garbage, not a header.
const MAX_HEADER: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chroma {
    C420,
    C422,
    C444,
    Mono,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Y4mHeader {
    pub width: u32,
    pub height: u32,
    pub chroma: Chroma,
    pub range: Range,
    /// Frame rate as a fraction, when given.
    pub fps: Option<(u32, u32)>,
}

impl Y4mHeader {
    pub fn parse(line: &[u8]) -> Result<Self, String> {
        let rest = line
            .strip_prefix(MAGIC)
            .ok_or("not a Y4M stream: it does not start with \"YUV4MPEG2 \"")?;
        let text = std::str::from_utf8(rest).map_err(|_| "the Y4M header is not ASCII")?;
        let (mut width, mut height, mut fps) = (None, None, None);
        // No colourspace tag means 4:2:0 (the format's default).
        let mut chroma = Chroma::C420;
        let mut range = None;
        for token in text.split_ascii_whitespace() {
            let (tag, value) = token.split_at(1);
            match tag {
                "W" => width = value.parse::<u32>().ok(),
                "H" => height = value.parse::<u32>().ok(),
                "F" => {
                    fps = value
                        .split_once(':')
                        .and_then(|(n, d)| Some((n.parse().ok()?, d.parse().ok()?)))
                }
                "C" => {
                    chroma = match value {
                        "420jpeg" => {
                            range.get_or_insert(Range::Full);
                            Chroma::C420
                        }
                        "420" | "420mpeg2" | "420paldv" => Chroma::C420,
                        "422" => Chroma::C422,
                        "444" => Chroma::C444,
                        "mono" => Chroma::Mono,
                        other => {
                            return Err(format!(
                                "unsupported Y4M colourspace C{other} (use 420jpeg, 420, 422, 444 or mono)"
                            ));
                        }
                    }
                }
                "X" => match value {
                    "COLORRANGE=FULL" => range = Some(Range::Full),
                    "COLORRANGE=LIMITED" => range = Some(Range::Limited),
                    _ => {}
                },
                // Interlacing, aspect ratio and comments do not change the bytes.
                _ => {}
            }
        }
        let (Some(width), Some(height)) = (width, height) else {
            return Err("the Y4M header lacks a valid W or H".into());
        };
        if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
            return Err(format!(
                "unreasonable Y4M frame size {width}x{height} (at most {MAX_SIDE} a side)"
            ));
        }
        let header = Self {
            width,
            height,
            chroma,
            range: range.unwrap_or(Range::Limited),
            fps,
        };
        // The header is the stream's word: check what it would cost first.
        let needed = frame_memory(width, height, header.frame_len() as u64);
        if needed > MAX_FRAME_MEMORY {
            return Err(format!(
                "Y4M frames of {width}x{height} would take {} MiB each, more than the {} MiB a frame may use",
                needed / (1024 * 1024),
                MAX_FRAME_MEMORY / (1024 * 1024)
            ));
        }
        Ok(header)
    }

    fn chroma_dims(&self) -> (usize, usize) {
        let (w, h) = (self.width as usize, self.height as usize);
        match self.chroma {
            Chroma::C420 => (w.div_ceil(2), h.div_ceil(2)),
            Chroma::C422 => (w.div_ceil(2), h),
            Chroma::C444 => (w, h),
            Chroma::Mono => (0, 0),
        }
    }

    /// Bytes of picture data after each `FRAME` line.
    pub fn frame_len(&self) -> usize {
        let (cw, ch) = self.chroma_dims();
        self.width as usize * self.height as usize + 2 * cw * ch
    }

    pub fn to_rgb(&self, data: &[u8]) -> RgbImage {
        let (w, h) = (self.width, self.height);
        let y_len = w as usize * h as usize;
        let (y, uv) = data.split_at(y_len);
        if self.chroma == Chroma::Mono {
            return RgbImage::from_fn(w, h, |x, yy| {
                let l = y[yy as usize * w as usize + x as usize];
                let l = match self.range {
                    Range::Full => l,
                    Range::Limited => ((i32::from(l) - 16) * 255 / 219).clamp(0, 255) as u8,
                };
                image::Rgb([l, l, l])
            });
        }
        let (cw, ch) = self.chroma_dims();
        let (u, v) = uv.split_at(cw * ch);
        let (sub_x, sub_y) = match self.chroma {
            Chroma::C420 => (2, 2),
            Chroma::C422 => (2, 1),
            _ => (1, 1),
        };
        planar_to_rgb(
            w,
            h,
            Planes {
                y,
                u,
                v,
                cw,
                sub_x,
                sub_y,
            },
            self.range,
        )
    }
}

pub struct Y4mSource {
    reader: BufReader<Box<dyn Read + Send>>,
    name: String,
    header: Y4mHeader,
    buf: Vec<u8>,
    /// Frames read so far (1-based in messages).
    index: u64,
}

impl Y4mSource {
    pub fn open(input: &StreamInput) -> Result<Self, SourceError> {
        Self::from_reader(input.open()?, input.name())
    }

    pub fn from_reader(reader: Box<dyn Read + Send>, name: String) -> Result<Self, SourceError> {
        let mut reader = BufReader::with_capacity(1 << 16, reader);
        let line = read_line(&mut reader)?.ok_or_else(|| {
            SourceError::Unavailable(format!("{name}: empty stream, no Y4M header"))
        })?;
        let header = Y4mHeader::parse(&line)
            .map_err(|e| SourceError::Unavailable(format!("{name}: {e}")))?;
        Ok(Self {
            buf: vec![0; header.frame_len()],
            reader,
            name,
            header,
            index: 0,
        })
    }

    pub fn header(&self) -> &Y4mHeader {
        &self.header
    }

    /// Skips to just after the next `FRAME` marker; false at end of stream.
    fn resync(&mut self) -> Result<bool, SourceError> {
        let mut matched = 0;
        loop {
            let mut byte = [0u8];
            match self.reader.read(&mut byte) {
                Ok(0) => return Ok(false),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(SourceError::io(&self.name, e)),
            }
            matched = if byte[0] == FRAME[matched] {
                matched + 1
            } else if byte[0] == FRAME[0] {
                1
            } else {
                0
            };
            if matched == FRAME.len() {
                // Drop the rest of the FRAME line (its parameters).
                read_line(&mut self.reader)?;
                return Ok(true);
            }
        }
    }
}

impl FrameSource for Y4mSource {
    fn next_frame(&mut self) -> Result<Frame, SourceError> {
        let Some(line) = read_line(&mut self.reader)? else {
            return Err(SourceError::Ended);
        };
        self.index += 1;
        if !line.starts_with(FRAME) {
            let found = String::from_utf8_lossy(&line[..line.len().min(16)]).into_owned();
            // The previous frame was longer or shorter than the header says,
            // or bytes were lost; realign on the next marker.
            return if self.resync()? {
                Err(SourceError::BadFrame(format!(
                    "{}: frame {} is not {}x{} {:?} ({} bytes): expected a FRAME marker, found {found:?}; skipped to the next frame",
                    self.name,
                    self.index,
                    self.header.width,
                    self.header.height,
                    self.header.chroma,
                    self.header.frame_len()
                )))
            } else {
                Err(SourceError::Ended)
            };
        }
        if !read_frame_bytes(&mut self.reader, &mut self.buf)? {
            return Err(SourceError::BadFrame(format!(
                "{}: the stream ended after frame {}'s header",
                self.name, self.index
            )));
        }
        // When the next marker is already buffered, check it now so a short
        // frame is caught before it is used; never wait for more input here
        // (that would add a frame period of latency on a live stream).
        let ahead = self.reader.buffer();
        if ahead.len() >= FRAME.len() && !ahead.starts_with(FRAME) {
            let index = self.index;
            self.resync_pending()?;
            return Err(SourceError::BadFrame(format!(
                "{}: frame {index} is not followed by a FRAME marker: it is not {}x{} {:?} ({} bytes) or the stream is damaged; skipped",
                self.name,
                self.header.width,
                self.header.height,
                self.header.chroma,
                self.header.frame_len()
            )));
        }
        Ok(Frame::new(self.header.to_rgb(&self.buf)))
    }

    fn describe(&self) -> String {
        format!(
            "y4m {}x{} {:?} from {}",
            self.header.width, self.header.height, self.header.chroma, self.name
        )
    }
}

impl Y4mSource {
    /// Realigns on the next marker, leaving it unread for `next_frame`.
    fn resync_pending(&mut self) -> Result<(), SourceError> {
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(SourceError::io(&self.name, e)),
            };
            if buf.is_empty() {
                return Ok(());
            }
            if let Some(at) = buf.windows(FRAME.len()).position(|w| w == FRAME) {
                self.reader.consume(at);
                return Ok(());
            }
            // Keep a possible partial marker at the end of the buffer.
            let keep = FRAME.len() - 1;
            let n = buf.len().saturating_sub(keep).max(1);
            self.reader.consume(n);
        }
    }
}

/// One header line without its newline; None at a clean end of stream.
fn read_line(reader: &mut BufReader<Box<dyn Read + Send>>) -> Result<Option<Vec<u8>>, SourceError> {
    let mut line = Vec::new();
    let mut limited = reader.by_ref().take(MAX_HEADER as u64 + 1);
    match limited.read_until(b'\n', &mut line) {
        Ok(0) => Ok(None),
        Ok(_) if line.last() == Some(&b'\n') => {
            line.pop();
            Ok(Some(line))
        }
        Ok(_) if line.len() > MAX_HEADER => Ok(Some(line)),
        Ok(_) => Err(SourceError::Ended),
        Err(e) => Err(SourceError::io("y4m", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(header: &str, frames: &[Vec<u8>]) -> Vec<u8> {
        let mut s = format!("{header}\n").into_bytes();
        for f in frames {
            s.extend_from_slice(b"FRAME\n");
            s.extend_from_slice(f);
        }
        s
    }

    fn source(bytes: Vec<u8>) -> Y4mSource {
        Y4mSource::from_reader(Box::new(std::io::Cursor::new(bytes)), "test".into())
            .expect("header")
    }

    #[test]
    fn headers_parse_and_refuse() {
        let h = Y4mHeader::parse(b"YUV4MPEG2 W640 H480 F30:1 Ip A1:1 C420jpeg XYSCSS=420JPEG")
            .expect("parse");
        assert_eq!(
            (h.width, h.height, h.chroma, h.range, h.fps),
            (640, 480, Chroma::C420, Range::Full, Some((30, 1)))
        );
        assert_eq!(h.frame_len(), 640 * 480 * 3 / 2);
        assert_eq!(
            Y4mHeader::parse(b"YUV4MPEG2 W3 H3 C444")
                .expect("444")
                .frame_len(),
            27
        );
        assert_eq!(
            Y4mHeader::parse(b"YUV4MPEG2 W3 H3 Cmono")
                .expect("mono")
                .frame_len(),
            9
        );
        assert!(Y4mHeader::parse(b"YUV4MPEG2 W3 C420").is_err());
        assert!(Y4mHeader::parse(b"YUV4MPEG2 W3 H3 C411").is_err());
        assert!(Y4mHeader::parse(b"RIFF").is_err());
        assert!(Y4mHeader::parse(b"YUV4MPEG2 W100000 H100000").is_err());
    }

    /// The hostile headers of the security report: each asked for hundreds
    /// of MiB a frame and was accepted; refused now before any allocation.
    #[test]
    fn headers_asking_for_too_much_memory_are_refused() {
        for hostile in [
            &b"YUV4MPEG2 W67108864 H1 C420"[..],
            b"YUV4MPEG2 W8192 H8192 C444",
            b"YUV4MPEG2 W8192 H8192 C420",
        ] {
            let e = Y4mHeader::parse(hostile).expect_err("refused");
            assert!(
                e.contains("a side") || e.contains("MiB"),
                "{}: {e}",
                String::from_utf8_lossy(hostile)
            );
        }
        // A 4K camera still fits.
        assert!(Y4mHeader::parse(b"YUV4MPEG2 W3840 H2160 C420").is_ok());
    }

    #[test]
    fn a_wrong_sized_frame_is_reported_and_the_stream_goes_on() {
        let good = vec![128u8; 4 * 2 + 2 * 2]; // 4x2 luma + two 2x1 chroma planes
        let short = vec![128u8; 5];
        let mut src = source(stream(
            "YUV4MPEG2 W4 H2 C420",
            &[good.clone(), short, good.clone(), good],
        ));
        assert!(src.next_frame().is_ok());
        let err = src.next_frame().expect_err("short frame");
        assert!(err.to_string().contains("frame 2"), "{err}");
        let mut ok = 0;
        loop {
            match src.next_frame() {
                Ok(_) => ok += 1,
                Err(SourceError::BadFrame(_)) => {}
                Err(_) => break,
            }
        }
        assert!(ok >= 1, "frames after the bad one are still delivered");
    }

    #[test]
    fn garbage_between_frames_is_skipped() {
        let good = vec![16u8; 4];
        let mut bytes = stream("YUV4MPEG2 W2 H2 Cmono", std::slice::from_ref(&good));
        bytes.extend_from_slice(b"garbage!");
        bytes.extend_from_slice(&stream("", &[good])[1..]);
        let mut src = source(bytes);
        // Frame 1 is followed by bytes that are not a marker: it cannot be
        // trusted (it may have been cut short), so it is reported, not used.
        let err = src.next_frame().expect_err("frame 1 is suspect");
        assert!(err.to_string().contains("frame 1"), "{err}");
        let next = src.next_frame().expect("the frame after the garbage");
        assert_eq!(next.image.get_pixel(0, 0).0, [0, 0, 0]);
        assert!(matches!(src.next_frame(), Err(SourceError::Ended)));
    }
}
