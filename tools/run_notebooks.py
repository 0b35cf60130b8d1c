#!/usr/bin/env python3
"""Run the notebooks of nbs/ and save them with their outputs, or check that the saved outputs are current.

    python tools/run_notebooks.py                      # every notebook, in order
    python tools/run_notebooks.py 05_trainer 07_generation
    python tools/run_notebooks.py --flags "slow data"  # also run the cells flagged `slow` and `data`
    python tools/run_notebooks.py --check              # runs nothing: exit 1 if outputs are stale or missing

Running works like `nbdev-test`: each notebook in a fresh process with its own execnb `CaptureShell`, in
nbs/, skipping the cells flagged by `tst_flags` in pyproject.toml (unless named in `--flags`), with its cell
timeout. Every executed code cell gets `metadata.scratchlm.source_sha`, the first 12 hex digits of the sha256
of its source, even when it prints nothing. A cell that is not executed keeps its old outputs only if its
recorded hash still matches its source; otherwise its outputs and hash are cleared. A notebook that fails is
left as it was, and the tool exits 1 (after running the others). The result goes through nbdev's `clean_nb`
with the project's settings, so `nbdev-clean` afterwards changes nothing (`allowed_cell_metadata_keys` in
pyproject.toml keeps the hash).

To keep the repository light, figures are PNG at `--dpi` (72: set in the shell before the first cell, the
notebooks themselves are not edited), `text/html` is dropped where a `text/plain` or PNG form of the same
output exists, text outputs are cut in the middle above `--max-text` characters, and cells with more than
4 KB of text are reported so they can be trimmed in the notebook.

`--check` reports, one line each: code cells with outputs from another source (hash missing or different);
cells that nbdev-test runs by default but that have no hash of their current source (except `#| export`
cells and cells of imports only, which show nothing anyway); cells that draw a figure (they use `plt.`,
`fig`, `Image(` or a plotting method such as `.plot(` with arguments, and do more than import and define) but have no PNG.
Cells are named by their 0-based index in the notebook's list of cells and by their id.
"""
import argparse, ast, hashlib, json, os, re, sys, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from fastcore.nbio import nb2str, read_nb
from nbdev.clean import clean_nb
from nbdev.config import get_config
from nbdev.test import nb_test_cells

CFG = get_config(Path(__file__).resolve().parent.parent)
SKIP_FLAGS = CFG.tst_flags.split() if isinstance(CFG.tst_flags, str) else list(CFG.tst_flags)
KEY, BIG_TEXT = 'scratchlm', 4096
# a drawing call has data to draw: `trainer.plot()` (no arguments) writes a file and draws nothing here
FIGURE = re.compile(r'\bplt\.|\bfig\b|\.(plot|imshow|hist|scatter|bar|matshow)\((?!\))|\bImage\(')

def source_sha(cell): return hashlib.sha256(cell.source.encode()).hexdigest()[:12]
def recorded_sha(cell): return (cell.metadata.get(KEY) or {}).get('source_sha')
def ran(cell): return recorded_sha(cell) == source_sha(cell)

def only(cell, *kinds):
    "Is every statement of `cell` one of `kinds`? (False when it does not parse: magics, shell lines)"
    body = cell.parsed_()
    return body is not None and all(isinstance(s, kinds) for s in body)

def setup_only(cell):
    "An `#| export` cell or one of imports only: nothing to show, so it needs no record of having run"
    exported = {'export', 'exports', 'exporti'} & cell.directives.keys()
    return bool(exported) or only(cell, ast.Import, ast.ImportFrom)

def draws_figure(cell):
    defs = ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef
    return bool(FIGURE.search(cell.source)) and not only(cell, *defs)

def has_png(cell): return any('image/png' in o.get('data', {}) for o in cell.outputs)

def text_of(v): return v if isinstance(v, str) else ''.join(v)

def cut(s, n):
    if len(s) <= n: return s
    return f'{s[:n // 2]}\n... [{len(s) - n} characters cut by tools/run_notebooks.py] ...\n{s[-n // 2:]}'

def lighten(cell, max_text):
    "Drop `text/html` duplicates, cut long texts; return how many characters of text `cell` shows"
    size = 0
    for o in cell.outputs:
        data = o.get('data', {})
        if 'text/html' in data and {'text/plain', 'image/png'} & data.keys(): del data['text/html']
        for d, k in [(o, 'text'), (data, 'text/plain')]:
            if k in d:
                d[k] = cut(text_of(d[k]), max_text)
                size += len(d[k])
    return size

