//! Textured triangle meshes for the clip generator: a head built from the
//! face mesh of a photo (its 468 points with their depth, triangulated
//! with MediaPipe's canonical triangle list), and a flat or bent sheet of
//! the whole photo (a print, a screen).
//!
//! Texture coordinates are photo pixels: in the photo's own pose the head
//! projects back onto the photo, so the texture is the person's real skin,
//! eyes and hair, not a painted model.

use crate::vision::landmarks::{FaceMesh, MESH_POINTS};

/// MediaPipe's canonical face mesh triangles (852, vertex indices into the
/// 468 points), from `FACE_LANDMARKS_TESSELATION` in the `mediapipe` 1.2.3
/// wheel on PyPI (Apache-2.0; provenance in NOTICE.md beside this file).
const TRIANGLES: &str = include_str!("face_mesh_triangles.txt");

/// Eyelid rims, outer corner to inner corner (subject's right eye, then
/// left eye): upper lid and lower lid, paired point by point. The canonical
/// mesh leaves the eyes and the mouth open; these close them and let a
/// blink pull each upper-lid point onto its lower-lid partner.
pub const RIGHT_UPPER_LID: [usize; 9] = [33, 246, 161, 160, 159, 158, 157, 173, 133];
pub const RIGHT_LOWER_LID: [usize; 9] = [33, 7, 163, 144, 145, 153, 154, 155, 133];
pub const LEFT_UPPER_LID: [usize; 9] = [263, 466, 388, 387, 386, 385, 384, 398, 362];
pub const LEFT_LOWER_LID: [usize; 9] = [263, 249, 390, 373, 374, 380, 381, 382, 362];
/// The row of points above each upper lid (the crease), paired with the
/// lid points between the corners: a closing lid pulls it down too.
const RIGHT_CREASE: [usize; 7] = [247, 30, 29, 27, 28, 56, 190];
const LEFT_CREASE: [usize; 7] = [467, 260, 259, 257, 258, 286, 414];
/// How far the crease follows the lid.
const CREASE_FOLLOWS: f32 = 0.6;
/// Inner lip line, mouth corner to mouth corner.
const UPPER_INNER_LIP: [usize; 11] = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308];
const LOWER_INNER_LIP: [usize; 11] = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308];
/// The face outline, a closed loop (MediaPipe `FACE_LANDMARKS_FACE_OVAL`).
const FACE_OVAL: [usize; 36] = [
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
    148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
];
/// Rings around the face outline that stand for hair, ears and neck: how
/// far out (times the outline's distance from the face centre) and how far
/// back (times the face width) each lies.
const SKIRT: [(f32, f32); 2] = [(1.22, 0.25), (1.5, 0.6)];

/// Vertices in millimetres (x right, y down, z away from the camera), each
/// with its texture position in photo pixels.
#[derive(Debug, Clone)]
pub struct Mesh {
    pub vertices: Vec<[f32; 3]>,
    pub uv: Vec<[f32; 2]>,
    pub triangles: Vec<[u32; 3]>,
}

