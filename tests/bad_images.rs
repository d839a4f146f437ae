//! Every kind of bad or unusual image gets a clear error (or decodes
//! correctly), never a panic, and never allocates what the header claims
//! before checking it.

use std::io::Cursor;

use edgeid::sources::{ImageError, decode_image};
use image::{ImageBuffer, ImageFormat, Luma, Rgb, RgbImage};

fn encode<P, C>(img: &ImageBuffer<P, C>, format: ImageFormat) -> Vec<u8>
where
    P: image::Pixel + image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode test image");
    out.into_inner()
}

fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x * 3) as u8, (y * 5) as u8, ((x + y) * 2) as u8])
    })
}

/// A PNG whose header claims `w`×`h` but holds no pixel data.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    png_header_claiming(w, h, 8, 2) // 8-bit RGB
}

/// A PNG header of `w`×`h` at `depth` bits, PNG colour type `colour`.
fn png_header_claiming(w: u32, h: u32, depth: u8, colour: u8) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[depth, colour, 0, 0, 0]);
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&ihdr);
    out.extend_from_slice(&crc32fast::hash(&ihdr).to_be_bytes());
    // A real bomb is a complete, tiny file: a little compressed data, then the end.
    let mut idat = b"IDAT".to_vec();
    idat.extend_from_slice(&[0x78, 0x9c, 0x63, 0x60, 0x00, 0x00]);
    out.extend_from_slice(&((idat.len() - 4) as u32).to_be_bytes());
    out.extend_from_slice(&idat);
    out.extend_from_slice(&crc32fast::hash(&idat).to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(b"IEND");
    out.extend_from_slice(&crc32fast::hash(b"IEND").to_be_bytes());
    out
}

#[test]
fn zero_bytes_is_empty() {
    assert!(matches!(
        decode_image(&[], "x"),
        Err(ImageError::Empty { .. })
    ));
}

#[test]
fn text_is_not_an_image() {
    let err =
        decode_image(b"hello, this is not a picture at all", "notes.txt").expect_err("must fail");
    assert!(matches!(err, ImageError::UnknownFormat { .. }), "{err}");
    assert!(err.to_string().contains("notes.txt"));
}

#[test]
fn other_formats_are_refused_clearly() {
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&[64, 0, 64, 0, 0, 0, 0]);
    gif.extend_from_slice(&[0u8; 200]);
    assert!(matches!(
        decode_image(&gif, "a.gif"),
        Err(ImageError::UnknownFormat { .. })
    ));
}

#[test]
fn truncated_jpeg_and_png_are_decode_errors() {
    for format in [ImageFormat::Jpeg, ImageFormat::Png] {
        let bytes = encode(&gradient(200, 150), format);
        let cut = &bytes[..bytes.len() / 2];
        let err = decode_image(cut, "cut").expect_err("truncated must fail");
        assert!(
            matches!(err, ImageError::Decode { .. }),
            "{format:?}: {err}"
        );
    }
}

#[test]
fn corrupt_bytes_are_decode_errors() {
    let mut bytes = encode(&gradient(200, 150), ImageFormat::Png);
    for b in bytes.iter_mut().skip(60).step_by(7) {
        *b ^= 0x5a;
    }
    assert!(matches!(
        decode_image(&bytes, "bad.png"),
        Err(ImageError::Decode { .. })
    ));
}

