//! Whether an encoded image is whole. Decoders fill a cut-off image with
//! grey and report success, and the last `FF D9` of a cut JPEG can be its
//! EXIF thumbnail's, so searching for an end marker is not enough: the
//! structure is walked, a JPEG segment by segment (skipping the thumbnail
//! inside APP1) to the EOI after its scans, a PNG chunk by chunk to IEND.

/// A JPEG that reaches its end-of-image marker through its own structure.
pub fn jpeg_is_whole(b: &[u8]) -> bool {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let mut i = 2;
    loop {
        if b.get(i) != Some(&0xFF) {
            return false;
        }
        // A marker may be preceded by any number of 0xFF fill bytes.
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = b.get(i) else {
            return false;
        };
        i += 1;
        match marker {
            0xD9 => return true,
            // Markers without a length: TEM, RSTn.
            0x01 | 0xD0..=0xD7 => {}
            0x00 => return false,
            _ => {
                let Some(len) = b
                    .get(i..i + 2)
                    .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
                else {
                    return false;
                };
                if len < 2 {
                    return false;
                }
                i += len;
                if marker == 0xDA && !skip_entropy_coded(b, &mut i) {
                    return false;
                }
            }
        }
    }
}

/// Moves `i` past a scan's entropy-coded data, to the next real marker:
/// `FF 00` is a stuffed data byte and `FF D0`..`FF D7` restart markers.
fn skip_entropy_coded(b: &[u8], i: &mut usize) -> bool {
    loop {
        let Some(at) = b
            .get(*i..)
            .and_then(|rest| rest.iter().position(|&x| x == 0xFF))
        else {
            return false;
        };
        *i += at;
        match b.get(*i + 1) {
            None => return false,
            Some(0x00 | 0xD0..=0xD7) => *i += 2,
            Some(0xFF) => *i += 1,
            Some(_) => return true,
        }
    }
}

/// A PNG whose chunks, each within the file, reach IEND.
pub fn png_is_whole(b: &[u8]) -> bool {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !b.starts_with(SIGNATURE) {
        return false;
    }
    let mut i = SIGNATURE.len();
    while let Some(head) = b.get(i..i + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        // Length, type, data, CRC.
        let Some(end) = i.checked_add(12).and_then(|n| n.checked_add(len)) else {
            return false;
        };
        if end > b.len() {
            return false;
        }
        if &head[4..8] == b"IEND" {
            return true;
        }
        i = end;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, RgbImage};

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 128]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .write_image(img.as_raw(), width, height, image::ExtendedColorType::Rgb8)
            .expect("encode");
        out
    }

    /// A photo as cameras write it: an APP1 EXIF segment right after SOI
    /// holding a whole JPEG thumbnail (with its own FF D9).
    pub(crate) fn jpeg_with_exif_thumbnail() -> Vec<u8> {
        let main = jpeg(96, 64);
        let thumbnail = jpeg(16, 16);
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&thumbnail);
        let len = u16::try_from(app1.len() + 2).expect("small");
        let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&main[2..]);
        out
    }

    #[test]
    fn a_jpeg_cut_anywhere_after_its_thumbnail_is_not_whole() {
        let whole = jpeg_with_exif_thumbnail();
        assert!(jpeg_is_whole(&whole));
        let thumbnail_end = 4 + 2 + 6 + jpeg(16, 16).len();
        for cut in thumbnail_end..whole.len() - 1 {
            assert!(
                !jpeg_is_whole(&whole[..cut]),
                "cut at {cut} of {}",
                whole.len()
            );
        }
        // The old check: the thumbnail's end marker is still in every cut.
        assert!(
            whole[..thumbnail_end + 10]
                .windows(2)
                .any(|w| w == [0xFF, 0xD9])
        );
    }

    #[test]
    fn a_png_cut_anywhere_is_not_whole() {
        let img = RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(img.as_raw(), 40, 30, image::ExtendedColorType::Rgb8)
            .expect("encode");
        assert!(png_is_whole(&png));
        for cut in 0..png.len() {
            assert!(!png_is_whole(&png[..cut]), "cut at {cut}");
        }
    }
}
