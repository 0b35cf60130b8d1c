"""CPU dropout: scratchlm's `dropout` (16-bit random integers, four per 64-bit word) against `F.dropout`, alone and
inside a training step.

    python benchmarks/dropout.py [--threads 2] [--rounds 6]

1. Forward + backward of dropout (p = 0.25) on the reference design's feed-forward activations, 4 x 128 x 2048.
2. A training step (bf16 autocast, AdamW) of the shakespeare-char budget recipe (6 layers, 256 wide, 8 heads,
   RoPE, dropout 0.2, batch 32 x 128, vocabulary 65) as scratchlm runs it, against the same model whose
   attention calls PyTorch's SDPA with dropout (which on a CPU falls back to plain attention with PyTorch's
   mask) and whose Dropout layers are nn.Dropout. Interleaved rounds, medians.
3. The run-time choice (`choose_cpu_path`, 09_performance): in a fresh process with no SCRATCHLM_CPU_PATHS, the
   choice for dropout, attention with dropout (both by `x86_avx_rule`: they change the random numbers) and the
   allocator setting (by timing), with the probe's timings of both paths beside each (best of 7, small inputs).
Sections 1 and 2 force scratchlm's paths (SCRATCHLM_CPU_PATHS=scratchlm) so both sides are always measured.
The JSON records the CPU (`cpu_info`).
"""
import argparse, json, os, platform, subprocess, sys, time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import scratchlm.attention as attention
from scratchlm.performance import dropout, keep_freed_memory
from scratchlm.core import ModelConfig, cpu_info
from scratchlm.model import Dropout, TransformerLM


def median(xs): return sorted(xs)[len(xs) // 2]


PROBE = '''
import json, torch
torch.set_num_threads({threads})
from scratchlm.performance import keep_freed_memory_if_faster, decide_cpu_paths, cpu_path_choices, time_cpu_path
import scratchlm.attention                # registers attention's path
keep_freed_memory_if_faster()
decide_cpu_paths()
choices = cpu_path_choices()
for name, c in choices.items():           # paths decided by a rule are timed here too, for the table
    if c['torch_s'] is None and name != 'allocator': c['torch_s'], c['scratchlm_s'] = time_cpu_path(name)
print(json.dumps(choices))
'''


def probe_choices(threads):
    "The choices a fresh process makes, with no override."
    env = {k: v for k, v in os.environ.items() if k != 'SCRATCHLM_CPU_PATHS'}
    env['PYTHONPATH'] = str(ROOT)
    out = subprocess.run([sys.executable, '-c', PROBE.format(threads=threads)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


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
    os.environ['SCRATCHLM_CPU_PATHS'] = 'scratchlm'          # sections 1-2: scratchlm's paths, whatever the probe says
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
    choices = probe_choices(a.threads)
    print("run-time choice in a fresh process (choose_cpu_path; times: the probe's best of 7 on small inputs, interleaved except the allocator's):")
    for name, c in choices.items():
        agree = '' if (c['scratchlm_s'] < c['torch_s']) == (c['choice'] == 'scratchlm') else '  (the timing disagrees)'
        print(f"  {name:18} PyTorch {c['torch_s'] * 1e3:8.3f} ms, scratchlm {c['scratchlm_s'] * 1e3:8.3f} ms -> {c['choice']} (by {c['by']}){agree}")
    cpu = cpu_info()
    print(f"CPU: {cpu['model']}, {', '.join(cpu['simd'])}; torch capability {cpu['torch_capability']}")
    out = dict(machine=dict(python=platform.python_version(), torch=torch.__version__, threads=a.threads, cpu_count=os.cpu_count()),
               cpu=cpu, probe_choices=choices,
               when=time.strftime('%Y-%m-%d %H:%M:%S'), loadavg=os.getloadavg(),
               dropout_ms=dict(torch=a_t * 1e3, scratchlm=a_s * 1e3, speedup=a_t / a_s),
               budget_step_s=dict(torch=s_t, scratchlm=s_s, speedup=s_t / s_s), raw=dict(alone=alone, steps=steps))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1) + '\n')
    print(f'wrote {a.out}')


if __name__ == '__main__': main()
