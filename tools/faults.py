#!/usr/bin/env python3
"""Fault cases: bad and odd inputs against the command-line tools and the Python API, each run in a subprocess.

    python tools/faults.py                              # every case; prints a table
    python tools/faults.py --only T-overwrite,G-nan-temperature --json out.json --markdown out.md
    PYTHONPATH=/path/to/other/checkout python tools/faults.py   # measure another checkout

Every case runs `python -m scratchlm.cli COMMAND ...` (or a Python snippet) in a fresh temporary folder, so the
checkout that `PYTHONPATH` points at is the one measured. The small fixtures (a story corpus, a char tokenizer,
a 4-step checkpoint, a `save_pretrained` folder and crafted bad checkpoints) are made once per harness run, by
the checkout under test (17-33 s on the 2-core AMD EPYC this was written on, depending on its load). A whole run
took 820 s there, under a load average of 5-7 (other jobs); most of a case is Python and torch starting.

Outcomes:
- `clear error`: exit status != 0, no traceback, and stderr's last non-empty line starts with `error:` (or
  `PROG: error:`, argparse's form) or stderr is one line. In a Python snippet, an exception counts as a clear
  error when scratchlm raised it on purpose (the innermost frame is in the scratchlm package and executes a
  `raise` statement) and its message is one line; the harness prints it as `error: Type: message`.
- `traceback`: a traceback was printed (an exception nobody meant to raise, or one not turned into a message).
- `ok`: the expected exit status and every check of the case holds (files claimed exist, losses finite, ...).
- `silent`: exit 0 where an error was due, the expected exit status but a check fails (a file it claims is
  missing, NaN loss, an earlier checkpoint replaced), or the process died without a word (killed by a signal).
- `unclear`: exit status != 0, no traceback, but no single error line either.
- `hang`: the case ran past its timeout.

A case passes when its outcome is one of the expected ones (`expect`, alternatives separated by `|`), every
check holds, and an error line contains the words of `says` (each entry: alternatives separated by `|`) and
none of `says_not`. The expectations are the contract of issue 18, not today's behaviour.

Faults simulated without root:
- disk full: the subprocess runs under `RLIMIT_FSIZE` (with SIGXFSZ ignored), so a write past the limit fails
  with EFBIG ("File too large") where a full disk gives ENOSPC; the code under test should treat both alike.
- unwritable folders (`{ro}`): a folder with mode 0o555; when the harness runs as root, which ignores modes,
  a folder of a read-only system mount instead (/sys, where even root's mkdir gets EPERM and open gets EACCES).
- every case runs under `RLIMIT_AS` (8 GiB), so that an allocation blow-up fails at once instead of swapping
  the machine; a refused allocation then shows up as the traceback it causes.
- signals: SIGINT and SIGTERM are sent to a real training subprocess after its first metrics record.
"""
from __future__ import annotations
import argparse, dataclasses, gzip, hashlib, json, os, re, resource, shutil, signal, subprocess, sys, tempfile
import textwrap, time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ('earlier work overwritten', 'interrupts', 'non-finite settings', 'untrusted checkpoints',
           'filesystem faults', 'corrupt inputs', 'resource blow-ups', 'messages')
INTERFACES = ('train-tokenizer', 'train', 'generate', 'eval', 'api')
OUTCOMES = ('clear error', 'ok', 'traceback', 'silent', 'unclear', 'hang')
TRACEBACK = 'Traceback (most recent call last)'
ADDRESS_SPACE = 8 << 30          # RLIMIT_AS of every case

# A training run of a few seconds: a 1-layer, 32-wide model with a char tokenizer, 4 steps, evaluated at 2 and 4.
# `{run}` is the case's out_dir (the default name, `checkpoint`); a case's own overrides come after these.
TINY = ['--data', '{corpus}', '--quiet', '--prompt', '', '--config', 'tiny',
        'model.d_model=32', 'model.nhead=2', 'model.num_layers=1', 'model.dim_feedforward=64',
        'model.block_size=32', 'tokenizer.type=char', 'tokenizer.vocab_size=256', 'training.batch_size=4',
        'training.gradient_accumulation_steps=1', 'training.max_steps=4', 'training.eval_interval=2',
        'training.eval_steps=1', 'training.warmup_steps=1', 'training.log_interval=1', 'training.device=cpu',
        'data.cache_dir=cache']
LONG = ['training.max_steps=1000', 'training.epochs=100', 'training.eval_interval=500']   # to interrupt
RUN = 'checkpoint'                                                       # the default training.out_dir
CONFIG = ['--data', '{corpus}', '--quiet', '--prompt', '', '--config']   # a run that stops at its --config


@dataclasses.dataclass
class Case:
    id: str
    iface: str                     # one of INTERFACES
    cls: str                       # one of CLASSES
    desc: str
    argv: Optional[list] = None    # the CLI's arguments after the command ('{TINY}' splices the tiny run)
    py: Optional[str] = None       # or a Python snippet (globals: CORPUS, TOK, TOK2, CKPT, FOLDER, TMP)
    expect: str = 'clear error'    # the good outcome(s), '|'-separated
    says: tuple = ()               # words an error line must contain; each entry 'a|b' = a or b
    says_not: tuple = ()           # words no output may contain
    files: dict = dataclasses.field(default_factory=dict)   # case-folder path -> kind of file (make_file)
    setup: tuple = ()              # SETUPS steps, in order
    checks: tuple = ()             # CHECKS, 'name' or 'name:argument'
    mode: str = 'run'              # 'run', 'sigint', 'sigterm', 'sigint2', 'sigint-resume', 'sigkill-resume',
                                   # 'concurrent'
    rc: Optional[int] = None       # the exit status `ok` needs (default 0)
    fsize: Optional[str] = None    # RLIMIT_FSIZE of the run: 'ckpt/N' (of the tiny checkpoint's size) or bytes
    timeout: int = 120

    @property
    def command(self) -> str:
        return 'api' if self.py is not None else self.iface


LOADS = 'from scratchlm import TransformerLM\nm = TransformerLM.from_pretrained(CKPT)\n'
TRAIN_API = "max_steps=2, batch_size=2, eval_interval=1, eval_steps=1, progress=False, out_dir=TMP + '/ft'"
CKPT_ERR = dict(says_not=('weights_only=False',))
OW, IN, NF, UC = 'earlier work overwritten', 'interrupts', 'non-finite settings', 'untrusted checkpoints'
FS, CI, RB, MS = 'filesystem faults', 'corrupt inputs', 'resource blow-ups', 'messages'


def C(id, iface, cls, desc, *argv, **kw): return Case(id, iface, cls, desc, argv=list(argv), **kw)


def S(id, cls, setting, **kw):
    "The tiny run with one bad `section.key=value`; the error names the key."
    key = setting.split('=')[0].split('.')[-1]
    return C(id, 'train', cls, setting, '{TINY}', setting, **{'says': (key,), **kw})


def B(id, desc, kind, **kw):
    "scratchlm-generate of a bad checkpoint file of `kind` (make_file)."
    return C(id, 'generate', UC, desc, '--checkpoint', 'x.pth', '--prompt', 'Once', files={'x.pth': kind},
             **{**CKPT_ERR, **kw})
def P(id, cls, desc, py, **kw): return Case(id, 'api', cls, desc, py=textwrap.dedent(py).strip(), **kw)


