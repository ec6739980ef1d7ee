#!/usr/bin/env python3
"""Generate tests/fixtures/peft_tiny/: real peft and transformers on the tiny GPT-2 fixture.

Not part of building or testing (tools/README.md). Order of work:
  1. LOWRANK_WRITE_FIXTURES=1 ./build/lowrank_tests -tc="peft fixtures*"   # lowrank writes lowrank_written/, merged/
  2. python tools/gen_peft_fixtures.py                                    # peft / transformers write the rest
  3. ./build/lowrank_tests -tc="peft fixtures*"                            # the C++ side checks every file
It writes
  peft_made/       an adapter peft itself makes and saves: target_modules a regular expression, alpha_pattern
                   keys that are regular expressions, init_lora_weights=False (A and B random, B dense)
  peft_resaved/    lowrank_written/ loaded by PeftModel.from_pretrained and saved again by save_pretrained
  reference.json   input ids; peft's logits with peft_made/ and with lowrank_written/; transformers' logits
                   on merged/; the largest difference between peft's merge_and_unload of lowrank_written/
                   and merged/'s weights
"""
import copy
import json
import os
import shutil

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np
import peft
import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import GPT2LMHeadModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = os.path.join(ROOT, "tests", "fixtures", "tiny_gpt2")
OUT = os.path.join(ROOT, "tests", "fixtures", "peft_tiny")


def f32_list(t):
    return [float(str(np.float32(v))) for v in t.detach().cpu().numpy().reshape(-1)]


def load_base():
    m = GPT2LMHeadModel.from_pretrained(BASE, attn_implementation="eager")
    return m.eval()


def logits(model, ids):
    with torch.no_grad():
        return model(ids).logits


def save_adapter(model, path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    model.save_pretrained(path)
    readme = os.path.join(path, "README.md")
    if os.path.exists(readme):
        os.remove(readme)  # the model card peft adds: not part of the adapter


def main():
    with open(os.path.join(BASE, "reference.json")) as f:
        ids = torch.tensor(json.load(f)["input_ids"], dtype=torch.long)
    ref = {"description": "tools/gen_peft_fixtures.py on tests/fixtures/tiny_gpt2, float32 on CPU, eval mode",
           "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
           "input_ids": ids.tolist()}

    # 1. An adapter peft makes: regex target_modules and alpha_pattern keys; lora_alpha alone would give scale 2.
    torch.manual_seed(1)
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM", fan_in_fan_out=True,
                     init_lora_weights=False,
                     target_modules=r".*\.h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)",
                     alpha_pattern={r"h\.\d+\.attn\.c_attn": 16, r"c_proj": 16, r"mlp\.c_f[c]": 16})
    made = get_peft_model(load_base(), cfg).eval()
    ref["peft_made_logits"] = f32_list(logits(made, ids))
    save_adapter(made, os.path.join(OUT, "peft_made"))

    # 2. lowrank's adapter in peft, then saved again by peft.
    written = os.path.join(OUT, "lowrank_written")
    assert os.path.isdir(written), "run the C++ test with LOWRANK_WRITE_FIXTURES=1 first (see the docstring)"
    loaded = PeftModel.from_pretrained(load_base(), written).eval()
    ref["lowrank_written_peft_logits"] = f32_list(logits(loaded, ids))
    save_adapter(loaded, os.path.join(OUT, "peft_resaved"))

    # 3. lowrank's merged export in transformers, and against peft's own merge.
    merged = GPT2LMHeadModel.from_pretrained(os.path.join(OUT, "merged"), attn_implementation="eager").eval()
    ref["merged_transformers_logits"] = f32_list(logits(merged, ids))
    peft_merged = copy.deepcopy(loaded).merge_and_unload()
    ours = dict(merged.named_parameters())
    ref["merged_vs_peft_merge_max_abs_diff"] = max(
        (p.detach() - ours[n].detach()).abs().max().item() for n, p in peft_merged.named_parameters())
    print("peft merge_and_unload vs lowrank's merged export, max |diff|:", ref["merged_vs_peft_merge_max_abs_diff"])
    d = (logits(loaded, ids) - logits(merged, ids)).abs().max().item()
    print("peft(base + lowrank adapter) vs transformers(lowrank merged), max |logit diff|:", d)
    assert d < 1e-5, d

    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
