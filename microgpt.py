"""microgpt: a whole GPT in one dependency-free file, to read top to bottom: dataset, tokenizer,
autograd, parameters, model, training, inference. `python microgpt.py --help` lists the options."""
import argparse, gc, json, math, os, random, shlex, sys, tempfile, time
from dataclasses import asdict, dataclass
from operator import mul

# ---- Dataset ------------------------------------------------------------------------------
# A list of documents, one per line: in names.txt each is a name, ~33,000 examples to learn from.
def find_names_file():  # beside this script, else in the working directory (as in a notebook)
    here = os.path.dirname(os.path.abspath(globals().get('__file__', '')))
    beside_script = os.path.join(here, 'names.txt')
    return beside_script if os.path.exists(beside_script) else 'names.txt'
def load_docs(path):
    with open(path, encoding='utf-8-sig') as f:  # -sig: skip a byte-order mark if there is one
        return [line.strip() for line in f if line.strip()]

# ---- Tokenizer ----------------------------------------------------------------------------
# A network reads numbers, not text: each distinct character gets an id, and one extra token,
# BOS ("beginning of sequence"), marks both where a document starts and where it ends.
class Tokenizer:
    def __init__(self, chars):  # chars: the vocabulary in id order; BOS is the next id
        self.chars, self.bos, self.vocab_size = chars, len(chars), len(chars) + 1
        self.ids = {ch: i for i, ch in enumerate(chars)}
    def encode(self, text): return [self.ids[ch] for ch in text]
    def decode(self, ids): return ''.join(self.chars[i] for i in ids)

# ---- Autograd -----------------------------------------------------------------------------
# Training needs d(loss)/d(parameter) for every parameter. Each Value keeps the Values it was made
# from (children) and d(self)/d(child) for each; the chain rule carries gradients back from there.
class Value:
    __slots__ = ('data', 'grad', '_children', '_local_grads')  # less memory, faster access
    tape = []  # every Value in the order made; backward() empties it (clear it if not calling it)
    def __init__(self, data, children=(), local_grads=()):
        self.data, self.grad, self._children, self._local_grads = data, 0.0, children, local_grads
        Value.tape.append(self)
    def __add__(self, other):  # d(a+b)/da = d(a+b)/db = 1
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1.0, 1.0))
    def __mul__(self, other):  # d(ab)/da = b, d(ab)/db = a
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))
    def __truediv__(self, other):  # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data / other.data, (self, other),
                     (1.0 / other.data, -self.data / other.data ** 2))
    def __pow__(self, k):  # k a number: d(a^k)/da = k a^(k-1)
        return Value(self.data ** k, (self,), (k * self.data ** (k - 1),))
    def log(self): return Value(math.log(self.data), (self,), (1.0 / self.data,))  # 1/a
    def exp(self): return Value(math.exp(self.data), (self,), (math.exp(self.data),))  # e^a
    def relu(self): return Value(max(self.data, 0.0), (self,), (float(self.data > 0),))  # 0 or 1
    def __neg__(self): return self * -1
    def __sub__(self, other): return self + (-other)
    def __radd__(self, other): return self + other
    def __rsub__(self, other): return -self + other
    def __rmul__(self, other): return self * other
    def __rtruediv__(self, other): return Value(other) / self
    def backward(self):
        # A Value is made after its children, so the tape read backwards is a topological order for
        # free (no graph search, no recursion to overflow): each node comes after all that use it.
        # It is used up: a graph is backpropagated once. Values self does not depend on add nothing.
        if self._children and self not in reversed(Value.tape):  # reversed: the loss is last
            raise RuntimeError('backward() already ran through this graph: compute it again')
        tape, Value.tape = Value.tape, []
        self.grad = 1.0
        for node in reversed(tape):  # chain rule: d(loss)/d(child) += d(node)/d(child) * node.grad
            grad = node.grad
            if grad:  # speed: a zero gradient (as behind a ReLU that was off) adds nothing
                for child, local_grad in zip(node._children, node._local_grads):
                    child.grad += local_grad * grad

# Speed: graphs have no cycles, so reference counting frees them; CPython's cycle collector would
if sys.implementation.name == 'cpython':  # only rescan them: run it per 100,000 objects, not 700
    gc.set_threshold(100_000)  # (PyPy manages memory differently and has no such threshold)