CASES = [
    # --- earlier work overwritten -------------------------------------------------------------------------
    C('T-overwrite', 'train', OW, 'a new run into the default out_dir that holds an earlier run', '{TINY}',
      setup=('earlier_run',), checks=('earlier_intact',), says=('--resume', 'overwrite')),
    C('T-overwrite-outdir', 'train', OW, 'a new run into an explicit training.out_dir holding a run', '{TINY}',
      'training.out_dir=mine', setup=('earlier_run:mine',), checks=('earlier_intact:mine',),
      says=('--resume', 'overwrite')),
    C('T-concurrent', 'train', OW, 'two runs started at once on the same out_dir', '{TINY}',
      'training.max_steps=60', 'training.eval_interval=30', mode='concurrent',
      says=('lock|another|already|running',)),
    C('T-resume', 'train', OW, '--resume of an earlier run continues it (a correct result)', '{TINY}',
      '--resume', 'training.max_steps=6', setup=('earlier_run',), expect='ok', checks=('finite', 'steps:6')),
    C('T-resume-none', 'train', MS, '--resume with no earlier run: no --checkpoint hint (train has none)',
      '{TINY}', '--resume', says_not=('--checkpoint',)),
    C('T-init-from-same', 'train', OW, '--init-from a checkpoint in the out_dir it would write', '{TINY_FT}',
      '--init-from', '{run}/best_model.pth', 'training.out_dir=' + RUN, setup=('earlier_run',),
      checks=('earlier_intact',)),
    P('A-fit-overwrite', OW, 'API: model.train() into an out_dir that holds a run',
      LOADS + f"m.train(train_data=CORPUS, {TRAIN_API.replace('/ft', '/' + RUN)})", setup=('earlier_run',),
      checks=('earlier_intact',)),
    # --- interrupts -----------------------------------------------------------------------------------------
    C('T-sigint', 'train', IN, 'Ctrl-C (SIGINT) after the first metrics record', '{TINY}', *LONG,
      mode='sigint', expect='ok', rc=130, checks=('last_saved', 'stderr_has:--resume', 'no_tmp')),
    C('T-sigterm', 'train', IN, 'SIGTERM (kill, schedulers) after the first metrics record', '{TINY}', *LONG,
      mode='sigterm', expect='ok', rc=143, checks=('last_saved', 'stderr_has:--resume', 'no_tmp')),
    C('T-sigint-twice', 'train', IN, 'two Ctrl-C 0.2 s apart: exits at once, nothing corrupt', '{TINY}', *LONG,
      mode='sigint2', expect='ok', rc=130, checks=('pth_load', 'no_tmp')),
    C('T-sigint-resume', 'train', IN, 'Ctrl-C, then --resume finishes the run', '{TINY}',
      'training.max_steps=300', 'training.epochs=100', 'training.eval_interval=100', mode='sigint-resume',
      expect='ok',
      checks=('finite', 'steps:300')),
    C('T-kill-resume', 'train', IN, 'SIGKILL after the first checkpoint, then --resume (a stale lock)', '{TINY}',
      'training.max_steps=60', 'training.epochs=100', 'training.eval_interval=10', mode='sigkill-resume',
      expect='ok', checks=('finite', 'steps:60')),
    # --- non-finite settings --------------------------------------------------------------------------------
    S('T-lr-inf', NF, 'training.learning_rate=inf', checks=('claims_exist',)),
    S('T-lr-nan', NF, 'training.learning_rate=nan'),
    S('T-epochs-nan', NF, 'training.epochs=nan'),
    S('T-wd-nan', NF, 'training.weight_decay=nan'),
    S('T-clip-nan', NF, 'training.grad_clip=nan'),
    S('T-minlr-inf', NF, 'training.min_lr_ratio=inf'),
    S('T-dropout-nan', NF, 'model.dropout=nan'),
    S('T-validfrac-nan', NF, 'data.valid_fraction=nan'),
    S('T-smoothing-nan', NF, 'model.label_smoothing=nan'),
    C('T-loss-diverges', 'train', NF, 'learning_rate=1e30 (finite): the loss turns non-finite', '{TINY}',
      'training.learning_rate=1e30', 'training.grad_clip=0', 'training.max_steps=40',
      'training.eval_interval=20', says=('loss',), checks=('claims_exist',)),
    C('G-nan-temperature', 'generate', NF, '--temperature nan', '--checkpoint', '{ckpt}', '--prompt', 'Once',
      '--temperature', 'nan', says=('--temperature',)),
    C('G-nan-top-p', 'generate', NF, '--top-p nan', '--checkpoint', '{ckpt}', '--prompt', 'Once',
      '--top-p', 'nan', says=('--top-p',)),
    C('G-inf-penalty', 'generate', NF, '--repetition-penalty inf', '--checkpoint', '{ckpt}', '--prompt', 'Once',
      '--repetition-penalty', 'inf', says=('--repetition-penalty',)),
    P('A-nan-temperature', NF, 'API: generate(temperature=nan)',
      LOADS + "m.generate(prompt='Once', max_new_tokens=5, temperature=float('nan'))", says=('temperature',)),
    P('A-fit-lr-nan', NF, 'API: train(train_data=..., learning_rate=nan)',
      LOADS + f"m.train(train_data=CORPUS, learning_rate=float('nan'), {TRAIN_API})", says=('learning_rate',)),
    # --- untrusted checkpoints ------------------------------------------------------------------------------
    B('G-ckpt-huge', "a checkpoint whose config says d_model 131072", 'ckpt:huge'),
    B('G-ckpt-layers', 'a checkpoint whose config says 20000 layers (tensors for 1)', 'ckpt:layers'),
    B('G-ckpt-list', "a checkpoint whose config is a list", 'ckpt:config_list'),
    B('G-ckpt-model-str', "a checkpoint whose config's model section is a string", 'ckpt:model_str'),
    B('G-ckpt-weights-list', "a checkpoint whose weights are a list", 'ckpt:weights_list'),
    B('G-ckpt-shape', 'a checkpoint with a tensor of the wrong shape', 'ckpt:shape'),
    B('G-ckpt-empty', 'a 0-byte .pth', 'empty'),
    B('G-ckpt-random', 'a .pth of random bytes', 'random'),
    B('G-ckpt-truncated', 'a .pth cut in half', 'ckpt:truncated'),
    B('G-ckpt-pickle', 'a .pth whose pickle runs code when loaded unsafely', 'ckpt:pickle', checks=('no_marker',)),
    C('G-tok-swapped', 'generate', UC, "a save_pretrained folder with another run's tokenizer (same size)",
      '--checkpoint', 'folder', '--prompt', 'It was', setup=('swapped_folder',), says=('tokenizer',)),
    P('A-tok-swapped', UC, "API: from_pretrained of a folder with another run's tokenizer (same size)",
      "from scratchlm import TransformerLM\nTransformerLM.from_pretrained(TMP + '/folder')",
      setup=('swapped_folder',), says=('tokenizer',)),
    C('E-ckpt-huge', 'eval', UC, "scratchlm-eval of a checkpoint whose config says d_model 131072",
      '--checkpoint', 'x.pth', '--data', '{corpus}', files={'x.pth': 'ckpt:huge'}, **CKPT_ERR),
    C('T-init-empty', 'train', UC, '--init-from a 0-byte .pth', '{TINY_FT}', '--init-from', 'x.pth',
      files={'x.pth': 'empty'}, **CKPT_ERR),
    C('T-resume-corrupt', 'train', UC, '--resume with a last.pth of random bytes', '{TINY}', '--resume',
      setup=('earlier_run', 'corrupt_last'), **CKPT_ERR),
    P('A-ckpt-huge', UC, 'API: from_pretrained of a checkpoint whose config says d_model 131072',
      "from scratchlm import TransformerLM\nTransformerLM.from_pretrained(TMP + '/x.pth')",
      files={'x.pth': 'ckpt:huge'}, **CKPT_ERR),
    # --- filesystem faults ----------------------------------------------------------------------------------
    C('T-outdir-file', 'train', FS, 'training.out_dir is a file', '{TINY}', 'training.out_dir=afile',
      files={'afile': 'text'}, says=('afile',)),
    C('T-outdir-under-file', 'train', FS, 'training.out_dir below a file', '{TINY}', 'training.out_dir=afile/run',
      files={'afile': 'text'}, says=('afile',)),
    C('T-outdir-readonly', 'train', FS, 'training.out_dir not writable', '{TINY}', 'training.out_dir={ro}/run',
      says=('{ro}',)),
    C('T-cache-readonly', 'train', FS, 'data.cache_dir not writable (nothing cached yet)', '{TINY}',
      'data.cache_dir={ro}/cache', says=('{ro}',)),
    C('T-disk-full', 'train', FS, 'the disk fills while writing a checkpoint (RLIMIT_FSIZE: EFBIG)', '{TINY}',
      fsize='ckpt/2', says=(RUN,), checks=('no_tmp',)),
    C('K-out-dir', 'train-tokenizer', FS, '--out is a directory', '--data', '{corpus}', '--type', 'char',
      '--vocab-size', '256', '--out', 'adir', '--quiet', setup=('mkdir:adir',), checks=('no_tmp',),
      says=('--out|adir',)),
    C('K-out-readonly', 'train-tokenizer', FS, '--out in a folder that is not writable', '--data', '{corpus}',
      '--type', 'char', '--vocab-size', '256', '--out', '{ro}/tok.json', '--quiet',
      checks=('no_tmp',), says=('{ro}',)),
    C('K-out-missing-dir', 'train-tokenizer', FS, '--out in a folder that does not exist', '--data', '{corpus}',
      '--type', 'char', '--vocab-size', '256', '--out', 'nowhere/tok.json', '--quiet',
      expect='ok|clear error', checks=('no_tmp',)),
    C('K-disk-full', 'train-tokenizer', FS, 'the disk fills while writing the tokenizer (RLIMIT_FSIZE)',
      '--data', '{corpus}', '--type', 'bpe', '--vocab-size', '300', '--out', 'tok.json', '--quiet',
      fsize='200', checks=('no_tmp',), says=('tok.json',)),
    P('A-save-disk-full', FS, 'API: save_pretrained when the disk fills (RLIMIT_FSIZE)',
      LOADS + "m.save_pretrained(TMP + '/saved')", fsize='ckpt/8', checks=('no_tmp',), says=('saved',)),
    P('A-save-under-file', FS, 'API: save_pretrained into a path below a file',
      LOADS + "m.save_pretrained(TMP + '/afile/saved')", files={'afile': 'text'}, says=('afile',)),
    C('G-ckpt-dir-empty', 'generate', FS, '--checkpoint an empty folder', '--checkpoint', 'adir',
      '--prompt', 'Once', setup=('mkdir:adir',)),
    # --- corrupt inputs -------------------------------------------------------------------------------------
    C('T-gz-truncated', 'train', CI, '--data a truncated .txt.gz', '{TINY}', '--data', 'bad.txt.gz',
      files={'bad.txt.gz': 'gz_truncated'}, says=('bad.txt.gz',)),
    C('T-gz-random', 'train', CI, '--data a .txt.gz of random bytes', '{TINY}', '--data', 'bad.txt.gz',
      files={'bad.txt.gz': 'random'}, says=('bad.txt.gz',)),
    C('T-arrow-random', 'train', CI, '--data an .arrow of random bytes', '{TINY}', '--data', 'bad.arrow',
      files={'bad.arrow': 'random'}, says=('bad.arrow',)),
    C('T-parquet-random', 'train', CI, '--data a .parquet of random bytes', '{TINY}', '--data', 'bad.parquet',
      files={'bad.parquet': 'random'}, says=('bad.parquet',)),
    C('K-gz-random', 'train-tokenizer', CI, '--data a .txt.gz of random bytes', '--data', 'bad.txt.gz',
      '--type', 'char', '--out', 'tok.json', '--quiet', files={'bad.txt.gz': 'random'}, says=('bad.txt.gz',)),
    C('E-gz-truncated', 'eval', CI, '--data a truncated .txt.gz', '--checkpoint', '{ckpt}', '--data',
      'bad.txt.gz', files={'bad.txt.gz': 'gz_truncated'}, says=('bad.txt.gz',)),
    C('E-arrow-random', 'eval', CI, '--data an .arrow of random bytes', '--checkpoint', '{ckpt}', '--data',
      'bad.arrow', files={'bad.arrow': 'random'}, says=('bad.arrow',)),
    C('T-config-dir', 'train', CI, '--config a directory', *CONFIG, 'adir', setup=('mkdir:adir',),
      says=('adir',)),
    C('T-config-binary', 'train', CI, '--config a non-UTF-8 file', *CONFIG, 'bad.yaml',
      files={'bad.yaml': 'latin1'}, says=('bad.yaml',)),
    C('T-config-list', 'train', CI, '--config a YAML list', *CONFIG, 'bad.yaml', files={'bad.yaml': 'yaml_list'},
      says=('bad.yaml',)),
    C('T-config-model-str', 'train', CI, '--config whose model section is a string', *CONFIG, 'bad.yaml',
      files={'bad.yaml': 'yaml_model_str'}, says=('bad.yaml', 'model')),
    C('T-config-empty', 'train', CI, '--config an empty file: the defaults and the overrides', '{TINY}',
      '--config', 'empty.yaml', files={'empty.yaml': 'empty'}, expect='ok', checks=('finite', 'steps:4')),
    C('T-data-empty', 'train', CI, '--data a 0-byte .txt', '{TINY}', '--data', 'empty.txt',
      files={'empty.txt': 'empty'}, says=('empty',)),
    C('T-data-blank', 'train', CI, '--data a .txt of blank lines only', '{TINY}', '--data', 'blank.txt',
      files={'blank.txt': 'blank'}),
    C('T-data-missing', 'train', CI, '--data a file that does not exist', '{TINY}', '--data', 'nothere.txt',
      says=('nothere.txt',)),
    C('G-ckpt-missing', 'generate', CI, '--checkpoint a file that does not exist', '--checkpoint', 'nothere.pth',
      '--prompt', 'Once', says=('nothere.pth',)),
    C('K-data-missing', 'train-tokenizer', CI, '--data a file that does not exist', '--data', 'nothere.txt',
      '--out', 'tok.json', '--quiet', says=('nothere.txt',), checks=('no_file:tok.json',)),
    C('T-data-pth', 'train', CI, '--data a checkpoint (wrong file type)', '{TINY}', '--data', '{ckpt}'),
    C('T-data-latin1', 'train', CI, '--data a Latin-1 (non-UTF-8) .txt: repaired and reported, or refused',
      '{TINY}', '--data', 'latin.txt', files={'latin.txt': 'latin1_corpus'}, expect='ok|clear error',
      checks=('finite',)),
    C('K-data-empty', 'train-tokenizer', CI, '--data a 0-byte .txt', '--data', 'empty.txt', '--type', 'char',
      '--out', 'tok.json', '--quiet', files={'empty.txt': 'empty'}, checks=('no_file:tok.json',)),
    C('K-csv-skip', 'train-tokenizer', MS, 'a CSV with a malformed row: the skip report names its line',
      '--data', 'bad.csv', '--text-column', 'text', '--type', 'char', '--vocab-size', '256', '--out',
      'tok.json', '--quiet', files={'bad.csv': 'csv_malformed'}, expect='ok',
      checks=('file:tok.json', 'stderr_has:malformed'), says_not=('line None',)),
    C('K-csv-quotes', 'train-tokenizer', CI, 'a CSV whose quoted fields hold undoubled quotes', '--data',
      'bad.csv', '--text-column', 'text', '--type', 'char', '--vocab-size', '256', '--out', 'tok.json',
      '--quiet', files={'bad.csv': 'csv_quotes'}, expect='ok|clear error', says_not=('line None',)),
    C('K-column-missing', 'train-tokenizer', CI, '--text-column that the jsonl does not have', '--data',
      'd.jsonl', '--text-column', 'body', '--type', 'char', '--out', 'tok.json', '--quiet',
      files={'d.jsonl': 'jsonl'}, says=('body',)),
    P('A-train-data-none', CI, 'API: train(train_data=None)', LOADS + f"m.train(train_data=None, {TRAIN_API})",
      says=('train_data',)),
    P('A-train-int', CI, 'API: train(5)', LOADS + "m.train(5)", says=('train',)),
    P('A-train-empty-list', CI, 'API: train(train_data=[])', LOADS + f"m.train(train_data=[], {TRAIN_API})",
      says=('train_data',)),
    P('A-from-none', CI, 'API: from_pretrained(None)',
      "from scratchlm import TransformerLM\nTransformerLM.from_pretrained(None)", says=('path',)),
    P('A-prompt-int', CI, 'API: generate(prompt=123)', LOADS + "m.generate(prompt=123, max_new_tokens=5)",
      says=('prompt',)),
    P('A-top-k-bool', CI, 'API: generate(top_k=True)', LOADS + "m.generate(prompt='Once', top_k=True, "
      "max_new_tokens=5)", says=('top_k',)),
    P('A-max-new-neg', CI, 'API: generate(max_new_tokens=-1)', LOADS + "m.generate(prompt='Once', "
      "max_new_tokens=-1)", says=('max_new_tokens',)),
    P('A-max-new-float', CI, 'API: generate(max_new_tokens=2.5)', LOADS + "m.generate(prompt='Once', "
      "max_new_tokens=2.5)", says=('max_new_tokens',)),
    P('A-num-samples-0', CI, 'API: generate(num_samples=0)', LOADS + "m.generate(prompt='Once', "
      "max_new_tokens=5, num_samples=0)", says=('num_samples',)),
    P('A-evaluate-none', CI, 'API: evaluate(None)', LOADS + "m.evaluate(None)", says=('data',)),
    P('A-device-bad', CI, "API: from_pretrained(..., device='gpu0')",
      "from scratchlm import TransformerLM\nTransformerLM.from_pretrained(CKPT, device='gpu0')",
      says=('device',)),
    P('A-seed-negative', CI, 'API: generate(seed=-1): accepted, or refused in one line',
      LOADS + "out = m.generate(prompt='Once', max_new_tokens=5, seed=-1)\nassert out.startswith('Once')",
      expect='ok|clear error'),
    P('A-generate-ok', CI, 'API: generate with sane arguments (a correct result)',
      LOADS + "out = m.generate(prompt='Once', max_new_tokens=8, seed=0)\n"
              "assert isinstance(out, str) and out.startswith('Once') and len(out) > 4", expect='ok'),
    # --- resource blow-ups ----------------------------------------------------------------------------------
    S('T-dmodel-huge', RB, 'model.d_model=131072', says=('d_model', 'GB')),
    S('T-batch-huge', RB, 'training.batch_size=1000000'),
    S('T-ff-huge', RB, 'model.dim_feedforward=1000000000', says=('dim_feedforward', 'GB')),
    C('T-block-huge', 'train', RB, 'model.block_size=10000000000 with learned positions (a block_size x d_model table)',
      '{TINY}', 'model.pos_encoding=learned', 'model.block_size=10000000000', says=('block_size',)),
    S('T-accum-zero', RB, 'training.gradient_accumulation_steps=0'),
    S('T-dmodel-zero', RB, 'model.d_model=0'),
    S('T-batch-zero', RB, 'training.batch_size=0'),
    S('T-steps-negative', RB, 'training.max_steps=-5'),
    S('T-eval-interval-zero', RB, 'training.eval_interval=0'),
    C('K-vocab-zero', 'train-tokenizer', RB, '--vocab-size 0', '--data', '{corpus}', '--vocab-size', '0',
      '--out', 'tok.json', '--quiet', says=('--vocab-size',)),
    C('K-min-freq-negative', 'train-tokenizer', RB, '--min-frequency -3', '--data', '{corpus}', '--vocab-size',
      '300', '--min-frequency', '-3', '--out', 'tok.json', '--quiet', says=('--min-frequency',)),
    C('E-stride-zero', 'eval', RB, '--stride 0', '--checkpoint', '{ckpt}', '--data', '{corpus}', '--stride', '0',
      says=('--stride',)),
    C('E-batch-zero', 'eval', RB, '--batch-size 0', '--checkpoint', '{ckpt}', '--data', '{corpus}',
      '--batch-size', '0', says=('--batch-size',)),
    # --- messages -------------------------------------------------------------------------------------------
    C('G-top-k-zero', 'generate', MS, '--top-k 0: the error names the flag', '--checkpoint', '{ckpt}', '--prompt',
      'Once', '--top-k', '0', says=('--top-k',)),
    C('G-top-p-big', 'generate', MS, '--top-p 1.5: the error names the flag', '--checkpoint', '{ckpt}',
      '--prompt', 'Once', '--top-p', '1.5', says=('--top-p',)),
    C('G-max-length-short', 'generate', MS, '--max-length shorter than the prompt: names --max-length',
      '--checkpoint', '{ckpt}', '--prompt', 'Once upon a time', '--max-length', '3', says=('--max-length',),
      says_not=('max_new_tokens',)),
    C('G-penalty-zero', 'generate', MS, '--repetition-penalty 0: the error names the flag', '--checkpoint',
      '{ckpt}', '--prompt', 'Once', '--repetition-penalty', '0', says=('--repetition-penalty',)),
    C('G-long-prompt', 'generate', MS, 'a 100,000-character prompt with a bad --top-k: not echoed',
      '--checkpoint', '{ckpt}', '--prompt', 'Once upon a time ' * 5882, '--top-k', '-1', says=('--top-k',),
      checks=('no_echo',)),
    C('G-device-cuda', 'generate', MS, '--device cuda on a machine without one', '--checkpoint', '{ckpt}',
      '--prompt', 'Once', '--device', 'cuda', says=('cuda',)),
    C('G-unicode', 'generate', MS, 'a checkpoint path with non-ASCII characters', '--checkpoint',
      'dossier ünï ✓/x.pth', '--prompt', 'Once upon a time', '--max-length', '30', '--seed', '0',
      files={'dossier ünï ✓/x.pth': 'ckpt:copy'}, expect='ok', checks=('stdout_has:Once upon a time',)),
    C('G-seed-negative', 'generate', MS, '--seed -1: accepted, or refused in one line', '--checkpoint', '{ckpt}',
      '--prompt', 'Once', '--max-length', '20', '--seed', '-1', expect='ok|clear error',
      checks=('stdout_has:Once',)),
    C('T-overrides-after-data', 'train', MS, 'overrides after --data: applied, or refused naming the override',
      '--data', '{corpus}', 'training.max_steps=3', '--quiet', '--prompt', '', '{TINY_OPTS}',
      expect='ok|clear error', says=('override|setting',), checks=('steps:3',)),
    C('T-unknown-key', 'train', MS, 'a misspelt override key', '{TINY}', 'training.learning_rte=1e-3',
      says=('learning_rate',)),
    C('T-override-no-value', 'train', MS, "an override without '='", '{TINY}', 'training.max_steps',
      says=('training.max_steps',)),
    C('T-override-type', 'train', MS, 'an override of the wrong type', '{TINY}', 'training.max_steps=many',
      says=('max_steps',)),
    C('T-unicode-paths', 'train', MS, 'corpus and out_dir with non-ASCII names', '{TINY}',
      'training.out_dir=sortie ü', '--data', 'données ✓/corpus é.txt', files={'données ✓/corpus é.txt': 'corpus'},
      expect='ok', checks=('finite:sortie ü', 'steps:4:sortie ü')),
    C('T-ok', 'train', MS, 'the tiny run itself (a correct result)', '{TINY}', expect='ok',
      checks=('finite', 'steps:4', 'claims_exist')),
    C('K-ok-unicode', 'train-tokenizer', MS, '--out with non-ASCII characters (a correct result)', '--data',
      '{corpus}', '--type', 'char', '--vocab-size', '256', '--out', 'tök 🙂.json', '--quiet', expect='ok',
      checks=('file:tök 🙂.json',)),
    C('E-ok', 'eval', MS, 'scratchlm-eval of the tiny checkpoint (a correct result)', '--checkpoint', '{ckpt}',
      '--data', '{corpus}', '--json', '--quiet', expect='ok', checks=('stdout_has:"loss"', 'finite_json')),
]


