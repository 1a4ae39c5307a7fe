"""microgpt: a whole GPT in one dependency-free file, to read top to bottom. Part 1 is the
algorithm, Part 2 makes it fast without changing its numbers, Part 3 is the command-line tool.
`python microgpt.py --help` lists the options."""
import math, random
from collections import deque
from dataclasses import dataclass

# ==== Part 1: the algorithm ======================================================================
# Dataset, tokenizer, autograd, parameters, model, training, inference: a whole GPT built from one
# small class of numbers that remember how they were computed. Nothing here prints or writes.
# "(Part 2: name)" at a function: Part 2's stand-in runs in its place when a check, each run, finds
# the same numbers from both; so an edit here changes the run, and a line names what stepped aside.

# ---- Dataset ------------------------------------------------------------------------------------
# Documents to learn from, one per line: in names.txt each is a first name (~33,000 of them).
def load_docs(path):
    with open(path, encoding='utf-8-sig') as f:  # -sig: skip a byte-order mark, if there is one
        return [line.strip() for line in f if line.strip()]

def split_docs(docs, seed, val_fraction):  # shuffled; the last val_fraction held out of training
    docs = list(docs)
    random.Random(seed).shuffle(docs)
    n_train = len(docs) - int(len(docs) * val_fraction)
    return docs[:n_train], docs[n_train:]

# ---- Tokenizer ----------------------------------------------------------------------------------
# A network reads numbers, not text: each distinct character gets an id, and one extra token,
# BOS ("beginning of sequence"), marks both where a document starts and where it ends.
class Tokenizer:
    def __init__(self, chars):  # chars: the vocabulary in id order
        self.chars = chars
        self.ids = {ch: i for i, ch in enumerate(chars)}
        self.bos = len(chars)  # the id after the last character's
        self.vocab_size = len(chars) + 1
    @classmethod
    def from_docs(cls, docs):  # every character that occurs, sorted
        return cls(''.join(sorted(set(''.join(docs)))))
    def encode(self, text):
        unknown = ''.join(sorted(set(text) - self.ids.keys()))
        if unknown:
            raise ValueError(f'{unknown!r} is not in the vocabulary {self.chars!r}')
        return [self.ids[ch] for ch in text]
    def decode(self, ids):
        return ''.join(self.chars[i] for i in ids)

# ---- Autograd -----------------------------------------------------------------------------------
# Training needs d(loss)/d(parameter) for every parameter. Each Value remembers the Values it was
# made from (its children) and d(self)/d(child) for each (its local gradients); backward() then
# applies the chain rule from the loss back to every parameter.
class Value:
    __slots__ = ('data', 'grad', '_children', '_local_grads')  # less memory, faster access
    record = True  # False inside `with no_grad():`, where no graph is kept
    tape = deque(maxlen=0)  # keeps nothing; in training, Part 2 puts a list here (its tape)
    def __init__(self, data, children=(), local_grads=()):
        self.data = data
        self.grad = 0.0
        self._children = children if Value.record else ()
        self._local_grads = local_grads if Value.record else ()
        Value.tape.append(self)  # Values in the order they are made (kept only on a tape)
    def __repr__(self):
        return f'Value(data={self.data}, grad={self.grad})'
    def __add__(self, other):  # d(a+b)/da = 1, d(a+b)/db = 1
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1.0, 1.0))
    def __sub__(self, other):  # d(a-b)/da = 1, d(a-b)/db = -1
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data - other.data, (self, other), (1.0, -1.0))
    def __mul__(self, other):  # d(ab)/da = b, d(ab)/db = a
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))
    def __truediv__(self, other):  # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data / other.data, (self, other),
                     (1.0 / other.data, -self.data / other.data ** 2))
    def __pow__(self, k):  # k a plain number: d(a^k)/da = k a^(k-1)
        return Value(self.data ** k, (self,), (k * self.data ** (k - 1),))
    def __neg__(self):  # d(-a)/da = -1
        return Value(-self.data, (self,), (-1.0,))
    def log(self):  # d(ln a)/da = 1/a
        return Value(math.log(self.data), (self,), (1.0 / self.data,))
    def exp(self):  # d(e^a)/da = e^a
        e = math.exp(self.data)
        return Value(e, (self,), (e,))
    def relu(self):  # d(max(a, 0))/da = 1 where a > 0, else 0
        return Value(max(self.data, 0.0), (self,), (float(self.data > 0),))

    # A plain number on the left (2 * x, and sum() starting at 0): the ops above.
    __radd__ = __add__  # a + b = b + a
    __rmul__ = __mul__  # a * b = b * a

    def topological_order(self):  # self and all it was made from, each after its own children
        order = []
        visited = set()
        stack = [(self, False)]  # our own stack, not recursion: a graph can be deeper than Python's
        while stack:
            node, children_done = stack.pop()
            if children_done:
                order.append(node)
            elif node not in visited:
                visited.add(node)
                stack.append((node, True))  # back to it once its children are in the order
                stack.extend((child, False) for child in node._children)
        return order

    def backward(self):  # adds d(self)/d(v) to v.grad for every v that self was made from
        order = self.topological_order()  # (in training, Part 2's train_fast walks a tape instead)
        self.grad = 1.0  # d(self)/d(self)
        # The chain rule, from self back: d(self)/d(child) += d(node)/d(child) * d(self)/d(node).
        for node in reversed(order):
            for child, local_grad in zip(node._children, node._local_grads):
                child.grad += local_grad * node.grad
        for node in order:  # the graph is freed now, not when self goes; a second call adds nothing
            node._children = ()

