//! Raw frames of a configured size on a byte stream (stdin, a FIFO, a file):
//! RGB24, YUYV (4:2:2 packed) or I420 (4:2:0 planar), so any GStreamer
//! pipeline (`... ! video/x-raw,format=I420 ! fdsink`) can feed edgeid.
//! Also the YUV → RGB conversions the Y4M and V4L2 sources share.
//!
//! Raw streams have no framing, so a frame can only be checked for length:
//! a stream that ends mid-frame is reported with the byte counts.

use std::io::{ErrorKind, Read};
use std::path::PathBuf;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::Frame;
use super::capture::{FrameSource, SourceError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawFormat {
    Rgb24,
    Yuyv,
    I420,
}

impl RawFormat {
    /// Bytes in one `w`×`h` frame.
    pub fn frame_len(self, w: u32, h: u32) -> usize {
        let (w, h) = (w as usize, h as usize);
        match self {
            Self::Rgb24 => w * h * 3,
            Self::Yuyv => w.div_ceil(2) * 2 * h * 2,
            Self::I420 => w * h + 2 * w.div_ceil(2) * h.div_ceil(2),
        }
    }

    /// Converts one frame's bytes; `data` must be exactly `frame_len` long.
    pub fn to_rgb(self, w: u32, h: u32, data: &[u8]) -> Result<RgbImage, String> {
        let expected = self.frame_len(w, h);
        if data.len() != expected {
            return Err(format!(
                "{self:?} {w}x{h} frame must be {expected} bytes, got {}",
                data.len()
            ));
        }
        Ok(match self {
            Self::Rgb24 => {
                RgbImage::from_raw(w, h, data.to_vec()).ok_or("frame buffer size mismatch")?
            }
            Self::Yuyv => yuyv_to_rgb(w, h, data, Range::Limited),
            Self::I420 => {
                let (cw, ch) = (w.div_ceil(2) as usize, h.div_ceil(2) as usize);
                let y_len = (w * h) as usize;
                let (y, uv) = data.split_at(y_len);
                let (u, v) = uv.split_at(cw * ch);
                planar_to_rgb(
                    w,
                    h,
                    Planes {
                        y,
                        u,
                        v,
                        cw,
                        sub_x: 2,
                        sub_y: 2,
                    },
                    Range::Limited,
                )
            }
        })
    }
}

/// Luma/chroma range: "limited" (16–235, broadcast video, most cameras'
/// YUYV) or "full" (0–255, JPEG / C420jpeg).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Limited,
    Full,
}

/// Planar YUV with chroma planes subsampled by `sub_x` × `sub_y`.
pub struct Planes<'a> {
    pub y: &'a [u8],
    pub u: &'a [u8],
    pub v: &'a [u8],
    /// Chroma plane width.
    pub cw: usize,
    pub sub_x: usize,
    pub sub_y: usize,
}

/// BT.601 YCbCr → RGB in 16.16 fixed point (no floats in the per-pixel loop).
#[inline]
pub fn yuv_pixel(y: u8, u: u8, v: u8, range: Range) -> [u8; 3] {
    let (y, u, v) = (i32::from(y), i32::from(u) - 128, i32::from(v) - 128);
    let (r, g, b) = match range {
        // Luma scaled by 255/219, chroma by 255/224.
        Range::Limited => {
            let y = (y - 16) * 76_309;
            (
                y + 104_597 * v,
                y - 25_675 * u - 53_279 * v,
                y + 132_201 * u,
            )
        }
        Range::Full => {
            let y = y << 16;
            (y + 91_881 * v, y - 22_554 * u - 46_802 * v, y + 116_130 * u)
        }
    };
    let c = |x: i32| ((x + 32_768) >> 16).clamp(0, 255) as u8;
    [c(r), c(g), c(b)]
}

pub fn planar_to_rgb(w: u32, h: u32, p: Planes<'_>, range: Range) -> RgbImage {
    let mut out = RgbImage::new(w, h);
    let wu = w as usize;
    for (row, line) in out.chunks_exact_mut(wu * 3).enumerate() {
        let crow = (row / p.sub_y) * p.cw;
        for (col, px) in line.chunks_exact_mut(3).enumerate() {
            let c = crow + col / p.sub_x;
            px.copy_from_slice(&yuv_pixel(p.y[row * wu + col], p.u[c], p.v[c], range));
        }
    }
    out
}

/// Packed YUYV (Y0 U Y1 V per pixel pair), as UVC cameras send it.
pub fn yuyv_to_rgb(w: u32, h: u32, data: &[u8], range: Range) -> RgbImage {
    let mut out = RgbImage::new(w, h);
    let stride = (w as usize).div_ceil(2) * 4;
    for (row, line) in out.chunks_exact_mut(w as usize * 3).enumerate() {
        let src = &data[row * stride..(row + 1) * stride];
        for (col, px) in line.chunks_exact_mut(3).enumerate() {
            let quad = &src[(col / 2) * 4..(col / 2) * 4 + 4];
            let y = if col % 2 == 0 { quad[0] } else { quad[2] };
            px.copy_from_slice(&yuv_pixel(y, quad[1], quad[3], range));
        }
    }
    out
}

