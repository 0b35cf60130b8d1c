"""CPU dropout: scratchlm's `dropout` (16-bit random integers, four per 64-bit word) against `F.dropout`, alone and
inside a training step.

    python benchmarks/dropout.py [--threads 2] [--rounds 6]

1. Forward + backward of dropout (p = 0.25) on the reference design's feed-forward activations, 4 x 128 x 2048.
2. A training step (bf16 autocast, AdamW) of the shakespeare-char budget recipe (6 layers, 256 wide, 8 heads,
   RoPE, dropout 0.2, batch 32 x 128, vocabulary 65) as scratchlm runs it, against the same model whose
   attention calls PyTorch's SDPA with dropout (which on a CPU falls back to plain attention with PyTorch's
   mask) and whose Dropout layers are nn.Dropout. Interleaved rounds, medians.
"""
import argparse, json, os, platform, sys, time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import scratchlm.attention as attention
from scratchlm.performance import dropout, keep_freed_memory
from scratchlm.core import ModelConfig
from scratchlm.model import Dropout, TransformerLM


def median(xs): return sorted(xs)[len(xs) // 2]


def torch_attend(q, k, v, impl='sdpa', key_padding_mask=None, causal=True, dropout_p=0.0):
    "PyTorch's SDPA with its own dropout (the causal, unpadded case this benchmark uses)."
    return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=causal)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--rounds', type=int, default=6)
    ap.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results' / 'dropout.json'))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    keep_freed_memory()

    act, grad = torch.randn(4, 128, 2048, requires_grad=True), torch.randn(4, 128, 2048)
    alone = {'F.dropout': [], 'scratchlm dropout': []}
    for _ in range(a.rounds):
        for name, fn in (('F.dropout', F.dropout), ('scratchlm dropout', dropout)):
            for _ in range(5):
                t0 = time.perf_counter(); fn(act, 0.25).backward(grad); alone[name].append(time.perf_counter() - t0)

    cfg = ModelConfig(vocab_size=65, d_model=256, nhead=8, num_layers=6, dim_feedforward=1024, dropout=0.2, block_size=128,
                      norm_first=True, pos_encoding='rope')
    models = {}
    for name in ('PyTorch dropout and SDPA', 'scratchlm'):
        torch.manual_seed(0)
        m = TransformerLM(cfg).train()
        if name != 'scratchlm':
            for parent in m.modules():
                for child_name, child in parent.named_children():
                    if isinstance(child, Dropout): setattr(parent, child_name, nn.Dropout(child.p))
        models[name] = (m, torch.optim.AdamW(m.parameters(), lr=1e-3))
    x = torch.randint(0, 65, (32, 129), generator=torch.Generator().manual_seed(0))
    def step(name):
        m, opt = models[name]
        attention.attend = torch_attend if name != 'scratchlm' else original_attend
        with torch.autocast('cpu', dtype=torch.bfloat16): loss = m(x[:, :-1], x[:, 1:]).loss
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
    original_attend = attention.attend
    steps = {name: [] for name in models}
    try:
        for name in models: step(name)                                   # warm-up
        for _ in range(a.rounds):
            for name in models:
                for _ in range(3):
                    t0 = time.perf_counter(); step(name); steps[name].append(time.perf_counter() - t0)
    finally: attention.attend = original_attend

    a_t, a_s = median(alone['F.dropout']), median(alone['scratchlm dropout'])
    s_t, s_s = median(steps['PyTorch dropout and SDPA']), median(steps['scratchlm'])
    print(f'\n{a.threads} threads, medians of {a.rounds} interleaved rounds')
    print(f"dropout forward + backward, 4 x 128 x 2048, p=0.25: F.dropout {a_t * 1e3:.2f} ms, scratchlm {a_s * 1e3:.2f} ms: {a_t / a_s:.2f}x")
    print(f"budget-recipe training step: PyTorch dropout and SDPA {s_t:.3f} s, scratchlm {s_s:.3f} s: {s_t / s_s:.2f}x")
    out = dict(machine=dict(python=platform.python_version(), torch=torch.__version__, threads=a.threads, cpu_count=os.cpu_count()),
               when=time.strftime('%Y-%m-%d %H:%M:%S'), loadavg=os.getloadavg(),
               dropout_ms=dict(torch=a_t * 1e3, scratchlm=a_s * 1e3, speedup=a_t / a_s),
               budget_step_s=dict(torch=s_t, scratchlm=s_s, speedup=s_t / s_s), raw=dict(alone=alone, steps=steps))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1) + '\n')
    print(f'wrote {a.out}')


if __name__ == '__main__': main()
