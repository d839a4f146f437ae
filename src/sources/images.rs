//! Still images: decode JPEG or PNG into an upright 8-bit RGB picture.
//!
//! Grayscale, 16-bit, alpha and CMYK inputs all become RGB8; the EXIF
//! orientation tag is applied so a phone photo is upright. Dimensions are
//! checked from the header before any pixel buffer is allocated, so a small
//! file that claims to be 20000×20000 is refused without using the memory.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

use super::frame::{MAX_FRAME_MEMORY, frame_memory};
use super::image_end;

/// Largest width or height accepted (a 32 MP camera frame fits).
pub const MAX_DIMENSION: u32 = super::frame::MAX_SIDE;
/// Smallest width or height that can hold a detectable face.
pub const MIN_DIMENSION: u32 = 32;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read image {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin} is empty (0 bytes)")]
    Empty { origin: String },
    #[error("{origin} is not a JPEG or PNG image")]
    UnknownFormat { origin: String },
    #[error(
        "{origin} is {width}×{height} pixels, larger than the {MAX_DIMENSION}×{MAX_DIMENSION} limit; downscale it first"
    )]
    TooLarge {
        origin: String,
        width: u32,
        height: u32,
    },
    #[error(
        "{origin} is {width}×{height} pixels, too small to hold a face (minimum {MIN_DIMENSION}×{MIN_DIMENSION})"
    )]
    TooSmall {
        origin: String,
        width: u32,
        height: u32,
    },
    #[error(
        "{origin} is {width}×{height} pixels of {bytes_per_pixel} bytes each: decoding it would take \
         {} MiB, more than the {} MiB a frame may use; downscale it or save it as 8-bit",
        .needed / (1024 * 1024), MAX_FRAME_MEMORY / (1024 * 1024)
    )]
    TooMuchMemory {
        origin: String,
        width: u32,
        height: u32,
        bytes_per_pixel: u8,
        needed: u64,
    },
    /// The cause is part of the message (photos are named in status lines
    /// and logs), so it is not also the error's `source()`.
    #[error("{origin} could not be decoded (corrupt or truncated?): {cause}")]
    Decode { origin: String, cause: DecodeCause },
}

/// Why the decoder gave up.
#[derive(Debug, thiserror::Error)]
pub enum DecodeCause {
    /// Decoders fill a cut-off image with grey and call it a success, so
    /// the end marker is checked first.
    #[error("the file is truncated (no end-of-image marker)")]
    Truncated,
    #[error(transparent)]
    Image(#[from] image::ImageError),
}

/// Reads and decodes an image file.
pub fn load_image(path: &Path) -> Result<RgbImage, ImageError> {
    let bytes = std::fs::read(path).map_err(|source| ImageError::Read {
        path: path.to_owned(),
        source,
    })?;
    decode_image(&bytes, &path.display().to_string())
}

/// Decodes image bytes; `origin` names them in errors (a path, "stdin", ...).
pub fn decode_image(bytes: &[u8], origin: &str) -> Result<RgbImage, ImageError> {
    let origin = origin.to_owned();
    if bytes.is_empty() {
        return Err(ImageError::Empty { origin });
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| decode_error(&origin, image::ImageError::IoError(e)))?;
    match reader.format() {
        Some(image::ImageFormat::Jpeg | image::ImageFormat::Png) => {}
        _ => return Err(ImageError::UnknownFormat { origin }),
    }
    // Both decoders fill a truncated image with grey and call it a success;
    // a cut-off upload must be an error, not a half-grey face.
    if !has_end_marker(bytes, reader.format()) {
        return Err(decode_error(&origin, DecodeCause::Truncated));
    }
    // Width and height are checked below from the header; the allocation
    // limit is the second line of defence.
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_FRAME_MEMORY);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| match e {
        image::ImageError::Limits(_) => too_large_from_header(bytes, &origin),
        other => decode_error(&origin, other),
    })?;
    let (width, height) = decoder.dimensions();
    if width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(ImageError::TooLarge {
            origin,
            width,
            height,
        });
    }
    if width < MIN_DIMENSION || height < MIN_DIMENSION {
        return Err(ImageError::TooSmall {
            origin,
            width,
            height,
        });
    }
    // A 16-bit or alpha image decodes to more bytes than its pixels
    // suggest, and is then converted to RGB8: both count.
    let bytes_per_pixel = decoder.color_type().bytes_per_pixel();
    let decoded = u64::from(width) * u64::from(height) * u64::from(bytes_per_pixel);
    let needed = frame_memory(width, height, decoded);
    if needed > MAX_FRAME_MEMORY {
        return Err(ImageError::TooMuchMemory {
            origin,
            width,
            height,
            bytes_per_pixel,
            needed,
        });
    }
    let orientation = decoder
        .orientation()
        .map_err(|e| decode_error(&origin, e))?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(_) => ImageError::TooLarge {
            origin: origin.clone(),
            width,
            height,
        },
        other => decode_error(&origin, other),
    })?;
    image.apply_orientation(orientation);
    Ok(image.to_rgb8())
}

fn decode_error(origin: &str, cause: impl Into<DecodeCause>) -> ImageError {
    ImageError::Decode {
        origin: origin.to_owned(),
        cause: cause.into(),
    }
}

/// The image's own structure reaches its end (`image_end`). Trailing bytes
/// after the end are tolerated, as decoders do.
fn has_end_marker(bytes: &[u8], format: Option<image::ImageFormat>) -> bool {
    match format {
        Some(image::ImageFormat::Jpeg) => image_end::jpeg_is_whole(bytes),
        Some(image::ImageFormat::Png) => image_end::png_is_whole(bytes),
        _ => true,
    }
}

/// The decoder refused the header on size; report the size it claims.
fn too_large_from_header(bytes: &[u8], origin: &str) -> ImageError {
    let (width, height) = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok())
        .unwrap_or((0, 0));
    ImageError::TooLarge {
        origin: origin.to_owned(),
        width,
        height,
    }
}
