#!/usr/bin/env python3
"""Convert Resemblyzer's GE2E speaker encoder (PyPI `resemblyzer` 0.1.4,
Apache-2.0) to ONNX without torch, verify it, and write the golden fixture
of the voice front end.

Run from the repository root (network access to PyPI only):

    python3 scripts/convert/resemblyzer.py              # convert + verify + fixture
    python3 scripts/convert/resemblyzer.py --no-fixture

Environment: the script re-executes itself inside the venv
`target/convert/venv-voice` (outside git), creating it and installing the
pinned packages below if needed.

What it does (idempotent, work files under target/convert/):
  1. `pip download --no-deps resemblyzer==0.1.4` into target/convert/cache and
     checks the wheel's sha256.
  2. reads `resemblyzer/pretrained.pt`, a legacy (pre-1.6, not zip) torch
     file, with a small unpickler: the pickled state dict refers to storages
     by key; their raw bytes follow the pickle (int64 element count, then the
     data). No torch is imported.
  3. writes models/ge2e_resemblyzer.onnx (opset 17): mels [N,160,40] ->
     Transpose -> 3 x ONNX LSTM(256) -> last layer's final hidden state ->
     Gemm 256 -> Relu -> L2 normalise -> `embedding` [N,256]. PyTorch stores
     the gates as (i, f, g, o), ONNX wants (i, o, f, c): rows are reordered;
     ONNX's B is [Wb, Rb], PyTorch's bias_ih and bias_hh.
  4. verifies onnxruntime against an independent numpy forward pass written
     from PyTorch's LSTM equations (torch itself is a multi-GB install), on
     random mels and on real mels; fails unless max abs diff < 1e-4.
  5. writes target/convert/fragments/ge2e-resemblyzer.toml (manifest entry).
  6. unless --no-fixture: the golden fixture of tests/voice_golden.rs, made
     by the wheel's own front end (`resemblyzer.audio`: librosa + webrtcvad)
     on an espeak-ng clip: tests/fixtures/voice/golden.wav (input, 16 kHz
     int16), golden_pre.f32 (preprocess_wav output), golden_mel.f32
     (wav_to_mel_spectrogram of the padded wav, [frames, 40]),
     golden_embed.f32 (embed_utterance with the numpy network, [256]) and
     golden.json (shapes, slices, versions).
"""

import argparse
import collections
import hashlib
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zipfile

PINNED = {
    "numpy": "2.2.6",
    "onnx": "1.18.0",
    "onnxruntime": "1.22.1",
    "scipy": "1.17.1",
    "librosa": "0.10.2.post1",
    "webrtcvad-wheels": "2.0.14.post1",
    "soundfile": "0.14.0",
}
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TARGET = os.path.join(REPO, "target", "convert")
VENV = os.path.join(TARGET, "venv-voice")
CACHE = os.path.join(TARGET, "cache")
FRAGMENT = os.path.join(TARGET, "fragments", "ge2e-resemblyzer.toml")
OUT_ONNX = os.path.join(REPO, "models", "ge2e_resemblyzer.onnx")
FIXTURES = os.path.join(REPO, "tests", "fixtures", "voice")
WHEEL = "Resemblyzer-0.1.4-py3-none-any.whl"
WHEEL_SHA256 = "8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f"
MEMBER = "resemblyzer/pretrained.pt"
HIDDEN, MELS, FRAMES, LAYERS = 256, 40, 160, 3
GOLDEN_TEXT = "The quick brown fox jumps over the lazy dog near the quiet river bank."


def in_venv():
    return os.path.realpath(sys.prefix) == os.path.realpath(VENV)


def ensure_venv():
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
    subprocess.check_call([py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
                          + [f"{k}=={v}" for k, v in PINNED.items()])
    os.execv(py, [py] + sys.argv)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_wheel():
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, WHEEL)
    if not os.path.exists(path):
        subprocess.check_call([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                               "resemblyzer==0.1.4", "-d", CACHE])
    return path


# ---- legacy torch file, read without torch ----------------------------------

class _Storage:
    """A storage named by the pickle; its bytes are read after the pickle."""

    def __init__(self, dtype, size):
        self.dtype, self.size, self.data = dtype, size, None


_DTYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "LongStorage": "<i8",
           "IntStorage": "<i4", "HalfStorage": "<f2", "ByteStorage": "u1", "BoolStorage": "?"}


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def numpy(self):
        import numpy as np
        base = np.frombuffer(self.storage.data, dtype=self.storage.dtype)
        item = base.itemsize
        return np.lib.stride_tricks.as_strided(
            base[self.offset:], shape=self.size, strides=[s * item for s in self.stride]).copy()


