"""Benchmark microgpt.py: ms per training step, ms per evaluated document, ms per sampled name and
peak memory, for one or more interpreters side by side, next to Part 1 alone (--reference).

    python tests/bench.py                                 # this interpreter (about 1 minute)
    python tests/bench.py --python python3.11 pypy3       # several, interleaved (1 min each)
    python tests/bench.py --default-run                   # also time `python microgpt.py`
    python tests/bench.py --default-run --compare OLD.py  # beside another microgpt.py
    python tests/bench.py --levers                        # each lever off in turn (about 4 min)
    python tests/bench.py --how-far --python python3 pypy3  # held-out loss by steps and size
                                                          # (8 min under CPython, 2 under PyPy)

Not a unit test (the file name keeps unittest from collecting it). The machines are shared and
noisy, so every figure is the median of --repeats runs, each in a fresh process, and the cases
being compared are interleaved, so that a drift in the machine's speed hits them all alike.
"""
import argparse
import contextlib
import gc
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'microgpt.py')
LEVERS = ['linear', 'rmsnorm', 'attention', 'mlp', 'cross_entropy', 'tape',
          'collector']  # the names that --lever-off takes
HOW_FAR = [[], ['--steps', '10000'], ['--n-embd', '32', '--n-layer', '2', '--steps', '10000']]