#[test]
fn one_pixel_is_too_small() {
    let bytes = encode(&gradient(1, 1), ImageFormat::Png);
    let err = decode_image(&bytes, "dot.png").expect_err("1×1 must fail");
    assert!(
        matches!(
            err,
            ImageError::TooSmall {
                width: 1,
                height: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn decompression_bomb_is_refused_from_the_header() {
    let err = decode_image(&png_header_only(20_000, 20_000), "bomb.png").expect_err("must refuse");
    match err {
        ImageError::TooLarge { width, height, .. } => assert_eq!((width, height), (20_000, 20_000)),
        other => panic!("expected TooLarge, got {other}"),
    }
}

/// Within the side limit, but 16-bit RGBA: 8 bytes a pixel decoded, plus
/// the RGB copy. The security report's 522 KB 16-bit PNG peaked at 803 MB;
/// the memory a frame may use is checked from the header now.
#[test]
fn a_deep_png_is_refused_by_the_memory_it_would_take() {
    let err =
        decode_image(&png_header_claiming(6000, 6000, 16, 6), "deep.png").expect_err("must refuse");
    match err {
        ImageError::TooMuchMemory {
            bytes_per_pixel: 8,
            needed,
            ..
        } => assert_eq!(needed, 6000 * 6000 * (8 + 3)),
        other => panic!("expected TooMuchMemory, got {other}"),
    }
}

#[test]
fn grayscale_becomes_rgb_with_equal_channels() {
    let gray = ImageBuffer::from_fn(64, 48, |x, _| Luma([(x * 4) as u8]));
    let img = decode_image(&encode(&gray, ImageFormat::Png), "gray.png").expect("decodes");
    assert_eq!(img.dimensions(), (64, 48));
    let p = img.get_pixel(10, 10);
    assert_eq!((p[0], p[1], p[2]), (40, 40, 40));
}

#[test]
fn sixteen_bit_png_is_scaled_to_eight_bits() {
    let deep: ImageBuffer<Rgb<u16>, Vec<u16>> =
        ImageBuffer::from_fn(40, 40, |_, _| Rgb([65535, 32896, 0]));
    let img = decode_image(&encode(&deep, ImageFormat::Png), "deep.png").expect("decodes");
    let p = img.get_pixel(5, 5);
    assert_eq!((p[0], p[1], p[2]), (255, 128, 0));
}

#[test]
fn cmyk_jpeg_decodes_to_rgb() {
    // Pure cyan in CMYK (C full, M, Y and K empty).
    let (w, h) = (48u16, 40u16);
    let mut cmyk = Vec::new();
    for _ in 0..(w as usize * h as usize) {
        cmyk.extend_from_slice(&[255, 0, 0, 0]);
    }
    let mut out = Vec::new();
    let encoder = jpeg_encoder::Encoder::new(&mut out, 95);
    encoder
        .encode(&cmyk, w, h, jpeg_encoder::ColorType::Cmyk)
        .expect("encode CMYK");
    let img = decode_image(&out, "cmyk.jpg").expect("CMYK decodes");
    assert_eq!(img.dimensions(), (48, 40));
    let p = img.get_pixel(20, 20);
    // Cyan: red low, green and blue high; never grey or black.
    let spread = p.0.iter().max().copied().unwrap_or(0) as i32
        - p.0.iter().min().copied().unwrap_or(0) as i32;
    assert!(spread > 100, "CMYK colour lost: {p:?}");
}

#[test]
fn exif_orientation_is_applied() {
    // A 60×40 JPEG with an EXIF orientation 6 (rotate 90° clockwise) must
    // come out 40×60.
    let jpeg = encode(&gradient(60, 40), ImageFormat::Jpeg);
    let exif: &[u8] = &[
        0xFF, 0xE1, 0x00, 0x22, b'E', b'x', b'i', b'f', 0, 0, // APP1, length 34
        b'M', b'M', 0x00, 0x2A, 0x00, 0x00, 0x00, 0x08, // TIFF header, big endian
        0x00, 0x01, // one IFD entry
        0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x06, 0x00,
        0x00, // Orientation = 6
        0x00, 0x00, 0x00, 0x00, // no next IFD
    ];
    let mut with_exif = jpeg[..2].to_vec();
    with_exif.extend_from_slice(exif);
    with_exif.extend_from_slice(&jpeg[2..]);
    let img = decode_image(&with_exif, "rotated.jpg").expect("decodes");
    assert_eq!(img.dimensions(), (40, 60));
}