class no_grad:  # `with no_grad():` keeps no graph, where no backward() follows (as in PyTorch)
    def __enter__(self):
        self.was_recording = Value.record
        Value.record = False
    def __exit__(self, *exception):
        Value.record = self.was_recording

# ---- Parameters ---------------------------------------------------------------------------------
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
        for name in ('attn_wq', 'attn_wk', 'attn_wv', 'attn_wo'):
            shapes[f'layer{i}.{name}'] = (n_embd, n_embd)
        shapes[f'layer{i}.mlp_fc1'] = (4 * n_embd, n_embd)
        shapes[f'layer{i}.mlp_fc2'] = (n_embd, 4 * n_embd)
    return shapes

def init_params(config, vocab_size, rng):
    params = {}
    for name, (rows, cols) in param_shapes(config, vocab_size).items():
        params[name] = [[Value(rng.gauss(0, 0.08)) for _ in range(cols)] for _ in range(rows)]
    return params

def flatten(params):
    return [p for matrix in params.values() for row in matrix for p in row]

# ---- Model --------------------------------------------------------------------------------------
# The GPT reads one token at a time and returns logits: a score for each possible next token.
# Attention looks back at the keys and values of earlier positions, cached in keys[layer] and
# values[layer]; as the cache holds only positions up to now, no later token can leak in.
def linear(x, w):  # y = W x  (Part 2: linear_fused)
    return [sum(w_ij * x_j for w_ij, x_j in zip(row, x)) for row in w]

def rmsnorm(x):  # x scaled to a root mean square of 1  (Part 2: rmsnorm_fused)
    mean_square = sum(x_i * x_i for x_i in x) / len(x)
    scale = (mean_square + 1e-5) ** -0.5
    return [x_i * scale for x_i in x]

def softmax(logits):  # scores -> probabilities that sum to 1
    max_logit = max(logit.data for logit in logits)  # subtracted so that exp() cannot overflow
    exps = [(logit - max_logit).exp() for logit in logits]
    total = sum(exps)
    return [e / total for e in exps]

def attention(q, keys, values):  # a head: values mixed as q matches keys (Part 2: attention_fused)
    head_dim = len(q)
    attn_logits = [sum(q_j * k_j for q_j, k_j in zip(q, k)) / math.sqrt(head_dim) for k in keys]
    attn_weights = softmax(attn_logits)
    return [sum(weight * v[j] for weight, v in zip(attn_weights, values)) for j in range(head_dim)]

def mlp(x, w_fc1, w_fc2):  # 4x wider, the positive part (ReLU), back  (Part 2: mlp_relu_skip)
    hidden = linear(x, w_fc1)
    hidden = [h.relu() for h in hidden]
    return linear(hidden, w_fc2)

def gpt(token, pos, keys, values, params, config):
    head_dim = config.n_embd // config.n_head
    tok_emb = params['wte'][token]
    pos_emb = params['wpe'][pos]
    x = [t + p for t, p in zip(tok_emb, pos_emb)]
    x = rmsnorm(x)
    for i in range(config.n_layer):
        layer = f'layer{i}.'
        # 1) Multi-head causal self-attention, added to the residual stream.
        x_residual = x
        x = rmsnorm(x)
        q = linear(x, params[layer + 'attn_wq'])
        keys[i].append(linear(x, params[layer + 'attn_wk']))
        values[i].append(linear(x, params[layer + 'attn_wv']))
        x_attn = []
        for start in range(0, config.n_embd, head_dim):  # each head reads its own slice
            end = start + head_dim
            q_head = q[start:end]
            keys_head = [k[start:end] for k in keys[i]]
            values_head = [v[start:end] for v in values[i]]
            head_out = attention(q_head, keys_head, values_head)
            x_attn.extend(head_out)
        x = linear(x_attn, params[layer + 'attn_wo'])
        x = [a + b for a, b in zip(x, x_residual)]
        # 2) MLP, added to the residual stream.
        x_residual = x
        x = rmsnorm(x)
        x = mlp(x, params[layer + 'mlp_fc1'], params[layer + 'mlp_fc2'])
        x = [a + b for a, b in zip(x, x_residual)]
    logits = linear(x, params['lm_head'])
    return logits

