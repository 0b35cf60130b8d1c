"""Benchmark of scratchlm's TransformerLM: training-step throughput and MFU against two baselines, and peak memory.

Throughput: one training step (forward, loss, backward, gradient clipping, AdamW step) of
  - scratchlm's `TransformerLM` with the optimizer its Trainer builds (`make_optimizer`: fused AdamW on a CPU),
  - the same model with PyTorch's default AdamW (a loop over the parameters on a CPU), the baselines' optimizer,
  - a baseline LM built from `torch.nn.TransformerEncoder` (the reference design's literal architecture),
  - a re-typed copy of nanoGPT's `GPT` model (karpathy/nanoGPT, model.py, MIT licence; the MLP width is a
    parameter here so that it can match the reference design's shape),
at two shapes: nanoGPT's CPU recipe and the reference design's default config (at a batch and length that fit a CPU).
The models are timed interleaved (round-robin, order rotated every round) and the best step of all rounds is
reported, so that load from other processes affects all of them alike; ratios compare the best-of-N times.

MFU = achieved model FLOP/s / the machine's fp32 GEMM ceiling, which this script measures itself (best
FLOP/s of square float32 matmuls at the same thread count). Model FLOPs per token use the PaLM/nanoGPT
formula 6 * (matmul parameters) + 12 * layers * d_model * T, the same for all three models of a shape.

Every model runs in this one process with freed memory kept (`keep_freed_memory`, as the Trainer sets it on a
CPU); `--system-malloc` leaves glibc's defaults, under which large freed blocks go back to the OS and are
page-faulted in again every step (benchmarks/allocator.py measures that difference on its own).

Memory: peak resident memory (VmHWM of a fresh process) of one forward + backward of the reference design's config at
T = 1024 for naive / tiled / sdpa attention, with and without gradient checkpointing.

With torch.compile available for the CPU (`compile_problem`, 09_performance: a C++ toolchain, and not the AVX2
Inductor code that gave NaN logits), two more rows: scratchlm compiled as `training.compile: true` compiles it, and
nanoGPT compiled as its train.py does by default.

Usage: python benchmarks/model.py [--threads 2] [--rounds 5] [--steps 5] [--skip-memory] [--system-malloc] [--no-compile]
"""
from __future__ import annotations
import argparse, dataclasses, json, math, os, platform, time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from scratchlm.core import ModelConfig, TrainingConfig, count_parameters, cpu_info, format_bytes, load_config
from scratchlm.performance import compile_model, compile_problem, keep_freed_memory, measure_in_subprocess
from scratchlm.model import TransformerLM, SinusoidalPositions
from scratchlm._fixtures import training_memory_probe
from scratchlm.trainer import make_optimizer


# ---------------------------------------------------------------- baselines
class EncoderLM(nn.Module):
    "The reference design's literal architecture: embedding + positions + nn.TransformerEncoder + Linear head."
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.embedding = nn.Embedding(c.vocab_size, c.d_model)
        self.learned = c.pos_encoding == 'learned'
        self.pos = nn.Embedding(c.block_size, c.d_model) if self.learned else SinusoidalPositions(c.d_model)
        self.scale = 1.0 if self.learned else math.sqrt(c.d_model)
        layer = nn.TransformerEncoderLayer(c.d_model, c.nhead, c.dim_feedforward, c.dropout, activation='gelu',
                                           batch_first=True, norm_first=c.norm_first, bias=c.bias)
        self.encoder = nn.TransformerEncoder(layer, c.num_layers, norm=nn.LayerNorm(c.d_model, bias=c.bias) if c.norm_first else None,
                                             enable_nested_tensor=False)
        self.fc = nn.Linear(c.d_model, c.vocab_size, bias=c.bias)
        if c.tie_weights: self.fc.weight = self.embedding.weight
        self.masks = {}

    def forward(self, ids, targets):
        T = ids.size(1)
        if T not in self.masks: self.masks[T] = nn.Transformer.generate_square_subsequent_mask(T)
        pos = torch.arange(T)
        x = self.embedding(ids) * self.scale + self.pos(pos)
        x = self.encoder(x, mask=self.masks[T], is_causal=True)
        logits = self.fc(x)
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


class NanoLayerNorm(nn.Module):
    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None
    def forward(self, x): return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)

class NanoAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_attn = nn.Linear(c.d_model, 3 * c.d_model, bias=c.bias)
        self.c_proj = nn.Linear(c.d_model, c.d_model, bias=c.bias)
        self.attn_dropout, self.resid_dropout = c.dropout, nn.Dropout(c.dropout)
        self.n_head, self.n_embd = c.nhead, c.d_model
    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=self.attn_dropout if self.training else 0, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))

class NanoMLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_fc = nn.Linear(c.d_model, c.dim_feedforward, bias=c.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(c.dim_feedforward, c.d_model, bias=c.bias)
        self.dropout = nn.Dropout(c.dropout)
    def forward(self, x): return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))

class NanoBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1, self.attn = NanoLayerNorm(c.d_model, c.bias), NanoAttention(c)
        self.ln_2, self.mlp = NanoLayerNorm(c.d_model, c.bias), NanoMLP(c)
    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))

class NanoGPT(nn.Module):
    "nanoGPT's GPT (learned positions, pre-norm, tied head), re-typed; dim_feedforward replaces the fixed 4 * n_embd."
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(c.vocab_size, c.d_model), wpe=nn.Embedding(c.block_size, c.d_model), drop=nn.Dropout(c.dropout),
            h=nn.ModuleList([NanoBlock(c) for _ in range(c.num_layers)]), ln_f=NanoLayerNorm(c.d_model, c.bias)))
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        for pn, p in self.named_parameters():
            if pn.endswith('c_proj.weight'): torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.num_layers))
    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None: torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding): torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
    def forward(self, idx, targets):
        t = idx.size(1)
        pos = torch.arange(0, t, dtype=torch.long)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h: x = block(x)
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x)
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)


class Ours(nn.Module):
    "TransformerLM with the (logits, loss) calling convention of the baselines."
    def __init__(self, c):
        super().__init__()
        self.model = TransformerLM(c)
    def forward(self, ids, targets): return self.model(ids, targets)[:2]


# ---------------------------------------------------------------- measurements
def gemm_gflops(n: int, repeats: int = 5) -> float:
    "Best FLOP/s (in GFLOP/s) of an n x n by n x n float32 matmul."
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9

def gemm_ceiling(sizes=(256, 512, 1024, 2048)) -> dict:
    return {n: gemm_gflops(n) for n in sizes}

def flops_per_token(c: ModelConfig, T: int) -> float:
    "Training FLOPs per token: 6 x matmul parameters (incl. the head) + 12 L d T for attention (PaLM appendix B)."
    ff_in = 2 * c.dim_feedforward if c.activation == 'swiglu' else c.dim_feedforward
    matmul_params = c.num_layers * (4 * c.d_model ** 2 + c.d_model * ff_in + c.dim_feedforward * c.d_model) + c.d_model * c.vocab_size
    return 6 * matmul_params + 12 * c.num_layers * c.d_model * T

TRAINING = TrainingConfig(learning_rate=1e-4, beta1=0.9, beta2=0.95, weight_decay=0.1)

def default_adamw(model):
    "What the baselines' own code builds on a CPU (nanoGPT's train.py fuses only on CUDA): PyTorch's default AdamW."
    return torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)

def scratchlm_optimizer(model):
    "What scratchlm's Trainer builds (`make_optimizer`): on a CPU, the fused AdamW kernel."
    return make_optimizer(model, TRAINING, torch.device('cpu'))

def make_step(model, batch, T, vocab, optimizer=default_adamw):
    opt = optimizer(model)
    g = torch.Generator().manual_seed(0)
    data = torch.randint(vocab, (batch, T + 1), generator=g)
    x, y = data[:, :-1].contiguous(), data[:, 1:].contiguous()
    def step():
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); opt.zero_grad(set_to_none=True)
        return loss.item()
    return step

