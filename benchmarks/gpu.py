"""GPU figures of issue 17: utilization and data wait during training, tokens/s and MFU (eager and compiled, bf16 and
fp32), peak memory (plain, checkpointing, chunked loss) and batch-1 decoding (growing, static and compiled cache).

    python benchmarks/gpu.py [--out benchmarks/results/gpu.json] [--only WORD ...] [--budget 330]
    python benchmarks/gpu.py --device cpu --quick          # a dry run of every code path on a CPU, small shapes

Two models: `seed`, the reference design's configs/default.yaml (8 x 512, 8 heads, feed-forward 1024, vocabulary
32,000, block 256, dropout 0.25) and `124m`, configs/gpt2-small.yaml (12 x 768, 12 heads, block 1024, vocabulary
50,304, tied embeddings). Training data are random token ids written straight to a token file (no tokenizer is
trained; the time per token of a step does not depend on which tokens it reads); decoding uses random weights.

Sections run in order of priority, each timed and recorded on its own (a failing one records its error and the rest
go on); the JSON (and a markdown summary next to it, .md) is rewritten after every section, so a run cut short still
leaves its results. A section whose estimated cost exceeds what is left of `--budget` seconds is skipped and
recorded as skipped; `--only` reruns chosen sections. One line is printed per measurement.

- `train util`: `Trainer.fit` (the loop `scratchlm-train` runs) in a child process, stopped after about
  `--util-seconds`; the parent samples GPU utilization (NVML through `torch.cuda.utilization()`, else
  `nvidia-smi` polling) between the end of the child's warm-up steps and its last step; the child times the
  trainer's batch fetches (data wait share).
- `train`: the same trainer in this process: tokens/s, MFU and data wait over timed steps after warm-up.
  MFU = tokens/s x FLOPs per token / peak, FLOPs per token by nanoGPT's `estimate_mfu` (scratchlm's
  `flops_per_token`): 6 N + 12 L d T, with N the parameters that multiply (position tables and an untied input
  embedding are lookups and not counted; a tied embedding counts once, as the output layer). Peaks from the data sheet: H100/H200 SXM, dense bf16
  989 TFLOP/s, fp32 67 TFLOP/s (fp32 training here uses full fp32 matrix products, not TF32).
- `memory`: peak CUDA memory of one bf16 training forward + backward at batch 8 x 1024 of the seed width, above
  the weights, plain / gradient checkpointing / chunked loss / both (on a CPU: resident memory in a fresh process,
  fp32).
- `decode`: greedy batch-1 decoding, tokens/s, `use_cache=True` (growing cache) / 'static' / 'compiled'.
"""
import argparse, dataclasses, gc, json, os, platform, subprocess, sys, tempfile, threading, time, traceback
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scratchlm.core import load_config
from scratchlm.model import TransformerLM
from scratchlm.trainer import Trainer
from scratchlm.data import TokenDataset
from scratchlm.tokenizer import TOKENS_FORMAT, token_meta_path
from scratchlm.generation import decode_steps, SamplingConfig
from scratchlm.performance import flops_per_token

CONFIGS = {'seed': 'default', '124m': 'gpt2-small'}
PEAKS = {'bf16': 989e12, 'fp32': 67e12}      # H100 / H200 SXM data sheet, dense
RESULTS: dict = {}
ARGS = None


# ---------------------------------------------------------------------------------------------------- helpers
def sync():
    if ARGS.device.startswith('cuda'): torch.cuda.synchronize()


def write_results():
    out = Path(ARGS.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(RESULTS, indent=1, default=str))
    out.with_suffix('.md').write_text(summary())