# ----------------------------------------------------------------------------------------------- fixtures
FIXTURE_SCRIPT = r'''
import sys
from pathlib import Path
from scratchlm.core import stories
base = Path(sys.argv[1])
texts = stories(60, seed=1)
(base / 'corpus.txt').write_text('\n\n'.join(texts), encoding='utf-8')
# the same stories with every 'e' written 'é': a char tokenizer of the same size but other ids
(base / 'corpus2.txt').write_text('\n\n'.join(texts).replace('e', 'é'), encoding='utf-8')
'''

FIXTURE_SCRIPT_2 = r'''
import json, sys, torch
from pathlib import Path
from scratchlm import TransformerLM
from scratchlm.tokenizer import load_tokenizer
base = Path(sys.argv[1])
ckpt = base / 'run0' / 'best_model.pth'
m = TransformerLM.from_pretrained(ckpt)
m.save_pretrained(base / 'folder')
t1, t2 = load_tokenizer(base / 'tok.json'), load_tokenizer(base / 'tok2.json')
assert t1.vocab_size == t2.vocab_size == m.config.vocab_size, (t1.vocab_size, t2.vocab_size, m.config.vocab_size)
assert t1.fingerprint != t2.fingerprint
raw = torch.load(ckpt, weights_only=True)
def variant(name, f):
    c = {k: v for k, v in raw.items()}
    c['config'] = json.loads(json.dumps(raw['config']))
    f(c)
    torch.save(c, base / f'{name}.pth')
variant('huge', lambda c: c['config']['model'].update(d_model=131072))
variant('layers', lambda c: c['config']['model'].update(num_layers=20000))
variant('config_list', lambda c: c.update(config=[1, 2, 3]))
variant('model_str', lambda c: c['config'].update(model='big'))
variant('weights_list', lambda c: c.update(model=[1, 2, 3]))
def shape(c):
    c['model'] = dict(c['model']); k = next(iter(c['model']))
    c['model'][k] = torch.zeros(3, 3)
variant('shape', shape)
data = ckpt.read_bytes()
(base / 'truncated.pth').write_bytes(data[:len(data) // 2])
class Payload:
    def __reduce__(self):
        return (eval, ("open(%r, 'w').write('pwned')" % str(base / 'MARKER'),))
torch.save({'format': 'scratchlm-checkpoint', 'version': 1, 'x': Payload()}, base / 'pickle.pth')
print(json.dumps(dict(ckpt_size=ckpt.stat().st_size)))
'''


