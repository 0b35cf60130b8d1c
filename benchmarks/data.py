"""Data pipeline benchmark: read+tokenize throughput per file format, `prepare` time with 1 and 2 workers,
and the share of a Trainer step spent fetching its batches (the trainer reads memmap windows in the training
process; no DataLoader workers are involved).

    python benchmarks/data.py [--data-dir ../shared/data] [--out benchmarks/results/data.json]

Prints a table and writes JSON. Figures are relative to runs in the same process on the same machine.
"""
import argparse, json, os, platform, shutil, sys, tempfile, time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scratchlm.core import cpu_info, load_config
from scratchlm.data import read_documents, write_documents, prepare, TokenDataset
from scratchlm.tokenizer import train_tokenizer, tokenizer_from_dict


def read_tokenize(path, tok):
    tok = tokenizer_from_dict(tok.to_dict())            # a fresh copy: no encode cache carried over from an earlier run
    t0 = time.perf_counter()
    reader = read_documents(path)
    n_tokens = sum(len(ids) for ids in tok.encode_batch(list(reader)))
    secs = time.perf_counter() - t0
    return secs, reader.stats.characters, n_tokens


def data_wait_share(train_path, valid_path, tok, steps=30):
    "Seconds the Trainer spends fetching batches (memmap windows -> tensors) vs its whole step, tiny config."
    from scratchlm.model import TransformerLM
    from scratchlm.trainer import Trainer
    cfg = load_config('tiny')
    cfg.model.vocab_size = tok.vocab_size
    cfg.training.out_dir = tempfile.mkdtemp()
    torch.manual_seed(0)
    trainer = Trainer(TransformerLM(cfg.model), cfg, TokenDataset(train_path, cfg.model.block_size, mode='sequential'),
                      TokenDataset(valid_path, cfg.model.block_size, mode='sequential'), tokenizer=tok)
    fetch = [0.0]
    real_fetch = trainer.micro_batch
    def timed_fetch(step, micro):
        t0 = time.perf_counter(); out = real_fetch(step, micro); fetch[0] += time.perf_counter() - t0
        return out
    trainer.micro_batch = timed_fetch
    for _ in range(3): trainer.train_step()             # warm-up
    fetch[0] = 0.0
    t0 = time.perf_counter()
    for _ in range(steps): trainer.train_step()
    return fetch[0], time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data-dir', default=str(ROOT.parent / 'shared' / 'data'))
    ap.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results' / 'data.json'))
    ap.add_argument('--vocab-size', type=int, default=8192)
    args = ap.parse_args()
    guten = Path(args.data_dir) / 'gutenberg'
    work = Path(tempfile.mkdtemp(prefix='scratchlm-bench-data-'))
    results = dict(machine=dict(cpus=os.cpu_count(), cpu=cpu_info(), python=platform.python_version(), torch=torch.__version__))
    try:
        t0 = time.perf_counter()
        tok = train_tokenizer(read_documents(sorted((guten / 'valid').glob('*.txt'))), vocab_size=args.vocab_size)
        results['tokenizer'] = dict(vocab_size=tok.vocab_size, train_seconds=time.perf_counter() - t0, trained_on='gutenberg/valid')

        # the same documents (paragraphs of gutenberg/test) in four formats
        docs = list(read_documents(guten / 'test'))
        fmt_rows = []
        for ext in ('txt', 'csv', 'parquet', 'arrow'):
            path = write_documents(docs, work / f'docs.{ext}')
            best = min((read_tokenize(path, tok) for _ in range(2)), key=lambda r: r[0])
            secs, chars, n_tokens = best
            mb = sum(len(d.encode()) for d in docs) / 1e6
            fmt_rows.append(dict(format=ext, file_mb=path.stat().st_size / 1e6, text_mb=mb, seconds=secs,
                                 mb_per_s=mb / secs, tokens_per_s=n_tokens / secs))
        results['read_tokenize'] = fmt_rows

        prep_rows = []
        for workers in (1, 2):
            shutil.rmtree(work / 'cache', ignore_errors=True)
            t0 = time.perf_counter()
            prepared = prepare(guten / 'train', tok, work / 'cache', valid_paths=guten / 'valid', num_workers=workers, progress=False)
            secs = time.perf_counter() - t0
            prep_rows.append(dict(workers=workers, seconds=secs, train_tokens=prepared.summary['train']['tokens'],
                                  text_mb=sum(p.stat().st_size for p in (guten / 'train').glob('*.txt')) / 1e6))
        t0 = time.perf_counter()
        cached = prepare(guten / 'train', tok, work / 'cache', valid_paths=guten / 'valid', num_workers=2, progress=False)
        prep_rows.append(dict(workers='cached', seconds=time.perf_counter() - t0, train_tokens=cached.summary['train']['tokens']))
        results['prepare_gutenberg_train'] = prep_rows

        try:
            wait, total = data_wait_share(prepared.train_path, prepared.valid_path, tok)
            results['data_wait'] = dict(wait_seconds=wait, step_seconds=total, share=wait / total)
        except ImportError as e:
            results['data_wait'] = dict(skipped=f'model not available: {e}')
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nread + tokenize (gutenberg/test paragraphs, our BPE {tok.vocab_size}, 1 process)")
    print(f"{'format':8} {'file MB':>8} {'MB/s':>7} {'tokens/s':>10}")
    for r in fmt_rows: print(f"{r['format']:8} {r['file_mb']:8.1f} {r['mb_per_s']:7.2f} {r['tokens_per_s']:10,.0f}")
    print("\nprepare gutenberg/train (+ valid)")
    for r in prep_rows: print(f"workers={r['workers']!s:7} {r['seconds']:7.1f} s  {r['train_tokens']:,} train tokens")
    dw = results['data_wait']
    if 'share' in dw: print(f"\ndata wait: {dw['share']:.2%} of step time ({dw['wait_seconds']:.3f}s of {dw['step_seconds']:.2f}s)")
    else: print(f"\ndata wait: {dw['skipped']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f'\nwrote {args.out}')


if __name__ == '__main__': main()
