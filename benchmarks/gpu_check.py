"""The CUDA paths that a CPU machine cannot run, checked on one GPU: attention kernels, SDPA backends, the KV cache,
training in fp32 / bf16 / fp16 (GradScaler, overflow skipping), activation offload, attention and checkpointing
memory, NCCL with DDP and FSDP2 (one rank), and generation speed.

    python benchmarks/gpu_check.py [--out benchmarks/results/gpu_check.json] [--quick]

Every check runs on its own; a failing one is reported with its error and the rest go on. The script prints a
line per check and writes all figures to JSON. It exits non-zero if any check failed. `--quick` runs the
correctness checks only (what `--device cpu` dry runs use: `python benchmarks/gpu_check.py --device cpu --quick`
runs the same code on a CPU, skipping what needs CUDA).
"""
import argparse, contextlib, dataclasses, json, math, platform, socket, sys, tempfile, time, traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scratchlm.core import DistributedConfig, ModelConfig, load_config
from scratchlm.attention import attend
from scratchlm.model import TransformerLM
from scratchlm.trainer import Trainer, build_training
from scratchlm._fixtures import tiny_config

RESULTS: dict = {}
ONLY: list = []     # --only: run the checks whose names contain one of these




def check(name):
    "Run the decorated function at once, record its result or its error."
    def run(fn):
        if ONLY and not any(o in name for o in ONLY): return fn
        t0 = time.perf_counter()
        try:
            out = fn()
            RESULTS[name] = dict(ok=True, seconds=round(time.perf_counter() - t0, 2), **(out or {}))
            print(f'[ok]   {name} ({RESULTS[name]["seconds"]} s): {json.dumps(out, default=str)[:600]}', flush=True)
        except Exception as e:
            RESULTS[name] = dict(ok=False, seconds=round(time.perf_counter() - t0, 2), error=f'{type(e).__name__}: {e}',
                                 traceback=traceback.format_exc()[-3000:])
            print(f'[FAIL] {name}: {type(e).__name__}: {e}\n{traceback.format_exc()[-1500:]}', flush=True)
        return fn
    return run


