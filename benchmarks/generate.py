"""Generation benchmark: tokens per second with and without the KV cache.

    python benchmarks/generate.py [--new-tokens 256 1024] [--models tiny seed] [--repeats 3] [--threads 1]
                                  [--out benchmarks/results/generate.json]

Models: `tiny` is configs/tiny.yaml's model (d_model 128, 4 layers, vocab 1024); `seed` is the reference design's width
(configs/default.yaml: d_model 512, 8 layers, 8 heads, feed-forward 1024, vocab 32000). Both get block_size 2048 so
that the context never slides, and random weights (seed 0): the time per token does not depend on the weights.
Greedy decoding from a random 16-token prompt, no stop token, so every run produces exactly the asked number of tokens.

The uncached baseline is the textbook loop: one full forward pass over the whole context per new token, keeping the
last position's logits (as in the LLMs-from-scratch measurement). Cached and uncached runs alternate (interleaved) and
each reports its best of `--repeats`; an uncached run longer than `--long-seconds` is not repeated (the 1024-token
uncached run at the reference design's width takes minutes). Both decodes must give the same tokens; the JSON records it.
"""
import argparse, dataclasses, json, os, platform, sys, time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scratchlm.core import cpu_info, load_config, count_parameters
from scratchlm.model import TransformerLM
from scratchlm.generation import decode_steps, SamplingConfig

PROMPT_TOKENS, BLOCK_SIZE = 16, 2048


def build(name: str) -> TransformerLM:
    cfg = load_config('tiny' if name == 'tiny' else None)
    torch.manual_seed(0)
    return TransformerLM(dataclasses.replace(cfg.model, vocab_size=cfg.tokenizer.vocab_size, block_size=BLOCK_SIZE, dropout=0.0)).eval()


def timed_decode(model, prompt, new_tokens, use_cache):
    t0 = time.perf_counter()
    tokens = [t for t, _, _ in decode_steps(model, prompt, max_new_tokens=new_tokens, sampling=SamplingConfig(temperature=0),
                                            use_cache=use_cache)]
    return time.perf_counter() - t0, torch.stack(tokens, 1)


def measure(model, new_tokens, repeats, long_seconds):
    g = torch.Generator().manual_seed(1)
    prompt = torch.randint(0, model.config.vocab_size, (1, PROMPT_TOKENS), generator=g)
    timed_decode(model, prompt, 8, True); timed_decode(model, prompt, 8, False)            # warm-up
    cached, plain, same = [], [], True
    for r in range(repeats):
        secs, cached_tokens = timed_decode(model, prompt, new_tokens, True); cached.append(secs)
        uncached = 'not repeated (the first run was long)'
        if not plain or max(plain) < long_seconds:
            secs, plain_tokens = timed_decode(model, prompt, new_tokens, False); plain.append(secs)
            same = same and torch.equal(cached_tokens, plain_tokens)
            uncached = f'{secs:.2f}s'
        print(f'  repeat {r + 1}: cached {cached[-1]:.2f}s, uncached {uncached}', flush=True)
    return dict(new_tokens=new_tokens, prompt_tokens=PROMPT_TOKENS, cached_seconds=min(cached), uncached_seconds=min(plain),
                cached_runs=len(cached), uncached_runs=len(plain),
                cached_tokens_per_s=new_tokens / min(cached), uncached_tokens_per_s=new_tokens / min(plain),
                speedup=min(plain) / min(cached), same_tokens=same)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--models', nargs='+', default=['tiny', 'seed'], choices=['tiny', 'seed'])
    ap.add_argument('--new-tokens', nargs='+', type=int, default=[256, 1024])
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--long-seconds', type=float, default=120.0, help='do not repeat an uncached run that took longer')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results' / 'generate.json'))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.models:
        model = build(name)
        for n in args.new_tokens:
            print(f'{name}, {n} new tokens', flush=True)
            rows.append(dict(model=name, params=count_parameters(model), d_model=model.config.d_model,
                             num_layers=model.config.num_layers, vocab_size=model.config.vocab_size,
                             **measure(model, n, args.repeats, args.long_seconds)))
    print(f"\n{'model':6} {'params':>8} {'new tokens':>10} {'cached tok/s':>13} {'uncached tok/s':>15} {'speedup':>8} {'same tokens':>12}")
    for r in rows:
        print(f"{r['model']:6} {r['params'] / 1e6:7.1f}M {r['new_tokens']:10} {r['cached_tokens_per_s']:13.1f} "
              f"{r['uncached_tokens_per_s']:15.1f} {r['speedup']:7.1f}x {str(r['same_tokens']):>12}")
    out = dict(benchmark='generate', command=' '.join(['python', 'benchmarks/generate.py', *sys.argv[1:]]),
               machine=dict(platform=platform.platform(), cpu=cpu_info(), cpus=os.cpu_count(),
                            torch_threads=args.threads, torch=torch.__version__),
               note='CPU; random weights; greedy; block_size 2048 (no sliding); uncached = full forward per token; '
                    'best of the repeats, cached and uncached interleaved',
               results=rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
