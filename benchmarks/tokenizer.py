"""Tokenizer benchmark: our byte-level BPE against sentencepiece and (if installed) Hugging Face `tokenizers`.

On the first `--train-mb` MB of Gutenberg-283 train and the whole valid split, for each vocabulary size:
training time and peak memory, encoding throughput with 1 and 2 processes, and bytes per token on valid.
Every measurement runs in a fresh forked process (so peak memory is per run), all tokenizers in the same run,
`--repeats` times; the table shows the median and the JSON keeps every repeat. Another job on the machine slows wall-clock
times, so the ratio to sentencepiece is the median of ratios within each repeat, and CPU seconds are shown too.

    python benchmarks/tokenizer.py                     # writes benchmarks/results/tokenizer.json
    python benchmarks/tokenizer.py --vocab 1000 --repeats 1 --train-mb 2   # a quick smoke run
"""
from __future__ import annotations
import argparse, io, json, multiprocessing as mp, os, platform, resource, statistics, sys, time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from scratchlm.tokenizer import (DEFAULT_PATTERN, EOT, GPT2_PATTERN, GPT4_PATTERN, SentencePieceTokenizer,  # noqa: E402
                                  train_tokenizer)
from scratchlm.data import read_documents  # noqa: E402

def first_chars(docs, n):
    "The first `n` characters of a document stream (the last document cut short)."
    for d in docs:
        if n <= 0: return
        yield d[:n]; n -= len(d)

def cpu_s():
    "CPU seconds (user + system) of this process and its finished children: robust to other jobs on the machine."
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

def peak_mb():
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return self_mb, child_mb

# ---------------------------------------------------------------- one implementation per function

def run_ours(train_docs, valid_docs, vocab):
    t0, c0 = time.perf_counter(), cpu_s()
    tok = train_tokenizer(train_docs, vocab, num_workers=2)
    train_s = (time.perf_counter() - t0, cpu_s() - c0)
    mem = peak_mb()
    enc = {}
    for workers in (1, 2):
        t0 = time.perf_counter(); ids = tok.encode_batch(valid_docs, num_workers=workers); enc[workers] = time.perf_counter() - t0
        tok._cache.clear()
    return train_s, mem, enc, sum(map(len, ids)), tok.vocab_size

PATTERNS = {'GPT-2': GPT2_PATTERN, 'GPT-4 (cl100k)': GPT4_PATTERN, 'ours (default)': DEFAULT_PATTERN}

def _pattern_child(name, vocab, conn):
    tok = train_tokenizer(_DATA['train'], vocab, pattern=PATTERNS[name], num_workers=2)
    conn.send(sum(map(len, tok.encode_batch(_DATA['valid']))))

def measure_pattern(name, vocab):
    recv, send = mp.Pipe(duplex=False)
    p = mp.get_context('fork').Process(target=_pattern_child, args=(name, vocab, send))
    p.start(); n = recv.recv(); p.join()
    return n

def _spm_default_train(train_docs, vocab):
    import sentencepiece as spm
    model = io.BytesIO()
    lines = (line for d in train_docs for line in d.split('\n') if line)
    spm.SentencePieceTrainer.train(sentence_iterator=lines, model_writer=model, vocab_size=vocab, model_type='bpe',
                                   num_threads=2, minloglevel=2, control_symbols=[EOT])
    return spm.SentencePieceProcessor(model_proto=model.getvalue())

def run_spm_default(train_docs, valid_docs, vocab):
    t0, c0 = time.perf_counter(), cpu_s(); sp = _spm_default_train(train_docs, vocab); train_s = (time.perf_counter() - t0, cpu_s() - c0)
    mem = peak_mb()
    enc = {}
    for workers in (1, 2):
        t0 = time.perf_counter(); ids = sp.encode(valid_docs, num_threads=workers); enc[workers] = time.perf_counter() - t0
    return train_s, mem, enc, sum(map(len, ids)), sp.get_piece_size()

def run_spm_lossless(train_docs, valid_docs, vocab):
    t0, c0 = time.perf_counter(), cpu_s(); tok = SentencePieceTokenizer.train(train_docs, vocab, 'bpe', num_threads=2)
    train_s = (time.perf_counter() - t0, cpu_s() - c0)
    mem = peak_mb()
    enc = {}
    for workers in (1, 2):
        t0 = time.perf_counter(); ids = tok.sp.encode(valid_docs, num_threads=workers); enc[workers] = time.perf_counter() - t0
    return train_s, mem, enc, sum(map(len, ids)), tok.vocab_size

