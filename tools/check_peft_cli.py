#!/usr/bin/env python3
"""A PyTorch user's workflow (lowrank <-> transformers + peft) end to end with real transformers and peft (not run by CI):

  a random GPT-2 (GPT-2 BPE vocabulary, small) saved by transformers' save_pretrained
  -> ./build/finetune_e2e --init HF_DIR --save-adapter PEFT_DIR --export-merged MERGED_DIR (LoRA r=4 on q, v)
  -> peft's PeftModel.from_pretrained(HF model, PEFT_DIR) and transformers' from_pretrained(MERGED_DIR)
     give the same logits, and differ from the base's (the adapter trained).

Usage: python tools/check_peft_cli.py [--bin build/finetune_e2e] [--work /tmp/lowrank-peft-cli] [--steps 40]
Prints the largest logit differences; exits 1 when peft and the merged export disagree by more than 1e-4.
"""
import argparse
import os
import shutil
import subprocess
import sys

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import torch
from peft import PeftModel
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "finetune_e2e"))
    ap.add_argument("--work", default="/tmp/lowrank-peft-cli")
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    hf, adapter, merged = (os.path.join(args.work, d) for d in ("hf-gpt2", "peft-adapter", "merged"))

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=50257, n_positions=128, n_embd=64, n_layer=2, n_head=4, resid_pdrop=0.0,
                     embd_pdrop=0.0, attn_pdrop=0.0)
    GPT2LMHeadModel(cfg).eval().save_pretrained(hf)

    cmd = [args.bin, "--init", hf, "--method", "lora", "--rank", "4", "--targets", "q,v", "--steps", str(args.steps),
           "--lr", "1e-2", "--test-mrs", "3", "--beam", "2", "--show", "1", "--threads", "2",
           "--outputs", os.path.join(args.work, "outputs.txt"), "--save-adapter", adapter, "--export-merged", merged]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)

    ids = torch.tensor([[464, 11401, 318, 257, 3332, 6128, 287, 262, 1748, 7372, 13, 50256]])
    with torch.no_grad():
        base = GPT2LMHeadModel.from_pretrained(hf, attn_implementation="eager").eval()
        base_logits = base(ids).logits
        with_adapter = PeftModel.from_pretrained(base, adapter).eval()
        peft_logits = with_adapter(ids).logits
        merged_logits = GPT2LMHeadModel.from_pretrained(merged, attn_implementation="eager").eval()(ids).logits
    d_peft = (peft_logits - merged_logits).abs().max().item()
    d_base = (peft_logits - base_logits).abs().max().item()
    print(f"peft(base + our adapter) vs transformers(our merged export): max |logit diff| {d_peft:.3g}")
    print(f"peft(base + our adapter) vs the base alone:                  max |logit diff| {d_base:.3g}")
    sys.exit(0 if d_peft < 1e-4 and d_base > 1e-3 else 1)


if __name__ == "__main__":
    main()
