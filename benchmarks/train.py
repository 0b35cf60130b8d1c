"""Mixed-precision benchmark: training-step time and peak memory of fp32 vs bf16 autocast at the seed's width.

    python benchmarks/train.py [--threads 2] [--repeats 3] [--out benchmarks/results/train.json]

Each configuration runs in a fresh process (so its peak RSS is its own), interleaved, best of `--repeats`;
the ratio bf16/fp32 is what to read. fp16 needs a CUDA GPU and is measured only where one is present.
"""
import argparse, json, platform, sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scratchlm.attention import measure_in_subprocess
from scratchlm.trainer import memory_probe


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--batch-size', type=int, default=8)
    ap.add_argument('--block-size', type=int, default=256)
    ap.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results' / 'train.json'))
    args = ap.parse_args()
    precisions = ['fp32', 'bf16'] + (['fp16'] if torch.cuda.is_available() else [])
    runs = {p: [] for p in precisions}
    for _ in range(args.repeats):                      # interleaved: noise hits both alike
        for p in precisions:
            runs[p].append(measure_in_subprocess(memory_probe, threads=args.threads, precision=p, batch_size=args.batch_size,
                                                 block_size=args.block_size, steps=3))
    best = {p: dict(step_seconds=min(r['step_seconds'] for r in rs), peak_bytes=min(r['peak_bytes'] for r in rs)) for p, rs in runs.items()}
    tokens = args.batch_size * args.block_size
    print(f"\nTransformerLM d_model=512, 8 layers, 8 heads, ff 1024, vocab 32000; batch {args.batch_size} x {args.block_size}; "
          f"{args.threads} threads; best of {args.repeats}")
    print(f"{'precision':10} {'step s':>8} {'tokens/s':>9} {'peak MiB':>9} {'speed vs fp32':>14}")
    for p, b in best.items():
        print(f"{p:10} {b['step_seconds']:8.3f} {tokens / b['step_seconds']:9.0f} {b['peak_bytes'] / 2**20:9.0f} "
              f"{best['fp32']['step_seconds'] / b['step_seconds']:13.2f}x")
    out = dict(machine=dict(python=platform.python_version(), torch=torch.__version__, threads=args.threads,
                            cpu=platform.processor() or platform.machine()),
               shape=dict(d_model=512, num_layers=8, nhead=8, dim_feedforward=1024, vocab_size=32000,
                          batch_size=args.batch_size, block_size=args.block_size),
               best=best, runs=runs, bf16_speedup=best['fp32']['step_seconds'] / best['bf16']['step_seconds'],
               bf16_memory_ratio=best['bf16']['peak_bytes'] / best['fp32']['peak_bytes'])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"\nbf16 speed-up {out['bf16_speedup']:.2f}x, peak memory {out['bf16_memory_ratio']:.2f}x of fp32; wrote {args.out}")


if __name__ == '__main__': main()