# Fused operations: the numbers of a chain of the ops above in one node, as graph size costs time.
def dot(a, b, b_data=None):  # sum_i a_i b_i: d/da_i = b_i, d/db_i = a_i
    a_data, b_data = [v.data for v in a], b_data or [v.data for v in b]
    return Value(sum(map(mul, a_data, b_data)), a + b, b_data + a_data)
def cross_entropy(logits, target):  # -log softmax(logits)[target]: d/dlogit_i = p_i - [i = target]
    top = max(v.data for v in logits)  # subtracting the max keeps exp() from overflowing
    exps = [math.exp(v.data - top) for v in logits]
    total = sum(exps)
    local_grads = [e / total - (i == target) for i, e in enumerate(exps)]
    return Value(math.log(total) + top - logits[target].data, logits, local_grads)
def softmax(logits):  # fused, one node per output p_i: dp_i/dlogit_j = p_i ([i = j] - p_j)
    top = max(v.data for v in logits)  # a constant shift: the same result, no overflow in exp()
    exps = [math.exp(v.data - top) for v in logits]
    total = sum(exps)
    probs = [e / total for e in exps]
    return [Value(p_i, logits, [p_i * ((i == j) - p_j) for j, p_j in enumerate(probs)])
            for i, p_i in enumerate(probs)]

# ---- Parameters ---------------------------------------------------------------------------
# What the model knows lives in weight matrices, random at first and adjusted by training.
# Each is a list of rows [out][in], so a layer computes y = W x one row at a time.
@dataclass
class Config:
    n_embd: int = 16      # width of the vector that represents each token
    n_head: int = 4       # attention heads; each sees n_embd // n_head of the vector
    n_layer: int = 1      # transformer blocks
    block_size: int = 16  # the longest context, in tokens
def param_shapes(config, vocab_size):  # name -> (rows, columns)
    n_embd = config.n_embd
    shapes = {'wte': (vocab_size, n_embd), 'wpe': (config.block_size, n_embd),
              'lm_head': (vocab_size, n_embd)}
    for i in range(config.n_layer):
        shapes.update({f'layer{i}.attn_w{x}': (n_embd, n_embd) for x in 'qkvo'})
        shapes[f'layer{i}.mlp_fc1'] = (4 * n_embd, n_embd)
        shapes[f'layer{i}.mlp_fc2'] = (n_embd, 4 * n_embd)
    return shapes
def init_params(config, vocab_size, rng):
    return {name: [[Value(rng.gauss(0, 0.08)) for _ in range(cols)] for _ in range(rows)]
            for name, (rows, cols) in param_shapes(config, vocab_size).items()}
def flatten(params):
    return [p for matrix in params.values() for row in matrix for p in row]

# ---- Model --------------------------------------------------------------------------------
# The GPT reads one token at a time and returns logits, a score for each possible next token.
# Attention looks back at earlier positions' keys and values, cached in keys[layer], values[layer].
def linear(x, w):
    x_data = [v.data for v in x]  # speed: read x's numbers once, not once per row
    return [dot(row, x, x_data) for row in w]
def rmsnorm(x):
    scale = (dot(x, x) / len(x) + 1e-5) ** -0.5
    return [xi * scale for xi in x]
def gpt(token, pos, keys, values, params, config):
    head_dim = config.n_embd // config.n_head
    x = rmsnorm([t + p for t, p in zip(params['wte'][token], params['wpe'][pos])])
    for i in range(config.n_layer):
        layer = f'layer{i}.'
        # Causal self-attention: the cache holds only positions <= pos, so no future leaks in.
        h = rmsnorm(x)
        q = linear(h, params[layer + 'attn_wq'])
        keys[i].append(linear(h, params[layer + 'attn_wk']))
        values[i].append(linear(h, params[layer + 'attn_wv']))
        heads = []
        for start in range(0, config.n_embd, head_dim):
            end = start + head_dim
            scores = [dot(q[start:end], k[start:end]) / math.sqrt(head_dim) for k in keys[i]]
            weights = softmax(scores)
            heads += [dot(weights, [v[j] for v in values[i]]) for j in range(start, end)]
        x = [a + b for a, b in zip(x, linear(heads, params[layer + 'attn_wo']))]
        # MLP: widen to 4 * n_embd, keep the positive part (ReLU), project back.
        h = linear(rmsnorm(x), params[layer + 'mlp_fc1'])
        on = [j for j, a in enumerate(h) if a.data > 0]  # ReLU passes these as they are (slope 1)
        fc2 = [[row[j] for j in on] for row in params[layer + 'mlp_fc2']]  # speed: skip the 0s
        x = [a + b for a, b in zip(x, linear([h[j] for j in on], fc2))]
    return linear(x, params['lm_head'])
