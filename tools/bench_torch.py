#!/usr/bin/env python3
"""The peer of bench_step: one GPT-2 124M training step in PyTorch + peft, full fine-tuning vs LoRA.

Runs the step bench_step times (examples/bench_step.cpp), on the same shapes and thread count, so the
two can be compared in one run (tools/bench_vs_torch.sh interleaves them):
  transformers.GPT2Config() defaults (124M, V = 50257, tied head), random weights, dropout off,
  B = 1, T = 1024 by default, forward + cross-entropy over every position + backward + AdamW
  (lr 1e-4, no weight decay, as bench_step's optimizer); FT trains every weight, LoRA is peft's
  r = 4, alpha = 32, dropout 0 on c_attn (peft adapts the whole fused q,k,v projection; bench_step
  adapts its q and v thirds: 0.3 GFLOP of a 620 GFLOP step, below the noise).
Reports the median of the timed steps after the warm-up ones.

With --model mini --batch 8 --seq 75 --loss-rows 26 it is the E2E fine-tuning step of the `mini` model
(bench_step's same options): the loss, and the head, only on the last 26 positions of each sequence, as
E2E's completion-only loss (lowrank's GPT::head_loss; here the hidden states of those rows through lm_head).

With --precision bf16 the forward and the loss run under torch.autocast("cpu", dtype=torch.bfloat16), PyTorch's
CPU mixed precision (its GEMMs in bf16 through oneDNN where the CPU has AVX512-BF16 or AMX; the weights, their
gradients and AdamW stay fp32): the peer of bench_step --precision bf16 (docs/precision.md).

  /tmp/venv-bench/bin/python tools/bench_torch.py --threads 2 --json /tmp/torch.json
Needs torch, transformers and peft (PyPI); nothing in the build or the tests needs this script.
"""
import argparse
import contextlib
import gc
import json
import statistics
import sys
import time
import warnings


