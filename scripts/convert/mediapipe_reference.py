#!/usr/bin/env python3
"""Reference decoder for models/blazeface_{front,back}.onnx + models/facemesh.onnx.

This is the executable spec for the Rust port: every number used by the pipeline
is in this file.  Needs only numpy, pillow and onnxruntime (the converter venv
target/convert/venv-tf has them):

    python scripts/convert/mediapipe_reference.py photo.jpg [--draw out.png] [--models models]

Prints JSON: one entry per detected face (box, score, 6 keypoints, 468 mesh points
in image pixels, face flag).  Coordinates are continuous image coordinates: pixel
(i, j) covers [i, i+1) x [j, j+1), so its centre is (i + 0.5, j + 0.5).

Pipeline
 1. detector input: square S = max(W, H) anchored at the image top-left (pad right /
    bottom with black), resampled to D x D (D = 128 for the short-range "front"
    model, 256 for the full-range "back" model), value = pixel / 127.5 - 1.
    Done with the same affine sampler as step 4: crop(img, S/2, S/2, S, 0, D).
 2. detections [896, 17] = [logit, cx, cy, w, h, kp0x, kp0y, ... kp5x, kp5y];
    anchors: 16x16 grid stride D/16 (2 per cell) then 8x8 grid stride D/8 (6 per cell),
    anchor centre = ((x + 0.5) * stride, (y + 0.5) * stride) in D-input pixels,
    box centre / keypoints = anchor centre + offset, w / h used as is;
    score = sigmoid(logit); keep score >= 0.5; greedy NMS, IoU 0.3.
 3. map to image: image_px = input_px * S / D.
 4. facemesh crop: centre = box centre, side = 1.5 * max(w, h), angle = atan2(dy, dx)
    from keypoint 0 (subject's right eye, image left) to keypoint 1, so the eyes are
    level in the crop; 192x192, value = pixel / 255.
 5. mesh point (u, v, z) in crop pixels -> image:
       s = side / 192, (du, dv) = (u - 96, v - 96)
       x = cx + s * (cos a * du - sin a * dv)
       y = cy + s * (sin a * du + cos a * dv)
       z_img = s * z
    face_flag is a probability already (sigmoid inside the model): present if >= 0.5.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

MESH_SIZE = 192
SCORE_THRESHOLD, NMS_IOU = 0.5, 0.3
CROP_SCALE = 1.5
FACE_FLAG_THRESHOLD = 0.5
KEYPOINTS = ["right_eye", "left_eye", "nose_tip", "mouth_centre", "right_ear_tragion", "left_ear_tragion"]


def det_size(sess):
    """D: the detector's square input side (128 front, 256 back)."""
    return int(sess.get_inputs()[0].shape[1])


