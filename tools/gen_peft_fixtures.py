#!/usr/bin/env python3
"""Generate tests/fixtures/peft_tiny/: real peft and transformers on the tiny GPT-2 fixture.

Not part of building or testing (tools/README.md). Order of work:
  1. LOWRANK_WRITE_FIXTURES=1 ./build/lowrank_tests -tc="peft fixtures*"   # lowrank writes lowrank_written/, merged/
  2. python tools/gen_peft_fixtures.py                                    # peft / transformers write the rest
  3. ./build/lowrank_tests -tc="peft fixtures*"                            # the C++ side checks every file
`python tools/gen_peft_fixtures.py variants` writes variants/ alone (it needs nothing from step 1).
It writes
  peft_made/       an adapter peft itself makes and saves: target_modules a regular expression, alpha_pattern
                   keys that are regular expressions, init_lora_weights=False (A and B random, B dense)
  peft_resaved/    lowrank_written/ loaded by PeftModel.from_pretrained and saved again by save_pretrained
  reference.json   input ids; peft's logits with peft_made/ and with lowrank_written/; transformers' logits
                   on merged/; the largest difference between peft's merge_and_unload of lowrank_written/
                   and merged/'s weights
  variants/        peft's LoRA variants on c_attn, attn.c_proj, mlp.c_fc and mlp.c_proj (target_modules ["c_attn",
                   "c_proj", "c_fc"]), r 2, lora_alpha 8, no dropout; after get_peft_model every trainable tensor gets
                   N(0, 0.05) noise (torch.manual_seed(2)), as if trained:
    rslora/            use_rslora=True (scale 8/sqrt(2)), init_lora_weights=False
    dora/              use_dora=True, init_lora_weights=False; adds ...lora_magnitude_vector tensors (no .weight)
    pissa/             init_lora_weights="pissa" as saved (loading it reruns the SVD on the base, W -= scale*B0@A0)
    pissa_converted/   the same adapter saved with path_initial_model_for_weight_conversion: a plain LoRA of
                       rank 4 (A = [A; A0], B = [B, -B0], lora_alpha 16) on the unmodified base
    olora/, olora_converted/  the same for init_lora_weights="olora", written only where peft can run it
                       (peft 0.21's olora_init ignores fan_in_fan_out, so GPT-2's Conv1D layers fail: skipped)
    reference.json     versions, input ids, "<variant>_peft_logits", "dora_merged_logits" (merge_and_unload),
                       the largest |W_res + scale*B0@A0 - W0| at init for pissa/olora, the reasons for any
                       variant skipped, and "<variant>_lowrank_written_peft_logits" for each
                       lowrank_written_<variant>/ present (lowrank's C++ side writes those; missing ones are skipped)
"""
import copy
import json
import os
import shutil
import sys
import tempfile

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

    # 4. peft's LoRA variants (rsLoRA, DoRA, PiSSA, OLoRA): variants/
    variants()


VARIANTS = {
    "rslora": dict(use_rslora=True, init_lora_weights=False),
    "dora": dict(use_dora=True, init_lora_weights=False),
    "pissa": dict(init_lora_weights="pissa"),
    "olora": dict(init_lora_weights="olora"),
}
MUTATING_INITS = ("pissa", "olora")  # they move scale*B0@A0 out of the base weight


def variant_config(name):
    return LoraConfig(r=2, lora_alpha=8, lora_dropout=0.0, fan_in_fan_out=True, bias="none", task_type="CAUSAL_LM",
                      target_modules=["c_attn", "c_proj", "c_fc"], **VARIANTS[name])


def lora_layers(model):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, peft.tuners.lora.LoraLayer)]


def residual_error(model, w0):
    """max |W_res + scale*B0@A0 - W0| over the adapted layers, W in GPT-2's Conv1D (in, out) layout."""
    err = 0.0
    for name, layer in lora_layers(model):
        key = name.replace("base_model.model.", "", 1) + ".weight"
        w_res = layer.get_base_layer().weight.detach()
        a, b = layer.lora_A["default"].weight.detach(), layer.lora_B["default"].weight.detach()
        if a.shape[1] != w_res.shape[0] or b.shape[0] != w_res.shape[1]:
            raise RuntimeError(f"{name}: lora_A {tuple(a.shape)} and lora_B {tuple(b.shape)} do not fit the "
                               f"(in, out) = {tuple(w_res.shape)} Conv1D weight")
        ba = b @ a  # (out, in)
        err = max(err, (w_res + layer.scaling["default"] * ba.T - w0[key]).abs().max().item())
    return err