def cross_entropy(logits, target):  # -log p(right token)  (Part 2: cross_entropy_fused)
    probs = softmax(logits)
    return -probs[target].log()

def document_loss(doc, tokenizer, params, config):  # mean next-token loss, <= block_size positions
    tokens = [tokenizer.bos] + tokenizer.encode(doc) + [tokenizer.bos]
    n = min(config.block_size, len(tokens) - 1)
    keys = [[] for _ in range(config.n_layer)]
    values = [[] for _ in range(config.n_layer)]
    losses = []
    for pos in range(n):
        logits = gpt(tokens[pos], pos, keys, values, params, config)
        losses.append(cross_entropy(logits, tokens[pos + 1]))
    return sum(losses) / n

# ---- Training -----------------------------------------------------------------------------------
# One document per step: forward to the loss, backward to the gradients, then Adam moves each
# parameter a little downhill, by a learning rate that decays linearly to 0 over the run.
def adam_update(param_list, m, v, step, lr, beta1=0.85, beta2=0.99, eps=1e-8):
    for i, p in enumerate(param_list):  # (Part 2: adam_update_folded)
        m[i] = beta1 * m[i] + (1 - beta1) * p.grad  # running mean of the gradient
        v[i] = beta2 * v[i] + (1 - beta2) * p.grad ** 2  # and of its square
        m_hat = m[i] / (1 - beta1 ** (step + 1))  # bias corrections: m and v started at 0
        v_hat = v[i] / (1 - beta2 ** (step + 1))
        p.data -= lr * m_hat / (math.sqrt(v_hat) + eps)
        p.grad = 0.0

def train(docs, tokenizer, params, config, steps, lr):  # yields each loss  (Part 2: train_fast)
    param_list = flatten(params)
    m = [0.0] * len(param_list)
    v = [0.0] * len(param_list)
    for step in range(steps):
        doc = docs[step % len(docs)]
        loss = document_loss(doc, tokenizer, params, config)
        loss.backward()
        lr_now = lr * (1 - step / steps)
        adam_update(param_list, m, v, step, lr_now)
        yield loss.data

def mean_loss(docs, tokenizer, params, config):  # how well the model predicts these documents
    with no_grad():
        losses = [document_loss(doc, tokenizer, params, config).data for doc in docs]
    return sum(losses) / len(losses)

# ---- Inference ----------------------------------------------------------------------------------
# Start from BOS (and any prompt), then draw each next token from the model's probabilities until
# it draws BOS (the end) or the context is full. Temperature < 1 makes it safer, > 1 wilder.
def sample(params, config, tokenizer, rng, temperature=0.5, prompt=''):
    tokens = [tokenizer.bos] + tokenizer.encode(prompt)
    keys = [[] for _ in range(config.n_layer)]
    values = [[] for _ in range(config.n_layer)]
    with no_grad():
        for pos in range(config.block_size):
            logits = gpt(tokens[pos], pos, keys, values, params, config)
            if pos + 1 < len(tokens):
                continue  # still reading the prompt
            probs = softmax([logit / temperature for logit in logits])
            next_token = rng.choices(range(tokenizer.vocab_size), [p.data for p in probs])[0]
            if next_token == tokenizer.bos:
                break
            tokens.append(next_token)
    return tokenizer.decode(tokens[1:])

# ==== Part 2: efficiency =========================================================================
# A scalar autograd spends its time on its graph: each node made, each edge walked by backward().
# Each stand-in does a Part 1 function's work with the same numbers and less of that; its comment
# gives its derivatives or why it is exact, and a step's cost without it (CPython 3.11, `tests/
# bench.py --levers`). use_efficiency(), at the end, puts in place those that agree with Part 1.
import gc, sys
from operator import mul

# One node per output of a layer instead of 2n: y_i = sum_j w_ij x_j, dy_i/dw_ij = x_j,
# dy_i/dx_j = w_ij. A step costs 7.2x without it.
def linear_fused(x, w):
    x_data = [x_j.data for x_j in x]
    rows_data = [[w_ij.data for w_ij in row] for row in w]
    return [Value(sum(map(mul, row_data, x_data)), row + x, x_data + row_data)
            for row, row_data in zip(w, rows_data)]

