//! The frame type every source produces and every stage reads.

use std::time::Instant;

use image::RgbImage;

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
