#!/usr/bin/env python3
"""Writes models/manifest.toml and models/NOTICE.md from the converters'
fragments (target/convert/fragments/*.toml).

Thresholds are measured after conversion (`edgeid eval faces`), so the ones
already in models/manifest.toml are carried over for a model whose sha256 is
unchanged, and dropped (with a warning) when the file changed.

Usage: python3 scripts/convert/assemble_manifest.py [--threshold ID KEY VALUE MEASURED_ON]...
"""
import argparse
import pathlib
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]
FRAGMENTS = ROOT / "target/convert/fragments"
MODELS = ROOT / "models"
ORDER = ["face_detector", "face_landmarks", "face_embedder", "face_pad", "voice_vad", "voice_embedder"]
# The model listed first for its role is the default (`Manifest::by_role`).
DEFAULTS = {"blazeface-front"}


def toml_str(s):
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threshold", nargs=4, action="append", default=[],
                    metavar=("MODEL_ID", "KEY", "VALUE", "MEASURED_ON"))
    args = ap.parse_args()

    old = {}
    manifest = MODELS / "manifest.toml"
    if manifest.exists():
        for m in tomllib.loads(manifest.read_text())["model"]:
            old[m["id"]] = m

    frags = []
    for f in sorted(FRAGMENTS.glob("*.toml")):
        text = f.read_text().strip() + "\n"
        model = tomllib.loads(text)["model"][0]
        frags.append(((ORDER.index(model["role"]), model["id"] not in DEFAULTS), model, text))
    if not frags:
        sys.exit(f"no fragments in {FRAGMENTS}; run the converters first")
    frags.sort(key=lambda t: t[0])

    given = {}
    for model_id, key, value, measured in args.threshold:
        given.setdefault(model_id, {})[key] = (float(value), measured)

    out = ["# Written by scripts/convert-models; do not edit by hand.",
           "# Each model: file, sha256 (checked at load), role, input spec, outputs,",
           "# provenance and, for embedders, thresholds measured by `edgeid eval`.",
           "schema = 1", ""]
    for _, model, text in frags:
        out.append(text)
        thresholds = {}
        prev = old.get(model["id"])
        if prev and prev.get("sha256") == model["sha256"]:
            for k, t in prev.get("thresholds", {}).items():
                thresholds[k] = (t["value"], t["measured_on"])
        elif prev and prev.get("thresholds"):
            print(f"warning: {model['id']} changed; its thresholds must be measured again", file=sys.stderr)
        thresholds.update(given.get(model["id"], {}))
        for key, (value, measured) in sorted(thresholds.items()):
            out.append(f"[model.thresholds.{key}]\nvalue = {value!r}\nmeasured_on = {toml_str(measured)}\n")
    # Score fusions are fitted by `edgeid eval faces --compare fused`: kept
    # while every fused model file is unchanged, dropped otherwise.
    shas = {m["id"]: m["sha256"] for _, m, _ in frags}
    for f in tomllib.loads(manifest.read_text()).get("fusion", []) if manifest.exists() else []:
        if all(shas.get(i) == h for i, h in zip(f["models"], f["sha256"])):
            out.append("[[fusion]]")
            for k in ("id", "models", "sha256", "mean", "std", "weights", "fitted_on"):
                out.append(f"{k} = {toml_str(f[k]) if isinstance(f[k], str) else f[k]!r}".replace("'", '"'))
            for key, t in sorted(f.get("thresholds", {}).items()):
                out.append(f"\n[fusion.thresholds.{key}]\nvalue = {t['value']!r}\nmeasured_on = {toml_str(t['measured_on'])}\n")
        else:
            print(f"warning: fusion {f['id']}: a model changed; fit it again", file=sys.stderr)
    manifest.write_text("\n".join(out))

    notice = ["# Third-party models", "",
              "The ONNX files in this directory were converted from registry packages by",
              "`scripts/convert-models`. Their origins and licences:", ""]
    for _, m, _ in frags:
        p = m["provenance"]
        notice.append(f"## {m['file']} ({m['role']})")
        notice.append(f"- {m['description']}")
        notice.append(f"- Source: {p['package']} {p['version']}, `{p['source_file']}` (sha256 {p['source_sha256']})")
        notice.append(f"- Licence: {m['licence']}")
        if m.get("notice"):
            notice.append(f"- {m['notice']}")
        notice.append(f"- Converted by `{p['converter']}`; max abs difference from the source model: {p['max_abs_diff']:.2e} ({p['verified_on']})")
        notice.append("")
    (MODELS / "NOTICE.md").write_text("\n".join(notice))
    print(f"wrote {manifest} with {len(frags)} models")


if __name__ == "__main__":
    main()
