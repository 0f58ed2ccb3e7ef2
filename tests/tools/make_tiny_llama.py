#!/usr/bin/env python3
"""Writes tests/data/tiny-llama: a tiny Llama checkpoint in the Hugging Face
layout (config.json, model.safetensors) with deterministic weights, and
reference.json: the logits of a fixed token sequence computed here, in plain
Python, from Hugging Face's LlamaForCausalLM equations (RMSNorm, rotary
embeddings with rotate_half, grouped-query attention, SwiGLU, untied lm_head).
This is an implementation independent of tracelm's libtorch model, so the
model test that compares the two checks tracelm's numerics on a fresh clone.

Usage: tests/tools/make_tiny_llama.py [OUT_DIR]   (no third-party packages)
"""
import json
import math
import os
import struct
import sys

CFG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 16,
    "intermediate_size": 24,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 40,
    "max_position_embeddings": 64,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "torch_dtype": "float32",
}
IDS = [1, 7, 3, 39, 12, 12, 5, 20]


class Lcg:
    """Deterministic uniform numbers (64-bit LCG, top 24 bits)."""

    def __init__(self, seed):
        self.s = seed

    def uniform(self):
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return (self.s >> 40) / float(1 << 24)


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def matrix(rng, rows, cols, scale):
    return [[f32((rng.uniform() * 2 - 1) * scale) for _ in range(cols)] for _ in range(rows)]


def weights():
    h, i, v = CFG["hidden_size"], CFG["intermediate_size"], CFG["vocab_size"]
    nh, nkv = CFG["num_attention_heads"], CFG["num_key_value_heads"]
    d = h // nh
    rng = Lcg(20261130)
    w = {"model.embed_tokens.weight": matrix(rng, v, h, 1.0)}
    for l in range(CFG["num_hidden_layers"]):
        p = "model.layers.%d." % l
        w[p + "input_layernorm.weight"] = [f32(0.8 + 0.4 * rng.uniform()) for _ in range(h)]
        w[p + "self_attn.q_proj.weight"] = matrix(rng, nh * d, h, 0.5)
        w[p + "self_attn.k_proj.weight"] = matrix(rng, nkv * d, h, 0.5)
        w[p + "self_attn.v_proj.weight"] = matrix(rng, nkv * d, h, 0.5)
        w[p + "self_attn.o_proj.weight"] = matrix(rng, h, nh * d, 0.5)
        w[p + "post_attention_layernorm.weight"] = [f32(0.8 + 0.4 * rng.uniform()) for _ in range(h)]
        w[p + "mlp.gate_proj.weight"] = matrix(rng, i, h, 0.5)
        w[p + "mlp.up_proj.weight"] = matrix(rng, i, h, 0.5)
        w[p + "mlp.down_proj.weight"] = matrix(rng, h, i, 0.5)
    w["model.norm.weight"] = [f32(0.8 + 0.4 * rng.uniform()) for _ in range(h)]
    w["lm_head.weight"] = matrix(rng, v, h, 0.5)
    return w


def matvec(m, x):
    return [sum(a * b for a, b in zip(row, x)) for row in m]


def rms_norm(x, g):
    r = 1.0 / math.sqrt(sum(a * a for a in x) / len(x) + CFG["rms_norm_eps"])
    return [a * r * b for a, b in zip(x, g)]


def rope(x, pos, d):
    half = d // 2
    out = []
    for h0 in range(0, len(x), d):
        v = x[h0:h0 + d]
        rot = [-a for a in v[half:]] + v[:half]  # rotate_half
        for j in range(d):
            inv = 1.0 / (CFG["rope_theta"] ** ((2 * (j % half)) / d))
            ang = pos * inv
            out.append(v[j] * math.cos(ang) + rot[j] * math.sin(ang))
    return out


def forward(w, ids):
    h, nh, nkv = CFG["hidden_size"], CFG["num_attention_heads"], CFG["num_key_value_heads"]
    d = h // nh
    xs = [list(w["model.embed_tokens.weight"][t]) for t in ids]
    for l in range(CFG["num_hidden_layers"]):
        p = "model.layers.%d." % l
        qs, ks, vs = [], [], []
        for pos, x in enumerate(xs):
            n = rms_norm(x, w[p + "input_layernorm.weight"])
            qs.append(rope(matvec(w[p + "self_attn.q_proj.weight"], n), pos, d))
            ks.append(rope(matvec(w[p + "self_attn.k_proj.weight"], n), pos, d))
            vs.append(matvec(w[p + "self_attn.v_proj.weight"], n))
        new = []
        for t, x in enumerate(xs):
            att = []
            for hh in range(nh):
                kvh = hh // (nh // nkv)
                q = qs[t][hh * d:(hh + 1) * d]
                scores = [sum(a * b for a, b in zip(q, ks[s][kvh * d:(kvh + 1) * d])) / math.sqrt(d)
                          for s in range(t + 1)]
                m = max(scores)
                e = [math.exp(s - m) for s in scores]
                z = sum(e)
                att += [sum(e[s] / z * vs[s][kvh * d + j] for s in range(t + 1)) for j in range(d)]
            x = [a + b for a, b in zip(x, matvec(w[p + "self_attn.o_proj.weight"], att))]
            n = rms_norm(x, w[p + "post_attention_layernorm.weight"])
            g = matvec(w[p + "mlp.gate_proj.weight"], n)
            u = matvec(w[p + "mlp.up_proj.weight"], n)
            a = [gi / (1 + math.exp(-gi)) * ui for gi, ui in zip(g, u)]
            new.append([xi + yi for xi, yi in zip(x, matvec(w[p + "mlp.down_proj.weight"], a))])
        xs = new
    return [matvec(w["lm_head.weight"], rms_norm(x, w["model.norm.weight"])) for x in xs]


def write_safetensors(path, w):
    header, blobs, off = {}, [], 0
    for name in sorted(w):
        t = w[name]
        shape = [len(t), len(t[0])] if isinstance(t[0], list) else [len(t)]
        flat = [a for row in t for a in row] if isinstance(t[0], list) else t
        data = struct.pack("<%df" % len(flat), *flat)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "data", "tiny-llama")
    os.makedirs(out, exist_ok=True)
    w = weights()
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(CFG, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(out, "model.safetensors"), w)
    logits = forward(w, IDS)
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump({"source": "tests/tools/make_tiny_llama.py (plain-Python Llama equations)",
                   "ids": IDS, "logits": [[round(v, 7) for v in row] for row in logits]}, f)
        f.write("\n")


if __name__ == "__main__":
    main()
