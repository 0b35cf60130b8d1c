"""Mixed-precision benchmark: training-step time and peak memory of fp32 vs bf16 autocast at the reference design's width.

    python benchmarks/train.py [--threads 2] [--repeats 3] [--device cpu|cuda] [--out benchmarks/results/train.json]

Each configuration runs in fresh processes, interleaved, best of `--repeats`: one for the time, with freed memory
kept as the Trainer keeps it on a CPU, and one for the peak RSS, with glibc handing freed blocks back at once so
the peak tracks live tensors. The ratio bf16/fp32 is what to read. fp16 needs a CUDA GPU and is measured only
where one is present.
"""
import argparse, json, platform, sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scratchlm.core import cpu_info
from scratchlm.performance import measure_in_subprocess
from scratchlm._fixtures import memory_probe


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--batch-size', type=int, default=8)
    ap.add_argument('--block-size', type=int, default=256)
    ap.add_argument('--device', default='cpu', help="'cpu' or 'cuda' (on a GPU the peak is the CUDA allocator's)")
    ap.add_argument('--out', default=None, help='default: benchmarks/results/train.json, or train_cuda.json with --device cuda')
    args = ap.parse_args()
    args.out = args.out or str(ROOT / 'benchmarks' / 'results' / ('train_cuda.json' if args.device == 'cuda' else 'train.json'))
    if args.device == 'cuda' and not torch.cuda.is_available(): sys.exit('--device cuda: no CUDA GPU is visible here')
    precisions = ['fp32', 'bf16'] + (['fp16'] if args.device == 'cuda' else [])
    runs = {p: [] for p in precisions}
    memory_runs = {p: [] for p in precisions}
    shape = dict(precision=None, batch_size=args.batch_size, block_size=args.block_size, steps=3, device=args.device)
    for _ in range(args.repeats):                      # interleaved: noise hits both alike
        for p in precisions:
            shape['precision'] = p
            runs[p].append(measure_in_subprocess(memory_probe, threads=args.threads, hand_back_freed_memory=False, keep_memory=True, **shape))
            if args.device == 'cuda': memory_runs[p].append(runs[p][-1])      # the CUDA allocator's peak needs no second process
            else: memory_runs[p].append(measure_in_subprocess(memory_probe, threads=args.threads, **shape))
    best = {p: dict(step_seconds=min(r['step_seconds'] for r in runs[p]), peak_bytes=min(r['peak_bytes'] for r in memory_runs[p]))
            for p in precisions}
    tokens = args.batch_size * args.block_size
    print(f"\nTransformerLM d_model=512, 8 layers, 8 heads, ff 1024, vocab 32000; batch {args.batch_size} x {args.block_size}; "
          f"{args.threads} threads; best of {args.repeats}")
    print(f"{'precision':10} {'step s':>8} {'tokens/s':>9} {'peak MiB':>9} {'speed vs fp32':>14}")
    for p, b in best.items():
        print(f"{p:10} {b['step_seconds']:8.3f} {tokens / b['step_seconds']:9.0f} {b['peak_bytes'] / 2**20:9.0f} "
              f"{best['fp32']['step_seconds'] / b['step_seconds']:13.2f}x")
    out = dict(machine=dict(python=platform.python_version(), torch=torch.__version__, threads=args.threads,
                            cpu=cpu_info(), device=args.device,
                            gpu=torch.cuda.get_device_name() if args.device == 'cuda' else None),
               shape=dict(d_model=512, num_layers=8, nhead=8, dim_feedforward=1024, vocab_size=32000,
                          batch_size=args.batch_size, block_size=args.block_size),
               best=best, runs=runs, memory_runs=memory_runs, bf16_speedup=best['fp32']['step_seconds'] / best['bf16']['step_seconds'],
               bf16_memory_ratio=best['bf16']['peak_bytes'] / best['fp32']['peak_bytes'],
               fp16_speedup=best['fp32']['step_seconds'] / best['fp16']['step_seconds'] if 'fp16' in best else None)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"\nbf16 speed-up {out['bf16_speedup']:.2f}x, peak memory {out['bf16_memory_ratio']:.2f}x of fp32; wrote {args.out}")


if __name__ == '__main__': main()