def worker(opts):
    """One measurement in this process; prints a JSON line. Uses only what older files share
    (train, mean_loss, sample, and use_efficiency or efficiency), so that --compare times them."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('microgpt_under_test', opts.file)
    microgpt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(microgpt)
    for name in opts.lever_off:  # each lever truly off: Part 1's function in its place
        microgpt.STAND_INS.pop('train' if name == 'tape' else name, None)
    docs = microgpt.load_docs(opts.input)
    random.Random(42).shuffle(docs)
    tokenizer = microgpt.Tokenizer(''.join(sorted(set(''.join(docs)))))
    config = microgpt.Config(n_embd=opts.n_embd, n_head=opts.n_head, n_layer=opts.n_layer,
                            block_size=opts.block_size)
    params = microgpt.init_params(config, tokenizer.vocab_size, random.Random(42))
    if hasattr(microgpt, 'use_efficiency'):  # a file from before efficiency()
        microgpt.use_efficiency(not opts.reference)
        efficiency = contextlib.nullcontext()
    else:
        efficiency = microgpt.efficiency(not opts.reference)
    with efficiency:
        if 'collector' in opts.lever_off:
            gc.enable()
        start = time.perf_counter()
        losses = list(microgpt.train(docs, tokenizer, params, config, opts.steps, 0.01))
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        held_out = microgpt.mean_loss(docs[-opts.eval_docs:], tokenizer, params, config)
        eval_seconds = time.perf_counter() - start
        rng = random.Random(42)
        start = time.perf_counter()
        for _ in range(opts.names):
            microgpt.sample(params, config, tokenizer, rng, 0.5)
        sample_seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    print(json.dumps({'ms_per_step': train_seconds * 1000 / opts.steps,
                      'ms_per_eval_doc': eval_seconds * 1000 / opts.eval_docs,
                      'ms_per_name': sample_seconds * 1000 / opts.names,
                      'peak_mb': peak_kb / 1024, 'last_loss': losses[-1], 'held_out': held_out}))


def run(command, what):  # a subprocess's stdout; one line and exit 1 if it fails
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode:
        lines = result.stderr.strip().splitlines() or ['no output']
        reason = lines[-1] if lines[0].startswith('Traceback') else lines[0]
        sys.exit(f'bench.py: {what} failed: {reason}')
    return result.stdout


def measure(python, file=SCRIPT, steps=1000, reference=False, lever_off=(), eval_docs=200):
    command = [python, os.path.abspath(__file__), '--worker', '--file', file, '--steps',
               str(steps), '--eval-docs', str(eval_docs)]
    command += ['--reference'] if reference else []
    for name in lever_off:
        command += ['--lever-off', name]
    label = ' '.join([os.path.basename(file)] + (['--reference'] if reference else []) +
                     [f'without {name}' for name in lever_off])
    row = json.loads(run(command, f'{python} {label}').strip().splitlines()[-1])
    print(f'  {python} {label}: {row["ms_per_step"]:.2f} ms/step', file=sys.stderr, flush=True)
    return row


def default_run_seconds(python, file=SCRIPT):  # `python microgpt.py`, from the root (names.txt)
    start = time.perf_counter()
    run([python, file], f'{python} {file}')
    seconds = time.perf_counter() - start
    print(f'  {python} {os.path.basename(file)} (default run): {seconds:.1f} s', file=sys.stderr,
          flush=True)
    return seconds


def version(python):  # e.g. "CPython 3.11.7", or None where it is missing or does not run
    code = 'import platform; print(platform.python_implementation(), platform.python_version())'
    try:
        result = subprocess.run([python, '-c', code], capture_output=True, text=True)
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def present(pythons):  # the interpreters that run here; a note on stderr for each that does not
    found = [python for python in pythons if version(python)]
    for python in pythons:
        if python not in found:
            print(f'bench.py: {python} is not on this machine (or does not run): skipped',
                  file=sys.stderr)
    if not found:
        sys.exit('bench.py: none of the interpreters runs here')
    return found


def median(rows, key):
    return statistics.median(row[key] for row in rows)


def interpreters(args):
    names = {python: version(python) for python in args.python}
    results = {python: [] for python in args.python}
    wall = {python: [] for python in args.python}
    compared = []  # --compare: another microgpt.py under the first interpreter
    compared_wall = []
    reference = []
    first_steps = []  # Part 2 over the documents that --reference trains on
    first = args.python[0]
    for repeat in range(args.repeats):
        print(f'repeat {repeat + 1} of {args.repeats}', file=sys.stderr, flush=True)
        reference.append(measure(first, steps=args.reference_steps, reference=True,
                                 eval_docs=args.eval_docs))
        first_steps.append(measure(first, steps=args.reference_steps, eval_docs=args.eval_docs))
        for python in args.python:
            results[python].append(measure(python, steps=args.steps, eval_docs=args.eval_docs))
            if args.default_run:
                wall[python].append(default_run_seconds(python))
            if args.compare and python == first:
                compared.append(measure(python, file=args.compare, steps=args.steps))
                if args.default_run:
                    compared_wall.append(default_run_seconds(python, args.compare))
    print(f'medians of {args.repeats} runs; {args.steps} training steps of the default model')
    print(f"{'interpreter':28s} {'ms/step':>8s}  {'default run':>11s}  {'ms/eval doc':>11s}  "
          f"{'ms/name':>8s}  {'peak MB':>8s}")
    for python in args.python:
        rows = results[python]
        run_text = f'{statistics.median(wall[python]):.1f} s' if wall[python] else '-'
        print(f"{names[python]:28s} {median(rows, 'ms_per_step'):8.2f}  {run_text:>11s}  "
              f"{median(rows, 'ms_per_eval_doc'):11.2f}  {median(rows, 'ms_per_name'):8.2f}  "
              f"{median(rows, 'peak_mb'):8.1f}")
    for python in args.python[1:]:
        ratio = median(results[first], 'ms_per_step') / median(results[python], 'ms_per_step')
        print(f'{names[python]} trains {ratio:.2f}x as fast per step as {names[first]}')
    if compared:
        ms = median(compared, 'ms_per_step')
        print(f'{args.compare} under {names[first]}: {ms:.2f} ms/step, '
              f"{median(compared, 'ms_per_eval_doc'):.2f} ms/eval doc, "
              f"{median(compared, 'peak_mb'):.1f} MB; microgpt.py trains "
              f"{ms / median(results[first], 'ms_per_step'):.2f}x as fast per step")
    if compared_wall:
        seconds = statistics.median(compared_wall)
        print(f'{args.compare} default run: {seconds:.1f} s; microgpt.py: '
              f'{statistics.median(wall[first]):.1f} s')
    reference_ms = median(reference, 'ms_per_step')
    fast_ms = median(first_steps, 'ms_per_step')
    print(f'--reference (Part 1 alone) under {names[first]}: {reference_ms:.1f} ms/step over the '
          f'first {args.reference_steps} documents, where Part 2 takes {fast_ms:.2f}: '
          f'{reference_ms / fast_ms:.1f}x')


def levers(args):
    python = args.python[0]
    cases = [('all of Part 2', [])] + [(f'without {name}', [name]) for name in LEVERS]
    rows = {label: [] for label, _ in cases}
    for repeat in range(args.repeats):
        print(f'repeat {repeat + 1} of {args.repeats}', file=sys.stderr, flush=True)
        for label, off in cases:
            rows[label].append(measure(python, steps=args.steps, lever_off=off))
    all_on = median(rows['all of Part 2'], 'ms_per_step')
    all_on_eval = median(rows['all of Part 2'], 'ms_per_eval_doc')
    print(f'{version(python)}, medians of {args.repeats}; {args.steps} training steps of the '
          f'default model; evaluation on 200 documents')
    print(f"{'case':26s} {'ms/step':>8s}  {'step cost':>9s}  {'ms/eval doc':>11s}  "
          f"{'eval cost':>9s}")
    for label, _ in cases:
        step = median(rows[label], 'ms_per_step')
        eval_doc = median(rows[label], 'ms_per_eval_doc')
        print(f'{label:26s} {step:8.2f}  {step / all_on:8.2f}x  {eval_doc:11.2f}  '
              f'{eval_doc / all_on_eval:8.2f}x')


def how_far(args):  # the whole program at a few lengths and sizes: held-out loss, wall time
    print(f"{'interpreter':28s} {'flags':40s} {'held-out loss':>13s}  {'wall':>7s}")
    for flags in HOW_FAR:
        for python in args.python:
            start = time.perf_counter()
            out = run([python, SCRIPT, *flags, '--samples', '0'], f'{python} microgpt.py')
            seconds = time.perf_counter() - start
            held_out = re.search(r'loss on \d+ held-out docs (\S+);', out)[1]
            print(f"{version(python):28s} {' '.join(flags) or '(the default run)':40s} "
                  f'{held_out:>13s}  {seconds:6.1f}s', flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--python', nargs='+', default=[sys.executable], help='interpreters to compare')
    p.add_argument('--steps', type=int, default=1000, help='training steps per measurement')
    p.add_argument('--reference-steps', type=int, default=30, help='steps of Part 1 alone')
    p.add_argument('--repeats', type=int, default=3, help='measurements per case')
    p.add_argument('--default-run', action='store_true', help='also time `python microgpt.py`')
    p.add_argument('--levers', action='store_true', help='each Part 2 lever turned off in turn')
    p.add_argument('--compare', metavar='FILE', help='another microgpt.py, timed beside it')
    p.add_argument('--how-far', action='store_true', help='held-out loss by steps and size')
    p.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--file', default=SCRIPT, help=argparse.SUPPRESS)
    p.add_argument('--input', default=os.path.join(ROOT, 'names.txt'), help=argparse.SUPPRESS)
    p.add_argument('--reference', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--lever-off', action='append', default=[], choices=LEVERS,
                   help=argparse.SUPPRESS)
    for name, default in (('n-embd', 16), ('n-head', 4), ('n-layer', 1), ('block-size', 16),
                          ('eval-docs', 200), ('names', 20)):
        p.add_argument('--' + name, type=int, default=default, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    args.python = present(args.python)
    if args.compare and not os.path.isfile(args.compare):
        sys.exit(f'bench.py: --compare {args.compare}: no such file')
    start = time.perf_counter()
    if args.levers:
        levers(args)
    elif args.how_far:
        how_far(args)
    else:
        interpreters(args)
    print(f'(took {time.perf_counter() - start:.0f} s)')


if __name__ == '__main__':
    main()