def _run(argv, cwd, **kw):
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=_env(), **kw)


PYTHONPATH = None        # set by run(pythonpath=...)


def _env(home=None) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED='1', PYTHONIOENCODING='utf-8')
    if PYTHONPATH: env['PYTHONPATH'] = PYTHONPATH
    if home: env.update(HOME=str(home), MPLCONFIGDIR=str(Path(home) / '.mpl'))
    return env


FIXTURE_WORDS = re.compile(r'\{(corpus|tok2?|ckpt|folder|run|TINY\w*)\}|\b(CORPUS|TOK2?|CKPT|FOLDER)\b')
FIXTURE_FILES = ('ckpt:', 'corpus', 'latin1_corpus', 'gz_truncated', 'jsonl', 'csv_')


def needs_fixtures(case: Case) -> bool:
    "Does `case` use the corpus, tokenizers or checkpoints of `make_fixtures`?"
    text = ' '.join(case.argv or []) + (case.py or '')
    return bool(FIXTURE_WORDS.search(text) or case.setup or
                any(k.startswith(FIXTURE_FILES) for k in case.files.values()))


def make_fixtures(base: Path) -> dict:
    "Corpus, tokenizers, the 4-step checkpoint, a save_pretrained folder and crafted checkpoints, in `base`."
    py = sys.executable
    def step(what, argv):
        r = _run(argv, base, timeout=600)
        if r.returncode != 0:
            sys.exit(f'error: making the fixtures failed at {what}:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}')
        return r
    step('the corpus', [py, '-c', FIXTURE_SCRIPT, str(base)])
    step('the tiny run', [py, '-m', 'scratchlm.cli', 'train', *expand(TINY, _paths(base, base)),
                          'training.out_dir=run0'])
    for name, corpus in [('tok.json', 'corpus.txt'), ('tok2.json', 'corpus2.txt')]:
        step(name, [py, '-m', 'scratchlm.cli', 'train-tokenizer', '--data', corpus, '--type', 'char',
                    '--vocab-size', '256', '--out', name, '--quiet'])
    info = json.loads(step('the crafted checkpoints', [py, '-c', FIXTURE_SCRIPT_2, str(base)]).stdout
                      .strip().splitlines()[-1])
    return info