# bench_step's presets (nn/config.cpp): GPT2Config's defaults are GPT-2 124M; mini is 4 layers, C = 192.
MODELS = {"gpt2": {}, "mini": {"n_embd": 192, "n_layer": 4, "n_head": 4, "n_positions": 256}}


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="gpt2", choices=list(MODELS), help="shape: GPT-2 124M or lowrank's mini")
    p.add_argument("--batch", type=int, default=1, help="sequences per step B")
    p.add_argument("--seq", type=int, default=1024, help="tokens per sequence T")
    p.add_argument("--loss-rows", type=int, default=0,
                   help="loss and head on the last L positions of each sequence only (0: every position)")
    p.add_argument("--methods", default="ft,lora", help="comma list of ft, lora")
    p.add_argument("--rank", type=int, default=4, help="LoRA rank r")
    p.add_argument("--steps", type=int, default=5, help="timed steps per method")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    p.add_argument("--attn", default="sdpa", help="transformers attn_implementation (sdpa or eager)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                   help="bf16: forward and loss under torch.autocast(cpu, bfloat16)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", default="", help="write results to this JSON file")
    a = p.parse_args()
    for m in a.methods.split(","):
        if m not in ("ft", "lora"):
            p.error(f"--methods: expected ft or lora, got '{m}'")
    if min(a.batch, a.seq, a.steps) < 1 or a.warmup < 0:
        p.error("--batch, --seq and --steps must be positive, --warmup not negative")
    if not 0 <= a.loss_rows <= a.seq:
        p.error(f"--loss-rows must be between 0 and --seq ({a.seq}), got {a.loss_rows}")
    return a


def import_peers():
    try:
        import peft
        import torch
        import transformers
    except ImportError as e:
        sys.exit(f"bench_torch.py: {e.name} is missing for {sys.executable}; install it with\n"
                 f"  {sys.executable} -m pip install torch transformers peft")
    return torch, transformers, peft


def build(method, a, torch, transformers, peft):
    """The model and its optimizer: every weight trainable (ft) or peft's LoRA on c_attn (lora)."""
    torch.manual_seed(a.seed)
    shape = dict(MODELS[a.model])
    shape["n_positions"] = max(shape.get("n_positions", 1024), a.seq)
    cfg = transformers.GPT2Config(**shape, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = transformers.GPT2LMHeadModel._from_config(cfg, attn_implementation=a.attn)
    if method == "lora":
        lc = peft.LoraConfig(r=a.rank, lora_alpha=32, lora_dropout=0.0, target_modules=["c_attn"],
                             fan_in_fan_out=True, bias="none")
        model = peft.get_peft_model(model, lc)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    return model, opt, sum(p.numel() for p in params)


def autocast(a, torch):
    """PyTorch's CPU mixed precision for --precision bf16; nothing for fp32."""
    if a.precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def bench_method(method, a, torch, transformers, peft):
    model, opt, trainable = build(method, a, torch, transformers, peft)
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(a.seed)
    ids = torch.randint(0, vocab, (a.batch, a.seq), generator=g)
    targets = torch.randint(0, vocab, (a.batch * (a.loss_rows or a.seq),), generator=g)
    lm = model.get_base_model() if method == "lora" else model  # peft injects its layers in place
    times, loss = [], float("nan")
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        with autocast(a, torch):
            if a.loss_rows:  # the head only on the loss rows, as lowrank's GPT::head_loss
                h = lm.transformer(input_ids=ids).last_hidden_state[:, -a.loss_rows:, :]
                logits = lm.lm_head(h)
            else:
                logits = model(input_ids=ids).logits
            out = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), targets)
        opt.zero_grad()
        out.backward()
        opt.step()
        loss = out.item()
        dt = time.perf_counter() - t0
        if s >= a.warmup:
            times.append(dt)
        print(f"  {method} step {s + 1}/{a.warmup + a.steps}: {dt:.3f} s, loss {loss:.3f}", flush=True)
    del model, opt
    gc.collect()  # one model at a time: FT's weights, grads and Adam state are 2 GB
    return {"method": method, "trainable_params": trainable, "step_s_median": statistics.median(times),
            "step_s_min": min(times), "step_s_max": max(times), "step_s_all": times,
            "tokens_per_s": a.batch * a.seq / statistics.median(times), "loss": loss}


def main():
    a = parse()
    torch, transformers, peft = import_peers()
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' deprecation notes, per step
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    info = {"benchmark": "bench_torch", "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "threads": torch.get_num_threads(), "model": a.model, "batch": a.batch, "seq": a.seq,
            "loss_rows": a.loss_rows,
            "rank": a.rank, "attn_implementation": a.attn, "precision": a.precision,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "mkl": torch.backends.mkl.is_available(),
            "date": time.strftime("%Y-%m-%d"), "methods": []}
    print(f"torch {info['torch']}, transformers {info['transformers']}, peft {info['peft']}, "
          f"{info['threads']} threads, {a.model} B={a.batch} T={a.seq} loss rows {a.loss_rows or a.seq}, "
          f"attention {a.attn}, precision {a.precision}")
    for m in a.methods.split(","):
        info["methods"].append(bench_method(m, a, torch, transformers, peft))
    by = {r["method"]: r for r in info["methods"]}
    for r in info["methods"]:
        print(f"{r['method']}: {r['step_s_median']:.3f} s a step [{r['step_s_min']:.3f}, {r['step_s_max']:.3f}], "
              f"{r['tokens_per_s']:.0f} tok/s, {r['trainable_params']} trainable")
    if "ft" in by and "lora" in by:
        info["lora_over_ft_time"] = by["lora"]["step_s_median"] / by["ft"]["step_s_median"]
        print(f"LoRA/FT step time {info['lora_over_ft_time']:.3f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(info, f, indent=2)


if __name__ == "__main__":
    main()