def run_hf(train_docs, valid_docs, vocab):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=[EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    t0, c0 = time.perf_counter(), cpu_s(); tok.train_from_iterator(train_docs, trainer); train_s = (time.perf_counter() - t0, cpu_s() - c0)
    mem = peak_mb()
    enc = {}
    for workers in (1, 2):
        os.environ['TOKENIZERS_PARALLELISM'] = 'false' if workers == 1 else 'true'
        t0 = time.perf_counter(); out = tok.encode_batch(valid_docs); enc[workers] = time.perf_counter() - t0
    return train_s, mem, enc, sum(len(o.ids) for o in out), tok.get_vocab_size()

IMPLS = {'ours (BPE)': run_ours, 'sentencepiece BPE (default)': run_spm_default,
         'sentencepiece BPE (lossless, our backend)': run_spm_lossless, 'HF tokenizers ByteLevel BPE': run_hf}

# ---------------------------------------------------------------- harness

_DATA = {}

def _child(name, vocab, conn):
    try:
        train_s, (self_mb, child_mb), enc, n_tokens, vsize = IMPLS[name](_DATA['train'], _DATA['valid'], vocab)
        conn.send(dict(train_s=train_s[0], train_cpu_s=train_s[1], peak_mb=self_mb, workers_peak_mb=child_mb, n_tokens=n_tokens, vocab_size=vsize,
                       encode_s_1=enc[1], encode_s_2=enc[2]))
    except Exception as e:  # reported, not hidden
        conn.send(dict(error=f'{type(e).__name__}: {e}'))

def measure(name, vocab):
    recv, send = mp.Pipe(duplex=False)
    p = mp.get_context('fork').Process(target=_child, args=(name, vocab, send))
    p.start(); result = recv.recv(); p.join()
    return result

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data-dir', default=str(REPO.parent / 'shared' / 'data'), help='folder holding gutenberg/ (default ../shared/data)')
    ap.add_argument('--train-mb', type=float, default=20, help='MB (millions of characters) of gutenberg/train to train on')
    ap.add_argument('--vocab', type=int, nargs='+', default=[1000, 8000, 32000])
    ap.add_argument('--repeats', type=int, default=2)
    ap.add_argument('--pattern-vocab', type=int, default=32000, help='vocabulary for the pre-tokenization pattern comparison; 0 skips it')
    ap.add_argument('--out', default=str(REPO / 'benchmarks' / 'results' / 'tokenizer.json'))
    args = ap.parse_args()
    gut = Path(args.data_dir) / 'gutenberg'
    if not (gut / 'train').is_dir(): sys.exit(f'no Gutenberg data at {gut}: pass --data-dir')
    _DATA['train'] = list(first_chars(read_documents(gut / 'train', txt_mode='file'), int(args.train_mb * 1e6)))
    _DATA['valid'] = list(read_documents(gut / 'valid'))          # paragraphs: many documents to spread over workers
    train_bytes = sum(len(d.encode()) for d in _DATA['train'])
    valid_bytes = sum(len(d.encode()) for d in _DATA['valid'])
    impls = list(IMPLS)
    try: import tokenizers  # noqa: F401
    except ImportError: impls.remove('HF tokenizers ByteLevel BPE'); print('HF tokenizers not installed: skipped')
    print(f'train: {train_bytes / 1e6:.1f} MB in {len(_DATA["train"])} books; valid: {valid_bytes / 1e6:.2f} MB in '
          f'{len(_DATA["valid"])} paragraphs; {os.cpu_count()} CPUs')
    load_before = list(os.getloadavg())                                   # other jobs on the machine skew wall times
    runs = {}
    for rep in range(args.repeats):
        for vocab in args.vocab:
            for name in impls:
                r = measure(name, vocab)
                runs.setdefault(f'{name}|{vocab}', []).append(r)
                print(f'  repeat {rep} vocab {vocab} {name}: ' + (r.get('error') or f'train {r["train_s"]:.2f}s'), flush=True)
    rows = []
    for vocab in args.vocab:
        for name in impls:
            rs = [r for r in runs[f'{name}|{vocab}'] if 'error' not in r]
            if not rs: rows.append(dict(impl=name, vocab=vocab, error=runs[f'{name}|{vocab}'][0]['error'])); continue
            med = lambda k: statistics.median(r[k] for r in rs)
            rows.append(dict(impl=name, vocab=vocab, vocab_size=rs[0]['vocab_size'], train_s=med('train_s'),
                             train_s_all=[r['train_s'] for r in rs], train_cpu_s=med('train_cpu_s'), peak_mb=med('peak_mb'), workers_peak_mb=med('workers_peak_mb'),
                             encode_mb_s_1=valid_bytes / 1e6 / med('encode_s_1'), encode_mb_s_2=valid_bytes / 1e6 / med('encode_s_2'),
                             bytes_per_token=valid_bytes / rs[0]['n_tokens']))
    for vocab in args.vocab:                                              # ratios against sentencepiece, same run
        by = {r['impl']: r for r in rows if r['vocab'] == vocab and 'error' not in r}
        ours, base = by.get('ours (BPE)'), by.get('sentencepiece BPE (default)')
        if ours and base:
            paired = [o['train_s'] / b['train_s'] for o, b in zip(runs[f'ours (BPE)|{vocab}'], runs[f'sentencepiece BPE (default)|{vocab}'])
                      if 'error' not in o and 'error' not in b]          # same repeat: ours right before sentencepiece
            ours['vs_spm_default'] = dict(train_time_x=statistics.median(paired), train_time_x_all=paired,
                                          train_cpu_x=ours['train_cpu_s'] / base['train_cpu_s'],
                                          bytes_per_token_x=ours['bytes_per_token'] / base['bytes_per_token'],
                                          encode_1proc_x=ours['encode_mb_s_1'] / base['encode_mb_s_1'],
                                          encode_2proc_x=ours['encode_mb_s_2'] / base['encode_mb_s_2'])
        hf = by.get('HF tokenizers ByteLevel BPE')
        if ours and hf:                                                   # same repeat, a few seconds apart
            paired = [o['train_s'] / h['train_s'] for o, h in zip(runs[f'ours (BPE)|{vocab}'], runs[f'HF tokenizers ByteLevel BPE|{vocab}'])
                      if 'error' not in o and 'error' not in h]
            ours['vs_hf'] = dict(train_time_x=statistics.median(paired), train_time_x_all=paired,
                                 train_cpu_x=ours['train_cpu_s'] / hf['train_cpu_s'],
                                 encode_1proc_x=ours['encode_mb_s_1'] / hf['encode_mb_s_1'])
    head = f'{"tokenizer":42} {"vocab":>6} {"train s":>8} {"CPU s":>6} {"peak MB":>8} {"+workers":>8} {"enc MB/s 1p":>11} {"2p":>6} {"bytes/tok":>9}'
    print('\n' + head + '\n' + '-' * len(head))
    for r in rows:
        if 'error' in r: print(f'{r["impl"]:42} {r["vocab"]:>6} ERROR {r["error"]}'); continue
        print(f'{r["impl"]:42} {r["vocab_size"]:>6} {r["train_s"]:>8.2f} {r["train_cpu_s"]:>6.1f} {r["peak_mb"]:>8.0f} {r["workers_peak_mb"]:>8.0f} '
              f'{r["encode_mb_s_1"]:>11.2f} {r["encode_mb_s_2"]:>6.2f} {r["bytes_per_token"]:>9.3f}')
    for key, other in (('vs_spm_default', 'sentencepiece (default)'), ('vs_hf', 'HF tokenizers ByteLevel BPE')):
        print(f'\nours / {other}, same run (encoding: ratio of speeds, higher is faster):')
        for r in (r for r in rows if key in r):
            v = r[key]
            print(f'  vocab {r["vocab"]:>6}: training time {v["train_time_x"]:.2f}x (median of same-repeat ratios; '
                  f'CPU time {v["train_cpu_x"]:.2f}x), encoding speed 1 process {v["encode_1proc_x"]:.2f}x'
                  + (f', 2 processes {v["encode_2proc_x"]:.2f}x, bytes/token {v["bytes_per_token_x"]:.3f}x'
                     if 'encode_2proc_x' in v else ''))
    patterns = {}
    if args.pattern_vocab:
        print(f'\npre-tokenization pattern, our BPE at vocab {args.pattern_vocab}, bytes per token on valid:')
        for name in PATTERNS:
            patterns[name] = valid_bytes / measure_pattern(name, args.pattern_vocab)
            print(f'  {name:16} {patterns[name]:.3f}')
    from scratchlm.core import cpu_info                                  # torch: only after the forked runs
    cpu = cpu_info()
    print(f'CPU: {cpu["model"]}, {cpu["cores"]} cores, SIMD {" ".join(cpu["simd"])}; load average before / after: '
          f'{" ".join(f"{x:.2f}" for x in load_before)} / {" ".join(f"{x:.2f}" for x in os.getloadavg())}')
    out = dict(benchmark='tokenizer', date=time.strftime('%Y-%m-%d %H:%M:%S'), machine=platform.platform(), cpu=cpu,
               load_average_before=load_before, load_average_after=list(os.getloadavg()), cpus=os.cpu_count(), python=platform.python_version(), train_mb=train_bytes / 1e6, valid_mb=valid_bytes / 1e6,
               valid_documents=len(_DATA['valid']), repeats=args.repeats, command=' '.join(sys.argv), rows=rows,
               pattern_bytes_per_token=dict(vocab=args.pattern_vocab, **patterns))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f'wrote {args.out}')

if __name__ == '__main__':
    main()