# The scale as one node: s = (sum_j x_j^2 / n + 1e-5)^-1/2, ds/dx_j = -x_j s^3 / n. 1.11x.
def rmsnorm_fused(x):
    x_data = [x_i.data for x_i in x]
    scale = (sum(map(mul, x_data, x_data)) / len(x) + 1e-5) ** -0.5
    scale = Value(scale, x, [-x_i * scale ** 3 / len(x) for x_i in x_data])
    return [x_i * scale for x_i in x]

# A head over T positions as T + head_dim nodes: out_j = sum_t p_t v_tj, p = softmax(s), s_t =
# q.k_t / sqrt(head_dim), with q.k_t from linear(); d out_j/d(q.k_t) = p_t (v_tj - out_j) /
# sqrt(head_dim), d out_j/d v_tj = p_t. At head_dim 4 Part 1 makes ~24T nodes and ~41T edges, this
# T + 4 and 16T. 1.63x at block_size 16.
def attention_fused(q, keys, values):
    dots = linear(q, keys)  # q.k_t, one node each
    root = math.sqrt(len(q))
    logits = [dot.data / root for dot in dots]
    max_logit = max(logits)
    exps = [math.exp(logit - max_logit) for logit in logits]
    total = sum(exps)
    probs = [e / total for e in exps]
    head_out = []
    for j in range(len(q)):
        column = [v[j] for v in values]
        out_j = sum(map(mul, probs, [v_tj.data for v_tj in column]))
        dot_grads = [p * (v_tj.data - out_j) / root for p, v_tj in zip(probs, column)]
        head_out.append(Value(out_j, dots + column, dot_grads + probs))
    return head_out

# The ReLU passes a positive unit as it is (slope 1) and makes the others exactly 0 (slope 0), so
# fc2 can read the positive units only (about a third, once trained a little): the same numbers.
# 1.17x.
def mlp_relu_skip(x, w_fc1, w_fc2):
    hidden = linear(x, w_fc1)
    active_units = [j for j, h in enumerate(hidden) if h.data > 0]
    w_fc2_active = [[row[j] for j in active_units] for row in w_fc2]
    return linear([hidden[j] for j in active_units], w_fc2_active)

# Softmax and -log as one node, log(sum_i e^(x_i - m)) + m - x_target (m the max logit), with
# d/dx_i = p_i - [i = target]; finite even where Part 1's p_target rounds to 0 and log fails. 1.12x.
def cross_entropy_fused(logits, target):
    logits_data = [logit.data for logit in logits]
    max_logit = max(logits_data)
    exps = [math.exp(x - max_logit) for x in logits_data]
    total = sum(exps)
    loss = math.log(total) + max_logit - logits_data[target]
    return Value(loss, logits, [e / total - (i == target) for i, e in enumerate(exps)])

# Adam with both bias corrections folded into one step size, which is exact:
# lr m_hat / (sqrt(v_hat) + eps) = (lr sqrt(c2) / c1) m / (sqrt(v) + eps sqrt(c2)). 1.18x.
def adam_update_folded(param_list, m, v, step, lr, beta1=0.85, beta2=0.99, eps=1e-8):
    sqrt_correction2 = math.sqrt(1 - beta2 ** (step + 1))
    step_size = lr * sqrt_correction2 / (1 - beta1 ** (step + 1))
    eps_scaled = eps * sqrt_correction2
    for i, p in enumerate(param_list):
        grad = p.grad
        m[i] = beta1 * m[i] + (1 - beta1) * grad
        v[i] = beta2 * v[i] + (1 - beta2) * grad * grad
        p.data -= step_size * m[i] / (math.sqrt(v[i]) + eps_scaled)
        p.grad = 0.0

# The tape: Value.__init__ appends each new Value to Value.tape (a list here). A Value is made after
# those it is made from, so the tape read backwards orders the chain rule: no graph search (40% of
# a step). 2.11x. Returns the loss as a number: its graph is freed here, with the collector paused.
def document_loss_and_gradients(doc, tokenizer, params, config):  # document_loss + backward()
    Value.tape = []
    try:
        loss = document_loss(doc, tokenizer, params, config)
    finally:
        tape = Value.tape
        Value.tape = deque(maxlen=0)
    loss.grad = 1.0
    for node in reversed(tape):
        grad = node.grad
        if grad:  # a zero adds nothing: behind a ReLU that is off, or not on the loss's graph
            for child, local_grad in zip(node._children, node._local_grads):
                child.grad += local_grad * grad
    return loss.data

# CPython's cycle collector would run ~7 times a step and find no cycle (reference counting frees a
# graph): paused in a step, back on (if it was) after, also after Ctrl-C; not on PyPy. 1.27x.
class collector_paused:
    def __enter__(self):
        self.paused = gc.isenabled() and sys.implementation.name == 'cpython'
        if self.paused:
            gc.disable()
    def __exit__(self, *exception):
        if self.paused:
            gc.enable()