def section(name: str, estimate_s: float):
    "Run the decorated function now as section `name` (unless filtered or over budget); record it; write the JSON."
    def run(fn):
        if ARGS.only and not any(o in name for o in ARGS.only): return fn
        left = ARGS.deadline - time.perf_counter()
        if estimate_s > left:
            RESULTS[name] = dict(skipped=f'estimated {estimate_s:.0f} s, {left:.0f} s of the budget left; '
                                         f'rerun with --only "{name}"')
            print(f'[skip] {name}: {RESULTS[name]["skipped"]}', flush=True)
            write_results()
            return fn
        t0 = time.perf_counter()
        torch._dynamo.reset()                        # each section compiles afresh, for its own shapes
        try:
            out = fn() or {}
            RESULTS[name] = dict(ok=True, seconds=round(time.perf_counter() - t0, 1), **out)
            print(f'[ok]   {name} ({RESULTS[name]["seconds"]} s)', flush=True)
        except Exception as e:
            RESULTS[name] = dict(ok=False, seconds=round(time.perf_counter() - t0, 1),
                                 error=f'{type(e).__name__}: {e}', traceback=traceback.format_exc()[-3000:])
            print(f'[FAIL] {name}: {type(e).__name__}: {e}\n{traceback.format_exc()[-1500:]}', flush=True)
        finally:
            gc.collect()                                 # trainers and decoders hold reference cycles
            if ARGS.device.startswith('cuda'): torch.cuda.empty_cache()
        write_results()
        return fn
    return run


