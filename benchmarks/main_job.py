"""The main job, `scratchlm-train` with no arguments: wall time and validation bits per byte of candidate recipes.

    python benchmarks/main_job.py [--avx2] [--only NAME,...] [--samples 20]

Each candidate is the shipped `tiny` config plus overrides, run as a user runs it: `python -m scratchlm.cli train`
in a fresh process (tokenizer training, data preparation, training, evaluation, checkpoint and the closing
sample all count), into a fresh out_dir. After it ends (not timed), the best checkpoint writes `--samples`
stories from "Once upon a time" (seeded, temperature 0.8) and the script counts the stories that keep their
names: every name a story uses was introduced ("named X" / "called X") earlier in that story.
`--avx2` runs the candidates with PyTorch and oneDNN held to AVX2 kernels (ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2), the kind of 2-core machine the issue's targets name. The load average at each start
is recorded: timings taken under load say so. Adds its runs to benchmarks/results/main_job.json (a run of the same
name and kernels is replaced) and draws all of them, bits per byte against wall time, in main_job.png.
"""
import argparse, json, os, re, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# name -> overrides of the tiny config. 'shipped' is configs/tiny.yaml as it is; the others were the sweep.
CANDIDATES = {
    'shipped': [],
    # configs/tiny.yaml before the sweep: learned positions, dropout 0.1, AdamW, 800 steps (one epoch)
    'before-sweep': ['model.dropout=0.1', 'model.pos_encoding=learned', 'training.optimizer=adamw',
                     'training.learning_rate=2e-3', 'training.warmup_steps=50', 'training.max_steps=800'],
    'fp32-nodrop-400': ['model.dropout=0.0', 'training.max_steps=400', 'training.learning_rate=3e-3'],
    'rope-nodrop-400': ['model.dropout=0.0', 'model.pos_encoding=rope', 'training.max_steps=400',
                        'training.learning_rate=3e-3'],
    'muon-rope-300': ['model.dropout=0.0', 'model.pos_encoding=rope', 'training.max_steps=300',
                      'training.optimizer=muon', 'training.learning_rate=3e-3'],
    'muon-rope-400': ['model.dropout=0.0', 'model.pos_encoding=rope', 'training.max_steps=400',
                      'training.optimizer=muon', 'training.learning_rate=3e-3'],
    'muon-rope-200': ['model.dropout=0.0', 'model.pos_encoding=rope', 'training.max_steps=200',
                      'training.warmup_steps=20', 'training.optimizer=muon', 'training.learning_rate=3e-3'],
    'muon-rope-250': ['model.dropout=0.0', 'model.pos_encoding=rope', 'training.max_steps=250',
                      'training.warmup_steps=25', 'training.optimizer=muon', 'training.learning_rate=3e-3'],
    'muon-rope-ctx256-250': ['model.dropout=0.0', 'model.pos_encoding=rope', 'model.block_size=256',
                             'training.batch_size=16', 'training.max_steps=250', 'training.warmup_steps=25',
                             'training.optimizer=muon', 'training.learning_rate=3e-3'],
    'wide3-rope-300': ['model.dropout=0.0', 'model.pos_encoding=rope', 'model.d_model=192', 'model.nhead=6',
                       'model.num_layers=3', 'model.dim_feedforward=768', 'training.max_steps=300',
                       'training.learning_rate=3e-3'],
    'v2048-rope-300': ['model.dropout=0.0', 'model.pos_encoding=rope', 'tokenizer.vocab_size=2048',
                       'training.max_steps=300', 'training.learning_rate=3e-3'],
}


def names_kept(text: str, names) -> bool:
    "Every name the story uses was introduced ('named X' / 'called X') before its first use elsewhere."
    introduced = set()
    for m in re.finditer(r'(named |called )?\b([A-Z][a-z]+)\b', text):
        word = m.group(2)
        if word not in names: continue
        if m.group(1): introduced.add(word)
        elif word not in introduced: return False
    return bool(introduced)