def train_fast(docs, tokenizer, params, config, steps, lr):  # train(): tape, collector paused
    param_list = flatten(params)
    m = [0.0] * len(param_list)
    v = [0.0] * len(param_list)
    for step in range(steps):
        doc = docs[step % len(docs)]
        with collector_paused():
            loss = document_loss_and_gradients(doc, tokenizer, params, config)
            lr_now = lr * (1 - step / steps)
            adam_update(param_list, m, v, step, lr_now)
        yield loss

# ---- Each stand-in checked against Part 1 as the file now stands --------------------------------
STAND_INS = {  # Part 1's name: (its stand-in, the Part 1 code that its check covers)
    'linear': (linear_fused, 'linear'),
    'rmsnorm': (rmsnorm_fused, 'rmsnorm'),
    'attention': (attention_fused, 'attention (with softmax, linear)'),
    'mlp': (mlp_relu_skip, 'mlp (with Value.relu, linear)'),
    'cross_entropy': (cross_entropy_fused, 'cross_entropy (with softmax)'),
    'adam_update': (adam_update_folded, 'adam_update'),
    'train': (train_fast, 'train (with Value.backward)'),
}
PART1 = {name: globals()[name] for name in STAND_INS}  # Part 1's own, as the file defines them

def tiny_run():  # a tiny model's losses and weights in training, then a loss and every gradient
    config = Config(n_embd=4, n_head=2, n_layer=1, block_size=3)
    tokenizer = Tokenizer('ab')
    params = init_params(config, tokenizer.vocab_size, random.Random(0))
    numbers = list(train(['ab', 'ba'], tokenizer, params, config, 2, 0.1))  # leaves grads at 0
    loss = document_loss('ab', tokenizer, params, config)
    loss.backward()
    return numbers + [loss.data] + [x for p in flatten(params) for x in (p.data, p.grad)]

def same_numbers(a, b):  # equal to 1e-9 of the largest of them
    scale = max(abs(x) for x in a + b)
    return len(a) == len(b) and all(abs(x - y) <= 1e-9 * scale for x, y in zip(a, b))

def use_efficiency(on=True):
    """Puts in place each stand-in that gives, in a tiny model, the numbers of Part 1 as the file
    stands (to 1e-9); returns a line for each that steps aside. on=False: Part 1 alone."""
    globals().update(PART1)
    if not on:
        return []
    expected = tiny_run()
    globals().update({name: stand_in for name, (stand_in, _) in STAND_INS.items()})
    if same_numbers(tiny_run(), expected):  # the usual case: all of them agree at once
        return []
    agreeing = {}
    notes = []
    for name, (stand_in, replaces) in STAND_INS.items():  # else each alone in Part 1, to find which
        globals().update(PART1)
        globals()[name] = stand_in
        if same_numbers(tiny_run(), expected):
            agreeing[name] = stand_in
        else:
            notes.append(f"Part 1's {replaces} differs from {stand_in.__name__}: running "
                         f'{name} as written')
    globals().update(PART1)
    globals().update(agreeing)
    return notes

# ==== Part 3: the tool ===========================================================================
# Flags, checks, checkpoints, progress and reports, then the main program. Bad input (a flag, a
# file, a checkpoint) gets one line on stderr and exit code 2 before any work.
import argparse, json, os, shlex, signal, tempfile, time
from dataclasses import asdict
from statistics import fmean

MAX_PARAMS = 10_000_000  # about a gigabyte of Values: a bigger model is refused before it is built
CHECKPOINT_START = '{"format": "microgpt", "version": 2,'  # how each file --save writes begins
TRAINED_ON = {'input': str, 'documents': int, 'steps': int}  # what a checkpoint learned from