def _rebuild_tensor(storage, offset, size, stride, *_rest):
    return _Tensor(storage, offset, size, stride)


class _Unpickler(pickle.Unpickler):
    def __init__(self, f):
        super().__init__(f)
        self.storages = {}

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _DTYPES:
            return name
        raise pickle.UnpicklingError(f"unexpected class {module}.{name} in the checkpoint")

    def persistent_load(self, pid):
        kind, dtype, key, _location, size, view = pid
        if kind != "storage" or view is not None:
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(_DTYPES[dtype], size)
        return self.storages[key]


def load_legacy_torch(data):
    import io
    f = io.BytesIO(data)
    magic = pickle.load(f)
    if magic != 0x1950a86a20f9469cfc6c:
        raise SystemExit("pretrained.pt is not a legacy torch file")
    pickle.load(f)  # protocol version
    sys_info = pickle.load(f)
    if not sys_info.get("little_endian", True):
        raise SystemExit("big-endian checkpoint")
    up = _Unpickler(f)
    obj = up.load()
    keys = pickle.load(f)
    for key in keys:
        st = up.storages[key]
        (n,) = struct.unpack("<q", f.read(8))
        if n != st.size:
            raise SystemExit(f"storage {key}: {n} elements, pickle said {st.size}")
        itemsize = {"<f4": 4, "<f8": 8, "<i8": 8, "<i4": 4, "<f2": 2, "u1": 1, "?": 1}[st.dtype]
        st.data = f.read(n * itemsize)
    return obj


def state_dict(wheel):
    with zipfile.ZipFile(wheel) as z:
        raw = z.read(MEMBER)
    ckpt = load_legacy_torch(raw)
    state = ckpt["model_state"]
    return {k: v.numpy().astype("float32") for k, v in state.items() if isinstance(v, _Tensor)}, \
        hashlib.sha256(raw).hexdigest()


# ---- the network: numpy reference and ONNX ----------------------------------