/// Fills `buf` completely; `Ok(false)` at a clean end of stream before the
/// first byte, an error naming the byte counts when it ends mid-frame.
pub fn read_frame_bytes(reader: &mut dyn Read, buf: &mut [u8]) -> Result<bool, SourceError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => {
                return Err(SourceError::BadFrame(format!(
                    "the stream ended mid-frame: got {filled} of {} bytes (wrong frame size configured?)",
                    buf.len()
                )));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(SourceError::io("read", e)),
        }
    }
    Ok(true)
}

/// Where a stream comes from: a path (file or FIFO) or standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamInput {
    Stdin,
    Path(PathBuf),
}

impl StreamInput {
    pub fn parse(s: &str) -> Self {
        if s == "-" {
            Self::Stdin
        } else {
            Self::Path(PathBuf::from(s))
        }
    }

    pub fn open(&self) -> Result<Box<dyn Read + Send>, SourceError> {
        match self {
            Self::Stdin => Ok(Box::new(std::io::stdin())),
            Self::Path(p) => std::fs::File::open(p)
                .map(|f| Box::new(f) as Box<dyn Read + Send>)
                .map_err(|e| SourceError::io(p.display(), e)),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Self::Stdin => "stdin".into(),
            Self::Path(p) => p.display().to_string(),
        }
    }
}

pub struct RawSource {
    reader: Box<dyn Read + Send>,
    name: String,
    format: RawFormat,
    width: u32,
    height: u32,
    buf: Vec<u8>,
    /// After a short final frame the next call reports the end.
    ended: bool,
}

impl RawSource {
    pub fn open(
        input: &StreamInput,
        format: RawFormat,
        width: u32,
        height: u32,
    ) -> Result<Self, SourceError> {
        Ok(Self::from_reader(
            input.open()?,
            input.name(),
            format,
            width,
            height,
        ))
    }

    pub fn from_reader(
        reader: Box<dyn Read + Send>,
        name: String,
        format: RawFormat,
        width: u32,
        height: u32,
    ) -> Self {
        Self {
            reader,
            name,
            format,
            width,
            height,
            buf: vec![0; format.frame_len(width, height)],
            ended: false,
        }
    }
}

impl FrameSource for RawSource {
    fn next_frame(&mut self) -> Result<Frame, SourceError> {
        if self.ended {
            return Err(SourceError::Ended);
        }
        match read_frame_bytes(&mut self.reader, &mut self.buf) {
            Ok(true) => {}
            Ok(false) => return Err(SourceError::Ended),
            Err(e) => {
                self.ended = true;
                return Err(e);
            }
        }
        let image = self
            .format
            .to_rgb(self.width, self.height, &self.buf)
            .map_err(SourceError::BadFrame)?;
        Ok(Frame::new(image))
    }

    fn describe(&self) -> String {
        format!(
            "raw {:?} {}x{} from {}",
            self.format, self.width, self.height, self.name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bt601_reference_colours() {
        // Limited range: Y=16 black, Y=235 white, and saturated red.
        assert_eq!(yuv_pixel(16, 128, 128, Range::Limited), [0, 0, 0]);
        assert_eq!(yuv_pixel(235, 128, 128, Range::Limited), [255, 255, 255]);
        let red = yuv_pixel(81, 90, 240, Range::Limited);
        assert!(red[0] > 250 && red[1] < 5 && red[2] < 5, "{red:?}");
        // Full range (JPEG): Y=0 black, Y=255 white, JFIF red.
        assert_eq!(yuv_pixel(0, 128, 128, Range::Full), [0, 0, 0]);
        assert_eq!(yuv_pixel(255, 128, 128, Range::Full), [255, 255, 255]);
        let red = yuv_pixel(76, 85, 255, Range::Full);
        assert!(red[0] > 250 && red[1] < 5 && red[2] < 5, "{red:?}");
    }

    #[test]
    fn yuyv_pairs_share_chroma() {
        // Two pixels: dark and bright grey.
        let img = yuyv_to_rgb(2, 1, &[16, 128, 235, 128], Range::Limited);
        assert_eq!(img.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(1, 0).0, [255, 255, 255]);
    }

    #[test]
    fn frame_lengths_cover_odd_sizes() {
        assert_eq!(RawFormat::I420.frame_len(4, 2), 8 + 2 * 2);
        assert_eq!(RawFormat::I420.frame_len(3, 3), 9 + 2 * 4);
        assert_eq!(RawFormat::Yuyv.frame_len(3, 1), 8);
        assert!(RawFormat::Rgb24.to_rgb(2, 2, &[0; 11]).is_err());
    }

    #[test]
    fn a_short_final_frame_is_a_bad_frame_then_the_end() {
        let data = vec![128u8; 12 + 5];
        let mut src = RawSource::from_reader(
            Box::new(std::io::Cursor::new(data)),
            "t".into(),
            RawFormat::Rgb24,
            2,
            2,
        );
        assert!(src.next_frame().is_ok());
        match src.next_frame() {
            Err(SourceError::BadFrame(m)) => assert!(m.contains("got 5 of 12 bytes"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(src.next_frame(), Err(SourceError::Ended)));
    }
}