def model_config(name: str, **changes):
    "The model section of the named config; with --quick, shrunk to seconds on a CPU (same options)."
    m = load_config(CONFIGS[name]).model
    if ARGS.quick:
        m = dataclasses.replace(m, d_model=64, nhead=4, num_layers=2, dim_feedforward=128, vocab_size=512,
                                block_size=min(m.block_size, 128) // (2 if name == 'seed' else 1))
    return dataclasses.replace(m, **changes)


def peak_flops(precision: str):
    "The data-sheet peak of this GPU for `precision`, or None where it is not an H100/H200 (or --peak-* given)."
    given = getattr(ARGS, f'peak_{precision}')
    if given: return given * 1e12
    name = torch.cuda.get_device_name() if ARGS.device.startswith('cuda') else ''
    return PEAKS[precision] if any(g in name for g in ('H100', 'H200')) else None


def token_file(path: Path, vocab: int, n_tokens: int, seed: int = 0) -> Path:
    "Random token ids in a token file with its sidecar (what `write_token_file` writes, without a tokenizer)."
    if path.exists(): return path
    path.parent.mkdir(parents=True, exist_ok=True)
    dtype = np.uint16 if vocab <= 2**16 else np.uint32
    np.random.default_rng(seed).integers(0, vocab, n_tokens).astype(dtype).tofile(path)
    token_meta_path(path).write_text(json.dumps(dict(format=TOKENS_FORMAT, version=1, dtype=np.dtype(dtype).name,
                                                     tokens=n_tokens, documents=1, layout='random token ids')))
    return path


def make_trainer(name: str, precision: str, compile: bool, work: Path, batch_size=None, accumulation=None,
                 max_steps: int = 10**6):
    "A Trainer of the named config on random tokens, on ARGS.device, evaluating only at the end."
    cfg = load_config(CONFIGS[name])
    cfg.model = model_config(name)
    t = cfg.training
    cfg.training = dataclasses.replace(
        t, device=ARGS.device, precision=precision, compile=compile, max_steps=max_steps,
        batch_size=batch_size or t.batch_size, gradient_accumulation_steps=accumulation or t.gradient_accumulation_steps,
        epochs=10**6, eval_interval=10**9, eval_steps=2, log_interval=5, warmup_steps=10, out_dir=str(work / f'run-{name}'),
        overwrite=True)   # the eager and the compiled utilization runs of a config share its folder
    B, V = cfg.model.block_size, cfg.model.vocab_size
    need = (cfg.training.batch_size * cfg.training.gradient_accumulation_steps * 64 + 1) * B   # 64 steps' windows
    train = TokenDataset(token_file(work / f'{name}-{V}-train.bin', V, need), B, mode='sequential')
    valid = TokenDataset(token_file(work / f'{name}-{V}-valid.bin', V, 4 * cfg.training.batch_size * B + 1, seed=1),
                         B, mode='sequential')
    torch.manual_seed(0)
    return Trainer(TransformerLM(cfg.model), cfg, train, valid)


class FetchTimer:
    "Wraps a trainer's `micro_batch` and adds up the time spent fetching batches (the data wait)."
    def __init__(self, trainer):
        self.seconds, self.real = 0.0, trainer.micro_batch
        trainer.micro_batch = self

    def __call__(self, step, micro):
        t0 = time.perf_counter()
        out = self.real(step, micro)
        self.seconds += time.perf_counter() - t0
        return out


def measure_training(trainer, warmup: int, steps: int, precision: str) -> dict:
    "Tokens/s, MFU and data-wait share of `steps` train_step calls after `warmup` (compilation happens there)."
    fetch = FetchTimer(trainer)
    t0 = time.perf_counter()
    for _ in range(warmup): trainer.train_step()
    sync()
    warm_s = time.perf_counter() - t0
    fetch.seconds = 0.0
    t0 = time.perf_counter()
    for _ in range(steps): loss = trainer.train_step()['loss']
    sync()
    dt = time.perf_counter() - t0
    tps = steps * trainer.tokens_per_step / dt
    fpt, peak = flops_per_token(trainer.model.config, trainer.model), peak_flops(precision)
    return dict(tokens_per_s=round(tps), step_s=round(dt / steps, 4), warmup_steps=warmup, warmup_s=round(warm_s, 1),
                timed_steps=steps, tokens_per_step=trainer.tokens_per_step, flops_per_token=fpt,
                peak_flops=peak, mfu=round(tps * fpt / peak, 4) if peak else None,
                data_wait_share=round(fetch.seconds / dt, 5), last_loss=round(loss, 4),
                compiled=trainer.engine is not trainer.model)


# ----------------------------------------------------------------------------------------- utilization sampling
class UtilSampler:
    "GPU utilization (%) sampled every `interval` s in a thread: NVML via torch.cuda.utilization, else nvidia-smi."
    def __init__(self, interval=0.1):
        self.samples, self.interval, self.stop = [], interval, threading.Event()
        self.method, self.proc = None, None
        if not ARGS.device.startswith('cuda'): return
        try:
            torch.cuda.utilization()
            self.method = 'NVML (torch.cuda.utilization)'
        except Exception as e:
            self.nvml_error = f'{type(e).__name__}: {e}'
            self.method = 'nvidia-smi --query-gpu=utilization.gpu'

    def _nvml(self):
        while not self.stop.is_set():
            self.samples.append((time.time(), torch.cuda.utilization()))
            time.sleep(self.interval)

    def _smi(self):
        idx = str(torch.cuda.current_device())
        self.proc = subprocess.Popen(['nvidia-smi', '-i', idx, '--query-gpu=utilization.gpu',
                                      '--format=csv,noheader,nounits', f'--loop-ms={int(self.interval * 1000)}'],
                                     stdout=subprocess.PIPE, text=True)
        for line in self.proc.stdout:
            if self.stop.is_set(): break
            if line.strip().isdigit(): self.samples.append((time.time(), int(line)))

    def __enter__(self):
        if self.method:
            self.thread = threading.Thread(target=self._nvml if self.method.startswith('NVML') else self._smi,
                                           daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.proc: self.proc.terminate()

    def mean(self, t0, t1):
        xs = [u for t, u in self.samples if t0 <= t <= t1]
        return (round(sum(xs) / len(xs), 1), len(xs)) if xs else (None, 0)


def child_train(a):
    "In the child process: fit for about `a.seconds` after warm-up; print the step times and the data wait."
    work = Path(a.work)
    trainer = make_trainer(a.child_train, a.precision, a.compile, work)
    fetch = FetchTimer(trainer)
    marks = {}

    class Clock:
        def on_step_end(self, tr):
            step = tr.state.step
            if step == a.warmup:
                sync(); marks.update(t_start=time.time(), fetch_start=fetch.seconds, step_start=step)
            if step > a.warmup and time.time() - marks['t_start'] >= a.seconds:
                tr.total_steps = step                           # ends fit after this step (it evaluates and saves)
            if step >= a.warmup:
                sync(); marks.update(t_end=time.time(), fetch_end=fetch.seconds, step_end=step)
    trainer.callbacks.append(Clock())
    t0 = time.time()
    trainer.fit(progress=False)
    timed = marks['t_end'] - marks['t_start']
    steps = marks['step_end'] - marks['step_start']
    tps = steps * trainer.tokens_per_step / timed if timed > 0 else None
    fpt, peak = flops_per_token(trainer.model.config, trainer.model), peak_flops(a.precision)
    print('@@RESULT@@' + json.dumps(dict(
        t_start=marks['t_start'], t_end=marks['t_end'], fit_start=t0, fit_end=time.time(), timed_steps=steps,
        tokens_per_step=trainer.tokens_per_step, tokens_per_s=round(tps) if tps else None,
        mfu=round(tps * fpt / peak, 4) if tps and peak else None,
        data_wait_share=round((marks['fetch_end'] - marks['fetch_start']) / timed, 5) if timed > 0 else None,
        batch=f'{trainer.config.training.batch_size} x {trainer.train_data.block_size} x '
              f'{trainer.config.training.gradient_accumulation_steps} accumulation',
        compiled=trainer.engine is not trainer.model, precision=a.precision)), flush=True)


def util_run(name, precision, compile, seconds, warmup, work):
    "Run the child trainer, sampling utilization; the mean over its timed steps and over the whole fit."
    cmd = [sys.executable, str(Path(__file__).resolve()), '--child-train', name, '--precision', precision,
           '--seconds', str(seconds), '--warmup', str(warmup), '--work', str(work), '--device', ARGS.device]
    if compile: cmd.append('--compile')
    if ARGS.quick: cmd.append('--quick')
    for p in ('bf16', 'fp32'):
        if getattr(ARGS, f'peak_{p}'): cmd += [f'--peak-{p}', str(getattr(ARGS, f'peak_{p}'))]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    with UtilSampler() as sampler:
        t0 = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 300)
        t1 = time.time()
    lines = [l for l in proc.stdout.splitlines() if l.startswith('@@RESULT@@')]
    if proc.returncode or not lines:
        raise RuntimeError(f'child exit {proc.returncode}: {proc.stderr[-2000:]}')
    r = json.loads(lines[-1][len('@@RESULT@@'):])
    util, n = sampler.mean(r['t_start'], r['t_end'])
    util_fit, n_fit = sampler.mean(r['fit_start'], r['fit_end'])
    r.update(gpu_util_pct=util, util_samples=n, gpu_util_whole_fit_pct=util_fit, util_samples_whole_fit=n_fit,
             util_method=sampler.method, process_wall_s=round(t1 - t0, 1))
    if getattr(sampler, 'nvml_error', None): r['nvml_error'] = sampler.nvml_error
    print(f"  {name} {precision}{' compiled' if compile else ''}: GPU utilization {util}% over the timed steps "
          f"({n} samples, {sampler.method}), {util_fit}% over the whole fit; {r['tokens_per_s']} tokens/s, "
          f"MFU {r['mfu']}, data wait {r['data_wait_share']}", flush=True)
    return r


# ---------------------------------------------------------------------------------------------------- decoding
def decode_speed(name, new_tokens, modes, work=None):
    "Greedy batch-1 tokens/s of `decode_steps` for each `use_cache` mode (second run timed: the first compiles)."
    cfg = model_config(name, dropout=0.0)
    torch.manual_seed(0)
    model = TransformerLM(cfg).to(ARGS.device).eval()
    prompt = torch.randint(cfg.vocab_size, (1, 16), device=ARGS.device)
    out, tokens = {}, {}
    for mode in modes:
        runs = []
        for _ in range(2):
            sync(); t0 = time.perf_counter()
            toks = [t for t, _, _ in decode_steps(model, prompt, max_new_tokens=new_tokens,
                                                  sampling=SamplingConfig(temperature=0), use_cache=mode)]
            sync(); runs.append(time.perf_counter() - t0)
        tokens[mode] = torch.stack(toks, 1).cpu()
        key = {True: 'cache', 'static': 'static', 'compiled': 'compiled'}[mode]
        out[key] = dict(tokens_per_s=round(new_tokens / runs[1], 1), first_run_s=round(runs[0], 2))
        if mode == 'compiled':
            from scratchlm.generation import _static_decoder
            out[key]['actually_compiled'] = _static_decoder(model, 1, True).compiled
        print(f'  decode {name} batch 1, {new_tokens} new tokens, use_cache={mode!r}: '
              f"{out[key]['tokens_per_s']} tokens/s (first run {runs[0]:.1f} s)", flush=True)
    base = out.get('cache', {}).get('tokens_per_s')
    for key, r in out.items():
        if base: r['speedup_vs_cache'] = round(r['tokens_per_s'] / base, 2)
    ref = tokens[modes[0]]
    out['same_tokens'] = {str(m): bool(torch.equal(tokens[m], ref)) for m in modes}
    out.update(new_tokens=new_tokens, prompt_tokens=16, dtype='float32', params=sum(p.numel() for p in model.parameters()))
    return out


# -------------------------------------------------------------------------------------------------------- memory
def cuda_step_memory(cfg, batch, T):
    "Peak CUDA memory of one bf16 forward + backward above the weights (gradients included)."
    torch.manual_seed(0)
    model = TransformerLM(cfg).to(ARGS.device).train()
    ids = torch.randint(cfg.vocab_size, (batch, T + 1), device=ARGS.device)
    def step():
        with torch.autocast('cuda', dtype=torch.bfloat16): loss = model(ids[:, :-1], ids[:, 1:]).loss
        loss.backward()
    step(); model.zero_grad(set_to_none=True); sync()              # warm-up: kernels and workspaces chosen
    torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
    step(); sync()
    peak = torch.cuda.max_memory_allocated() - base
    del model, ids; torch.cuda.empty_cache()
    return peak


def summary() -> str:
    "The markdown summary of what has been measured so far (never fails: a formatting error becomes its text)."
    try: return _summary()
    except Exception as e: return f'(no summary: {type(e).__name__}: {e})'


def pct(x, digits=1):
    return '' if x is None else f'{x:.{digits}%}'


def _summary() -> str:
    env = RESULTS.get('environment', {})
    lines = [f"# benchmarks/gpu.py on {env.get('gpu') or env.get('device')}",
             '', f"torch {env.get('torch')}, CUDA {env.get('cuda')}, {env.get('when')}; "
                 f"peaks for MFU: {env.get('peaks')}", '']
    util = {k: v for k, v in RESULTS.items() if k.startswith('train util') and v.get('ok')}
    if util:
        lines += ['| training run (Trainer.fit, child process) | GPU utilization | tokens/s | MFU | data wait |',
                  '|---|---|---|---|---|']
        for k, v in util.items():
            lines.append(f"| {k[len('train util '):]}, {v['batch']} | {v['gpu_util_pct']}% | {v['tokens_per_s']} | "
                         f"{pct(v['mfu'])} | {pct(v['data_wait_share'], 2)} |")
        lines.append('')
    train = {k: v for k, v in RESULTS.items() if k.startswith('train ') and not k.startswith('train util')
             and v.get('ok')}
    if train:
        lines += ['| training step | step s | tokens/s | MFU | data wait |', '|---|---|---|---|---|']
        for k, v in train.items():
            lines.append(f"| {k[6:]} | {v['step_s']} | {v['tokens_per_s']:,} | {pct(v['mfu'])} | "
                         f"{pct(v['data_wait_share'], 2)} |")
        lines.append('')
    mem = RESULTS.get('memory', {})
    if mem.get('ok'):
        lines += [f"Peak memory of one training step above the weights, {mem['shape']}: " +
                  ', '.join(f'{k} {v:,.0f} MiB' for k, v in mem['peak_mib'].items()), '']
    dec = {k: v for k, v in RESULTS.items() if k.startswith('decode') and v.get('ok')}
    if dec:
        lines += ['| batch-1 decoding | new tokens | mode | tokens/s | vs growing cache |', '|---|---|---|---|---|']
        for k, v in dec.items():
            for mode in ('cache', 'static', 'compiled'):
                if mode in v:
                    lines.append(f"| {k[7:]} | {v['new_tokens']} | {mode} | {v[mode]['tokens_per_s']} | "
                                 f"{v[mode].get('speedup_vs_cache', '')}x |")
        lines.append('')
    bad = [k for k, v in RESULTS.items() if isinstance(v, dict) and (v.get('ok') is False or 'skipped' in v)]
    if bad: lines += ['Failed or skipped: ' + '; '.join(f"{k} ({RESULTS[k].get('error') or RESULTS[k].get('skipped')})"
                                                          for k in bad), '']
    return '\n'.join(lines)


# ---------------------------------------------------------------------------------------------------------- main
def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--device', default='cuda')
    ap.add_argument('--quick', action='store_true', help='small shapes and few steps: a dry run of every code path')
    ap.add_argument('--only', nargs='+', default=[], help='run only the sections whose names contain one of these')
    ap.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results' / 'gpu.json'))
    ap.add_argument('--budget', type=float, help='seconds (default 330; none with --quick): sections that would '
                    'overrun it are skipped')
    ap.add_argument('--util-seconds', type=float, default=20, help='timed part of each utilization run')
    ap.add_argument('--peak-bf16', type=float, help='TFLOP/s, instead of the H100/H200 data sheet')
    ap.add_argument('--peak-fp32', type=float, help='TFLOP/s, instead of the H100/H200 data sheet')
    # the child process of a utilization run
    ap.add_argument('--child-train', help=argparse.SUPPRESS)
    ap.add_argument('--precision', default='bf16', help=argparse.SUPPRESS)
    ap.add_argument('--compile', action='store_true', help=argparse.SUPPRESS)
    ap.add_argument('--seconds', type=float, default=20, help=argparse.SUPPRESS)
    ap.add_argument('--warmup', type=int, default=3, help=argparse.SUPPRESS)
    ap.add_argument('--work', help=argparse.SUPPRESS)
    ARGS = a = ap.parse_args()
    ARGS.deadline = time.perf_counter() + (a.budget or (1e9 if a.quick else 330))
    cuda = a.device.startswith('cuda')
    if cuda and not torch.cuda.is_available(): sys.exit('no CUDA GPU is visible; use --device cpu --quick for a dry run')
    if a.child_train: return child_train(a)
    if Path(a.out).exists() and a.only:                        # --only: keep the other sections' results
        RESULTS.update(json.loads(Path(a.out).read_text()))
    work = Path(tempfile.mkdtemp(prefix='scratchlm-gpu-'))
    q = a.quick
    RESULTS['environment'] = dict(
        torch=torch.__version__, cuda=torch.version.cuda, python=platform.python_version(), device=a.device,
        gpu=torch.cuda.get_device_name() if cuda else None, cpus=os.cpu_count(), quick=q,
        when=time.strftime('%Y-%m-%d %H:%M:%S'),
        peaks=dict(bf16=peak_flops('bf16'), fp32=peak_flops('fp32'),
                   source='data sheet, dense: H100/H200 SXM bf16 989 TFLOP/s, fp32 67 TFLOP/s'),
        mfu_flops='nanoGPT estimate_mfu: 6 N + 12 L d T, N = parameters that multiply (no lookup tables)',
        data='random token ids written to a token file (no tokenizer training); random weights for decoding')
    print(RESULTS['environment'], flush=True)
    write_results()
    small = dict(steps=2, warmup=1) if q else None

    @section('memory', 15 if cuda else 60)
    def _():
        seed = model_config('seed')
        batch, T = (2, 128) if q else (8, 1024)
        settings = {'plain': {}, 'checkpointing': dict(gradient_checkpointing=True),
                    'chunked loss 1024': dict(loss_chunk_size=1024),
                    'checkpointing + chunked loss': dict(gradient_checkpointing=True, loss_chunk_size=1024)}
        peaks = {}
        for label, change in settings.items():
            cfg = dataclasses.replace(seed, block_size=T, **change)
            if cuda: peaks[label] = cuda_step_memory(cfg, batch, T) / 2**20
            else:
                from scratchlm.performance import measure_in_subprocess
                import scratchlm._fixtures as fixtures
                peaks[label] = measure_in_subprocess(fixtures.training_memory_probe, threads=2,
                                                     config=dataclasses.asdict(cfg), batch=batch, seq_len=T)['peak_bytes'] / 2**20
            print(f'  memory {label}: {peaks[label]:,.0f} MiB', flush=True)
        return dict(peak_mib={k: round(v, 1) for k, v in peaks.items()},
                    shape=f'seed width, vocabulary {seed.vocab_size}, batch {batch} x {T}, '
                          + ('bf16 autocast, CUDA allocator' if cuda else 'fp32, resident memory (fresh process)'))

    for name in ('seed', '124m'):
        for precision in ('bf16', 'fp32'):
            if precision == 'bf16' and not cuda and not q: continue
            @section(f'train {name} {precision}', 25 if cuda else 60)
            def _():
                batch, accum = {'seed': (32, 4), '124m': (16, 1)}[name]
                tr = make_trainer(name, precision, False, work, batch_size=2 if q else batch,
                                  accumulation=1 if q else accum)
                steps = small or dict(warmup=3, steps=10 if precision == 'bf16' else 4)
                r = measure_training(tr, steps['warmup'], steps['steps'], precision)
                print(f"  train {name} {precision}: {r['tokens_per_s']:,} tokens/s, step {r['step_s']} s, MFU {r['mfu']}, "
                      f"data wait {r['data_wait_share']:.2%}", flush=True)
                return r

    for name, n in (('seed', 200), ('124m', 500)):
        @section(f'decode {name}', 20 if cuda else 60)
        def _():
            return decode_speed(name, 20 if q else n, (True, 'static'))

    for name in ('seed', '124m'):
        @section(f"train util {name} {'bf16' if cuda else 'fp32'}", a.util_seconds + 40)
        def _():
            return util_run(name, 'bf16' if cuda else 'fp32', False, 3 if q else a.util_seconds, 1 if q else 3, work)

    @section('decode seed compiled', 90)
    def _():
        return decode_speed('seed', 20 if q else 200, (True, 'compiled'))

    @section(f"train 124m {'bf16' if cuda else 'fp32'} compiled", 120)
    def _():
        tr = make_trainer('124m', 'bf16' if cuda else 'fp32', True, work, batch_size=2 if q else 16, accumulation=1)
        r = measure_training(tr, **(small or dict(warmup=3, steps=10)), precision='bf16' if cuda else 'fp32')
        print(f"  train 124m compiled: {r['tokens_per_s']:,} tokens/s, MFU {r['mfu']}, warm-up {r['warmup_s']} s", flush=True)
        return r

    @section(f"train seed {'bf16' if cuda else 'fp32'} compiled", 120)
    def _():
        tr = make_trainer('seed', 'bf16' if cuda else 'fp32', True, work, batch_size=2 if q else 32,
                          accumulation=1 if q else 4)
        r = measure_training(tr, **(small or dict(warmup=3, steps=10)), precision='bf16' if cuda else 'fp32')
        print(f"  train seed compiled: {r['tokens_per_s']:,} tokens/s, MFU {r['mfu']}, warm-up {r['warmup_s']} s", flush=True)
        return r

    @section('decode 124m compiled', 90)
    def _():
        return decode_speed('124m', 20 if q else 500, (True, 'compiled'))

    @section(f"train util 124m {'bf16' if cuda else 'fp32'} compiled", a.util_seconds + 150)
    def _():
        return util_run('124m', 'bf16' if cuda else 'fp32', True, 3 if q else a.util_seconds, 1 if q else 3, work)

    @section(f"train util seed {'bf16' if cuda else 'fp32'} compiled", a.util_seconds + 100)
    def _():
        return util_run('seed', 'bf16' if cuda else 'fp32', True, 3 if q else a.util_seconds, 1 if q else 3, work)

    print('\n' + summary(), flush=True)
    print(f'wrote {a.out} and {Path(a.out).with_suffix(".md")}')


if __name__ == '__main__':
    main()
