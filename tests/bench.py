"""Benchmark microgpt.py: ms per training step, default-run wall time, ms per sampled name and peak
memory, for one or more interpreters side by side, next to Part 1 alone (--reference).

    python tests/bench.py                                # this interpreter, 3 repeats
    python tests/bench.py --python python3.11 pypy3      # several interpreters, interleaved
    python tests/bench.py --default-run                  # also time `python microgpt.py`
    python tests/bench.py --levers                       # each Part 2 lever turned off in turn
    python tests/bench.py --scaling                      # block_size, n_embd, n_layer sweeps
    python tests/bench.py --scaling --compare OLD.py     # the same for another microgpt.py
    python tests/bench.py --default-run --compare OLD.py # the default run beside another one

Not a unit test (the file name keeps unittest from collecting it). The machines are shared and
noisy, so every figure is the median of --repeats runs, each in a fresh process, and the runs
being compared are interleaved so that a drift in the machine's speed hits them all alike.
The baseline is Part 1 alone: one graph node per + and *, a graph search for backward() and
Python's cycle collector at its default, as in the micrograd design.
"""
import argparse
import contextlib
import gc
import glob
import io
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'microgpt.py')
LONG_LINES = os.path.join(os.environ.get('TMPDIR', '/tmp'), 'microgpt_bench_long_lines.txt')


