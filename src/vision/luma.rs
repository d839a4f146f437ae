//! Brightness of an RGB pixel, with the ITU-R BT.601 weights: the Y that
//! cameras and Y4M files carry, so what the stages measure matches what a
//! YUV source would have given.

pub fn luma([r, g, b]: [f32; 3]) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}