def document_loss(doc, tokenizer, params, config):  # mean next-token loss, first block_size
    tokens = [tokenizer.bos] + tokenizer.encode(doc) + [tokenizer.bos]
    keys, values = [[] for _ in range(config.n_layer)], [[] for _ in range(config.n_layer)]
    n = min(config.block_size, len(tokens) - 1)
    return sum(cross_entropy(gpt(tokens[pos], pos, keys, values, params, config), tokens[pos + 1])
               for pos in range(n)) / n

# ---- Training -----------------------------------------------------------------------------
# One document per step: forward to the loss, backward to the gradients, then Adam moves each
# parameter a little downhill. The learning rate decays linearly to 0 over the run.
def sparkline(losses, width=20):  # the loss curve as bars: the means of `width` equal chunks
    chunks = [losses[i * len(losses) // width:(i + 1) * len(losses) // width] for i in range(width)]
    means = [sum(chunk) / len(chunk) for chunk in chunks if chunk]
    low, span = min(means), (max(means) - min(means)) or 1
    bars = ''.join('▁▂▃▄▅▆▇█'[int(7.99 * (m - low) / span)] for m in means)
    return f'{means[0]:.2f} {bars} {means[-1]:.2f}'
def train(docs, tokenizer, params, config, steps, lr):  # returns the loss of each step done
    beta1, beta2, eps = 0.85, 0.99, 1e-8
    flat, on_terminal = flatten(params), sys.stdout.isatty()
    m, v = [0.0] * len(flat), [0.0] * len(flat)  # running means of each grad and grad^2
    losses, start = [], time.perf_counter()
    try:
        for step in range(steps):
            loss = document_loss(docs[step % len(docs)], tokenizer, params, config)
            loss.backward()
            # Adam's bias corrections folded into one step size (exact, with eps scaled too).
            correction2 = math.sqrt(1 - beta2 ** (step + 1))
            step_size = lr * (1 - step / steps) * correction2 / (1 - beta1 ** (step + 1))
            eps_scaled = eps * correction2
            for i, p in enumerate(flat):
                m[i] = beta1 * m[i] + (1 - beta1) * p.grad
                v[i] = beta2 * v[i] + (1 - beta2) * p.grad * p.grad
                p.data -= step_size * m[i] / (math.sqrt(v[i]) + eps_scaled)
                p.grad = 0.0
            losses.append(loss.data)
            # Progress: on a terminal a line that rewrites itself, else a line every ~10%.
            done, ms = step + 1, (time.perf_counter() - start) * 1000 / (step + 1)
            if on_terminal or done % max(1, steps // 10) == 0 or done == steps:
                print(f'{chr(13) * on_terminal}step {done:{len(str(steps))}d}/{steps} | loss '
                      f'{loss.data:.4f} | {ms:.1f} ms/step | ETA {ms * (steps - done) / 1000:.0f}s',
                      end='' if on_terminal and done < steps else '\n', flush=True)
    except KeyboardInterrupt:  # Ctrl-C: stop, but keep what was learned
        print(f'\ninterrupted at step {len(losses)} of {steps}: keeping what was learned so far')
    if losses:
        last = losses[-100:]
        print(f'trained {len(losses)} steps in {time.perf_counter() - start:.1f}s: loss '
              f'{losses[0]:.4f} at the first step, {sum(last) / len(last):.4f} mean of the last '
              f'{len(last)}\nloss curve: {sparkline(losses)}')
    return losses

# ---- Inference ----------------------------------------------------------------------------
# Start from BOS (and any prompt), then sample each next token from the model's distribution until
# it gives BOS (the end) or the context is full. Temperature < 1 makes it safer, > 1 wilder.
def sample(params, config, tokenizer, rng, temperature, prompt=''):
    keys, values = [[] for _ in range(config.n_layer)], [[] for _ in range(config.n_layer)]
    tokens = [tokenizer.bos] + tokenizer.encode(prompt)
    for pos in range(config.block_size):
        logits = gpt(tokens[pos], pos, keys, values, params, config)
        Value.tape.clear()  # sampling never calls backward()
        if pos + 1 == len(tokens):  # past the prompt: choose the next token
            top = max(v.data for v in logits)
            weights = [math.exp((v.data - top) / temperature) for v in logits]
            tokens.append(rng.choices(range(tokenizer.vocab_size), weights=weights)[0])
            if tokens[-1] == tokenizer.bos:
                return tokenizer.decode(tokens[1:-1])
    return tokenizer.decode(tokens[1:])

# ---- Command line -------------------------------------------------------------------------
# The algorithm ends above; around it, the tool: flags, checkpoints, reports and clear errors.
def fail(problem):  # bad input: one line on stderr and exit code 2, never a traceback
    print(f'microgpt.py: error: {problem}', file=sys.stderr)
    sys.exit(2)
def parse_args(argv):
    p = argparse.ArgumentParser(
        prog='microgpt.py', formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description='Train a tiny GPT on a text file, then sample new documents like its lines.')
    p.error, add = fail, p.add_argument  # argparse's own errors on one line too
    add('--input', default='names.txt', metavar='PATH', help='UTF-8 text, one document per line '
        '(one longer than block_size is trained on its first block_size tokens)')
    add('--steps', type=int, default=1000, help='training steps (0: do not train)')
    add('--lr', type=float, default=0.01, help='Adam learning rate, decayed linearly to 0')
    for name, default in asdict(Config()).items():  # SUPPRESS: no attribute unless given
        add('--' + name.replace('_', '-'), type=int, default=argparse.SUPPRESS, metavar='N',
            help=f'{name} (default: {default}, or the --load model\'s)')
    add('--seed', type=int, default=42, help='random seed')
    add('--samples', type=int, default=20, help='how many documents to sample')
    add('--temperature', type=float, default=0.5, help='sampling: lower is safer, higher wilder')
    add('--prompt', default='', help='text that every sample starts with')
    add('--save', metavar='PATH', help='save the model to this JSON file')
    add('--load', metavar='PATH', help='start from this saved model (with --steps 0: only sample)')
    add('--val-fraction', type=float, default=0.1, help='share of documents held out of training')
    args = p.parse_args(argv)
    size = {name: getattr(args, name, default) for name, default in asdict(Config()).items()}
    for flag, ok, rule in [('steps', args.steps >= 0, '0 or more'),  # `<` is False for nan too
                           ('samples', args.samples >= 0, '0 or more'),
                           ('lr', 0 < args.lr < math.inf, 'a positive number'),
                           ('temperature', 0 < args.temperature < math.inf, 'a positive number'),
                           ('val_fraction', 0 <= args.val_fraction < 1, 'at least 0 and below 1'),
                           *[(name, size[name] > 0, 'positive') for name in size],
                           ('n_embd', size['n_embd'] % max(size['n_head'], 1) == 0,
                            f"divisible by n_head ({size['n_head']})")]:
        if not ok:
            fail(f"--{flag.replace('_', '-')} must be {rule}, not {dict(vars(args), **size)[flag]}")
    if args.save and not os.access(os.path.dirname(os.path.abspath(args.save)), os.W_OK):
        fail(f'cannot save to {args.save}: its folder is missing or not writable')
    return args
def save_checkpoint(path, config, tokenizer, params):
    weights = {name: [[p.data for p in row] for row in matrix] for name, matrix in params.items()}
    checkpoint = {'format': 'microgpt', 'version': 1, 'config': asdict(config),
                  'chars': tokenizer.chars, 'weights': weights}
    # Write a temporary file beside it, then rename: an interrupted save leaves the old file.
    fd, tmp_path = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix='.tmp')
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            json.dump(checkpoint, f, indent=1)
        os.replace(tmp_path, path)
    except BaseException:
        os.unlink(tmp_path)
        raise
def load_checkpoint(path):
    def check(ok, problem):
        if not ok:
            fail(f'checkpoint {path} {problem}: give --load a file written by --save')
    try:
        with open(path, encoding='utf-8') as f:
            ckpt = json.load(f)
    except (OSError, ValueError) as e:  # ValueError: not UTF-8 or not JSON
        check(False, f'cannot be read ({getattr(e, "strerror", None) or e})')
    check(isinstance(ckpt, dict) and (ckpt.get('format'), ckpt.get('version')) == ('microgpt', 1),
          'is not a microgpt checkpoint of version 1')
    config, chars, weights = ckpt.get('config'), ckpt.get('chars'), ckpt.get('weights')
    check(isinstance(config, dict) and set(config) == set(asdict(Config())) and
          all(type(n) is int and n > 0 for n in config.values()) and
          config['n_embd'] % config['n_head'] == 0, 'has a bad "config"')
    check(isinstance(chars, str) and len(set(chars)) == len(chars), 'needs distinct "chars"')
    config, tokenizer = Config(**config), Tokenizer(chars)
    shapes = param_shapes(config, tokenizer.vocab_size)
    check(isinstance(weights, dict) and set(weights) == set(shapes) and all(
        isinstance(weights[name], list) and len(weights[name]) == rows and all(isinstance(row, list)
        and len(row) == cols for row in weights[name]) for name, (rows, cols) in shapes.items()),
        f'has weights of other names or shapes than its config needs: {shapes}')
    check(all(type(x) in (int, float) and math.isfinite(x) for name in shapes
              for row in weights[name] for x in row), 'has a weight that is not a finite number')
    return config, tokenizer, {name: [[Value(float(x)) for x in row] for row in weights[name]]
                               for name in shapes}
def mean_loss(docs, tokenizer, params, config):
    losses = []
    for doc in docs:
        losses.append(document_loss(doc, tokenizer, params, config).data)
        Value.tape.clear()  # no backward() follows: let this graph go
    return sum(losses) / len(losses)
def run(args):
    path = find_names_file() if args.input == 'names.txt' else args.input
    try:
        docs = load_docs(path)
    except (OSError, UnicodeDecodeError) as e:
        fail(f'cannot read {path} ({getattr(e, "strerror", None) or "it is not UTF-8"}): give '
             '--input a UTF-8 text file')
    if not docs:
        fail(f'{path} has no documents: give --input a file with one document on each line')
    random.Random(args.seed).shuffle(docs)
    given = {name: getattr(args, name) for name in asdict(Config()) if hasattr(args, name)}
    if args.load:
        config, tokenizer, params = load_checkpoint(args.load)
        if any(value != getattr(config, name) for name, value in given.items()):
            fail(f'the size flags disagree with the checkpoint\'s {config}: leave them out')
    else:
        config, tokenizer = Config(**given), Tokenizer(''.join(sorted(set(''.join(docs)))))
        params = init_params(config, tokenizer.vocab_size, random.Random(args.seed))
    unknown = ''.join(sorted(set(''.join(docs) + args.prompt) - set(tokenizer.chars)))
    if unknown or len(args.prompt) >= config.block_size:
        fail(f'{unknown!r} is not in the vocabulary {tokenizer.chars!r}: use only its characters '
             'in --prompt (and --input)' if unknown else f'--prompt is {len(args.prompt)} '
             f'characters; block_size {config.block_size} fits {config.block_size - 1} at most')
    n_val = int(len(docs) * args.val_fraction)
    train_docs, val_docs = docs[:len(docs) - n_val], docs[len(docs) - n_val:]
    print(f'dataset: {len(docs):,} documents in {path} ({len(train_docs):,} train, {n_val:,} '
          f'validation)\nvocabulary: {tokenizer.vocab_size} tokens ({len(tokenizer.chars)} '
          f'characters + BOS)\nmodel: {len(flatten(params)):,} parameters, {config}')
    if args.steps:
        train(train_docs, tokenizer, params, config, args.steps, args.lr)
    if args.save:
        save_checkpoint(args.save, config, tokenizer, params)
        print(f'saved the model to {args.save}')
    n_eval = min(500, n_val or len(train_docs))
    val_loss = f'{mean_loss(val_docs[:n_eval], tokenizer, params, config):.4f}' if n_val else '-'
    print(f'held-out loss: {val_loss} on {n_eval if n_val else 0} validation docs, '
          f'{mean_loss(train_docs[:n_eval], tokenizer, params, config):.4f} on {n_eval} train docs')
    rng, train_set, val_set, n_new = random.Random(args.seed), set(train_docs), set(val_docs), 0
    for i in range(args.samples):
        text = sample(params, config, tokenizer, rng, args.temperature, args.prompt)
        status = 'in train' if text in train_set else 'in val' if text in val_set else 'new'
        n_new += status == 'new'
        print(f'sample {i + 1:2d}: {text:{config.block_size}s} {status}')
    print(f'{n_new} of {args.samples} samples are new (not documents in {path})')

if __name__ == '__main__':
    # In a notebook or IPython, sys.argv holds the kernel's own arguments, not ours: there the
    # flags come from the MICROGPT_ARGS environment variable (e.g. "--steps 100"), if it is set.
    in_ipython = 'IPython' in sys.modules
    run(parse_args(shlex.split(os.environ.get('MICROGPT_ARGS', '')) if in_ipython else None))