def execute(fn, force_flags, dpi, max_text):
    "Run notebook `fn` in this (fresh) process: (notebook text, cells run, [cell with big text]), or None"
    from execnb.shell import CaptureShell
    root = str(CFG.config_path)
    sys.path.insert(0, root)
    os.environ['IN_TEST'] = '1'  # as nbdev-test; PYTHONPATH: subprocesses import this checkout too
    os.environ['PYTHONPATH'] = os.pathsep.join(p for p in [root, os.environ.get('PYTHONPATH')] if p)
    to_run = {c.idx_ for c in nb_test_cells(fn, SKIP_FLAGS, force_flags)}
    nb = read_nb(fn)
    shell = CaptureShell(fn, mpl_format='png', profile=bool(CFG.exec_profile))
    shell.run(f"import matplotlib; matplotlib.rcParams['figure.dpi'] = {dpi}")
    os.chdir(fn.parent)
    skip = lambda c: c.idx_ not in to_run
    try: shell.run_all(nb, exc_stop=True, preproc=skip, cell_timeout=CFG.cell_timeout or None)
    except BaseException:
        sys.stderr.write(shell.prettytb(fname=fn) + '\n')
        return None
    big = []
    for c in nb.cells:
        if c.cell_type != 'code': continue
        if c.idx_ in to_run: c.metadata[KEY] = {'source_sha': source_sha(c)}
        elif not ran(c):
            c.outputs = []
            c.metadata.pop(KEY, None)
        if (n := lighten(c, max_text)) > BIG_TEXT: big.append(f'{fn.name} cell {c.idx_} (id {c.id}): {n:,}')
    clean_nb(nb, CFG.clear_all, CFG.get('allowed_metadata_keys'), CFG.get('allowed_cell_metadata_keys'),
             CFG.clean_ids, CFG.get('allowed_out_metadata_keys'))  # what nbdev-clean does
    return nb2str(nb), len(to_run), big

def output_stats(text):
    "(KB of outputs, number of PNG figures) in a notebook's text"
    outs = [o for c in json.loads(text)['cells'] for o in c.get('outputs', [])]
    figures = sum('image/png' in o.get('data', {}) for o in outs)
    return len(json.dumps(outs, ensure_ascii=False)) / 1024, figures

def run(paths, flags, dpi, max_text):
    failed, big = [], []
    print(f"{'notebook':24} {'cells run':>9} {'seconds':>8} {'outputs KB':>10} {'figures':>7}")
    for fn in paths:
        t0 = time.perf_counter()
        try:  # a fresh process per notebook, started as nbdev-test's workers are (fork on Linux)
            with ProcessPoolExecutor(1) as ex:
                res = ex.submit(execute, fn, flags.split(), dpi, max_text).result()
        except Exception as e: print(f'{fn.name}: {type(e).__name__}: {e}', file=sys.stderr); res = None
        secs = time.perf_counter() - t0
        if res is None:
            failed.append(fn.name)
            print(f'{fn.name:24} FAILED after {secs:.1f}s: left unchanged')
            continue
        text, n_run, nb_big = res
        if text != fn.read_text(encoding='utf-8'): fn.write_text(text, encoding='utf-8')
        kb, figs = output_stats(text)
        print(f'{fn.name:24} {n_run:9} {secs:8.1f} {kb:10.1f} {figs:7}', flush=True)
        big += nb_big
    for b in big: print(f'over {BIG_TEXT // 1024} KB of text, trim it in the notebook: {b} characters')
    if failed: print(f'failed: {" ".join(failed)}')
    return 1 if failed else 0

def check(paths):
    problems, n_cells = [], 0
    for fn in paths:
        must_run = {c.idx_ for c in nb_test_cells(fn, SKIP_FLAGS)}
        for c in read_nb(fn).cells:
            if c.cell_type != 'code': continue
            n_cells += 1
            if c.outputs and not ran(c):
                why = 'has outputs of another source' if recorded_sha(c) else 'has outputs but no source hash'
            elif not ran(c) and c.idx_ in must_run and not setup_only(c):
                why = 'not run since its source changed' if recorded_sha(c) else 'never ran (no source hash)'
            elif ran(c) and draws_figure(c) and not has_png(c): why = 'draws a figure but has no image/png'
            else: continue
            problems.append(f'{fn.name} cell {c.idx_} (id {c.id}): {why}')
    for p in problems: print(p)
    print(f'outputs check: {len(paths)} notebooks, {n_cells} cells, {len(problems)} problems')
    if problems: print('rerun them with `python tools/run_notebooks.py NOTEBOOK...` and commit the notebooks')
    return 1 if problems else 0

def notebooks(names):
    nbs = CFG.path('nbs_path')
    if not names: return sorted(p for p in nbs.glob('*.ipynb') if not p.name.startswith(('_', '.')))
    paths = [Path(n).resolve() if Path(n).is_file() else nbs / (Path(n).stem + '.ipynb') for n in names]
    if missing := [str(p) for p in paths if not p.is_file()]: sys.exit(f'no such notebook: {missing}')
    return paths

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('notebooks', nargs='*', help='names such as 05_trainer (default: all of nbs/, in order)')
    p.add_argument('--check', action='store_true', help='check the saved outputs, run nothing')
    p.add_argument('--flags', default='', help='flags of cells to run too, e.g. "slow data"')
    p.add_argument('--dpi', type=int, default=72, help='resolution of the figures (default 72)')
    p.add_argument('--max-text', type=int, default=20_000, help='longest text output kept whole (characters)')
    a = p.parse_args()
    paths = notebooks(a.notebooks)
    return check(paths) if a.check else run(paths, a.flags, a.dpi, a.max_text)

if __name__ == '__main__': sys.exit(main())