/// The canonical triangles, parsed once per call (852 lines).
fn canonical_triangles() -> Vec<[u32; 3]> {
    TRIANGLES
        .lines()
        .filter_map(|line| {
            let mut it = line.split_ascii_whitespace().map(str::parse::<u32>);
            match (it.next(), it.next(), it.next()) {
                (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => Some([a, b, c]),
                _ => None,
            }
        })
        .collect()
}

/// Triangles closing the strip between two paired rims.
fn strip(upper: &[usize], lower: &[usize], out: &mut Vec<[u32; 3]>) {
    for k in 0..upper.len() - 1 {
        let (u0, u1, l0, l1) = (upper[k], upper[k + 1], lower[k], lower[k + 1]);
        if u0 != l0 {
            out.push([u0 as u32, l0 as u32, l1 as u32]);
        }
        if u1 != l1 {
            out.push([u0 as u32, u1 as u32, l1 as u32]);
        } else {
            out.push([u0 as u32, u1 as u32, l0 as u32]);
        }
    }
}

/// A head: the photo's face mesh as a 3-D surface plus rings for hair,
/// ears and neck. The face is `eye_mm` wide between the outer eye corners;
/// the origin is the rotation centre of the head (behind the face, about
/// where the neck turns it).
pub struct Head {
    pub mesh: Mesh,
    /// Vertex positions with the eyes open (blinks start from these).
    rest: Vec<[f32; 3]>,
}

impl Head {
    pub fn from_face(face: &FaceMesh, photo: (u32, u32), eye_mm: f32) -> Option<Self> {
        if face.points.len() != MESH_POINTS {
            return None;
        }
        let p = &face.points;
        let eye_px = face
            .point(RIGHT_UPPER_LID[0])
            .distance(face.point(LEFT_UPPER_LID[0]));
        if eye_px < 4.0 {
            return None;
        }
        let s = eye_mm / eye_px;
        let n = FACE_OVAL.len() as f32;
        let (cx, cy, cz) = FACE_OVAL.iter().fold((0.0, 0.0, 0.0), |a, &i| {
            (a.0 + p[i][0] / n, a.1 + p[i][1] / n, a.2 + p[i][2] / n)
        });
        let width_px = face.point(234).distance(face.point(454));
        // The neck turns the head about a point some 0.6 face widths
        // behind the outline.
        let pivot_z = cz + 0.6 * width_px;
        let to_mm = |x: f32, y: f32, z: f32| [(x - cx) * s, (y - cy) * s, (z - pivot_z) * s];
        let (pw, ph) = (photo.0 as f32 - 1.0, photo.1 as f32 - 1.0);
        let mut vertices: Vec<[f32; 3]> = p.iter().map(|q| to_mm(q[0], q[1], q[2])).collect();
        let mut uv: Vec<[f32; 2]> = p.iter().map(|q| [q[0], q[1]]).collect();
        let mut triangles = canonical_triangles();
        strip(&RIGHT_UPPER_LID, &RIGHT_LOWER_LID, &mut triangles);
        strip(&LEFT_UPPER_LID, &LEFT_LOWER_LID, &mut triangles);
        strip(&UPPER_INNER_LIP, &LOWER_INNER_LIP, &mut triangles);
        let mut inner: Vec<u32> = FACE_OVAL.iter().map(|&i| i as u32).collect();
        for (out, back) in SKIRT {
            let start = vertices.len() as u32;
            for &i in &FACE_OVAL {
                let (x, y) = (cx + (p[i][0] - cx) * out, cy + (p[i][1] - cy) * out);
                vertices.push(to_mm(x, y, p[i][2] + back * width_px));
                uv.push([x.clamp(0.0, pw), y.clamp(0.0, ph)]);
            }
            let ring: Vec<u32> = (0..FACE_OVAL.len() as u32).map(|k| start + k).collect();
            for k in 0..ring.len() {
                let k1 = (k + 1) % ring.len();
                triangles.push([inner[k], inner[k1], ring[k1]]);
                triangles.push([inner[k], ring[k1], ring[k]]);
            }
            inner = ring;
        }
        let rest = vertices.clone();
        Some(Self {
            mesh: Mesh {
                vertices,
                uv,
                triangles,
            },
            rest,
        })
    }

    /// Closes the eyes by `closure` (0 open, 1 shut): every upper-lid point
    /// moves that far towards its lower-lid partner; the lid skin above
    /// stretches over the eye as a real lid does.
    pub fn set_blink(&mut self, closure: f32) {
        let c = closure.clamp(0.0, 1.0);
        self.mesh.vertices.clone_from(&self.rest);
        for (upper, lower) in [
            (RIGHT_UPPER_LID, RIGHT_LOWER_LID),
            (LEFT_UPPER_LID, LEFT_LOWER_LID),
        ] {
            for (&u, &l) in upper.iter().zip(&lower) {
                let (a, b) = (self.rest[u], self.rest[l]);
                self.mesh.vertices[u] = std::array::from_fn(|d| a[d] + c * (b[d] - a[d]));
            }
        }
        for (crease, upper, lower) in [
            (RIGHT_CREASE, RIGHT_UPPER_LID, RIGHT_LOWER_LID),
            (LEFT_CREASE, LEFT_UPPER_LID, LEFT_LOWER_LID),
        ] {
            for (k, &i) in crease.iter().enumerate() {
                let (a, b) = (self.rest[upper[k + 1]], self.rest[lower[k + 1]]);
                let r = self.rest[i];
                self.mesh.vertices[i] =
                    std::array::from_fn(|d| r[d] + CREASE_FOLLOWS * c * (b[d] - a[d]));
            }
        }
    }
}

/// A sheet showing a whole image `texture` (width, height px), `height_mm`
/// tall, centred on the origin. `bend_radius`: bent round a vertical
/// cylinder of that radius (mm), edges towards the viewer; `None` flat.
pub fn sheet(texture: (u32, u32), height_mm: f32, bend_radius: Option<f32>) -> Mesh {
    const COLUMNS: u32 = 16;
    const ROWS: u32 = 4;
    let (tw, th) = (texture.0 as f32, texture.1 as f32);
    let s = height_mm / th;
    let mut vertices = Vec::new();
    let mut uv = Vec::new();
    for r in 0..=ROWS {
        for c in 0..=COLUMNS {
            let (u, v) = (tw * c as f32 / COLUMNS as f32, th * r as f32 / ROWS as f32);
            let (x, y) = ((u - tw / 2.0) * s, (v - th / 2.0) * s);
            let (x, z) = match bend_radius {
                Some(r) => {
                    let a = x / r;
                    (r * a.sin(), -r * (1.0 - a.cos()))
                }
                None => (x, 0.0),
            };
            vertices.push([x, y, z]);
            uv.push([u.min(tw - 1.0), v.min(th - 1.0)]);
        }
    }
    let at = |r: u32, c: u32| r * (COLUMNS + 1) + c;
    let mut triangles = Vec::new();
    for r in 0..ROWS {
        for c in 0..COLUMNS {
            triangles.push([at(r, c), at(r, c + 1), at(r + 1, c + 1)]);
            triangles.push([at(r, c), at(r + 1, c + 1), at(r + 1, c)]);
        }
    }
    Mesh {
        vertices,
        uv,
        triangles,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_triangle_list_is_the_whole_canonical_mesh() {
        let t = canonical_triangles();
        assert_eq!(t.len(), 852);
        assert!(t.iter().flatten().all(|&i| (i as usize) < MESH_POINTS));
        let used: std::collections::BTreeSet<u32> = t.iter().flatten().copied().collect();
        assert_eq!(used.len(), MESH_POINTS, "every point is in a triangle");
    }

    #[test]
    fn a_bent_sheet_keeps_its_arc_length() {
        let flat = sheet((200, 100), 100.0, None);
        let bent = sheet((200, 100), 100.0, Some(60.0));
        let last = flat.vertices.len() - 1;
        assert!((flat.vertices[last][0] - 100.0).abs() < 1e-3);
        // The arc of 100 mm on a 60 mm radius spans 2·60·sin(100/60/… ) less.
        assert!(bent.vertices[last][0] < 99.0 && bent.vertices[last][2] < -10.0);
    }
}