def throughput(shape_name, c: ModelConfig, batch, T, rounds, steps, ceiling, compiled=False) -> dict:
    torch.manual_seed(0)
    # name -> (model, optimizer): scratchlm as its Trainer runs it, then with the baselines' default AdamW, so that
    # the model's share and the optimizer's share of the difference can be told apart
    builders = {'scratchlm': (Ours, scratchlm_optimizer), 'scratchlm, default AdamW': (Ours, default_adamw),
                'nn.TransformerEncoder': (EncoderLM, default_adamw), 'nanoGPT': (NanoGPT, default_adamw)}
    if compiled:                         # training.compile: true, and nanoGPT as its train.py runs it (compile=True)
        cpu = torch.device('cpu')
        builders['scratchlm compiled'] = (lambda c: compile_model(Ours(c).train(), cpu), scratchlm_optimizer)
        builders['nanoGPT compiled'] = (lambda c: compile_model(NanoGPT(c).train(), cpu), default_adamw)
    models = {k: f(c).train() for k, (f, _) in builders.items()}
    stepfns = {k: make_step(m, batch, T, c.vocab_size, builders[k][1]) for k, m in models.items()}
    for f in stepfns.values():
        for _ in range(3): f()                                          # warm-up (and compilation)
    times = {k: [] for k in models}
    names = list(models)
    for r in range(rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:      # rotate the order every round
            for _ in range(steps):
                t0 = time.perf_counter(); stepfns[k](); times[k].append(time.perf_counter() - t0)
    fpt = flops_per_token(c, T)
    out = {}
    for k in names:
        best, median = min(times[k]), sorted(times[k])[len(times[k]) // 2]
        tps = batch * T / best
        out[k] = dict(params=count_parameters(models[k]), ms_per_iter_best=best * 1e3, ms_per_iter_median=median * 1e3,
                      tokens_per_s_best=tps, achieved_gflops=tps * fpt / 1e9, mfu=tps * fpt / (ceiling * 1e9))
    return dict(shape=shape_name, config=dataclasses.asdict(c), batch=batch, seq_len=T, flops_per_token=fpt,
                steps_timed=rounds * steps, models=out,
                ratio_vs_encoder=out['scratchlm']['tokens_per_s_best'] / out['nn.TransformerEncoder']['tokens_per_s_best'],
                ratio_vs_nanogpt=out['scratchlm']['tokens_per_s_best'] / out['nanoGPT']['tokens_per_s_best'],
                model_only_ratio_vs_encoder=out['scratchlm, default AdamW']['tokens_per_s_best'] / out['nn.TransformerEncoder']['tokens_per_s_best'],
                model_only_ratio_vs_nanogpt=out['scratchlm, default AdamW']['tokens_per_s_best'] / out['nanoGPT']['tokens_per_s_best'],
                **({} if not compiled else dict(
                    compiled_ratio_vs_encoder=out['scratchlm compiled']['tokens_per_s_best'] / out['nn.TransformerEncoder']['tokens_per_s_best'],
                    compiled_ratio_vs_nanogpt=out['scratchlm compiled']['tokens_per_s_best'] / out['nanoGPT']['tokens_per_s_best'],
                    compiled_ratio_vs_nanogpt_compiled=out['scratchlm compiled']['tokens_per_s_best'] / out['nanoGPT compiled']['tokens_per_s_best'])))

def memory_table(c: ModelConfig, T: int, batch: int, threads: int) -> dict:
    rows = {}
    for impl in ('naive', 'sdpa', 'tiled'):
        for ckpt in (False, True):
            cfg = dataclasses.asdict(dataclasses.replace(c, attn_impl=impl, gradient_checkpointing=ckpt, block_size=max(T, c.block_size)))
            r = measure_in_subprocess(training_memory_probe, config=cfg, batch=batch, seq_len=T, threads=threads)
            rows[f'{impl}{"+ckpt" if ckpt else ""}'] = r['peak_bytes']
            print(f'  {impl:6s} checkpointing={ckpt!s:5s} peak above model {format_bytes(r["peak_bytes"])}', flush=True)
    best = min(rows, key=rows.get)
    return dict(seq_len=T, batch=batch, dropout=c.dropout, peak_bytes=rows, best=best,
                saving_vs_naive=1 - rows[best] / rows['naive'], saving_vs_sdpa=1 - rows[best] / rows['sdpa'])

def measure_throughput(a, nano: ModelConfig, seed: ModelConfig) -> dict:
    load_before = os.getloadavg()
    ceilings = [gemm_ceiling()]
    shapes = []
    for name, c, batch, T in [('nanoGPT CPU recipe', nano, 12, 64), ('seed default', seed, a.seed_batch, a.seed_seq)]:
        ceiling = max(max(d.values()) for d in ceilings)
        rounds = a.rounds if name.startswith('nano') else max(2, a.rounds // 2)
        res = throughput(name, c, batch, T, rounds, a.steps, ceiling, compiled=a.compiled)
        ceilings.append(gemm_ceiling())                                  # re-measure between shapes; keep the best
        shapes.append(res)
    ceiling = max(max(d.values()) for d in ceilings)
    for res in shapes:                                                   # MFU against the final (best) ceiling
        for m in res['models'].values(): m['mfu'] = m['achieved_gflops'] / ceiling

    print(f'\nfp32 GEMM ceiling (best square matmul, {a.threads} threads): {ceiling:.1f} GFLOP/s')
    print(f"{'shape':20s} {'model':24s} {'params':>9s} {'ms/iter':>8s} {'median':>8s} {'tokens/s':>9s} {'GFLOP/s':>8s} {'MFU':>6s}")
    for res in shapes:
        for k, m in res['models'].items():
            print(f"{res['shape']:20s} {k:24s} {m['params']:9d} {m['ms_per_iter_best']:8.1f} {m['ms_per_iter_median']:8.1f} "
                  f"{m['tokens_per_s_best']:9.0f} {m['achieved_gflops']:8.1f} {m['mfu']:6.1%}")
        print(f"{'':20s} scratchlm / nn.TransformerEncoder = {res['ratio_vs_encoder']:.3f}x, scratchlm / nanoGPT = {res['ratio_vs_nanogpt']:.3f}x "
              f"(batch {res['batch']} x T {res['seq_len']}, best of {res['steps_timed']} steps)")
        print(f"{'':20s} same optimizer (PyTorch's default AdamW): scratchlm / nn.TransformerEncoder = "
              f"{res['model_only_ratio_vs_encoder']:.3f}x, scratchlm / nanoGPT = {res['model_only_ratio_vs_nanogpt']:.3f}x")
        if 'compiled_ratio_vs_encoder' in res:
            print(f"{'':20s} compiled: scratchlm / nn.TransformerEncoder = {res['compiled_ratio_vs_encoder']:.3f}x, "
                  f"scratchlm / nanoGPT = {res['compiled_ratio_vs_nanogpt']:.3f}x, "
                  f"scratchlm / nanoGPT compiled = {res['compiled_ratio_vs_nanogpt_compiled']:.3f}x")
    print(f'load average (1, 5, 15 min) before: {load_before}, after: {os.getloadavg()}')
    cpu = cpu_info()
    print(f"CPU: {cpu['model']}, {', '.join(cpu['simd'])}; torch capability {cpu['torch_capability']}"
          f"{'' if a.compiled else '; compiled rows skipped: ' + (compile_problem(torch.device('cpu')) or '--no-compile')}")
    return dict(threads=a.threads, torch=torch.__version__, machine=platform.machine(), cpu=cpu, cpu_count=os.cpu_count(), kept_freed_memory=a.kept,
                compiled=a.compiled,
                when=time.strftime('%Y-%m-%d %H:%M:%S'), loadavg_before=load_before, loadavg_after=os.getloadavg(),
                gemm_ceiling_gflops=ceiling, gemm_measurements=[{str(k): v for k, v in d.items()} for d in ceilings], shapes=shapes)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--threads', type=int, default=2, help='torch.set_num_threads for every measurement (default 2)')
    p.add_argument('--rounds', type=int, default=5, help='round-robin rounds over the models')
    p.add_argument('--steps', type=int, default=5, help='timed steps per model per round')
    p.add_argument('--seed-batch', type=int, default=4, help='batch for the reference-design shape')
    p.add_argument('--seed-seq', type=int, default=128, help='sequence length for the reference-design shape')
    p.add_argument('--memory-seq', type=int, default=1024, help='sequence length of the memory table')
    p.add_argument('--skip-memory', action='store_true', help='keep the memory section of an existing --out file')
    p.add_argument('--skip-throughput', action='store_true', help='keep the throughput section of an existing --out file')
    p.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'model.json'))
    p.add_argument('--system-malloc', action='store_true', help="leave glibc's malloc defaults (see the docstring)")
    p.add_argument('--no-compile', action='store_true', help='skip the torch.compile rows (training.compile: true)')
    a = p.parse_args(argv)
    a.kept = False if a.system_malloc else keep_freed_memory()
    a.compiled = not a.no_compile and compile_problem(torch.device('cpu')) is None
    torch.set_num_threads(a.threads)

    nano = ModelConfig(vocab_size=65, d_model=128, nhead=4, num_layers=4, dim_feedforward=512, dropout=0.0, block_size=64,
                       norm_first=True, pos_encoding='learned', bias=False, tie_weights=True, attn_impl='sdpa')
    seed = dataclasses.replace(load_config('default').model, block_size=max(a.seed_seq, 256))
    print(f'threads={a.threads}, torch {torch.__version__}, {platform.processor() or platform.machine()}, freed memory kept: {a.kept}', flush=True)
    out = Path(a.out)
    result = json.loads(out.read_text()) if out.exists() else {}
    if not a.skip_throughput:   # one section per thread count, so runs at 1 and 2 threads can sit side by side
        result.setdefault('throughput', {})[f'{a.threads}_threads'] = measure_throughput(a, nano, seed)
    if not a.skip_memory:
        print(f'\nPeak memory, reference-design config, one forward + backward, batch 1, T={a.memory_seq} (fresh process each):', flush=True)
        result['memory'] = mem = memory_table(seed, a.memory_seq, 1, a.threads)
        mem['when'], mem['threads'] = time.strftime('%Y-%m-%d %H:%M:%S'), a.threads
        print(f"best: {mem['best']}, {mem['saving_vs_naive']:.0%} less than naive, {mem['saving_vs_sdpa']:.0%} less than sdpa (the default)")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1) + '\n')
    print(f'wrote {a.out}')

if __name__ == '__main__': main()
