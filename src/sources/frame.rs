//! The frame type every source produces and every stage reads.

use std::time::Instant;

use image::RgbImage;

/// Largest width or height of a frame or image (a 32 MP camera frame fits).
pub const MAX_SIDE: u32 = 8192;

/// Memory one frame may take while it is read and converted: its bytes as
/// they arrive or decode, plus the RGB frame made from them. A 4K I420
/// frame needs 37 MiB and a 24 MP 8-bit photo 144 MiB; a hostile header
/// asking for gigabytes is refused before anything is allocated.
pub const MAX_FRAME_MEMORY: u64 = 160 * 1024 * 1024;

/// Bytes a `width`×`height` frame needs: `input_bytes` (as read or decoded)
/// plus its 8-bit RGB copy.
pub fn frame_memory(width: u32, height: u32, input_bytes: u64) -> u64 {
    input_bytes.saturating_add(u64::from(width) * u64::from(height) * 3)
}

/// One RGB picture and the moment it was captured (or decoded).
#[derive(Debug, Clone)]
pub struct Frame {
    pub image: RgbImage,
    pub captured_at: Instant,
}

impl Frame {
    pub fn new(image: RgbImage) -> Self {
        Self {
            image,
            captured_at: Instant::now(),
        }
    }

    pub fn width(&self) -> u32 {
        self.image.width()
    }

    pub fn height(&self) -> u32 {
        self.image.height()
    }
}
