//! Liveness datasets on disk: `DIR/live/*` and `DIR/attack/<kind>/*`,
//! each clip a Y4M file or a folder of numbered frames, with an optional
//! sidecar `<clip>.side` ("image_left" / "image_right": the side a live
//! head first turns to, for the challenge mode).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use image::RgbImage;

use super::clips::{Clip, ClipKind};
use crate::sources::capture::{FrameSource, SourceError};
use crate::sources::load_image;
use crate::sources::raw::StreamInput;
use crate::sources::y4m::Y4mSource;
use crate::vision::liveness::TurnSide;
use crate::vision::luma::luma;

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error(
        "{0} has no live/ folder: a liveness dataset is DIR/live/* and DIR/attack/<kind>/* (kinds: print_moved, print_tilted, print_curved, screen_replay, still)"
    )]
    NoLive(PathBuf),
    #[error(
        "{path}: unknown attack kind {name:?} (use print_moved, print_tilted, print_curved, screen_replay or still)"
    )]
    UnknownKind { path: PathBuf, name: String },
    #[error("{0}: no clips")]
    Empty(PathBuf),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("clip {path}: {source}")]
    Source {
        path: PathBuf,
        #[source]
        source: SourceError,
    },
    #[error("clip {path}: {source}")]
    Frame {
        path: PathBuf,
        #[source]
        source: crate::sources::ImageError,
    },
    #[error("{path}: a side sidecar says image_left or image_right, not {found:?}")]
    Side { path: PathBuf, found: String },
    #[error("cannot write {path}: {source}")]
    Encode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("clip {0} has no frames")]
    NoFrames(PathBuf),
}

/// One clip of a dataset (its frames are read when it is evaluated).
#[derive(Debug, Clone)]
pub struct ClipEntry {
    pub path: PathBuf,
    pub kind: ClipKind,
    pub side: Option<TurnSide>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DatasetError + '_ {
    move |source| DatasetError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Sorted, non-hidden entries of `dir` (files and folders).
fn entries(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = e.map_err(io(dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with('.') {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// The clips of `dir`: `*.y4m` files and frame folders; `*.side` are sidecars.
fn clips_in(dir: &Path, kind: ClipKind) -> Result<Vec<ClipEntry>, DatasetError> {
    let mut out = Vec::new();
    for path in entries(dir)? {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !(path.is_dir() || ext.eq_ignore_ascii_case("y4m")) {
            continue;
        }
        let side = read_side(&path.with_extension("side"))?;
        out.push(ClipEntry { path, kind, side });
    }
    Ok(out)
}

fn read_side(path: &Path) -> Result<Option<TurnSide>, DatasetError> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    match text.trim() {
        "image_left" => Ok(Some(TurnSide::ImageLeft)),
        "image_right" => Ok(Some(TurnSide::ImageRight)),
        other => Err(DatasetError::Side {
            path: path.to_owned(),
            found: other.to_owned(),
        }),
    }
}

/// Lists a dataset's clips, live first, then attacks by kind.
pub fn read_dataset(dir: &Path) -> Result<Vec<ClipEntry>, DatasetError> {
    let live = dir.join("live");
    if !live.is_dir() {
        return Err(DatasetError::NoLive(dir.to_owned()));
    }
    let mut clips = clips_in(&live, ClipKind::Live)?;
    if clips.is_empty() {
        return Err(DatasetError::Empty(live));
    }
    let attack = dir.join("attack");
    if attack.is_dir() {
        for sub in entries(&attack)?.into_iter().filter(|p| p.is_dir()) {
            let name = sub.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let kind = ClipKind::from_name(name)
                .filter(|k| *k != ClipKind::Live)
                .ok_or_else(|| DatasetError::UnknownKind {
                    path: sub.clone(),
                    name: name.to_owned(),
                })?;
            clips.extend(clips_in(&sub, kind)?);
        }
    }
    Ok(clips)
}

/// Reads every frame of a clip (a Y4M file or a folder of numbered images).
pub fn read_frames(path: &Path) -> Result<Vec<RgbImage>, DatasetError> {
    let frames = if path.is_dir() {
        entries(path)?
            .into_iter()
            .filter(|p| p.is_file())
            .map(|p| {
                load_image(&p).map_err(|source| DatasetError::Frame {
                    path: p.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        let err = |source| DatasetError::Source {
            path: path.to_owned(),
            source,
        };
        let mut source = Y4mSource::open(&StreamInput::Path(path.to_owned())).map_err(err)?;
        let mut frames = Vec::new();
        loop {
            match source.next_frame() {
                Ok(f) => frames.push(f.image),
                Err(SourceError::Ended) => break,
                Err(e) => return Err(err(e)),
            }
        }
        frames
    };
    if frames.is_empty() {
        return Err(DatasetError::NoFrames(path.to_owned()));
    }
    Ok(frames)
}

/// Writes `frames` as a Y4M stream (4:4:4, full range BT.601: lossless
/// enough that the clip is what was rendered).
pub fn write_y4m(out: &mut dyn Write, frames: &[RgbImage], fps: u32) -> std::io::Result<()> {
    let Some(first) = frames.first() else {
        return Ok(());
    };
    let (w, h) = first.dimensions();
    writeln!(
        out,
        "YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C444 XCOLORRANGE=FULL"
    )?;
    let mut planes = vec![0u8; 3 * (w * h) as usize];
    for frame in frames {
        let n = (w * h) as usize;
        for (i, p) in frame.pixels().enumerate().take(n) {
            let [r, g, b] = p.0.map(f32::from);
            let y = luma([r, g, b]);
            let u = 128.0 + (b - y) * 0.564;
            let v = 128.0 + (r - y) * 0.713;
            planes[i] = y.round().clamp(0.0, 255.0) as u8;
            planes[n + i] = u.round().clamp(0.0, 255.0) as u8;
            planes[2 * n + i] = v.round().clamp(0.0, 255.0) as u8;
        }
        out.write_all(b"FRAME\n")?;
        out.write_all(&planes)?;
    }
    out.flush()
}

/// Where a clip of `kind` numbered `n` goes under `dir`.
pub fn clip_path(dir: &Path, kind: ClipKind, n: usize) -> PathBuf {
    let folder = match kind {
        ClipKind::Live => dir.join("live"),
        attack => dir.join("attack").join(attack.name()),
    };
    folder.join(format!("{n:04}.y4m"))
}

/// Writes a clip (and its side sidecar) as the Y4M file `path`.
pub fn write_clip(path: &Path, clip: &Clip, fps: u32) -> Result<(), DatasetError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let file = std::fs::File::create(path).map_err(io(path))?;
    write_y4m(&mut BufWriter::new(file), &clip.frames, fps).map_err(io(path))?;
    write_side(path, clip)
}

/// Writes a clip (and its side sidecar) as the folder `dir` of numbered PNGs.
pub fn write_png_frames(dir: &Path, clip: &Clip) -> Result<(), DatasetError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for (k, frame) in clip.frames.iter().enumerate() {
        let path = dir.join(format!("{k:04}.png"));
        frame
            .save(&path)
            .map_err(|source| DatasetError::Encode { path, source })?;
    }
    write_side(dir, clip)
}

fn write_side(path: &Path, clip: &Clip) -> Result<(), DatasetError> {
    if let Some(side) = clip.side {
        let text = match side {
            TurnSide::ImageLeft => "image_left\n",
            TurnSide::ImageRight => "image_right\n",
        };
        let side_path = path.with_extension("side");
        std::fs::write(&side_path, text).map_err(io(&side_path))?;
    }
    Ok(())
}
