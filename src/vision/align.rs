//! Alignment: a similarity transform that puts the face where the embedder
//! was trained to see it, then a warp into the embedder's square chip.
//!
//! The embedder is dlib's ResNet, trained on dlib's 5-point face chips
//! (150 px, padding 0.25). Its five reference points are reproduced here;
//! the mesh supplies the matching points.

use image::RgbImage;

use super::VisionError;
use super::chip_template;
use super::geometry::{Point, Similarity};
use super::landmarks::{FaceMesh, index};
use super::warp::warp_rgb;

/// dlib's 5-point chip template (`get_face_chip_details`), unpadded, in
/// units of the chip side: left eye outer, left eye inner, right eye outer,
/// right eye inner, nose base.
const DLIB_5_POINT_TEMPLATE: [(f32, f32); 5] = [
    (0.859_567_5, 0.213_498_15),
    (0.646_060_5, 0.228_967_44),
    (0.120_575_06, 0.213_727_45),
    (0.334_085_06, 0.229_064_24),
    (0.490_112_3, 0.627_797_5),
];

/// dlib's chip padding for its ResNet embedder.
pub const DLIB_PADDING: f32 = 0.25;

/// The mesh points that correspond to dlib's five, in the same order.
const DLIB_5_POINT_MESH: [usize; 5] = [
    index::LEFT_EYE_OUTER,
    index::LEFT_EYE_INNER,
    index::RIGHT_EYE_OUTER,
    index::RIGHT_EYE_INNER,
    index::NOSE_BASE,
];

/// Which template aligns the mesh to the embedder's chip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alignment {
    /// Mesh points fitted to dlib's own alignment on LFW fold 1
    /// (`scripts/calibrate/alignment.py`). Measured no better than
    /// `Dlib5Point` on fold 1 (same best accuracy, lower TAR at FAR 1e-3),
    /// so it is kept for evaluation, not shipped.
    Calibrated,
    /// dlib's published 5-point template applied to the nearest mesh points.
    #[default]
    Dlib5Point,
}

/// How the fitted transform becomes the sampling transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sampling {
    /// The template is in dlib's template frame: sample as dlib's chip box does.
    DlibBox,
    /// The template is already in chip pixels: sample at the fit itself.
    Direct,
}

/// Where chosen mesh points should land in the chip.
#[derive(Debug, Clone)]
pub struct ChipTemplate {
    pub size: usize,
    mesh_indices: Vec<usize>,
    /// Target positions in chip pixels, same order as `mesh_indices`.
    chip_points: Vec<Point>,
    sampling: Sampling,
}

impl ChipTemplate {
    /// dlib's 5-point face chip of `size` pixels with `padding` (dlib's
    /// default for its ResNet embedder: 150 and 0.25).
    pub fn dlib_5_point(size: usize, padding: f32) -> Self {
        let chip_points = DLIB_5_POINT_TEMPLATE
            .iter()
            .map(|&(x, y)| {
                let f = |v: f32| (padding + v) / (2.0 * padding + 1.0) * size as f32;
                Point::new(f(x), f(y))
            })
            .collect();
        Self {
            size,
            mesh_indices: DLIB_5_POINT_MESH.to_vec(),
            chip_points,
            sampling: Sampling::DlibBox,
        }
    }

    /// The template calibrated against dlib's alignment, for a chip of
    /// `size` pixels (scaled from the 150 px it was measured on).
    pub fn calibrated(size: usize) -> Self {
        let k = size as f32 / chip_template::CHIP_SIZE as f32;
        Self {
            size,
            mesh_indices: chip_template::MESH_INDICES.to_vec(),
            chip_points: chip_template::CHIP_POINTS
                .iter()
                .map(|&(x, y)| Point::new(x * k, y * k))
                .collect(),
            sampling: Sampling::Direct,
        }
    }

    /// The template for an alignment choice and chip size (dlib padding 0.25).
    pub fn for_alignment(alignment: Alignment, size: usize) -> Self {
        match alignment {
            Alignment::Calibrated => Self::calibrated(size),
            Alignment::Dlib5Point => Self::dlib_5_point(size, DLIB_PADDING),
        }
    }

    /// The transform from chip pixels to image pixels for this mesh
    /// (least squares in the image, as dlib fits it).
    pub fn chip_to_image(&self, mesh: &FaceMesh) -> Result<Similarity, VisionError> {
        let image_points: Vec<Point> = self.mesh_indices.iter().map(|&i| mesh.point(i)).collect();
        let fit = Similarity::fit(&self.chip_points, &image_points)
            .ok_or(VisionError::DegenerateLandmarks)?;
        Ok(match self.sampling {
            Sampling::DlibBox => dlib_chip_sampling(&fit, self.size as f32),
            Sampling::Direct => fit,
        })
    }
}

/// dlib does not sample the chip at the fitted transform itself: it keeps
/// the fitted box (centre `fit(n/2)`, side `n·scale`, angle) and maps chip
/// pixels 0 and n−1 to the box's edges. Reproducing that keeps our chips
/// pixel-for-pixel where the embedder was trained to see faces.
fn dlib_chip_sampling(fit: &Similarity, n: f32) -> Similarity {
    let centre = fit.apply(Point::new(n / 2.0, n / 2.0));
    let stretch = n / (n - 1.0);
    let (a, b) = (fit.a * stretch, fit.b * stretch);
    let half = (n - 1.0) / 2.0;
    Similarity {
        a,
        b,
        tx: centre.x - (a * half - b * half),
        ty: centre.y - (b * half + a * half),
    }
}

/// An aligned face chip: interleaved RGB f32 (0..255), `size`×`size`.
#[derive(Debug, Clone)]
pub struct FaceChip {
    pub size: usize,
    pub rgb: Vec<f32>,
    /// Chip pixel → image pixel.
    pub to_image: Similarity,
}

impl FaceChip {
    pub fn to_image(&self) -> RgbImage {
        super::warp::to_rgb_image(&self.rgb, self.size as u32, self.size as u32)
    }
}

/// Cuts the aligned chip for `mesh` out of `image`.
pub fn align(
    image: &RgbImage,
    mesh: &FaceMesh,
    template: &ChipTemplate,
) -> Result<FaceChip, VisionError> {
    let to_image = template.chip_to_image(mesh)?;
    Ok(FaceChip {
        size: template.size,
        rgb: warp_rgb(image, &to_image, template.size, template.size),
        to_image,
    })
}