def anchors(size):
    """896 anchor centres in D-input pixels, in model output order."""
    out = []
    for stride, per_cell in ((size // 16, 2), (size // 8, 6)):
        n = size // stride
        for y in range(n):
            for x in range(n):
                out += [((x + 0.5) * stride, (y + 0.5) * stride)] * per_cell
    return np.array(out, np.float32)


def crop(img, cx, cy, side, angle, size):
    """Sample a size x size square of side `side` image pixels centred at (cx, cy),
    rotated by `angle` (radians, image coordinates, y down); bilinear, black outside.
    Output pixel (i, j) takes the image at (cx, cy) + s * R(angle) (i + 0.5 - size/2, j + 0.5 - size/2)."""
    s = side / size
    c, n = math.cos(angle), math.sin(angle)
    # PIL AFFINE: input (x, y) = (a u + b v + c0, d u + e v + f0), evaluated at output pixel centres
    h = size / 2
    coeffs = (s * c, -s * n, cx - s * (c * h - n * h), s * n, s * c, cy - s * (n * h + c * h))
    return img.transform((size, size), Image.AFFINE, coeffs, resample=Image.BILINEAR, fillcolor=(0, 0, 0))


def detect(sess, img):
    """Returns list of dicts: box [x0, y0, x1, y1], score, keypoints [[x, y] * 6] in image pixels."""
    S, D = max(img.size), det_size(sess)
    x = np.asarray(crop(img, S / 2, S / 2, S, 0.0, D), np.float32)[None] / 127.5 - 1.0
    d = sess.run(["detections"], {sess.get_inputs()[0].name: x})[0][0]        # [896, 17]
    score = 1.0 / (1.0 + np.exp(-np.clip(d[:, 0].astype(np.float64), -100, 100)))
    a = anchors(D)
    cxcy = a + d[:, 1:3]
    wh = d[:, 3:5]
    kps = a[:, None, :] + d[:, 5:17].reshape(-1, 6, 2)
    k = S / D
    boxes = np.concatenate([cxcy - wh / 2, cxcy + wh / 2], 1) * k
    kps = kps * k
    order = [i for i in np.argsort(-score) if score[i] >= SCORE_THRESHOLD]
    keep = []
    for i in order:                                                            # greedy NMS
        if all(iou(boxes[i], boxes[j]) < NMS_IOU for j in keep):
            keep.append(i)
    return [dict(box=boxes[i].tolist(), score=float(score[i]), keypoints=kps[i].tolist()) for i in keep]


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def mesh_roi(face):
    """Crop parameters (cx, cy, side, angle) for facemesh from one detection."""
    x0, y0, x1, y1 = face["box"]
    (rx, ry), (lx, ly) = face["keypoints"][0], face["keypoints"][1]
    return (x0 + x1) / 2, (y0 + y1) / 2, CROP_SCALE * max(x1 - x0, y1 - y0), math.atan2(ly - ry, lx - rx)


def run_mesh(sess, img, roi):
    """Returns (mesh [468, 3] in image pixels, face_flag, raw crop input)."""
    cx, cy, side, angle = roi
    x = np.asarray(crop(img, cx, cy, side, angle, MESH_SIZE), np.float32)[None] / 255.0
    lm, flag = sess.run(["landmarks", "face_flag"], {sess.get_inputs()[0].name: x})
    p = lm[0].reshape(468, 3)
    s, c, n = side / MESH_SIZE, math.cos(angle), math.sin(angle)
    du, dv = p[:, 0] - MESH_SIZE / 2, p[:, 1] - MESH_SIZE / 2
    mesh = np.stack([cx + s * (c * du - n * dv), cy + s * (n * du + c * dv), s * p[:, 2]], 1)
    return mesh, float(flag[0, 0]), x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("image")
    ap.add_argument("--models", default=os.path.join(os.path.dirname(__file__), "..", "..", "models"))
    ap.add_argument("--draw", help="write an annotated PNG here")
    ap.add_argument("--detector", default="blazeface_front.onnx", help="detector file in --models")
    args = ap.parse_args()
    import onnxruntime as ort
    det = ort.InferenceSession(os.path.join(args.models, args.detector), providers=["CPUExecutionProvider"])
    fm = ort.InferenceSession(os.path.join(args.models, "facemesh.onnx"), providers=["CPUExecutionProvider"])
    img = Image.open(args.image).convert("RGB")
    faces = detect(det, img)
    for f in faces:
        mesh, flag, _ = run_mesh(fm, img, mesh_roi(f))
        f.update(mesh=mesh.round(2).tolist(), face_flag=flag, face_present=flag >= FACE_FLAG_THRESHOLD)
    if args.draw:
        dr = ImageDraw.Draw(img)
        for f in faces:
            dr.rectangle(f["box"], outline=(255, 0, 0), width=2)
            for x, y, _ in f["mesh"]:
                dr.point((x, y), fill=(0, 255, 0))
            for k, (x, y) in enumerate(f["keypoints"]):
                dr.ellipse((x - 3, y - 3, x + 3, y + 3), outline=(255, 255, 0))
                dr.text((x + 4, y - 4), str(k), fill=(255, 255, 0))
        img.save(args.draw)
    json.dump({"image": args.image, "size": list(img.size), "keypoint_names": KEYPOINTS, "faces": faces}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