def forward_numpy(sd, mels):
    """PyTorch nn.LSTM (gates i, f, g, o) + Linear + ReLU + L2 norm, in float64."""
    import numpy as np
    x = mels.astype(np.float64)
    n, t, _ = x.shape
    for layer in range(LAYERS):
        wih, whh = sd[f"lstm.weight_ih_l{layer}"], sd[f"lstm.weight_hh_l{layer}"]
        b = sd[f"lstm.bias_ih_l{layer}"] + sd[f"lstm.bias_hh_l{layer}"]
        h = np.zeros((n, HIDDEN))
        c = np.zeros((n, HIDDEN))
        out = np.zeros((n, t, HIDDEN))
        sig = lambda v: 1.0 / (1.0 + np.exp(-v))
        for step in range(t):
            g = x[:, step] @ wih.T + h @ whh.T + b
            i, f, gg, o = np.split(g, 4, axis=1)
            c = sig(f) * c + sig(i) * np.tanh(gg)
            h = sig(o) * np.tanh(c)
            out[:, step] = h
        x = out
    e = np.maximum(h @ sd["linear.weight"].T + sd["linear.bias"], 0.0)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def build_onnx(sd):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def reorder(w):  # PyTorch (i, f, g, o) -> ONNX (i, o, f, c)
        i, f, g, o = np.split(w, 4, axis=0)
        return np.concatenate([i, o, f, g], axis=0)

    inits, nodes = [], []
    nodes.append(helper.make_node("Transpose", ["mels"], ["x0"], perm=[1, 0, 2]))  # [T,N,40]
    x = "x0"
    for layer in range(LAYERS):
        w = reorder(sd[f"lstm.weight_ih_l{layer}"])[None]
        r = reorder(sd[f"lstm.weight_hh_l{layer}"])[None]
        b = np.concatenate([reorder(sd[f"lstm.bias_ih_l{layer}"]),
                            reorder(sd[f"lstm.bias_hh_l{layer}"])])[None]
        for name, arr in (("W", w), ("R", r), ("B", b)):
            inits.append(numpy_helper.from_array(arr.astype(np.float32), f"{name}{layer}"))
        nodes.append(helper.make_node(
            "LSTM", [x, f"W{layer}", f"R{layer}", f"B{layer}"],
            [f"y{layer}", f"h{layer}"], hidden_size=HIDDEN, name=f"lstm{layer}"))
        if layer < LAYERS - 1:  # Y [T,1,N,H] -> [T,N,H]
            nodes.append(helper.make_node("Squeeze", [f"y{layer}", "axis1"], [f"x{layer + 1}"]))
            x = f"x{layer + 1}"
    inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"))
    inits.append(numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"))
    inits.append(numpy_helper.from_array(sd["linear.weight"], "linear_w"))
    inits.append(numpy_helper.from_array(sd["linear.bias"], "linear_b"))
    nodes += [
        helper.make_node("Squeeze", [f"h{LAYERS - 1}", "axis0"], ["hidden"]),  # [N,H]
        helper.make_node("Gemm", ["hidden", "linear_w", "linear_b"], ["lin"], transB=1),
        helper.make_node("Relu", ["lin"], ["raw"]),
        helper.make_node("LpNormalization", ["raw"], ["embedding"], axis=1, p=2),
    ]
    graph = helper.make_graph(
        nodes, "ge2e_resemblyzer",
        [helper.make_tensor_value_info("mels", TensorProto.FLOAT, ["N", FRAMES, MELS])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", HIDDEN])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="edgeid scripts/convert/resemblyzer.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def run_ort(path, mels):
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(None, {"mels": mels.astype("float32")})[0]


# ---- the reference front end (the wheel's own audio.py) ---------------------

def wheel_audio(wheel):
    """Imports resemblyzer.audio and .hparams from the wheel (not its torch encoder)."""
    import importlib.util
    pkg = os.path.join(TARGET, "resemblyzer-wheel")
    if not os.path.exists(os.path.join(pkg, "resemblyzer", "audio.py")):
        with zipfile.ZipFile(wheel) as z:
            for m in ("resemblyzer/audio.py", "resemblyzer/hparams.py"):
                z.extract(m, pkg)
    # `resemblyzer/__init__.py` imports the torch encoder; load the two modules directly.
    import types
    sys.modules["resemblyzer"] = types.ModuleType("resemblyzer")
    for name in ("hparams", "audio"):
        spec = importlib.util.spec_from_file_location(
            f"resemblyzer.{name}", os.path.join(pkg, "resemblyzer", f"{name}.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[f"resemblyzer.{name}"] = mod
        spec.loader.exec_module(mod)
    return sys.modules["resemblyzer.audio"]


def partial_slices(n_samples, rate=1.3, min_coverage=0.75):
    """VoiceEncoder.compute_partial_slices of the wheel, verbatim in substance."""
    import numpy as np
    spf = 160
    n_frames = int(np.ceil((n_samples + 1) / spf))
    step = int(np.round((16000 / rate) / spf))
    starts = list(range(0, max(1, n_frames - FRAMES + step + 1), step))
    last = starts[-1]
    coverage = (n_samples - last * spf) / (FRAMES * spf)
    if coverage < min_coverage and len(starts) > 1:
        starts = starts[:-1]
    return starts


def embed_utterance(audio, sd, wav):
    """VoiceEncoder.embed_utterance with the numpy network."""
    import numpy as np
    starts = partial_slices(len(wav))
    stop = (starts[-1] + FRAMES) * 160
    if stop >= len(wav):
        wav = np.pad(wav, (0, stop - len(wav)), "constant")
    mel = audio.wav_to_mel_spectrogram(wav)
    parts = np.array([mel[s:s + FRAMES] for s in starts])
    e = forward_numpy(sd, parts).mean(axis=0)
    return mel, starts, (e / np.linalg.norm(e)).astype(np.float32)


def write_fixture(wheel, sd):
    import numpy as np
    import soundfile
    audio = wheel_audio(wheel)
    os.makedirs(FIXTURES, exist_ok=True)
    wav_path = os.path.join(FIXTURES, "golden.wav")
    raw = os.path.join(TARGET, "golden-espeak.wav")
    subprocess.check_call(["espeak-ng", "-v", "en-us", "-s", "150", "-w", raw, GOLDEN_TEXT])
    data, sr = soundfile.read(raw, dtype="float32")
    import librosa
    data = librosa.resample(data, orig_sr=sr, target_sr=16000)
    # Quiet it (-40 dBFS-ish) so the increase-only normalisation has work to do,
    # and add 0.4 s of silence either side so the trim has work to do.
    data = data * (0.01 / max(1e-9, float(np.sqrt(np.mean(data ** 2)))))
    pad = np.zeros(6400, dtype=np.float32)
    data = np.concatenate([pad, data, pad])
    pcm = np.clip(np.round(data * 32767), -32768, 32767).astype(np.int16)
    soundfile.write(wav_path, pcm, 16000, subtype="PCM_16")
    wav, _ = librosa.load(wav_path, sr=None)
    pre = audio.preprocess_wav(wav)
    mel, starts, embed = embed_utterance(audio, sd, pre)
    pre.astype("<f4").tofile(os.path.join(FIXTURES, "golden_pre.f32"))
    mel.astype("<f4").tofile(os.path.join(FIXTURES, "golden_mel.f32"))
    embed.astype("<f4").tofile(os.path.join(FIXTURES, "golden_embed.f32"))
    meta = {
        "made_by": "scripts/convert/resemblyzer.py",
        "text": GOLDEN_TEXT, "espeak_voice": "en-us",
        "input_samples": int(len(pcm)), "pre_samples": int(len(pre)),
        "mel_frames": int(mel.shape[0]), "partial_starts": starts,
        "versions": {k: PINNED[k] for k in ("librosa", "numpy", "scipy", "webrtcvad-wheels")},
    }
    with open(os.path.join(FIXTURES, "golden.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"fixture: {len(pcm)} samples in, {len(pre)} after preprocess, mel {mel.shape}, "
          f"{len(starts)} partials")
    return audio, mel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-fixture", action="store_true")
    args = ap.parse_args()
    if not in_venv():
        ensure_venv()
    import numpy as np
    import onnx

    wheel = fetch_wheel()
    wheel_sha = sha256(wheel)
    if wheel_sha != WHEEL_SHA256:
        raise SystemExit(f"{wheel}: sha256 {wheel_sha}, expected {WHEEL_SHA256}")
    sd, pt_sha = state_dict(wheel)
    print(f"{WHEEL} sha256 {wheel_sha}; pretrained.pt sha256 {pt_sha}; {len(sd)} tensors")

    model = build_onnx(sd)
    os.makedirs(os.path.dirname(OUT_ONNX), exist_ok=True)
    onnx.save(model, OUT_ONNX)

    rng = np.random.default_rng(7)
    checks = [rng.random((3, FRAMES, MELS), dtype=np.float32) * rng.choice([0.01, 1.0, 5.0])
              for _ in range(3)]
    if not args.no_fixture:
        _, mel = write_fixture(wheel, sd)
        starts = range(0, max(1, mel.shape[0] - FRAMES + 1), 77)
        checks.append(np.array([mel[s:s + FRAMES] for s in starts][:4], dtype=np.float32))
    diff = 0.0
    for mels in checks:
        diff = max(diff, float(np.abs(forward_numpy(sd, mels) - run_ort(OUT_ONNX, mels)).max()))
    print(f"onnxruntime vs numpy reference: max abs diff {diff:.3e}")
    if diff > 1e-4:
        raise SystemExit("verification failed")

    import onnxruntime
    os.makedirs(os.path.dirname(FRAGMENT), exist_ok=True)
    frag = f'''# written by scripts/convert/resemblyzer.py -- do not edit by hand
[[model]]
id = "ge2e-resemblyzer"
file = "ge2e_resemblyzer.onnx"
sha256 = "{sha256(OUT_ONNX)}"
role = "voice_embedder"
licence = "Apache-2.0 (Resemblyzer, Resemble AI)"
description = "GE2E speaker encoder of Resemblyzer 0.1.4: 40 mel bands (power, not log) x 160 frames of 10 ms -> 3 x LSTM(256) -> Linear 256 -> ReLU -> L2 normalise; utterance embedding = L2-normalised mean over partials (160 frames every 77, last kept if >= 75 % covered); front end in src/voice/"
metric = "cosine"
[model.input]
name = "mels"
shape = [1, {FRAMES}, {MELS}]
layout = "NTF"
[[model.outputs]]
name = "embedding"
shape = [1, {HIDDEN}]
meaning = "256-d speaker embedding, L2-normalised, all components >= 0"
[model.provenance]
package = "pypi:resemblyzer"
version = "0.1.4"
source_file = "{MEMBER}"
source_sha256 = "{pt_sha}"
converter = "scripts/convert/resemblyzer.py"
tools = {{ numpy = "{np.__version__}", onnx = "{onnx.__version__}", onnxruntime = "{onnxruntime.__version__}" }}
# |onnxruntime - numpy PyTorch-LSTM reference| on `embedding`
max_abs_diff = {diff:.3g}
verified_on = "9 random mel batches x 3 and the partials of the golden espeak-ng clip"
'''
    with open(FRAGMENT, "w") as f:
        f.write(frag)
    print(f"wrote {OUT_ONNX} and {FRAGMENT}")


if __name__ == "__main__":
    main()