# ---- Flags and checks ---------------------------------------------------------------------------
def parse_args(argv):
    parser = argparse.ArgumentParser(description='Train a tiny GPT on lines of text, then sample.')
    parser.error = fail  # argparse's own errors in one line too
    flag = parser.add_argument
    # data
    flag('--input', default='names.txt', metavar='PATH', help='one document a line (names.txt)')
    flag('--val-fraction', type=float, default=0.1, metavar='X', help='share held out (0.1)')
    # model size (not with --load: a checkpoint has its own; the default in brackets)
    flag('--n-embd', type=int, metavar='N', help=f'width of a token vector ({Config.n_embd})')
    flag('--n-head', type=int, metavar='N', help=f'attention heads ({Config.n_head})')
    flag('--n-layer', type=int, metavar='N', help=f'transformer blocks ({Config.n_layer})')
    flag('--block-size', type=int, metavar='N', help=f'longest context ({Config.block_size})')
    # training
    flag('--steps', type=int, default=1000, metavar='N', help='one document each (1000)')
    flag('--lr', type=float, default=0.01, metavar='X', help='learning rate (0.01)')
    flag('--seed', type=int, default=42, metavar='N', help='random seed (42)')
    flag('--reference', action='store_true', help="Part 1 alone, without Part 2's stand-ins")
    # checkpoints
    flag('--save', metavar='PATH', help='save the model: a new file, or one --save wrote')
    flag('--load', metavar='PATH', help='start from a model that --save wrote')
    # evaluation and sampling
    flag('--eval-docs', type=int, default=500, metavar='N', help='held-out docs to score (500)')
    flag('--samples', type=int, default=20, metavar='N', help='documents to sample (20)')
    flag('--temperature', type=float, default=0.5, metavar='X', help='lower is safer (0.5)')
    flag('--prompt', default='', metavar='TEXT', help='text that every sample starts with')
    flag('--explain', nargs='+', default=[], metavar='WORD', help='what it expects along WORD')
    args = parser.parse_args(argv)
    for name in ('steps', 'eval_docs', 'samples'):
        if getattr(args, name) < 0:
            fail(f"--{name.replace('_', '-')} cannot be below 0")
    if not 0 < args.lr < math.inf:  # written with `not`, so that nan fails too
        fail('--lr must be a positive number')
    if not 1e-6 <= args.temperature <= 1e6:
        fail('--temperature must be from 1e-6 to 1e6')
    if not 0 <= args.val_fraction < 1:
        fail('--val-fraction must be at least 0 and below 1')
    return args

def fail(problem, exit_code=2):
    print(f'microgpt.py: error: {problem}', file=sys.stderr)
    sys.exit(exit_code)

def check_size(config, vocab_size):  # before a single weight is made
    n_params = 2 * vocab_size * config.n_embd + config.block_size * config.n_embd \
        + 12 * config.n_layer * config.n_embd ** 2  # wte, lm_head, wpe, then each layer's
    if min(asdict(config).values()) < 1 or config.n_embd % config.n_head or n_params > MAX_PARAMS:
        fail(f'{config} is not a model this tool builds: sizes from 1, n_head dividing n_embd, '
             f'{MAX_PARAMS:,} parameters at most (this has {n_params:,})')

# ---- Documents and checkpoints ------------------------------------------------------------------
def written_by_save(path):  # a regular file that begins as every file --save writes begins
    if not os.path.isfile(path):
        return False
    with open(path, 'rb') as f:
        return f.read(len(CHECKPOINT_START)) == CHECKPOINT_START.encode()

def save_checkpoint(path, config, tokenizer, params, trained_on):
    weights = {name: [[p.data for p in row] for row in matrix] for name, matrix in params.items()}
    checkpoint = {'format': 'microgpt', 'version': 2, 'config': asdict(config),
                  'chars': tokenizer.chars, 'trained_on': trained_on, 'weights': weights}
    # A new file beside the target, then renamed over it: a save cut short leaves the old one.
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix='.tmp')
    with os.fdopen(fd, 'w', encoding='utf-8') as f:
        json.dump(checkpoint, f)
    os.replace(temporary, path)

def load_checkpoint(path):  # all of it checked, its size before anything is built from it
    if not written_by_save(path):
        fail(f'--load {path}: not a checkpoint that --save wrote')
    try:
        with open(path, encoding='utf-8') as f:
            checkpoint = json.load(f)
    except ValueError as e:  # not UTF-8, or not JSON
        fail(f'--load {path}: cannot be read ({e})')
    sizes = checkpoint.get('config')
    trained_on = checkpoint.get('trained_on')
    weights = checkpoint.get('weights')
    if not (isinstance(sizes, dict) and sizes.keys() == asdict(Config()).keys()
            and all(type(n) is int for n in sizes.values()) and isinstance(weights, dict)
            and isinstance(checkpoint.get('chars'), str) and isinstance(trained_on, dict)
            and all(type(trained_on.get(key)) is kind for key, kind in TRAINED_ON.items())):
        fail(f'--load {path}: its config, chars, weights or trained_on is not as --save writes it')
    config = Config(**sizes)
    tokenizer = Tokenizer(checkpoint['chars'])
    check_size(config, tokenizer.vocab_size)
    shapes = param_shapes(config, tokenizer.vocab_size)
    for name, (rows, cols) in shapes.items():
        matrix = weights.get(name)
        if not (isinstance(matrix, list) and len(matrix) == rows and all(
                isinstance(row, list) and len(row) == cols and
                all(type(x) is float and math.isfinite(x) for x in row) for row in matrix)):
            fail(f'--load {path}: weight {name} is not {rows} rows of {cols} finite numbers')
    params = {name: [[Value(x) for x in row] for row in weights[name]] for name in shapes}
    return config, tokenizer, params, trained_on

