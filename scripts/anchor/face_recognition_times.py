"""The speed anchor, measured beside `edgeid eval faces`: face_recognition
1.3.0 per-image time on the images of an LFW pairs file (decode + HOG
detection + 5-point landmarks + encoding, as Howdy uses it). Run it right
after `edgeid eval faces` on the same machine, so both see the same speed of
a shared VM. Run by scripts/anchor-face-recognition, never by the tests.

usage: face_recognition_times.py LFW_DIR [PAIRS_FILE]
"""
import sys, time, os, json
import numpy as np, face_recognition
root = sys.argv[1]
pairs_file = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "pairs_fold1.txt")
pairs = open(pairs_file).read().split("\n")
paths = set()
for line in pairs:
    f = line.split()
    if len(f) == 3:
        paths.add((f[0], int(f[1]))); paths.add((f[0], int(f[2])))
    elif len(f) == 4:
        paths.add((f[0], int(f[1]))); paths.add((f[2], int(f[3])))
files = sorted(os.path.join(root, n, f"{n}_{i:04d}.jpg") for n, i in paths)
times, noface = [], 0
for p in files:
    t = time.perf_counter()
    img = face_recognition.load_image_file(p)
    enc = face_recognition.face_encodings(img)
    times.append((time.perf_counter() - t) * 1e3)
    noface += not enc
t = np.array(times)
print(json.dumps({"images": len(files), "no_face": noface, "p50_ms": float(np.percentile(t, 50)), "p99_ms": float(np.percentile(t, 99)), "mean_ms": float(t.mean()), "dlib": __import__("dlib").__version__}))