def _paths(base: Path, tmp: Path) -> dict:
    return dict(corpus=str(base / 'corpus.txt'), tok=str(base / 'tok.json'), tok2=str(base / 'tok2.json'),
                ckpt=str(base / 'run0' / 'best_model.pth'), folder=str(base / 'folder'), tmp=str(tmp),
                run=str(tmp / RUN), ro=_unwritable(tmp))


def expand(argv: list, paths: dict) -> list:
    """Splice `{TINY}` (`{TINY_OPTS}`: its options after --data but the step count; `{TINY_FT}`: without model.*
    and tokenizer.*, for --init-from) and fill in `{name}` placeholders."""
    out = []
    for a in argv:
        if a == '{TINY}': out += expand(TINY, paths)
        elif a == '{TINY_OPTS}': out += expand([t for t in TINY[5:] if t != 'training.max_steps=4'], paths)
        elif a == '{TINY_FT}': out += expand([t for t in TINY if not t.startswith(('model.', 'tokenizer.'))], paths)
        else: out.append(fill(a, paths))
    return out


def fill(text: str, paths: dict) -> str:
    return re.sub(r'\{(corpus|tok2?|ckpt|folder|tmp|run|ro)\}', lambda m: paths[m[1]], text)


def _unwritable(tmp: Path) -> str:
    "A folder this process cannot write in: a 0o555 folder, or as root a read-only system folder."
    if os.geteuid() != 0:
        ro = tmp / 'ro'
        if not ro.exists(): ro.mkdir(mode=0o555)
        return str(ro)
    for candidate in ('/sys', '/proc'):
        try: os.mkdir(Path(candidate) / 'scratchlm-write-probe')
        except OSError: return candidate
        os.rmdir(Path(candidate) / 'scratchlm-write-probe')
    raise RuntimeError('found no unwritable folder for the unwritable-folder cases')