def variants():
    out = os.path.join(OUT, "variants")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(BASE, "reference.json")) as f:
        ids = torch.tensor(json.load(f)["input_ids"], dtype=torch.long)
    ref = {"description": "tools/gen_peft_fixtures.py variants on tests/fixtures/tiny_gpt2, float32 on CPU, eval mode",
           "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
           "input_ids": ids.tolist(), "skipped": {}}
    w0 = {n: p.detach().clone() for n, p in load_base().named_parameters()}

    for name in VARIANTS:
        mutating = name in MUTATING_INITS
        torch.manual_seed(1)
        model = get_peft_model(load_base(), variant_config(name)).eval()
        model.peft_config["default"].base_model_name_or_path = os.path.relpath(BASE, ROOT)  # not this machine's path
        try:
            logits(model, ids)
            residual = residual_error(model, w0) if mutating else None
        except RuntimeError as e:  # peft 0.21: olora_init ignores fan_in_fan_out, so Conv1D layers get A (r, out)
            reason = f"peft {peft.__version__} cannot run {VARIANTS[name]} on GPT-2's Conv1D layers: " \
                     f"{type(e).__name__}: {e}"
            print(f"{name}: skipped:", reason)
            ref["skipped"][name] = reason
            for d in (name, name + "_converted"):
                if os.path.isdir(os.path.join(out, d)):
                    shutil.rmtree(os.path.join(out, d))
            continue
        if mutating:
            ref[f"{name}_init_residual_max_abs_diff"] = residual
            print(f"{name}: max |W_res + scale*B0@A0 - W0| at init:", residual)
            assert residual < 1e-5, residual

        with tempfile.TemporaryDirectory() as tmp:
            initial = os.path.join(tmp, f"{name}_initial")
            if mutating:
                model.save_pretrained(initial)  # A0, B0: what the conversion subtracts
            torch.manual_seed(2)
            with torch.no_grad():
                for p in model.parameters():
                    if p.requires_grad:
                        p.add_(torch.randn_like(p) * 0.05)
            got = logits(model, ids)
            ref[f"{name}_peft_logits"] = f32_list(got)
            save_adapter(model, os.path.join(out, name))

            # for pissa/olora, loading the unconverted adapter reruns the init on a fresh base before reading A, B
            again = PeftModel.from_pretrained(load_base(), os.path.join(out, name)).eval()
            d = (logits(again, ids) - got).abs().max().item()
            ref[f"{name}_reloaded_max_abs_diff"] = d
            print(f"{name}: PeftModel.from_pretrained({name}/) vs the trained model, max |logit diff|:", d)
            assert d < 1e-5, d

            if mutating:
                conv = os.path.join(out, name + "_converted")
                if os.path.isdir(conv):
                    shutil.rmtree(conv)
                model.save_pretrained(conv, path_initial_model_for_weight_conversion=initial)
                if os.path.exists(os.path.join(conv, "README.md")):
                    os.remove(os.path.join(conv, "README.md"))
                plain = PeftModel.from_pretrained(load_base(), conv).eval()
                d = (logits(plain, ids) - got).abs().max().item()
                ref[f"{name}_converted_max_abs_diff"] = d
                print(f"{name}: converted plain LoRA on the unmodified base vs the trained model, max |logit diff|:", d)
                assert d < 1e-5, d

        if name == "dora":
            merged = copy.deepcopy(model).merge_and_unload()
            m = logits(merged, ids)
            ref["dora_merged_logits"] = f32_list(m)
            ref["dora_merged_vs_unmerged_max_abs_diff"] = (m - got).abs().max().item()
            print("dora: merge_and_unload vs unmerged, max |logit diff|:", ref["dora_merged_vs_unmerged_max_abs_diff"])

    for name in VARIANTS:
        written = os.path.join(out, f"lowrank_written_{name}")
        if not os.path.isdir(written):
            print(f"{name}: no {os.path.relpath(written, ROOT)}/ (lowrank's C++ side writes it), skipped")
            continue
        try:
            loaded = PeftModel.from_pretrained(load_base(), written).eval()
            ref[f"{name}_lowrank_written_peft_logits"] = f32_list(logits(loaded, ids))
        except RuntimeError as e:
            ref["skipped"][f"lowrank_written_{name}"] = f"peft {peft.__version__}: {type(e).__name__}: {e}"
            print(f"{name}: peft cannot run {os.path.relpath(written, ROOT)}/:", e)
            continue
        print(f"{name}: peft's logits on {os.path.relpath(written, ROOT)}/ recorded")

    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    if sys.argv[1:] == ["variants"]:
        variants()
    elif sys.argv[1:]:
        sys.exit(f"usage: {sys.argv[0]} [variants]")
    else:
        main()