# ---- Stopping cleanly, and reports: the loss in context, and --explain --------------------------
def stop_now(signum, frame):  # outside training: end the run, in one line
    fail(f'stopped by {signal.Signals(signum).name}', exit_code=128 + signum)

def next_token_pairs(doc, tokenizer):  # (token, next token) along BOS, the document, BOS
    tokens = [tokenizer.bos] + tokenizer.encode(doc) + [tokenizer.bos]
    return list(zip(tokens, tokens[1:]))

def counting_losses(train_docs, docs, tokenizer, block_size):
    """The loss on docs, taken as mean_loss takes it, of two models that only count in train_docs:
    each token (unigram), or each token after each token (bigram), with 1 added to every count."""
    unigram = [1] * tokenizer.vocab_size
    bigram = [[1] * tokenizer.vocab_size for _ in range(tokenizer.vocab_size)]
    for doc in train_docs:
        for token, next_token in next_token_pairs(doc, tokenizer):
            unigram[next_token] += 1
            bigram[token][next_token] += 1
    unigram_losses = []
    bigram_losses = []
    for doc in docs:
        pairs = next_token_pairs(doc, tokenizer)[:block_size]
        unigram_losses.append(fmean([math.log(sum(unigram) / unigram[b]) for a, b in pairs]))
        bigram_losses.append(fmean([math.log(sum(bigram[a]) / bigram[a][b]) for a, b in pairs]))
    return fmean(unigram_losses), fmean(bigram_losses)

def explain(word, tokenizer, params, config):  # what the model expects at each token of word
    shown = tokenizer.chars + '.'  # by token id: BOS shown as .
    keys = [[] for _ in range(config.n_layer)]
    values = [[] for _ in range(config.n_layer)]
    print(f'\n{word!r} as the model reads it (. is BOS, the start and the end):')
    for pos, (token, next_token) in enumerate(next_token_pairs(word, tokenizer)):
        with no_grad():
            probs = [p.data for p in softmax(gpt(token, pos, keys, values, params, config))]
        surprise = -math.log(probs[next_token])
        top = sorted(range(len(probs)), key=lambda i: -probs[i])[:5]
        expected = '  '.join(f'{shown[i]} {probs[i]:.2f}' for i in top)
        print(f'{shown[token]} → {shown[next_token]}  p {probs[next_token]:.4f}  surprise '
              f'{surprise:5.2f} | it expected most: {expected}')