# ---------------------------------------------------------------------------------- files and setup steps
def _random_bytes(n=4096, seed=0):
    import random
    return random.Random(seed).randbytes(n)


def make_file(kind: str, path: Path, base: Path):
    "Write a file of `kind` at `path`."
    path.parent.mkdir(parents=True, exist_ok=True)
    corpus = (base / 'corpus.txt').read_text(encoding='utf-8') if (base / 'corpus.txt').exists() else ''
    if kind == 'empty': path.write_bytes(b'')
    elif kind == 'text': path.write_text('not a folder\n')
    elif kind == 'blank': path.write_text('\n\n   \n\t\n\n')
    elif kind == 'random': path.write_bytes(_random_bytes())
    elif kind == 'corpus': path.write_text(corpus, encoding='utf-8')
    elif kind == 'latin1': path.write_bytes('model:\n  d_model: 64  # café crème\n'.encode('latin-1'))
    elif kind == 'latin1_corpus': path.write_bytes(corpus.replace('e', 'é').encode('latin-1'))
    elif kind == 'gz_truncated':
        data = gzip.compress(corpus.encode())
        path.write_bytes(data[:len(data) // 2])
    elif kind == 'yaml_list': path.write_text('- model\n- training\n')
    elif kind == 'yaml_model_str': path.write_text('model: big\n')
    elif kind == 'jsonl': path.write_text(''.join(json.dumps({'text': t}) + '\n' for t in corpus.split('\n\n')))
    elif kind == 'csv_malformed':              # a value over two lines, then (line 5) a row with too many fields
        import csv, io
        head, tail = io.StringIO(), io.StringIO()
        csv.writer(head, lineterminator='\n').writerows([['text', 'label'], ['a story\nover two lines', 1],
                                                         ['another', 2]])
        csv.writer(tail, lineterminator='\n').writerows([[t, 1] for t in corpus.split('\n\n')[:20]])
        path.write_text(head.getvalue() + 'a row,with,too many,fields\n' + tail.getvalue())
    elif kind == 'csv_quotes':                 # quotes inside quoted fields left undoubled
        path.write_text('text,label\n' + ''.join(f'"{t}",1\n' for t in corpus.split('\n\n')[:20]))
    elif kind.startswith('ckpt:'):
        name = kind.split(':', 1)[1]
        src = base / 'run0' / 'best_model.pth' if name == 'copy' else base / f'{name}.pth'
        shutil.copyfile(src, path)
    else: raise ValueError(f'unknown file kind {kind!r}')


def setup_step(step: str, tmp: Path, base: Path, state: dict):
    name, _, arg = step.partition(':')
    if name == 'earlier_run':          # an earlier run in out_dir (default: checkpoint/)
        dest = tmp / (arg or RUN)
        shutil.copytree(base / 'run0', dest)
        state.setdefault('earlier', {})[arg or RUN] = _digest(dest)
    elif name == 'corrupt_last': (tmp / RUN / 'last.pth').write_bytes(_random_bytes())
    elif name == 'swapped_folder':     # the folder's weights with the other corpus's tokenizer (same size)
        shutil.copytree(base / 'folder', tmp / 'folder')
        shutil.copyfile(base / 'tok2.json', tmp / 'folder' / 'tokenizer.json')
    elif name == 'mkdir': (tmp / arg).mkdir(parents=True)
    else: raise ValueError(f'unknown setup step {step!r}')


def _digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.name in ('best_model.pth', 'last.pth', 'metrics.jsonl')}


# ------------------------------------------------------------------------------------------------- checks
def _metrics(folder: Path) -> list:
    path = folder / 'metrics.jsonl'
    if not path.exists(): return []
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


GUARDS = {'earlier_intact', 'claims_exist', 'pth_load', 'no_tmp', 'no_marker', 'no_file', 'no_echo'}


def check(spec: str, tmp: Path, base: Path, out: str, err: str, state: dict) -> Optional[str]:
    "None if the check `spec` holds, else what is wrong."
    name, _, arg = spec.partition(':')
    run = tmp / RUN
    if name == 'earlier_intact':
        folder = arg or RUN
        if _digest(tmp / folder) != state['earlier'][folder]: return f'the earlier run in {folder}/ was changed'
    elif name == 'finite':
        folder = tmp / (arg or RUN)
        records = _metrics(folder)
        values = [v for r in records for k, v in r.items() if k in ('loss', 'val_loss')]
        if not values: return f'no losses in {folder.name}/metrics.jsonl'
        if not all(isinstance(v, (int, float)) and v == v and abs(v) != float('inf') for v in values):
            return f'non-finite loss in {folder.name}/metrics.jsonl'
        if not ((folder / 'best_model.pth').exists() or (folder / 'last.pth').exists()):
            return f'no checkpoint in {folder.name}/'
    elif name == 'finite_json':
        try: total = json.loads(out)['total']
        except (ValueError, KeyError, TypeError): return 'stdout is not the JSON of a result'
        if not all(v == v and abs(v) != float('inf') for v in total.values() if isinstance(v, float)):
            return 'non-finite figures'
    elif name == 'steps':
        want, _, folder = arg.partition(':')
        steps = [r['step'] for r in _metrics(tmp / (folder or RUN)) if 'loss' in r]
        if not steps or max(steps) != int(want): return f'trained {max(steps) if steps else 0} steps, not {want}'
        if len(steps) != len(set(steps)): return 'metrics.jsonl holds a step twice (two runs interleaved?)'
    elif name == 'claims_exist':       # every checkpoint path printed exists
        for p in re.findall(r'(\S+\.pth)', out + '\n' + err):
            if not (tmp / p).exists() and not Path(p).exists(): return f'claims {p}, which does not exist'
    elif name == 'last_saved':
        if not (run / 'last.pth').exists(): return 'no last.pth'
        steps = [r['step'] for r in _metrics(run) if 'loss' in r]
        loaded = _load_step(run / 'last.pth')
        if loaded is None: return 'last.pth does not load'
        if steps and loaded < max(steps): return f'last.pth is at step {loaded}, training got to {max(steps)}'
    elif name == 'pth_load':
        for p in tmp.rglob('*.pth'):
            if _load_step(p) is None: return f'{p.relative_to(tmp)} does not load'
    elif name == 'no_tmp':
        left = [str(p.relative_to(tmp)) for p in tmp.rglob('*') if p.name.endswith('.tmp') or '.tmp.' in p.name]
        if left: return f'left {", ".join(left[:3])}'
    elif name == 'no_marker':
        if (base / 'MARKER').exists(): return 'the pickle ran its code'
    elif name == 'stderr_has':
        if arg not in err: return f'stderr does not say {arg!r}'
    elif name == 'stdout_has':
        if arg not in out: return f'stdout does not say {arg!r}'
    elif name == 'file':
        if not (tmp / arg).is_file(): return f'no {arg}'
    elif name == 'no_file':
        if (tmp / arg).exists(): return f'wrote {arg}'
    elif name == 'no_echo':
        if len(out) + len(err) > 20000: return f'echoed the prompt ({len(out) + len(err):,} characters of output)'
    else: raise ValueError(f'unknown check {spec!r}')
    return None


def _load_step(path: Path) -> Optional[int]:
    "The step of a trainer checkpoint (0 for other checkpoints), None when it does not load."
    import torch
    try: ckpt = torch.load(path, weights_only=True, map_location='cpu')
    except Exception: return None
    state = ckpt.get('state') if isinstance(ckpt, dict) else None
    step = state.get('step') if isinstance(state, dict) else None
    return step if isinstance(step, int) else 0


# ------------------------------------------------------------------------------------------------ running
API_WRAPPER = r'''
import dis, json, os, sys
G = json.loads(os.environ['SCRATCHLM_FAULT_GLOBALS'])
import scratchlm
PKG = os.path.dirname(os.path.abspath(scratchlm.__file__)) + os.sep
RAISE = {dis.opmap[n] for n in ('RAISE_VARARGS', 'RERAISE') if n in dis.opmap}
try: exec(compile(G.pop('SNIPPET'), '<case>', 'exec'), dict(G))
except Exception as e:
    tb = e.__traceback__
    while tb.tb_next: tb = tb.tb_next
    code = tb.tb_frame.f_code
    if code.co_filename == '<case>' and isinstance(e, AssertionError):
        print(f'check failed: {e}', file=sys.stderr); sys.exit(3)
    mine = os.path.abspath(code.co_filename).startswith(PKG) and code.co_code[tb.tb_lasti] in RAISE
    message = str(e).strip()
    if mine and '\n' not in message: sys.exit(f'error: {type(e).__name__}: {message}')
    raise
'''


def _limits(fsize: Optional[int]):
    def apply():
        for s in (signal.SIGINT, signal.SIGTERM):   # a harness started in the background ignores SIGINT,
            signal.signal(s, signal.SIG_DFL)         # and its children would inherit that
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)          # EFBIG instead of death by signal
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    return apply


