//! Sources: where pixels come from. Every source yields [`frame::Frame`]s;
//! nothing downstream knows whether a frame came from a file or a camera.
//!
//! - `frame`: the frame type.
//! - `images`: still images from files or bytes (JPEG, PNG), with EXIF
//!   orientation and a decompression-bomb guard.

pub mod frame;
pub mod images;

pub use frame::Frame;
pub use images::{ImageError, decode_image, load_image};