def worker(opts):
    """One measurement in this process; prints a JSON line. Uses only the API that older
    versions of microgpt.py share, so that --compare can time them too."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('microgpt_under_test', opts.file)
    microgpt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(microgpt)
    if opts.reference:
        microgpt.use_efficiency(False)
    elif 'nursery' not in opts.lever_off and hasattr(microgpt, 'LEVERS'):  # PyPy only
        microgpt.restart_pypy_with_a_bigger_nursery(sys.argv)  # as the main program does
    for name in opts.lever_off:
        if name == 'nursery':
            continue
        if name == 'tape':
            microgpt.LEVERS['document_loss'] = microgpt.REFERENCE['document_loss']
            microgpt.backward_on_tape = microgpt.reference_backward
        else:
            microgpt.LEVERS[name] = microgpt.REFERENCE[name]
        microgpt.use_efficiency(True)
    docs = microgpt.load_docs(opts.input)
    random.Random(42).shuffle(docs)
    tokenizer = microgpt.Tokenizer(''.join(sorted(set(''.join(docs)))))
    config = microgpt.Config(n_embd=opts.n_embd, n_head=opts.n_head, n_layer=opts.n_layer,
                             block_size=opts.block_size)
    params = microgpt.init_params(config, tokenizer.vocab_size, random.Random(42))
    collector_seconds = []  # the cycle collector's passes during training, timed

    def on_collection(phase, info):
        collector_seconds.append(time.perf_counter() * (1 if phase == 'stop' else -1))
    collector_callbacks = getattr(gc, 'callbacks', [])  # PyPy has none: reported as 0
    collector_callbacks.append(on_collection)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        losses = list(microgpt.train(docs, tokenizer, params, config, opts.steps, 0.01))
    train_seconds = time.perf_counter() - start
    collector_callbacks.remove(on_collection)
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
                      'collector_ms_per_step': sum(collector_seconds) * 1000 / opts.steps,
                      'ms_per_eval_doc': eval_seconds * 1000 / opts.eval_docs,
                      'ms_per_name': sample_seconds * 1000 / opts.names,
                      'peak_mb': peak_kb / 1024, 'last_loss': losses[-1], 'held_out': held_out}))


def measure(python, file=SCRIPT, steps=1000, reference=False, lever_off=(), size=None,
            input_path=None, eval_docs=200, names=20):
    size = size or {}
    command = [python, os.path.abspath(__file__), '--worker', '--file', file,
               '--steps', str(steps), '--input', input_path or os.path.join(ROOT, 'names.txt'),
               '--eval-docs', str(eval_docs), '--names', str(names)]
    for name, value in size.items():
        command += ['--' + name.replace('_', '-'), str(value)]
    command += ['--reference'] if reference else []
    for name in lever_off:
        command += ['--lever-off', name]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def default_run_seconds(python, file=SCRIPT):  # run from the root, where names.txt is
    start = time.perf_counter()
    subprocess.run([python, file], capture_output=True, check=True, cwd=ROOT)
    return time.perf_counter() - start


def version(python):
    code = 'import platform; print(platform.python_implementation(), platform.python_version())'
    return subprocess.run([python, '-c', code], capture_output=True, text=True,
                          check=True).stdout.strip()


def median(rows, key):
    return statistics.median(row[key] for row in rows)


def interpreters(args):
    names = {python: version(python) for python in args.python}
    results = {python: [] for python in args.python}
    reference = []
    wall = {python: [] for python in args.python}
    compared = []  # --compare: another microgpt.py under the first interpreter
    compared_wall = []
    for repeat in range(args.repeats):
        reference.append(measure(args.python[0], steps=args.reference_steps, reference=True))
        for python in args.python:
            results[python].append(measure(python, steps=args.steps))
            if args.default_run:
                wall[python].append(default_run_seconds(python))
            if args.compare and python == args.python[0]:
                compared.append(measure(python, file=args.compare, steps=args.steps))
                if args.default_run:
                    compared_wall.append(default_run_seconds(python, args.compare))
        print(f'repeat {repeat + 1}/{args.repeats} done', file=sys.stderr)
    print(f'medians of {args.repeats} runs; training {args.steps} steps of the default model '
          f'on names.txt')
    print(f"{'interpreter':24s} {'ms/step':>8s} {'default run':>12s} {'ms/eval doc':>12s} "
          f"{'ms/name':>8s} {'peak MB':>8s}")
    for python in args.python:
        rows = results[python]
        run_text = f'{statistics.median(wall[python]):.1f} s' if wall[python] else '-'
        print(f"{names[python]:24s} {median(rows, 'ms_per_step'):8.2f} {run_text:>12s} "
              f"{median(rows, 'ms_per_eval_doc'):12.2f} {median(rows, 'ms_per_name'):8.2f} "
              f"{median(rows, 'peak_mb'):8.1f}")
    first = args.python[0]
    if compared:
        ms = median(compared, 'ms_per_step')
        print(f'{args.compare} under {names[first]}: {ms:.2f} ms/step, '
              f"{median(compared, 'ms_per_eval_doc'):.2f} ms/eval doc, "
              f"{median(compared, 'peak_mb'):.1f} MB; microgpt.py trains "
              f"{ms / median(results[first], 'ms_per_step'):.2f}x as fast per step")
    if compared_wall:
        seconds = statistics.median(compared_wall)
        print(f'{args.compare} default run: {seconds:.1f} s; microgpt.py is '
              f'{seconds / statistics.median(wall[first]):.2f}x as fast')
    for python in args.python[1:]:
        ratio = median(results[first], 'ms_per_step') / median(results[python], 'ms_per_step')
        print(f'{names[python]} trains {ratio:.2f}x as fast per step as {names[first]}')
    # Part 1 alone, timed over its first steps; Part 2 over the same first documents
    n = args.reference_steps
    fast = [measure(first, steps=n) for _ in range(args.repeats)]
    fast_ms = median(fast, 'ms_per_step')
    reference_ms = median(reference, 'ms_per_step')
    print(f'--reference (Part 1 alone, {names[first]}): {reference_ms:.1f} ms/step over the first '
          f'{n} documents, where Part 2 takes {fast_ms:.2f}: {reference_ms / fast_ms:.1f}x faster')


LEVER_NAMES = ['linear', 'rmsnorm', 'attention', 'mlp', 'cross_entropy', 'tape', 'train',
               'adam_update', 'nursery']


def levers(args):
    python = args.python[0]
    cases = [('all of Part 2', [])] + [(f'without {name}', [name]) for name in LEVER_NAMES]
    rows = {label: [] for label, _ in cases}
    for repeat in range(args.repeats):
        for label, off in cases:
            rows[label].append(measure(python, steps=args.steps, lever_off=off))
        print(f'repeat {repeat + 1}/{args.repeats} done', file=sys.stderr)
    reference = []
    fast_first_steps = []  # Part 2 on the same first documents as the reference's
    for _ in range(args.repeats):
        reference.append(measure(python, steps=args.reference_steps, reference=True))
        fast_first_steps.append(measure(python, steps=args.reference_steps))
    all_on = median(rows['all of Part 2'], 'ms_per_step')
    all_on_eval = median(rows['all of Part 2'], 'ms_per_eval_doc')
    print(f'{version(python)}, medians of {args.repeats}; {args.steps} training steps of the '
          f'default model; evaluation on 200 documents')
    print(f"{'case':26s} {'ms/step':>8s} {'step cost':>10s} {'ms/eval doc':>12s} "
          f"{'eval cost':>10s}")
    for label, _ in cases:
        step = median(rows[label], 'ms_per_step')
        eval_doc = median(rows[label], 'ms_per_eval_doc')
        print(f'{label:26s} {step:8.2f} {step / all_on:9.2f}x {eval_doc:12.2f} '
              f'{eval_doc / all_on_eval:9.2f}x')
    step = median(reference, 'ms_per_step')
    fast_step = median(fast_first_steps, 'ms_per_step')
    eval_doc = median(reference, 'ms_per_eval_doc')
    print(f"{'--reference (Part 1 only)':26s} {step:8.2f} {step / fast_step:9.2f}x "
          f"{eval_doc:12.2f} "
          f'{eval_doc / all_on_eval:9.2f}x   (step cost over the first {args.reference_steps} '
          f'steps, where Part 2 takes {fast_step:.2f} ms/step)')


def make_long_lines():
    """Lines of 60 to 200 characters from the standard library's own source: every Python has
    them. Written once to LONG_LINES."""
    if os.path.exists(LONG_LINES):
        return LONG_LINES
    lines = []
    for path in sorted(glob.glob(os.path.join(os.path.dirname(os.__file__), '*.py'))):
        with open(path, encoding='utf-8', errors='replace') as f:
            lines += [line.strip() for line in f if 60 <= len(line.strip()) <= 200]
    lines = [line for line in lines if line.isascii()][:20000]
    with open(LONG_LINES, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    return LONG_LINES


def scaling(args):
    python = args.python[0]
    long_lines = make_long_lines()
    sweeps = [('block_size', [16, 32, 64], long_lines),
              ('n_embd', [16, 32, 64], None),
              ('n_layer', [1, 2, 4], None)]
    files = [('microgpt.py', SCRIPT, False), ('--reference', SCRIPT, True)]
    if args.compare:
        files.insert(1, (os.path.basename(args.compare), args.compare, False))
    results = {}
    for repeat in range(args.repeats):
        for sweep, values, input_path in sweeps:
            for value in values:
                for label, file, reference in files:
                    steps = args.reference_steps if reference else args.scaling_steps
                    row = measure(python, file=file, steps=steps, reference=reference,
                                  size={sweep: value}, input_path=input_path, eval_docs=20,
                                  names=2)
                    results.setdefault((sweep, value, label), []).append(row)
        print(f'repeat {repeat + 1}/{args.repeats} done', file=sys.stderr)
    print(f'{version(python)}, medians of {args.repeats}; {args.scaling_steps} steps '
          f'({args.reference_steps} for --reference); block_size on lines of 60-200 characters '
          f'of the standard library, the others on names.txt')
    print(f"{'size':16s}" + ''.join(f'{label[:22]:>24s}' for label, _, _ in files))
    print(f"{'':16s}" + f"{'ms/step':>10s}{'gc ms':>7s}{'MB':>7s}" * len(files))
    for sweep, values, _ in sweeps:
        for value in values:
            cells = ''
            for label, _, _ in files:
                rows = results[(sweep, value, label)]
                cells += (f"{median(rows, 'ms_per_step'):10.2f}"
                          f"{median(rows, 'collector_ms_per_step'):7.2f}"
                          f"{median(rows, 'peak_mb'):7.0f}")
            print(f'{sweep + " " + str(value):16s}{cells}')
        exponents = []
        for label, _, _ in files:
            low = median(results[(sweep, values[0], label)], 'ms_per_step')
            high = median(results[(sweep, values[-1], label)], 'ms_per_step')
            exponent = math.log(high / low) / math.log(values[-1] / values[0])
            exponents.append(f'{label} {exponent:.2f}')
        print(f'  growth exponent over {sweep} {values[0]} -> {values[-1]}: '
              + ', '.join(exponents))
    if args.compare:
        label = files[1][0]
        for sweep, values, _ in sweeps:
            ratio = (median(results[(sweep, values[-1], label)], 'ms_per_step') /
                     median(results[(sweep, values[-1], 'microgpt.py')], 'ms_per_step'))
            print(f'{sweep} {values[-1]}: microgpt.py is {ratio:.2f}x as fast as {label}')


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--python', nargs='+', default=[sys.executable], help='interpreters to compare')
    p.add_argument('--steps', type=int, default=1000, help='training steps per measurement')
    p.add_argument('--reference-steps', type=int, default=30, help='steps of Part 1 alone')
    p.add_argument('--scaling-steps', type=int, default=60, help='steps per --scaling size')
    p.add_argument('--repeats', type=int, default=3, help='measurements per case')
    p.add_argument('--default-run', action='store_true', help='also time `python microgpt.py`')
    p.add_argument('--levers', action='store_true', help='each Part 2 lever turned off in turn')
    p.add_argument('--scaling', action='store_true', help='sweep block_size, n_embd, n_layer')
    p.add_argument('--compare', metavar='FILE', help='another microgpt.py, timed beside it')
    for hidden in ('--file', '--input'):
        p.add_argument(hidden, default=SCRIPT, help=argparse.SUPPRESS)
    p.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--reference', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--lever-off', action='append', default=[], help=argparse.SUPPRESS)
    for name, default in (('n-embd', 16), ('n-head', 4), ('n-layer', 1), ('block-size', 16),
                          ('eval-docs', 200), ('names', 20)):
        p.add_argument('--' + name, type=int, default=default, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    if args.levers:
        return levers(args)
    if args.scaling:
        return scaling(args)
    return interpreters(args)


if __name__ == '__main__':
    main()