def _argv(case: Case, paths: dict, tmp: Path) -> tuple:
    "The command line and environment of `case`."
    env = _env(home=tmp)
    if case.py is not None:
        env['SCRATCHLM_FAULT_GLOBALS'] = json.dumps(dict(
            SNIPPET=case.py, CORPUS=paths['corpus'], TOK=paths['tok'], TOK2=paths['tok2'], CKPT=paths['ckpt'],
            FOLDER=paths['folder'], TMP=str(tmp)))
        return [sys.executable, '-c', API_WRAPPER], env
    return [sys.executable, '-m', 'scratchlm.cli', case.iface, *expand(case.argv, paths)], env


def _wait_for_metrics(proc, run: Path, timeout: float) -> bool:
    "Wait until the run has logged a loss (True), or ended or timed out (False)."
    t0 = time.time()
    while time.time() - t0 < timeout and proc.poll() is None:
        if any('loss' in r for r in _metrics(run)): return True
        time.sleep(0.05)
    return False


def _run_case(case: Case, argv: list, env: dict, tmp: Path, limits) -> tuple:
    "(exit status, stdout, stderr, timed out) of the case's run(s)."
    def popen(args=argv):
        return subprocess.Popen(args, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, encoding='utf-8', errors='replace', preexec_fn=limits)
    def finish(proc, timeout):
        try:
            out, err = proc.communicate(timeout=timeout)
            return proc.returncode, out, err, False
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            return proc.returncode, out, err, True
    if case.mode == 'run': return finish(popen(), case.timeout)
    if case.mode == 'concurrent':
        a, b = popen(), popen()
        ra, rb = finish(a, case.timeout), finish(b, case.timeout)
        if ra[3] or rb[3]: return (ra if ra[3] else rb)
        if ra[0] == 0 and rb[0] == 0:  # both finished: report it as one silent success
            return 0, ra[1] + rb[1], ra[2] + rb[2], False
        if ra[0] != 0 and rb[0] != 0: return 1, ra[1] + rb[1], ra[2] + '\n' + rb[2], False
        return ra if ra[0] != 0 else rb           # the one that refused
    proc = popen()
    if case.mode == 'sigkill-resume':       # dies without a word after its first checkpoint: its lock is stale
        t0 = time.time()
        while time.time() - t0 < case.timeout and proc.poll() is None and not (tmp / RUN / 'last.pth').exists():
            time.sleep(0.05)
        proc.kill()
        first = finish(proc, case.timeout)
        rc, out, err, hung = finish(popen(argv + ['--resume']), case.timeout)
        return rc, first[1] + out, first[2] + err, hung
    if not _wait_for_metrics(proc, tmp / RUN, case.timeout):
        rc, out, err, hung = finish(proc, case.timeout)
        return rc, out, err + '\n[harness: the run logged no loss before it ended]', hung
    sig = signal.SIGTERM if case.mode == 'sigterm' else signal.SIGINT
    proc.send_signal(sig)
    if case.mode == 'sigint2':
        time.sleep(0.2)
        if proc.poll() is None: proc.send_signal(signal.SIGINT)
    result = finish(proc, case.timeout)
    if case.mode != 'sigint-resume' or result[3]: return result
    rc, out, err, hung = finish(popen(argv + ['--resume']), case.timeout)
    return rc, result[1] + out, result[2] + err, hung


def _error_line(err: str) -> Optional[str]:
    "The one clear error line of stderr, or None."
    lines = [l for l in err.splitlines() if l.strip()]
    if not lines: return None
    if re.match(r'^(\S+: )?error:', lines[-1]): return lines[-1]
    return lines[0] if len(lines) == 1 else None


def classify(case: Case, rc: int, out: str, err: str, hung: bool, problems: list) -> str:
    if hung: return 'hang'
    if TRACEBACK in err or TRACEBACK in out: return 'traceback'
    want = case.rc if case.rc is not None else 0
    if 'ok' in case.expect.split('|') and rc == want: return 'silent' if problems else 'ok'
    if rc == 0 or rc == 3: return 'silent'    # 3: a snippet's own check failed
    if _error_line(err): return 'clear error'
    return 'silent' if not err.strip() or rc < 0 else 'unclear'


def message_of(outcome: str, out: str, err: str) -> str:
    lines = [l.strip() for l in err.splitlines() if l.strip() and not l.startswith('[harness')]
    if outcome == 'traceback':
        tail = [l for l in lines if not l.startswith(('File ', '^', '~'))]
        return tail[-1] if tail else ''
    if outcome in ('clear error', 'unclear') and lines: return _error_line(err) or lines[-1]
    outs = [l.strip() for l in out.splitlines() if l.strip()]
    return (outs[0] if outs else lines[-1] if lines else '')