# ---- The main program ---------------------------------------------------------------------------
if __name__ == '__main__':
    # flags: from the command line (also under %run), or in a notebook cell from MICROGPT_ARGS
    script = '__file__' in globals()
    args = parse_args(sys.argv[1:] if script else shlex.split(os.environ.get('MICROGPT_ARGS', '')))
    if script:  # `| head` ends the run quietly; Ctrl-C and SIGTERM stop training (see there)
        signal.signal(getattr(signal, 'SIGPIPE', signal.SIGINT), signal.SIG_DFL)
        for signum in (signal.SIGINT, signal.SIGTERM):  # (even where a shell had them ignored)
            signal.signal(signum, signal.default_int_handler)
        sys.stdout.reconfigure(errors='replace', line_buffering=True)  # unprintable: '?'

    # init the dataset and the model, loaded or new, with every input checked before any work
    if not os.path.isfile(args.input):
        fail(f'--input {args.input}: there is no regular file there')
    try:
        docs = load_docs(args.input)
    except (OSError, UnicodeError) as e:
        fail(f'--input {args.input}: cannot read it as UTF-8 text ({type(e).__name__})')
    if not docs:
        fail(f'--input {args.input}: no documents in it')
    train_docs, val_docs = split_docs(docs, args.seed, args.val_fraction)
    sizes = {name: vars(args)[name] for name in asdict(Config()) if vars(args)[name] is not None}
    if args.load:
        config, tokenizer, params, trained_on = load_checkpoint(args.load)
    else:
        config = Config(**sizes)
        tokenizer = Tokenizer.from_docs(docs)
        check_size(config, tokenizer.vocab_size)
        trained_on = {'steps': 0}
    if args.load and sizes:
        fail(f'--load {args.load} has its own size, {config}: leave out the size flags')
    try:
        tokenizer.encode(''.join(docs) + args.prompt + ''.join(args.explain))
    except ValueError as e:
        fail(f'{e}: the input, --prompt and --explain can use no other characters')
    if max(map(len, [args.prompt, *args.explain])) >= config.block_size:
        fail(f'--prompt and --explain must be shorter than block_size, {config.block_size}')
    if args.save and not (os.access(os.path.dirname(os.path.abspath(args.save)), os.W_OK) and (
            written_by_save(args.save) or not os.path.exists(args.save))):
        fail(f'--save {args.save}: not a new file in a writable folder, nor one --save wrote')
    if not args.load:
        params = init_params(config, tokenizer.vocab_size, random.Random(args.seed))
    print(f'dataset: {len(docs):,} documents in {args.input} ({len(train_docs):,} train, '
          f'{len(val_docs):,} held out), {len(tokenizer.chars)} characters + BOS')
    print(f'model: {len(flatten(params)):,} parameters, {config}')
    this_input = {'input': os.path.basename(args.input), 'documents': len(docs)}
    if args.load and {key: trained_on[key] for key in this_input} != this_input:
        print(f'note: {args.load} was trained on {trained_on}, not on this {this_input}')
    for note in use_efficiency(not args.reference):
        print(note)

    # training loop: Ctrl-C or SIGTERM stops it, keeping what it learned, and the run goes on
    losses = []
    watch_rng = random.Random(args.seed + 1)  # samples along the way, drawn apart from the rest
    start = time.perf_counter()
    try:
        for loss in train(train_docs, tokenizer, params, config, args.steps, args.lr):
            losses.append(loss)
            if not loss < 745:  # not finite, or a probability e^-loss below every float
                break
            if len(losses) % max(1, args.steps // 10) == 0:
                last_100 = fmean(losses[-100:])
                seconds = time.perf_counter() - start
                print(f'step {len(losses)}/{args.steps} | loss {loss:.4f} | last 100: '
                      f'{last_100:.4f} | {seconds:.1f}s')
            if len(losses) in (1, args.steps // 10, args.steps // 2):
                watch = [sample(params, config, tokenizer, watch_rng, args.temperature)
                         for _ in range(4)]
                print(f'samples after step {len(losses)} (loss {loss:.4f}):', *watch)
    except KeyboardInterrupt:
        print(f'stopped after step {len(losses)}: keeping what was learned')
    except (ValueError, OverflowError):  # in Part 1, the log of a probability that rounded to 0
        losses.append(math.inf)
    if script:  # from here, a stop ends the run at once, in one line
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, stop_now)
    if losses and not (losses[-1] < 745 and all(math.isfinite(p.data) for p in flatten(params))):
        fail(f'training diverged at step {len(losses)} (a loss, weight or probability beyond what '
             f'a float holds): try a lower --lr than {args.lr:g}')
    if args.save:
        trained_on = dict(this_input, steps=trained_on['steps'] + len(losses))
        save_checkpoint(args.save, config, tokenizer, params, trained_on)
        print(f'saved the model to {args.save}')

    # evaluate on documents the model never trained on, beside models that only count
    held_out = val_docs[:args.eval_docs]
    if held_out:
        val_loss = mean_loss(held_out, tokenizer, params, config)
        unigram, bigram = counting_losses(train_docs, held_out, tokenizer, config.block_size)
        uniform = math.log(tokenizer.vocab_size)
        print(f'loss on {len(held_out)} held-out docs {val_loss:.4f}; counting in training docs: '
              f'pairs {bigram:.4f}, letters {unigram:.4f}; uniform {uniform:.4f}')

    # look inside the model
    for word in args.explain:
        explain(word, tokenizer, params, config)

    # sample new documents: is each one real, and how surprised is the model by it?
    rng = random.Random(args.seed)
    origin = dict.fromkeys(val_docs, 'held out') | dict.fromkeys(train_docs, 'in train')
    surprises = []
    for number in range(1, args.samples + 1):
        text = sample(params, config, tokenizer, rng, args.temperature, args.prompt)
        status = origin.get(text, 'new')
        if status == 'new' and len(text) == config.block_size:
            status = 'cut'  # stopped at block_size, not at an end the model chose
        surprises.append(mean_loss([text], tokenizer, params, config))
        print(f'sample {number:2d}  {status:8s}  surprise {surprises[-1]:.2f}  {text}')
    if surprises and held_out:  # the model's own guesses against real documents
        sample_surprise = fmean(surprises)
        likelier = 'likelier' if sample_surprise < val_loss else 'no likelier'
        print(f'mean surprise: {sample_surprise:.2f} for these samples, {val_loss:.2f} for real '
              f'held-out documents: the model finds its inventions {likelier} than real ones. It '
              'knows what is plausible, not what is true; lower --temperature, likelier samples.')
