"""Benchmark microgpt.py: ms per training step, default-run wall time, ms per sampled name and
peak memory, for one or more interpreters side by side, next to a naive-autograd baseline.

    python tests/bench.py                                # this interpreter, 3 repeats
    python tests/bench.py --python python3.11 pypy3      # several interpreters, interleaved
    python tests/bench.py --default-run                  # also time `python microgpt.py`

Not a unit test (the file name keeps unittest from collecting it). The machines are shared and
noisy, so every figure is the median of --repeats runs, and the runs of the different
interpreters and of the baselines are interleaved. A baseline is the same model with the
speed levers taken out: one graph node per + and * (no fused dot, softmax or cross-entropy) and
a recursive topological sort instead of the tape, as in the micrograd design. It still shares
gpt()'s skipping of ReLU-off units, so the ratios it gives are, if anything, too low. It runs
twice, once with Python's cycle collector at its default (as micrograd runs) and once with it
run as rarely as microgpt.py runs it, to show how much of the gain comes from the graph alone.
"""
import argparse
import gc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_naive(microgpt, collector_on):
    """Swap microgpt's fused ops and tape for the naive ones (same math)."""
    def naive_dot(a, b, b_data=None):
        total = 0
        for x, y in zip(a, b):
            total = total + x * y
        return total

    def naive_softmax(logits):
        top = max(v.data for v in logits)
        exps = [(v - top).exp() for v in logits]
        total = sum(exps)
        return [e / total for e in exps]

    def naive_cross_entropy(logits, target):
        return -naive_softmax(logits)[target].log()

    def recursive_backward(self):
        microgpt.Value.tape.clear()  # the naive design keeps no tape: it searches the graph
        order, visited = [], set()

        def visit(node):
            if node not in visited:
                visited.add(node)
                for child in node._children:
                    visit(child)
                order.append(node)
        visit(self)
        self.grad = 1.0
        for node in reversed(order):
            for child, local_grad in zip(node._children, node._local_grads):
                child.grad += local_grad * node.grad

    sys.setrecursionlimit(1_000_000)
    microgpt.dot, microgpt.cross_entropy = naive_dot, naive_cross_entropy
    microgpt.softmax = naive_softmax
    microgpt.Value.backward = recursive_backward
    if collector_on and sys.implementation.name == 'cpython':
        gc.set_threshold(700)  # Python's default, which microgpt.py raised on import


def worker(steps, naive):  # naive: '', 'collector-default' or 'collector-as-microgpt'
    """One measurement in this process; prints a JSON line."""
    sys.path.insert(0, ROOT)
    import io
    import contextlib
    import microgpt
    if naive:
        make_naive(microgpt, collector_on=naive == 'collector-default')
    docs = microgpt.load_docs(os.path.join(ROOT, 'names.txt'))
    random.Random(42).shuffle(docs)
    tokenizer = microgpt.Tokenizer(''.join(sorted(set(''.join(docs)))))
    config = microgpt.Config()
    params = microgpt.init_params(config, tokenizer.vocab_size, random.Random(42))
    step_times = []
    original_loss = microgpt.document_loss

    def timed_loss(*args):  # a step runs from one document_loss call to the next
        step_times.append(time.perf_counter())
        return original_loss(*args)
    microgpt.document_loss = timed_loss
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        losses = microgpt.train(docs, tokenizer, params, config, steps, 0.01)
    train_seconds = time.perf_counter() - start
    microgpt.document_loss = original_loss
    step_times.append(start + train_seconds)
    rng, n_samples = random.Random(42), 20
    start = time.perf_counter()
    for _ in range(n_samples):
        microgpt.sample(params, config, tokenizer, rng, 0.5)
    sample_seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    print(json.dumps({'ms_per_step': train_seconds * 1000 / steps,
                      'step_ms': [(b - a) * 1000 for a, b in zip(step_times, step_times[1:])],
                      'ms_per_name': sample_seconds * 1000 / n_samples,
                      'peak_mb': peak_kb / 1024, 'last_loss': losses[-1]}))


def measure(python, steps, naive=''):
    command = [python, os.path.abspath(__file__), '--worker', '--steps', str(steps)]
    out = subprocess.run(command + (['--naive', naive] if naive else []), capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def default_run_seconds(python):
    start = time.perf_counter()
    subprocess.run([python, os.path.join(ROOT, 'microgpt.py')], capture_output=True, check=True)
    return time.perf_counter() - start


def version(python):
    code = 'import platform; print(platform.python_implementation(), platform.python_version())'
    return subprocess.run([python, '-c', code], capture_output=True, text=True,
                          check=True).stdout.strip()


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--python', nargs='+', default=[sys.executable], help='interpreters to compare')
    p.add_argument('--steps', type=int, default=1000, help='training steps per measurement')
    p.add_argument('--baseline-steps', type=int, default=30, help='steps of the naive baseline')
    p.add_argument('--repeats', type=int, default=3, help='measurements per interpreter')
    p.add_argument('--default-run', action='store_true', help='also time `python microgpt.py`')
    p.add_argument('--no-baseline', action='store_true', help='skip the naive baseline')
    p.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--naive', default='', help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.steps, args.naive)

    names = {python: version(python) for python in args.python}
    results = {python: [] for python in args.python}
    baselines = {'collector-default': [], 'collector-as-microgpt': []}
    wall = {python: [] for python in args.python}
    for repeat in range(args.repeats):  # interleaved, so drifts in machine speed hit all alike
        for kind in ([] if args.no_baseline else baselines):
            baselines[kind].append(measure(args.python[0], args.baseline_steps, naive=kind))
        for python in args.python:
            results[python].append(measure(python, args.steps))
            if args.default_run:
                wall[python].append(default_run_seconds(python))
        print(f'repeat {repeat + 1}/{args.repeats} done', file=sys.stderr)

    def median(rows, key):
        return statistics.median(row[key] for row in rows)
    print(f'medians of {args.repeats} runs; training {args.steps} steps of the default model '
          f'on names.txt')
    print(f"{'interpreter':24s} {'ms/step':>8s} {'default run':>12s} {'ms/name':>8s} "
          f"{'peak MB':>8s}")
    for python in args.python:
        rows = results[python]
        run_text = f'{statistics.median(wall[python]):.1f} s' if wall[python] else '-'
        print(f"{names[python]:24s} {median(rows, 'ms_per_step'):8.2f} {run_text:>12s} "
              f"{median(rows, 'ms_per_name'):8.2f} {median(rows, 'peak_mb'):8.1f}")
    reference = args.python[0]
    for python in args.python[1:]:
        ratio = median(results[reference], 'ms_per_step') / median(results[python], 'ms_per_step')
        print(f'{names[python]} trains {ratio:.2f}x as fast per step as {names[reference]}')
    n = args.baseline_steps  # compared on the same first documents, as their lengths vary
    fast_ms = statistics.median(sum(row['step_ms'][:n]) / n for row in results[reference])
    for kind, rows in baselines.items():
        if rows:
            naive_ms = median(rows, 'ms_per_step')
            print(f'naive baseline, {kind.replace("-", " ")} ({names[reference]}): '
                  f'{naive_ms:.1f} ms/step over the first {n} documents, where microgpt.py takes '
                  f'{fast_ms:.1f}: {naive_ms / fast_ms:.1f}x faster')


if __name__ == '__main__':
    main()