def run(name, overrides, avx2, samples):
    out = Path(tempfile.mkdtemp(prefix=f'main_job_{name}_'))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if avx2: env.update(ATEN_CPU_CAPABILITY='avx2', ONEDNN_MAX_CPU_ISA='AVX2')
    cmd = [sys.executable, '-m', 'scratchlm.cli', 'train', '--quiet', *overrides, f'training.out_dir={out}']
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=out)
    seconds = time.perf_counter() - t0
    if r.returncode: return dict(name=name, overrides=overrides, error=r.stderr.strip().splitlines()[-1:])
    records = [json.loads(l) for l in (out / 'metrics.jsonl').read_text().splitlines()]
    evals = [x for x in records if 'val_bpb' in x]
    probe = f'''
import json, torch
from scratchlm import TransformerLM
m = TransformerLM.from_pretrained({str(out / 'best_model.pth')!r}).eval()
torch.manual_seed(0)
texts = [m.generate('Once upon a time', max_new_tokens=200, temperature=0.8, top_k=50) for _ in range({samples})]
print(json.dumps(texts))
'''
    g = subprocess.run([sys.executable, '-c', probe], env=env, capture_output=True, text=True)
    from scratchlm.core import _NAMES
    texts = json.loads(g.stdout.strip().splitlines()[-1]) if g.returncode == 0 else []
    stories_ = [t.split('The end.')[0] for t in texts]
    kept = sum(names_kept(s, set(_NAMES)) for s in stories_)
    return dict(name=name, overrides=overrides, seconds=seconds, load_at_start=load,
                steps=max(x['step'] for x in records), val_bpb=evals[-1]['val_bpb'],
                best_val_bpb=min(x['val_bpb'] for x in evals), bpb_curve=[(x['step'], x['val_bpb']) for x in evals],
                names_kept=f'{kept}/{len(stories_)}', sample=texts[0] if texts else g.stderr[-300:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--only', help='comma-separated candidate names (default: all)')
    ap.add_argument('--avx2', action='store_true', help='hold PyTorch and oneDNN to AVX2 kernels')
    ap.add_argument('--samples', type=int, default=20)
    ap.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results' / 'main_job.json'))
    a = ap.parse_args()
    from scratchlm.core import cpu_info
    names = a.only.split(',') if a.only else list(CANDIDATES)
    cpu = cpu_info()
    kernels = ('AVX2 (ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2)' if a.avx2
               else f"default ({cpu['torch_capability']})")
    old = json.loads(Path(a.out).read_text()) if Path(a.out).exists() else {}
    results = {(r['name'], r.get('kernels')): r for r in old.get('runs', [])}    # earlier runs are kept
    for name in names:
        r = dict(run(name, CANDIDATES[name], a.avx2, a.samples), kernels=kernels)
        results[name, kernels] = r
        if 'error' in r: print(f'{name:18} failed: {r["error"]}'); continue
        print(f"{name:18} {r['seconds']:7.1f} s  val bpb {r['val_bpb']:.4f} (best {r['best_val_bpb']:.4f})  "
              f"names kept {r['names_kept']}  steps {r['steps']}  load {r['load_at_start']:.1f}", flush=True)
    print(f"CPU: {cpu['model']}, {', '.join(cpu['simd'])}; {kernels} kernels")
    out = dict(old, cpu=cpu, when=time.strftime('%Y-%m-%d %H:%M:%S'), runs=list(results.values()))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for r in results.values():
        if 'error' in r: continue
        busy = r.get('timing', '').startswith('sweep')          # runs beside other jobs: their times do not hold
        ax.plot(r['seconds'], r['val_bpb'], 'x' if busy else 'o', color='C1' if 'AVX2' in r['kernels'] else 'C0')
        ax.annotate(f"{r['name']}{' (AVX2)' if 'AVX2' in r['kernels'] else ''}", (r['seconds'], r['val_bpb']),
                    fontsize=7)
    ax.axvline(150, ls=':', c='gray'); ax.axhline(0.16, ls=':', c='gray'); ax.axhline(0.113, ls='--', c='gray', lw=0.8)
    ax.set_xlabel('wall time of scratchlm-train (s); x: sweep runs beside other jobs')
    ax.set_ylabel('validation bits per byte')
    ax.set_title(f"main job candidates, {cpu['model']} ({cpu['cores']} cores); floor 0.113", fontsize=8)
    fig.tight_layout(); fig.savefig(Path(a.out).with_suffix('.png'), dpi=100)
    print('wrote', a.out, 'and', Path(a.out).with_suffix('.png'))


if __name__ == '__main__':
    main()
