#!/usr/bin/env python3
"""Generate tests/fixtures/train_tiny/: ten AdamW steps of PyTorch (and peft) on the tiny GPT-2 fixture.

Not part of building or testing (tools/README.md). tests/test_train_reference.cpp runs the same ten steps
in lowrank and compares every loss and the trained values (llm.c's test_gpt2 does this against PyTorch).
Three runs, each from tests/fixtures/tiny_gpt2:
  ft          full fine-tuning: every parameter trains
  lora_qv     LoRA r=4 on the q and v thirds of c_attn, each slice with its own A (r, C) and B (C, r), as the
              paper's loralib.MergedLinear(enable_lora=[True, False, True]) does; written here in plain torch
              (peft has no per-slice LoRA on GPT-2's fused c_attn). A and B start random and non-zero (stored),
              so B·A contributes from the first step and both get gradients.
  peft_c_attn peft's own LoRA on the whole c_attn (r=4, init_lora_weights=False: A and B random), saved by
              save_pretrained before (peft_init/) and after (peft_final/) the ten steps.
Shared settings: step k trains on batches[k] (2 x 8 token ids, numpy seed 0), the mean next-token
cross-entropy over the 2 x 7 predicted positions, gradient-norm clipping at 1.0, then AdamW (betas 0.9,
0.999, eps 1e-8, weight decay 0.01 on tensors of two or more dimensions only, as lowrank's AdamW);
dropout 0; float32 on CPU. After the ten steps, `final_loss` is the loss on batches[0] without an update.

Usage:  python tools/gen_train_reference.py [--out DIR]
"""
import argparse
import json
import os

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU only: the reference must not depend on a GPU

import numpy as np
import peft
import torch
import torch.nn.functional as F
import transformers
from peft import LoraConfig, get_peft_model
from transformers import GPT2LMHeadModel

from gen_peft_fixtures import save_adapter  # save_pretrained without the model card peft adds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = os.path.join(ROOT, "tests", "fixtures", "tiny_gpt2")
STEPS, B, T, R = 10, 2, 8, 4
SETTINGS = {"steps": STEPS, "batch": B, "seq": T, "clip": 1.0, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
            "weight_decay": 0.01, "ft_lr": 1e-3, "lora_lr": 1e-2, "r": R, "alpha": 8.0}


def f32_list(t):
    return [float(str(np.float32(v))) for v in t.detach().cpu().numpy().reshape(-1)]


def load_base():
    torch.manual_seed(0)
    return GPT2LMHeadModel.from_pretrained(BASE, attn_implementation="eager").train()  # dropout 0 in config


def loss_of(model, ids):
    logits = model(ids).logits  # (B, T, V)
    V = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))


def adamw(params, lr):
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": SETTINGS["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=(SETTINGS["beta1"], SETTINGS["beta2"]),
                             eps=SETTINGS["eps"])


def train(model, params, lr, batches):
    opt = adamw(params, lr)
    losses = []
    for ids in batches:
        loss = loss_of(model, ids)
        losses.append(float(loss))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, SETTINGS["clip"])
        opt.step()
    with torch.no_grad():
        final = float(loss_of(model, batches[0]))
    return {"losses": losses, "final_loss": final}


class QVLoRA(torch.nn.Module):
    """c_attn (Conv1D: y = x W + b, W (C, 3C)) plus scale · B_s A_s x on the q and v thirds."""

    def __init__(self, base, rng):
        super().__init__()
        self.base = base
        C = base.weight.shape[0]
        self.scale = SETTINGS["alpha"] / R
        draw = lambda *shape: torch.nn.Parameter(torch.tensor(rng.normal(0.0, 0.1, shape), dtype=torch.float32))
        self.A = torch.nn.ParameterDict({"q": draw(R, C), "v": draw(R, C)})
        self.B = torch.nn.ParameterDict({"q": draw(C, R), "v": draw(C, R)})

    def forward(self, x):
        y = self.base(x)
        up = {s: (x @ self.A[s].T) @ self.B[s].T * self.scale for s in ("q", "v")}
        return y + torch.cat([up["q"], torch.zeros_like(up["q"]), up["v"]], dim=-1)


def lora_qv(batches):
    model = load_base()
    for p in model.parameters():
        p.requires_grad_(False)
    rng = np.random.RandomState(1)
    for block in model.transformer.h:
        block.attn.c_attn = QVLoRA(block.attn.c_attn, rng)
    names = lambda: {f"h.{l}.attn.c_attn.lora_{m}.{s}": getattr(blk.attn.c_attn, m)[s]
                     for l, blk in enumerate(model.transformer.h) for m in ("A", "B") for s in ("q", "v")}
    init = {n: f32_list(p) for n, p in names().items()}
    out = train(model, list(names().values()), SETTINGS["lora_lr"], batches)
    out.update({"init": init, "final": {n: f32_list(p) for n, p in names().items()}})
    return out


def peft_c_attn(batches, out_dir):
    torch.manual_seed(2)  # peft draws A and B with torch's generator
    cfg = LoraConfig(r=R, lora_alpha=SETTINGS["alpha"], target_modules=["c_attn"], lora_dropout=0.0,
                     fan_in_fan_out=True, init_lora_weights=False)
    model = get_peft_model(load_base(), cfg)
    save_adapter(model, os.path.join(out_dir, "peft_init"))
    params = [p for p in model.parameters() if p.requires_grad]
    out = train(model, params, SETTINGS["lora_lr"], batches)
    save_adapter(model, os.path.join(out_dir, "peft_final"))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "train_tiny"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    ids = np.random.RandomState(0).randint(0, 101, size=(STEPS, B, T))
    batches = [torch.tensor(ids[k], dtype=torch.long) for k in range(STEPS)]
    model = load_base()
    ft = train(model, list(model.parameters()), SETTINGS["ft_lr"], batches)
    ref = {"description": "tools/gen_train_reference.py on tests/fixtures/tiny_gpt2, float32 on CPU",
           "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
           "settings": SETTINGS, "batches": ids.tolist(), "ft": ft, "lora_qv": lora_qv(batches),
           "peft_c_attn": peft_c_attn(batches, args.out)}
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
    for k in ("ft", "lora_qv", "peft_c_attn"):
        print(k, " ".join(f"{x:.5f}" for x in ref[k]["losses"]), "final", f"{ref[k]['final_loss']:.5f}")


if __name__ == "__main__":
    main()
