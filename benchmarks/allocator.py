"""What keeping freed memory (`keep_freed_memory`, which the Trainer applies on a CPU) is worth: training steps
with glibc's default malloc against steps with freed memory kept for reuse, in interleaved fresh processes.

    python benchmarks/allocator.py [--threads 2] [--repeats 3] [--steps 10]

Two shapes: nanoGPT's CPU recipe (4 layers, 128 wide, vocab 65, batch 12 x 64; no block above glibc's 32 MiB
mmap ceiling) and the reference design's width (8 layers, 512 wide, vocab 32000, batch 4 x 128; its logits, their gradient
and the head's take 64 MiB each, which glibc always maps afresh). Read the ratio of the median step times;
page faults and kernel time per step say why. Peak RSS is read in the same processes (freed memory kept stays
resident, so expect it a little higher).
"""
import argparse, json, os, platform, sys, time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scratchlm.core import cpu_info
from scratchlm.performance import measure_in_subprocess, malloc_tuned_by_environment
from scratchlm._fixtures import memory_probe

SHAPES = {'nanoGPT CPU recipe': dict(d_model=128, num_layers=4, vocab_size=65, batch_size=12, block_size=64),
          'reference-design width': dict(d_model=512, num_layers=8, vocab_size=32000, batch_size=4, block_size=128)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--repeats', type=int, default=3, help='fresh processes per setting and shape, interleaved')
    ap.add_argument('--steps', type=int, default=10, help='training steps per process (the first is not timed)')
    ap.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results' / 'allocator.json'))
    args = ap.parse_args()
    if malloc_tuned_by_environment(): sys.exit('MALLOC_*_ or GLIBC_TUNABLES is set: unset it, this benchmark compares malloc settings itself')
    results = {}
    for name, shape in SHAPES.items():
        runs = {'default': [], 'kept': []}
        for _ in range(args.repeats):
            for setting in runs:
                runs[setting].append(measure_in_subprocess(memory_probe, threads=args.threads, hand_back_freed_memory=False,
                                                           keep_memory=setting == 'kept', steps=args.steps, **shape))
        best = {k: dict(median_step_seconds=min(r['median_step_seconds'] for r in rs),
                        faults_per_step=min(r['faults_per_step'] for r in rs),
                        system_seconds_per_step=min(r['system_seconds_per_step'] for r in rs),
                        peak_bytes=max(r['peak_bytes'] for r in rs)) for k, rs in runs.items()}
        results[name] = dict(shape=shape, runs=runs, best=best, applied=runs['kept'][0]['kept_freed_memory'],
                             speedup=best['default']['median_step_seconds'] / best['kept']['median_step_seconds'],
                             peak_ratio=best['kept']['peak_bytes'] / best['default']['peak_bytes'])
    print(f"\n{args.threads} threads, {args.steps} steps per process, best of {args.repeats} interleaved fresh processes")
    print(f"{'shape':20} {'freed memory':>13} {'ms/step':>8} {'faults/step':>12} {'kernel ms/step':>15} {'peak MiB':>9}")
    for name, r in results.items():
        for k, b in r['best'].items():
            print(f"{name:20} {'returned' if k == 'default' else 'kept':>13} {b['median_step_seconds'] * 1e3:8.1f} {b['faults_per_step']:12.0f} "
                  f"{b['system_seconds_per_step'] * 1e3:15.2f} {b['peak_bytes'] / 2**20:9.0f}")
        print(f"{'':20} kept / returned: {r['speedup']:.2f}x faster, peak {r['peak_ratio']:.2f}x")
    out = dict(machine=dict(python=platform.python_version(), torch=torch.__version__, threads=args.threads,
                            cpu=cpu_info(), cpu_count=os.cpu_count()),
               when=time.strftime('%Y-%m-%d %H:%M:%S'), loadavg=os.getloadavg(), steps=args.steps, repeats=args.repeats,
               shapes=results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + '\n')
    print(f'wrote {args.out}')


if __name__ == '__main__': main()