def run_case(case: Case, base: Path, info: dict, work: Path) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=case.id + '-', dir=work))
    paths, state = _paths(base, tmp), {}
    if (base / 'cache').exists(): shutil.copytree(base / 'cache', tmp / 'cache')   # prepared: no re-tokenizing
    for name, kind in case.files.items(): make_file(kind, tmp / name, base)
    for step in case.setup: setup_step(step, tmp, base, state)
    (base / 'MARKER').unlink(missing_ok=True)
    fsize = None
    if case.fsize:     # 'ckpt/N': the tiny checkpoint's size / N; or a number of bytes
        fsize = info['ckpt_size'] // int(case.fsize[5:]) if case.fsize.startswith('ckpt/') else int(case.fsize)
    argv, env = _argv(case, paths, tmp)
    t0 = time.perf_counter()
    rc, out, err, hung = _run_case(case, argv, env, tmp, _limits(fsize))
    seconds = time.perf_counter() - t0
    problems = [p for p in (check(c, tmp, base, out, err, state) for c in case.checks) if p]
    outcome = classify(case, rc, out, err, hung, problems)
    if outcome != 'ok':      # the checks of a result only count for a result; the guards always do
        problems = [p for c, p in zip(case.checks, (check(c, tmp, base, out, err, state) for c in case.checks))
                    if p and c.partition(':')[0] in GUARDS]
    line = _error_line(err)
    if outcome == 'clear error':
        for words in case.says:
            words = fill(words, paths)
            if not any(w.lower() in line.lower() for w in words.split('|')):
                problems.append(f'the error does not name {words!r}')
    for word in case.says_not:
        if word in out or word in err: problems.append(f'says {word!r}')
    passed = outcome in case.expect.split('|') and not problems
    shutil.rmtree(tmp, ignore_errors=True)
    return dict(id=case.id, interface=case.iface, cls=case.cls, description=case.desc, expected=case.expect,
                outcome=outcome, passed=passed, exit_status=rc, seconds=round(seconds, 1),
                message=message_of(outcome, out, err)[:300], problems=problems, stderr_tail=err[-600:])


def prepare(pythonpath: Optional[str] = None  # The checkout to measure; default: this process's PYTHONPATH
           ) -> Path:
    "A work folder with the fixtures made, for several `run(..., work=)` calls; remove it when done."
    global PYTHONPATH
    if pythonpath is not None: PYTHONPATH = str(pythonpath)
    work = Path(tempfile.mkdtemp(prefix='scratchlm-faults-'))
    (work / 'fixtures').mkdir()
    info = make_fixtures(work / 'fixtures')
    (work / 'fixtures' / 'info.json').write_text(json.dumps(info))
    return work


def run(ids: Optional[list] = None,  # Case ids; default: all
        log=lambda line: print(line, flush=True),  # Called with one line per case as it ends
        pythonpath: Optional[str] = None,  # The checkout to measure; default: this process's PYTHONPATH
        work: Optional[Path] = None  # A folder from `prepare` (kept); default: a new one (removed)
       ) -> list:
    "Run the cases (all, or those of `ids`) and return one result dict per case."
    global PYTHONPATH
    if pythonpath is not None: PYTHONPATH = str(pythonpath)
    cases = [c for c in CASES if ids is None or c.id in ids]
    unknown = set(ids or ()) - {c.id for c in cases}
    if unknown: raise ValueError(f"unknown case(s) {', '.join(sorted(unknown))}")
    own = work is None
    if own:
        work = Path(tempfile.mkdtemp(prefix='scratchlm-faults-'))
        (work / 'fixtures').mkdir()
    base = Path(work) / 'fixtures'
    try:
        info = json.loads((base / 'info.json').read_text()) if (base / 'info.json').exists() else {}
        if not info and any(needs_fixtures(c) for c in cases):
            t0 = time.perf_counter()
            info = make_fixtures(base)
            log(f'fixtures made in {time.perf_counter() - t0:.0f}s')
        results = []
        for c in cases:
            r = run_case(c, base, info, Path(work))
            log(f"{r['id']:24} {r['outcome']:12} {'pass' if r['passed'] else 'FAIL'} {r['seconds']:5.1f}s  "
                f"{r['message'][:100]}")
            results.append(r)
        return results
    finally:
        if own: shutil.rmtree(work, ignore_errors=True)


def table(results: list, markdown: bool = False) -> str:
    "The results as a text (or Markdown) table."
    cols = ['id', 'interface', 'cls', 'outcome', 'expected', 'passed', 'message']
    heads = ['id', 'interface', 'class', 'outcome', 'expected', 'pass', 'message (first line) / problems']
    if any('before' in r for r in results):
        cols.insert(3, 'before'); heads.insert(3, 'before')
    def cell(r, c):
        if c == 'passed': return 'yes' if r['passed'] else 'NO'
        if c == 'message':
            m = r['message'] + (f" [{'; '.join(r['problems'])}]" if r['problems'] else '')
            return m.replace('|', '\\|') if markdown else m[:110]
        return str(r.get(c, '-'))
    rows = [[cell(r, c) for c in cols] for r in results]
    if markdown:
        return '\n'.join(['| ' + ' | '.join(heads) + ' |', '|' + '---|' * len(heads)] +
                         ['| ' + ' | '.join(x.replace('\n', ' ') for x in row) + ' |' for row in rows])
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(heads)]
    widths[-1] = len(heads[-1])
    fmt = lambda row: '  '.join(f'{x:{w}}' for x, w in zip(row, widths)).rstrip()
    return '\n'.join([fmt(heads)] + [fmt(row) for row in rows])


def summary(results: list) -> str:
    "Counts per outcome, and how many cases pass."
    from collections import Counter
    counts = Counter(r['outcome'] for r in results)
    passed = sum(r['passed'] for r in results)
    return (f"{len(results)} cases: " + ', '.join(f'{counts[o]} {o}' for o in OUTCOMES if counts[o]) +
            f"; {passed} as expected, {len(results) - passed} not")


def main(argv=None):
    p = argparse.ArgumentParser(description='Run the fault cases against the checkout on PYTHONPATH.')
    p.add_argument('--only', help='comma-separated case ids')
    p.add_argument('--json', help='write the results as JSON here')
    p.add_argument('--markdown', help='write the table as Markdown here')
    p.add_argument('--before', help="a JSON file of an earlier run: its outcomes become a 'before' column")
    p.add_argument('--list', action='store_true', help='list the cases and exit')
    a = p.parse_args(argv)
    if a.list:
        for c in CASES: print(f'{c.id:24} {c.iface:16} {c.cls:26} {c.expect:16} {c.desc}')
        return
    ids = a.only.split(',') if a.only else None
    import scratchlm
    checkout = str(Path(scratchlm.__file__).resolve().parent.parent)
    t0 = time.perf_counter()
    results = run(ids)
    seconds = time.perf_counter() - t0
    if a.before:
        earlier = {r['id']: r['outcome'] for r in json.loads(Path(a.before).read_text())['results']}
        for r in results: r['before'] = earlier.get(r['id'], 'not run')
    print('\n' + table(results) + '\n\n' + summary(results) + f' ({seconds:.0f}s)')
    meta = dict(checkout=checkout, seconds=round(seconds), cpu=_cpu(), python=sys.version.split()[0],
                summary=summary(results))
    if a.json: Path(a.json).write_text(json.dumps(dict(meta, results=results), indent=1, ensure_ascii=False))
    if a.markdown: write_markdown(a.markdown, dict(meta, results=results))


def write_markdown(path, run: dict):
    "Write the table of a run (the dict of `--json`) as Markdown, with a header line."
    note = f" {run['note']}" if run.get('note') else ''
    Path(path).write_text(f"Fault cases against {run['checkout']} ({run['cpu']}, {run['seconds']}s): "
                          f"{run['summary']}.{note}\n\n{table(run['results'], markdown=True)}\n", encoding='utf-8')


def _cpu() -> str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'): return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError: pass
    return f'{os.cpu_count()} cores'


# sanity of the table itself
assert len({c.id for c in CASES}) == len(CASES), 'duplicate case ids'
assert all(c.iface in INTERFACES and c.cls in CLASSES for c in CASES)
assert all(set(c.expect.split('|')) <= set(OUTCOMES) for c in CASES)

if __name__ == '__main__': main()
