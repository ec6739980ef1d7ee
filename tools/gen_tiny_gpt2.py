#!/usr/bin/env python3
"""Generate the tiny random Hugging Face GPT-2 fixture in tests/fixtures/tiny_gpt2/.

Not part of building or testing: run it only to regenerate the committed fixture (see tools/README.md).
It writes
  model.safetensors  the weights exactly as GPT2LMHeadModel.save_pretrained writes them
  config.json        the matching Hugging Face config
  reference.json     input ids, full float32 logits, the mean next-token cross-entropy loss and
                     gradients of that loss for a few named parameters
and then reloads the saved model with transformers to check the logits reproduce bit for bit.

Usage:  python tools/gen_tiny_gpt2.py [--out DIR]
"""
import argparse
import inspect
import json
import os
import shutil
import sys
import tempfile

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU only: the reference must not depend on a GPU

import numpy as np
import safetensors
import torch
import torch.nn.functional as F
import transformers
from safetensors import safe_open
from transformers import GPT2Config, GPT2LMHeadModel

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "tests", "fixtures", "tiny_gpt2")

INPUT_IDS = [[1, 5, 9, 33, 2, 100, 0], [7, 7, 7, 50, 60, 70, 80]]
INIT_STD = 0.2

# Gradients recorded in reference.json: (parameter name, which values, how to take them from the
# HF-layout gradient tensor). Conv1D weights (c_attn, c_proj, c_fc) are stored by HF as (in, out),
# i.e. y = x @ W + b; nn.Linear would be (out, in).
GRAD_SPECS = [
    ("transformer.h.0.attn.c_attn.weight", "first 10 values of the row-major flattening of the HF (in=32, out=96) "
     "tensor, i.e. row 0 (input feature 0), columns 0..9 (the q projection's outputs 0..9)",
     lambda g: g.reshape(-1)[:10]),
    ("transformer.h.0.attn.c_attn.bias", "all 96 values (q 0..31, k 32..63, v 64..95)", lambda g: g),
    ("transformer.h.1.mlp.c_proj.weight", "row 3 (input feature 3 of 128) of the HF (in=128, out=32) tensor, "
     "all 32 columns", lambda g: g[3]),
    ("transformer.h.0.ln_1.weight", "all 32 values", lambda g: g),
    ("transformer.ln_f.bias", "all 32 values", lambda g: g),
    ("transformer.wte.weight", "row 5 (token id 5) of the (vocab=101, n_embd=32) tensor, all 32 values; "
     "wte is tied to lm_head, so this includes both the embedding and the output-projection gradient",
     lambda g: g[5]),
    ("transformer.wpe.weight", "row 6 (position 6) of the (n_positions=32, n_embd=32) tensor", lambda g: g[6]),
]


def f32_list(t):
    """Float32 values as Python floats whose shortest repr reads back as the same float32."""
    return [float(str(np.float32(v))) for v in t.detach().cpu().numpy().reshape(-1)]


def build_model():
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=101, n_positions=32, n_embd=32, n_layer=2, n_head=4,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5,
        activation_function="gelu_new", bos_token_id=100, eos_token_id=100,
    )
    config._attn_implementation = "eager"  # plain softmax(QK^T/sqrt(d)) attention, no fused kernel
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        for p in model.parameters():  # tied lm_head.weight is wte.weight, listed once
            p.normal_(0.0, INIT_STD)
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr(), "lm_head must stay tied"
    model.eval()
    return model


def loss_of(logits, ids):
    v = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, v), ids[:, 1:].reshape(-1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    model = build_model()
    ids = torch.tensor(INPUT_IDS, dtype=torch.long)

    # Forward + backward in float32.
    model.zero_grad()
    logits = model(ids).logits
    loss = loss_of(logits, ids)
    loss.backward()
    hf_loss = model(ids, labels=ids).loss.item()  # HF's own shifted loss must agree
    assert abs(hf_loss - loss.item()) < 1e-6, (hf_loss, loss.item())
    params = dict(model.named_parameters())

    # The same model in float64, to tell the C++ test how much float32 rounding to expect.
    model64 = build_model().double()
    with torch.no_grad():
        logits64 = model64(ids).logits
        loss64 = loss_of(logits64, ids).item()
    f32_vs_f64 = (logits.detach().double() - logits64).abs().max().item()

    # Save with transformers itself; keep only the weights and the config.
    with tempfile.TemporaryDirectory() as tmp:
        kw = {}
        if "safe_serialization" in inspect.signature(model.save_pretrained).parameters:
            kw["safe_serialization"] = True  # transformers < 5; 5.x always writes safetensors
        model.save_pretrained(tmp, **kw)
        for name in ("model.safetensors", "config.json"):
            shutil.copyfile(os.path.join(tmp, name), os.path.join(args.out, name))

    ref = {
        "description": "tiny random GPT-2 (tools/gen_tiny_gpt2.py): all parameters N(0, 0.2) incl. biases and "
                       "LayerNorm; eval mode, no dropout; eager attention; computed in float32 on CPU",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "safetensors": safetensors.__version__, "numpy": np.__version__},
        "input_ids": INPUT_IDS,
        "logits_shape": list(logits.shape),
        "logits": f32_list(logits),
        "loss_definition": "mean cross-entropy of predicting input_ids[:, 1:] from logits[:, :-1] (12 targets)",
        "loss": float(str(np.float32(loss.item()))),
        "loss_float64": loss64,
        "logits_max_abs_diff_float32_vs_float64": f32_vs_f64,
        "grads": [],
    }
    for name, what, pick in GRAD_SPECS:
        g = params[name].grad
        if name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
            layout = "HF Conv1D (in, out): y = x @ W + b; transpose for an nn.Linear-style (out, in) weight"
        elif g.dim() == 2:
            layout = "HF (rows, n_embd), as stored in model.safetensors"
        else:
            layout = "1-D, as stored in model.safetensors"
        ref["grads"].append({"name": name, "param_shape": list(g.shape), "layout": layout, "values_are": what,
                             "values": f32_list(pick(g))})
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")

    # Verify: reload what was written and reproduce the logits.
    reloaded = GPT2LMHeadModel.from_pretrained(args.out, attn_implementation="eager")
    reloaded.eval()
    with torch.no_grad():
        again = reloaded(ids).logits
    diff = (again - logits.detach()).abs().max().item()
    assert diff == 0.0, f"reloaded logits differ by {diff}"
    with open(os.path.join(args.out, "reference.json")) as f:
        stored = torch.tensor(json.load(f)["logits"], dtype=torch.float32).reshape(logits.shape)
    assert torch.equal(stored, logits.detach()), "logits did not survive the JSON round trip exactly"

    print(f"wrote {args.out}")
    print(f"loss {loss.item():.7f} (float64 {loss64:.7f}); logits f32 vs f64 max abs diff {f32_vs_f64:.3g}")
    with safe_open(os.path.join(args.out, "model.safetensors"), framework="pt") as f:
        print("metadata:", f.metadata())
        for k in sorted(f.keys()):
            t = f.get_slice(k)
            print(f"  {k}: {t.get_dtype()} {t.get_shape()}")
    total = sum(os.path.getsize(os.path.join(args.out, n)) for n in os.listdir(args.out))
    print(f"fixture size: {total} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
