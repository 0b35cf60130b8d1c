"""Distributed scaling on this machine: the tiny recipe's training step in 1 process x N threads vs N processes
x 1 thread (DDP on gloo) at the same global batch, and the time of one gradient all-reduce.

    python benchmarks/distributed.py [--procs 2] [--steps 10] [--repeats 3]

On a 2-core CPU the processes share the cores one process would use, so expect no speed-up: what this shows is
the price of coordination. On a GPU machine each rank has its own device (run the same script there).
Every process keeps freed memory (`keep_freed_memory`, as the Trainer does on a CPU), so malloc treats both
setups alike.
"""
import argparse, json, platform, sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scratchlm.core import cpu_info
from scratchlm.performance import measure_in_subprocess
import scratchlm.distributed as D
import scratchlm._fixtures as fixtures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--procs', type=int, default=2)
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--batch-size', type=int, default=32, help='global batch (sequences of the tiny recipe)')
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results' / 'distributed.json'))
    args = ap.parse_args()
    single, multi = [], []
    for _ in range(args.repeats):                     # interleaved
        single.append(measure_in_subprocess(fixtures.step_timing, hand_back_freed_memory=False, steps=args.steps, batch_size=args.batch_size,
                                            num_threads=args.procs))
        multi.append(D.run_processes(fixtures.step_timing, world_size=args.procs, steps=args.steps, batch_size=args.batch_size, num_threads=1)[0])
    s = min(r['step_seconds'] for r in single); m = min(r['step_seconds'] for r in multi)
    comm = min(r['allreduce_seconds'] for r in multi)
    tokens = args.batch_size * 128
    print(f"\ntiny recipe ({single[0]['parameters']:,} parameters), global batch {args.batch_size} x 128 tokens, best of {args.repeats}")
    print(f"{'setup':32} {'step s':>8} {'tokens/s':>9}")
    print(f"{f'1 process x {args.procs} threads':32} {s:8.3f} {tokens / s:9.0f}")
    print(f"{f'{args.procs} processes x 1 thread (DDP)':32} {m:8.3f} {tokens / m:9.0f}")
    print(f"all-reduce of the gradients: {comm * 1e3:.1f} ms per step ({comm / m:.1%} of the DDP step)")
    print(f"speed of DDP relative to threads: {s / m:.2f}x")
    out = dict(single=single, ddp=multi, single_step=s, ddp_step=m, allreduce=comm, ddp_speed_ratio=s / m,
               machine=dict(torch=torch.__version__, python=platform.python_version(), cuda=torch.cuda.is_available(), cpu=cpu_info()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True); Path(args.out).write_text(json.dumps(out, indent=1))
    print(f'wrote {args.out}')


if __name__ == '__main__': main()