def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--device', default='cuda')
    ap.add_argument('--quick', action='store_true', help='correctness checks only')
    ap.add_argument('--only', nargs='+', default=[], help='run only the checks whose names contain one of these words')
    ap.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results' / 'gpu_check.json'))
    a = ap.parse_args()
    ONLY.extend(a.only)
    dev = torch.device(a.device)
    if dev.type == 'cuda' and dev.index is None and torch.cuda.is_available(): dev = torch.device('cuda', torch.cuda.current_device())
    cuda = dev.type == 'cuda'
    if cuda and not torch.cuda.is_available(): sys.exit('no CUDA GPU is visible; use --device cpu for a dry run')
    RESULTS['environment'] = dict(torch=torch.__version__, cuda=torch.version.cuda, python=platform.python_version(),
                                  gpu=torch.cuda.get_device_name() if cuda else None,
                                  capability=torch.cuda.get_device_capability() if cuda else None,
                                  when=time.strftime('%Y-%m-%d %H:%M:%S'))
    print(RESULTS['environment'], flush=True)
    work = Path(tempfile.mkdtemp(prefix='gpu_check_'))

    @check('attention implementations agree (fp32, forward and backward)')
    def _():
        torch.manual_seed(0)
        B, H, T, D = 2, 4, 300, 32
        q, k, v = (torch.randn(B, H, T, D, device=dev, requires_grad=True) for _ in range(3))
        pad = torch.ones(B, T, dtype=torch.bool, device=dev); pad[1, -37:] = False         # right padding in row 1
        out = {}
        for masked in (False, True):
            res = {}
            for impl in ('naive', 'tiled', 'sdpa'):
                for t in (q, k, v): t.grad = None
                y = attend(q, k, v, impl, key_padding_mask=pad if masked else None, causal=True)
                y.sum().backward()
                res[impl] = (y.detach(), q.grad.clone(), k.grad.clone(), v.grad.clone())
            diffs = {impl: max((a - b).abs().max().item() for a, b in zip(res[impl], res['naive'])) for impl in ('tiled', 'sdpa')}
            out['padded' if masked else 'causal'] = diffs
            assert max(diffs.values()) < 1e-4, diffs
        return out

    @check('tiled attention gradcheck (float64)')
    def _():
        from scratchlm.attention import tiled_attention
        torch.manual_seed(0)
        q, k, v = (torch.randn(1, 2, 13, 8, device=dev, dtype=torch.float64, requires_grad=True) for _ in range(3))
        ok = torch.autograd.gradcheck(lambda q, k, v: tiled_attention(q, k, v, causal=True, block_size=4), (q, k, v))
        return dict(gradcheck=ok)

    @check('SDPA backends reached by attend() and by the model')
    def _():
        if not cuda: return dict(skipped='needs CUDA')
        from torch.nn.attention import sdpa_kernel, SDPBackend
        torch.manual_seed(0)
        out = {}
        for dtype in (torch.bfloat16, torch.float16, torch.float32):
            q, k, v = (torch.randn(4, 8, 512, 64, device=dev, dtype=dtype) for _ in range(3))
            pad = torch.ones(4, 512, dtype=torch.bool, device=dev); pad[0, :100] = False
            for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH):
                for masked in (False, True):
                    key = f'{str(dtype).split(".")[1]} {backend.name} {"padding mask" if masked else "causal"}'
                    try:
                        with sdpa_kernel(backend): attend(q, k, v, 'sdpa', key_padding_mask=pad if masked else None)
                        sync(dev); out[key] = 'ran'
                    except RuntimeError as e: out[key] = 'refused: ' + str(e).split('\n')[0][:120]
        # the model's own forward + backward in bf16 with only the flash kernel allowed
        cfg = ModelConfig(vocab_size=1000, d_model=256, nhead=4, num_layers=2, dim_feedforward=1024, dropout=0.1, block_size=256)
        model = TransformerLM(cfg).to(dev)
        ids = torch.randint(0, 1000, (4, 257), device=dev)
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION), torch.autocast('cuda', dtype=torch.bfloat16):
            model(ids[:, :-1], ids[:, 1:]).loss.backward()
        sync(dev)
        out['model bf16 training step, flash kernel only'] = 'ran'
        assert out['bfloat16 FLASH_ATTENTION causal'] == 'ran', out
        return out

    @check('KV cache: step-by-step logits equal the full forward')
    def _():
        torch.manual_seed(0)
        for pos in ('learned', 'rope'):
            cfg = ModelConfig(vocab_size=500, d_model=128, nhead=4, num_layers=3, dim_feedforward=256, dropout=0.0, block_size=64,
                              pos_encoding=pos, norm_first=True)
            model = TransformerLM(cfg).to(dev).eval()
            ids = torch.randint(0, 500, (2, 40), device=dev)
            with torch.no_grad():
                full = model(ids).logits
                o = model(ids[:, :10], use_cache=True)
                logits, cache = [o.logits], o.kv_cache
                for t in range(10, 40):
                    o = model(ids[:, t:t + 1], kv_cache=cache, use_cache=True)
                    logits.append(o.logits); cache = o.kv_cache
            diff = (torch.cat(logits, 1) - full).abs().max().item()
            assert diff < 1e-4, (pos, diff)
        return dict(max_abs_diff=diff)

    def train_tiny(precision, steps=60, poison_at=None, **extra):
        cfg = tiny_config(work / f'tiny_{precision}_{poison_at}', max_steps=steps, precision=precision, **extra)
        cfg.training.device = str(dev)
        model, train_data, valid_data, tok, cfg = build_training(cfg, progress=False)
        trainer = Trainer(model, cfg, train_data, valid_data, tokenizer=tok)
        poison = {'on': False}
        if poison_at is not None:   # one step's gradient becomes infinite: fp16's GradScaler must skip that step
            trainer.model.fc.weight.register_hook(lambda g: g * math.inf if poison['on'] else g)
            class Poison:
                def on_step_end(self, tr): poison['on'] = tr.state.step == poison_at - 1
            trainer.callbacks.append(Poison())
        t0 = time.perf_counter(); metrics = trainer.fit(progress=False); sync(dev)
        losses = [r['loss'] for r in trainer.history if 'loss' in r]
        skips = [r['skipped_steps'] for r in trainer.history if 'loss' in r]   # cumulative, one record per step
        finite = all(torch.isfinite(p).all().item() for p in trainer.model.parameters())
        return dict(first_loss=losses[0], last_loss=losses[-1], val_loss=metrics.get('val_loss'), steps=trainer.state.step,
                    skipped_steps=trainer.state.skipped_steps, weights_finite=finite, fit_seconds=round(time.perf_counter() - t0, 2),
                    grad_scale=trainer.scaler.get_scale() if trainer.scaler.is_enabled() else None,
                    skipped_at=[i + 1 for i in range(len(skips)) if skips[i] > (skips[i - 1] if i else 0)])

    for precision in ('fp32', 'bf16', 'fp16'):
        @check(f'Trainer on {dev.type}, {precision}: 60 steps of the tiny test recipe')
        def _():
            if precision == 'fp16' and not cuda: return dict(skipped='fp16 needs CUDA')
            r = train_tiny(precision)
            assert r['last_loss'] < r['first_loss'] - 0.5 and r['weights_finite'], r
            return r

    @check('fp16 GradScaler: a poisoned step is skipped and counted, training goes on')
    def _():
        r = train_tiny('fp16' if cuda else 'fp32', steps=40, poison_at=20)    # on a CPU (a dry run): the same skip without a scaler
        assert 20 in r['skipped_at'] and r['weights_finite'] and r['last_loss'] < r['first_loss'], r
        return r

    @check('activation offload and checkpointing: peak CUDA memory of a training step (reference-design width, T=1024)')
    def _():
        if not cuda: return dict(skipped='needs CUDA')
        base = dataclasses.replace(load_config('default').model, block_size=1024)
        ids = torch.randint(0, base.vocab_size, (8, 1025), device=dev)
        out = {}
        for name, ckpt, offload in [('plain', False, False), ('checkpointing', True, False), ('offload', False, True),
                                ('checkpointing+offload', True, True)]:
            torch.manual_seed(0)
            model = TransformerLM(dataclasses.replace(base, gradient_checkpointing=ckpt)).to(dev).train()
            ctx = torch.autograd.graph.save_on_cpu(pin_memory=True) if offload else contextlib.nullcontext()
            times = []
            for i in range(3):
                torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); start = torch.cuda.memory_allocated()
                t0 = time.perf_counter()
                with ctx, torch.autocast('cuda', dtype=torch.bfloat16): loss = model(ids[:, :-1], ids[:, 1:]).loss
                loss.backward(); torch.cuda.synchronize(); times.append(time.perf_counter() - t0)
                peak = torch.cuda.max_memory_allocated() - start
                model.zero_grad(set_to_none=True)
            out[name] = dict(peak_above_weights_mib=round(peak / 2**20), step_ms=round(1e3 * min(times[1:]), 1))
            del model; torch.cuda.empty_cache()
        out['checkpointing_saving'] = 1 - out['checkpointing']['peak_above_weights_mib'] / out['plain']['peak_above_weights_mib']
        out['offload_saving'] = 1 - out['offload']['peak_above_weights_mib'] / out['plain']['peak_above_weights_mib']
        # the 32k-vocabulary head (logits, log-softmax and their gradients) is outside both levers and sets much of the peak
        assert out['checkpointing_saving'] > 0 and out['offload_saving'] > 0, out
        return out

    @check('attention memory on CUDA: peak of one forward + backward (1 x 8 heads x 64, fp32)')
    def _():
        if not cuda: return dict(skipped='needs CUDA')
        out = {}
        for T in (1024, 4096, 8192):
            for impl in ('naive', 'tiled', 'sdpa'):
                q, k, v = (torch.randn(1, 8, T, 64, device=dev, requires_grad=True) for _ in range(3))
                torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); start = torch.cuda.memory_allocated()
                t0 = time.perf_counter(); attend(q, k, v, impl, causal=True).sum().backward(); torch.cuda.synchronize()
                out[f'{impl} T={T}'] = dict(peak_mib=round((torch.cuda.max_memory_allocated() - start) / 2**20, 1),
                                            ms=round(1e3 * (time.perf_counter() - t0), 1))
                del q, k, v
        return out

    @check('NCCL process group (1 rank): all-reduce, DDP and FSDP2 match a plain model')
    def _():
        import torch.distributed as dist
        from scratchlm.distributed import wrap_model
        with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
        store = dist.TCPStore('127.0.0.1', port, 1, is_master=True)
        dist.init_process_group('nccl' if cuda else 'gloo', store=store, rank=0, world_size=1, **(dict(device_id=dev) if cuda else {}))
        try:
            t = torch.arange(4.0, device=dev); dist.all_reduce(t)
            assert t.tolist() == [0.0, 1.0, 2.0, 3.0]
            cfg = ModelConfig(vocab_size=256, d_model=64, nhead=4, num_layers=2, dim_feedforward=128, dropout=0.0, block_size=32)
            ids = torch.randint(0, 256, (8, 33), device=dev)
            def run(strategy):
                torch.manual_seed(0)
                model = TransformerLM(cfg).to(dev)
                engine = wrap_model(model, DistributedConfig(strategy=strategy), 'fp32', dev)
                opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
                for _ in range(5):
                    engine(ids[:, :-1], ids[:, 1:]).loss.backward(); opt.step(); opt.zero_grad()
                return torch.cat([(p.full_tensor() if hasattr(p, 'full_tensor') else p).detach().flatten() for p in model.parameters()])
            single = run('single')
            diffs = {s: (run(s) - single).abs().max().item() for s in ('ddp', 'fsdp')}
            assert max(diffs.values()) < 1e-5, diffs
            return dict(backend=dist.get_backend(), max_abs_diff_after_5_steps=diffs)
        finally: dist.destroy_process_group()

    if not a.quick:
        @check('mixed precision speed at the reference-design width (benchmarks/train.py --device cuda)')
        def _():
            if not cuda: return dict(skipped='needs CUDA')
            import subprocess
            out = work / 'train_cuda.json'
            subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'train.py'), '--device', 'cuda', '--repeats', '2',
                            '--batch-size', '16', '--block-size', '512', '--out', str(out)], check=True, timeout=300)
            r = json.loads(out.read_text())
            return dict(best=r['best'], bf16_speedup=r['bf16_speedup'], fp16_speedup=r['fp16_speedup'], batch='16 x 512')

        @check('generation: KV cache against none (reference-design width, random weights, greedy)')
        def _():
            torch.manual_seed(0)
            cfg = dataclasses.replace(load_config('default').model, block_size=1024, dropout=0.0)
            model = TransformerLM(cfg).to(dev).eval()
            prompt = torch.randint(0, cfg.vocab_size, (1, 16), device=dev)
            out = {}
            for use_cache in (True, False):
                model.generate(input_ids=prompt, max_new_tokens=8, temperature=0, use_cache=use_cache)   # warm-up
                sync(dev); t0 = time.perf_counter()
                ids = model.generate(input_ids=prompt, max_new_tokens=512, temperature=0, use_cache=use_cache)
                sync(dev); s = time.perf_counter() - t0
                out['cached' if use_cache else 'uncached'] = dict(tokens_per_s=round(512 / s, 1), ids=ids[0, -8:].tolist())
            assert out['cached']['ids'] == out['uncached']['ids'], out
            out['speedup'] = out['cached']['tokens_per_s'] / out['uncached']['tokens_per_s']
            return out

    failed = [k for k, v in RESULTS.items() if isinstance(v, dict) and v.get('ok') is False]
    RESULTS['summary'] = dict(passed=sum(1 for v in RESULTS.values() if isinstance(v, dict) and v.get('ok')), failed=failed)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(RESULTS, indent=1, default=str) + '\n')
    print(f"\n{RESULTS['summary']['passed']} passed, {len(failed)} failed; wrote {a.out}")
    sys.exit(1 if failed else 0)


if __name__ == '__main__': main()
