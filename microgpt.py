"""microgpt: a whole GPT in one dependency-free file, to read top to bottom. Part 1 is the
algorithm, Part 2 makes it fast without changing its numbers, Part 3 is the command-line tool.
`python microgpt.py --help` lists the options."""
import math
import random
from collections import deque
from dataclasses import dataclass

# ==== Part 1: the algorithm ======================================================================
# Dataset, tokenizer, autograd, parameters, model, training, inference: a whole GPT built from one
# small class of numbers that remember how they were computed. Nothing here prints or writes.
# "# Part 2: name" above a function says that Part 2 has a faster stand-in for it. Each run checks
# the stand-in against the function as written here, and runs it in its place only if both give
# the same numbers: an edit here changes the run, and a line names the stand-in that stepped aside.

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
        unknown = ''.join(sorted(set(text) - set(self.chars)))
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
    tape = deque(maxlen=0)  # keeps nothing; Part 2's train_fast puts a list here (its tape)
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

    # A plain number on the left (2 * x, 1 - x, 1 / x, and sum() starting at 0): the ops above.
    __radd__ = __add__  # a + b = b + a
    __rmul__ = __mul__  # a * b = b * a
    def __rsub__(self, other):
        return Value(other) - self
    def __rtruediv__(self, other):
        return Value(other) / self

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

    # Part 2: train_fast backpropagates from its tape instead, in training
    def backward(self):  # adds d(self)/d(v) to v.grad for every v that self was made from
        # (once per graph: a second pass would add again what the first left in the inner Values)
        order = self.topological_order()
        self.grad = 1.0  # d(self)/d(self)
        # The chain rule, from self back: d(self)/d(child) += d(node)/d(child) * d(self)/d(node).
        for node in reversed(order):
            for child, local_grad in zip(node._children, node._local_grads):
                child.grad += local_grad * node.grad

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
# Part 2: linear_fused
def linear(x, w):  # y = W x
    return [sum(w_ij * x_j for w_ij, x_j in zip(row, x)) for row in w]

# Part 2: rmsnorm_fused
def rmsnorm(x):  # x scaled to a root mean square of 1
    mean_square = sum(x_i * x_i for x_i in x) / len(x)
    scale = (mean_square + 1e-5) ** -0.5
    return [x_i * scale for x_i in x]

def softmax(logits):  # scores -> probabilities that sum to 1
    max_logit = max(logit.data for logit in logits)  # subtracted so that exp() cannot overflow
    exps = [(logit - max_logit).exp() for logit in logits]
    total = sum(exps)
    return [e / total for e in exps]

# Part 2: attention_fused
def attention(q, keys, values):  # one head: values mixed as q matches keys
    head_dim = len(q)
    attn_logits = [sum(q_j * k_j for q_j, k_j in zip(q, k)) / math.sqrt(head_dim) for k in keys]
    attn_weights = softmax(attn_logits)
    return [sum(weight * v[j] for weight, v in zip(attn_weights, values)) for j in range(head_dim)]

# Part 2: mlp_relu_skip
def mlp(x, w_fc1, w_fc2):  # widen to 4 * n_embd, keep the positive part (ReLU), project back
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

# Part 2: cross_entropy_fused
def cross_entropy(logits, target):  # -log of the probability given to the right token
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
# Part 2: adam_update_folded
def adam_update(param_list, m, v, step, lr, beta1=0.85, beta2=0.99, eps=1e-8):
    for i, p in enumerate(param_list):
        m[i] = beta1 * m[i] + (1 - beta1) * p.grad  # running mean of the gradient
        v[i] = beta2 * v[i] + (1 - beta2) * p.grad ** 2  # and of its square
        m_hat = m[i] / (1 - beta1 ** (step + 1))  # bias corrections: m and v started at 0
        v_hat = v[i] / (1 - beta2 ** (step + 1))
        p.data -= lr * m_hat / (math.sqrt(v_hat) + eps)
        p.grad = 0.0

# Part 2: train_fast
def train(docs, tokenizer, params, config, steps, lr):  # yields each step's loss as it is done
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
# A scalar autograd spends its time on the graph: each node it makes, each edge backward() walks.
# Each stand-in below does the work of one Part 1 function with the same numbers, from a smaller
# graph or with less work; its comment gives its derivatives, or why it is exact, and how much
# slower a training step is without it (CPython 3.11, `tests/bench.py --levers`). use_efficiency()
# checks each one against Part 1 as the file now stands and puts in place those that agree.
import gc
import os
import sys
from operator import mul

# One node per output of a layer instead of 2n: y_i = sum_j w_ij x_j, dy_i/dw_ij = x_j,
# dy_i/dx_j = w_ij. Under no_grad only the numbers are computed. A step costs 3.8x without it.
def linear_fused(x, w):
    x_data = [x_j.data for x_j in x]
    rows_data = [[w_ij.data for w_ij in row] for row in w]
    if not Value.record:
        return [Value(sum(map(mul, row_data, x_data))) for row_data in rows_data]
    return [Value(sum(map(mul, row_data, x_data)), row + x, x_data + row_data)
            for row, row_data in zip(w, rows_data)]

# The scale as one node: s = (sum_j x_j^2 / n + 1e-5)^-1/2, ds/dx_j = -x_j s^3 / n. 1.07x.
def rmsnorm_fused(x):
    x_data = [x_i.data for x_i in x]
    scale = (sum(map(mul, x_data, x_data)) / len(x) + 1e-5) ** -0.5
    local_grads = [-x_i * scale ** 3 / len(x) for x_i in x_data] if Value.record else ()
    scale = Value(scale, x, local_grads)
    return [x_i * scale for x_i in x]

# A head as T + head_dim nodes, softmax included, for T positions: out_j = sum_t p_t v_tj,
# p = softmax(s), s_t = q.k_t / sqrt(head_dim); d out_j/d s_t = p_t (v_tj - out_j),
# d out_j/d v_tj = p_t. Part 1 makes ~24T nodes and ~41T edges at head_dim 4; this ~T and 16T.
# 1.27x at block_size 16.
def attention_fused(q, keys, values):
    root = math.sqrt(len(q))
    q_data = [q_j.data for q_j in q]
    keys_data = [[k_j.data for k_j in k] for k in keys]
    values_data = [[v_j.data for v_j in v] for v in values]
    scores_data = [sum(map(mul, q_data, k_data)) / root for k_data in keys_data]
    max_score = max(scores_data)
    exps = [math.exp(s - max_score) for s in scores_data]
    total = sum(exps)
    probs = [e / total for e in exps]
    columns = [[v_data[j] for v_data in values_data] for j in range(len(q))]
    if not Value.record:
        return [Value(sum(map(mul, probs, column))) for column in columns]
    q_grads = [q_j / root for q_j in q_data]  # ds_t/dk_tj = q_j / sqrt(head_dim), and vice versa
    scores = [Value(s, q + k, [k_j / root for k_j in k_data] + q_grads)
              for s, k, k_data in zip(scores_data, keys, keys_data)]
    head_out = []
    for j, column in enumerate(columns):
        out_j = sum(map(mul, probs, column))
        score_grads = [p * (v_tj - out_j) for p, v_tj in zip(probs, column)]
        head_out.append(Value(out_j, scores + [v[j] for v in values], score_grads + probs))
    return head_out

# The ReLU passes a positive unit as it is (slope 1) and makes the others exactly 0 (slope 0),
# so fc2 can read the positive units only: the same sums and gradients, about half the edges.
# 1.18x.
def mlp_relu_skip(x, w_fc1, w_fc2):
    hidden = linear(x, w_fc1)
    active_units = [j for j, h in enumerate(hidden) if h.data > 0]
    w_fc2_active = [[row[j] for j in active_units] for row in w_fc2]
    return linear([hidden[j] for j in active_units], w_fc2_active)

# Softmax and -log in one node, computed as log(sum_i e^(x_i - m)) + m - x_target (m the max
# logit): d/dx_i = p_i - [i = target]. Exact where Part 1 is, and finite where Part 1's
# probability of the target rounds to 0 and its log fails. 1.09x.
def cross_entropy_fused(logits, target):
    logits_data = [logit.data for logit in logits]
    max_logit = max(logits_data)
    exps = [math.exp(x - max_logit) for x in logits_data]
    total = sum(exps)
    loss = math.log(total) + max_logit - logits_data[target]
    if not Value.record:
        return Value(loss)
    return Value(loss, logits, [e / total - (i == target) for i, e in enumerate(exps)])

# Adam with both bias corrections folded into one step size, which is exact:
# lr m_hat / (sqrt(v_hat) + eps) = (lr sqrt(c2) / c1) m / (sqrt(v) + eps sqrt(c2)). 1.14x.
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

# The tape: a Value is always made after the Values it is made from, so the Values made for one
# loss, in the order made, read backwards, are already an order for the chain rule, and backward()
# need not search the graph for one (42% of a step). Value.__init__ appends each new Value to
# Value.tape, which keeps them only while a list is there. 1.9x.
def document_loss_and_gradients(doc, tokenizer, params, config):  # document_loss + backward()
    # (returns the loss as a number, so that the graph is freed here, while the collector is paused)
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

# CPython's cycle collector runs each time ~700 more container objects exist than before; a step
# makes thousands, none in a cycle (reference counting frees a graph), so it would only scan them
# again and again. Paused while a step runs, and back on (if it was) after, also after Ctrl-C.
# PyPy's collector is another design, which pausing slows: left alone there. 1.18x.
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

# PyPy moves every object that outlives its young area (the nursery, about 1 MB by default) to
# the old generation; one training step's graph is several MB, so each would be copied once.
# With 8 MB it dies young: a step takes 1.75 ms instead of 2.98. PyPy reads the size only as it
# starts, so the main program starts itself again with it set.
def restart_pypy_with_a_bigger_nursery(argv):
    if sys.implementation.name == 'pypy' and 'PYPY_GC_NURSERY' not in os.environ:
        os.execve(sys.executable, [sys.executable] + argv, dict(os.environ, PYPY_GC_NURSERY='8MB'))

# ---- Each stand-in checked against Part 1 as the file now stands --------------------------------
STAND_INS = {  # Part 1's name: (its stand-in, the Part 1 code it does the work of)
    'linear': (linear_fused, 'linear'),
    'rmsnorm': (rmsnorm_fused, 'rmsnorm'),
    'attention': (attention_fused, 'attention (with softmax)'),
    'mlp': (mlp_relu_skip, 'mlp (with Value.relu)'),
    'cross_entropy': (cross_entropy_fused, 'cross_entropy (with softmax)'),
    'adam_update': (adam_update_folded, 'adam_update'),
    'train': (train_fast, 'train (with Value.backward)'),
}
PART1 = {name: globals()[name] for name in STAND_INS}  # Part 1's own, as the file defines them

def tiny_run():  # a tiny model's loss and every gradient, then its losses and weights in training
    config = Config(n_embd=4, n_head=2, n_layer=1, block_size=3)
    tokenizer = Tokenizer('ab')
    params = init_params(config, tokenizer.vocab_size, random.Random(0))
    loss = document_loss('ab', tokenizer, params, config)
    loss.backward()
    numbers = [loss.data] + [p.grad for p in flatten(params)]
    params = init_params(config, tokenizer.vocab_size, random.Random(0))
    numbers += list(train(['ab', 'ba'], tokenizer, params, config, 2, 0.1))
    return numbers + [p.data for p in flatten(params)]

def same_numbers(a, b):  # equal to 1e-9 of the largest of them
    scale = max(abs(x) for x in a + b)
    return len(a) == len(b) and all(abs(x - y) <= 1e-9 * scale for x, y in zip(a, b))

def use_efficiency(on=True):
    """Put Part 2's stand-ins in place of Part 1's functions where a tiny model gives the numbers
    of Part 1 as the file now stands (to 1e-9); returns a line for each stand-in that steps
    aside. on=False: Part 1 alone, as --reference runs."""
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
# Flags, checks, checkpoints, progress and reports around Parts 1 and 2, then the main program.
# Bad input gets one line on stderr and exit code 2, never a traceback; a finished training run
# is never lost; no file that microgpt.py did not write is overwritten.
import argparse, contextlib, glob, json, shlex, signal, stat, tempfile, threading, time
from dataclasses import asdict

# ---- Output and flags ---------------------------------------------------------------------------
MAX_PARAMS = 50_000_000  # a larger model is refused before any memory is taken for it
MAX_WEIGHT = 1e6  # a checkpoint weight beyond this is broken (training keeps them near 1)
SIZE_HELP = {'n_embd': 'width of the vector that represents each token',
             'n_head': 'attention heads (must divide n_embd)', 'n_layer': 'transformer blocks',
             'block_size': 'the longest context, in tokens'}
output_lost = False  # set once stdout is gone (a closed pipe, a full disk): the run goes on

def say(text='', end='\n'):  # print(), except that output which cannot be written never stops a run
    global output_lost
    if output_lost or sys.stdout is None:
        return
    try:
        print(text, end=end, flush=True)
    except (OSError, ValueError):  # ValueError: stdout was closed
        output_lost = True
        with contextlib.suppress(OSError):  # and no error when Python flushes it at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

def fail(problem, exit_code=2):
    with contextlib.suppress(OSError, ValueError, AttributeError):
        print(f'microgpt.py: error: {problem}', file=sys.stderr, flush=True)
    sys.exit(exit_code)

def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='microgpt.py',
        description='Train a tiny GPT on a text file, then sample new documents like its lines.',
        epilog=f'Models over {MAX_PARAMS:,} parameters are refused.')
    parser.error = fail  # argparse's own errors in one line too
    flag = parser.add_argument
    # data
    flag('--input', metavar='PATH', help='UTF-8 text, one document per line; one longer than '
         'block_size is trained on its first block_size tokens (default: names.txt beside this '
         'script, else in the working directory)')
    flag('--val-fraction', type=float, default=0.1, metavar='X',
         help='share of documents held out of training (default: %(default)s)')
    # model size (SUPPRESS: an attribute only if given, so that --load can tell)
    for name, default in asdict(Config()).items():
        flag('--' + name.replace('_', '-'), type=int, default=argparse.SUPPRESS, metavar='N',
             help=f"{SIZE_HELP[name]} (default: {default}, or the --load model's)")
    # training
    flag('--steps', type=int, default=1000, metavar='N',
         help='training steps, 0: do not train (default: %(default)s)')
    flag('--lr', type=float, default=0.01, metavar='X',
         help='Adam learning rate, decayed linearly to 0 (default: %(default)s)')
    flag('--seed', type=int, default=42, metavar='N', help='random seed (default: %(default)s)')
    flag('--reference', action='store_true', help="Part 1 alone, without Part 2's speed-ups")
    # checkpoints
    flag('--save', metavar='PATH', help='save the model to this JSON file (a new file, or one '
         'that --save wrote)')
    flag('--load', metavar='PATH', help='start from this saved model (with --steps 0: only sample)')
    # evaluation and sampling
    flag('--eval-docs', type=int, metavar='N', help='measure the loss on up to N held-out and N '
         'training documents; 0: do not (default: 500, or 0 with --load and --steps 0)')
    flag('--samples', type=int, default=20, metavar='N',
         help='how many documents to sample (default: %(default)s)')
    flag('--temperature', type=float, default=0.5, metavar='X',
         help='sampling: lower is safer, higher wilder (default: %(default)s)')
    flag('--prompt', default='', metavar='TEXT',
         help='text that every sample starts with (default: none)')
    flag('--explain', nargs='+', default=[], metavar='WORD', help='after training, show for each '
         'WORD what the model predicts at each position and where each attention head looks')
    args = parser.parse_args(argv)
    # `not 0 < x` rather than `x <= 0`: every comparison with nan is False
    for name in ('steps', 'samples', 'eval_docs'):
        if (getattr(args, name) or 0) < 0:
            fail(f"--{name.replace('_', '-')} must be 0 or more, not {getattr(args, name)}")
    if not 0 < args.lr < math.inf:
        fail(f'--lr must be a positive number, not {args.lr}')
    if not 0 < args.temperature < math.inf:
        fail(f'--temperature must be a positive number, not {args.temperature}')
    if not 0 <= args.val_fraction < 1:
        fail(f'--val-fraction must be at least 0 and below 1, not {args.val_fraction}')
    for name, value in size_flags(args).items():
        if value <= 0:
            fail(f"--{name.replace('_', '-')} must be positive, not {value}")
    config = Config(**size_flags(args))
    if config.n_embd % config.n_head:
        fail(f'--n-embd must be divisible by n_head ({config.n_head}), not {config.n_embd}')
    for name in ('input', 'save', 'load'):
        if getattr(args, name) == '':
            fail(f'--{name} needs a file name')
    return args

def size_flags(args):  # the size flags given on the command line
    return {name: getattr(args, name) for name in asdict(Config()) if hasattr(args, name)}

def count_params(config, vocab_size):  # without building the model: wte, lm_head, wpe, layers
    n_embd = config.n_embd
    return 2 * vocab_size * n_embd + config.block_size * n_embd + 12 * config.n_layer * n_embd ** 2

# ---- Documents and checkpoints ------------------------------------------------------------------
def find_names_file():  # beside this script, else (as in a notebook) in the working directory
    if '__file__' in globals():
        beside_script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'names.txt')
        if os.path.exists(beside_script):
            return os.path.relpath(beside_script)
    return 'names.txt'

def read_docs(path):
    if not os.path.isfile(path):  # also refuses a folder, a FIFO or a device like /dev/zero
        problem = 'not a regular file' if os.path.exists(path) else 'No such file or directory'
        fail(f'cannot read {path} ({problem}): give --input a UTF-8 text file')
    try:
        docs = load_docs(path)
    except UnicodeDecodeError:
        fail(f'cannot read {path} (it is not UTF-8): give --input a UTF-8 text file')
    except OSError as e:
        fail(f'cannot read {path} ({e.strerror}): give --input a UTF-8 text file')
    if not docs:
        fail(f'{path} has no documents: give --input a file with one document on each line')
    return docs

def looks_like_checkpoint(path):  # a regular file whose start is a microgpt checkpoint's
    with contextlib.suppress(OSError):
        if os.path.isfile(path):
            with open(path, 'rb') as f:
                start = f.read(4096)
            return start.lstrip().startswith(b'{') and b'"microgpt"' in start
    return False

def check_save_path(path, input_path):  # before training, so that no work is lost at the end
    folder = os.path.dirname(os.path.abspath(path))
    target = os.path.realpath(path)  # through a symlink to the file it names
    if path.endswith(os.sep) or os.path.isdir(path):
        fail(f'cannot save to {path}: it is a folder; give --save a file name')
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        fail(f'cannot save to {path}: its folder is missing or not writable')
    if len(os.path.basename(target).encode()) > 230:  # with room for the temporary file's name
        fail(f'cannot save to {path}: the file name is too long (230 bytes at most)')
    if not os.path.exists(target):
        return
    script = globals().get('__file__')
    for other, what in ((input_path, 'the --input file'), (script, 'this script')):
        if other and os.path.exists(other) and os.path.samefile(target, other):
            fail(f'--save {path} would overwrite {what}: give another file name')
    if not looks_like_checkpoint(target):
        fail(f'--save {path} would overwrite a file that is not a microgpt checkpoint: give '
             'another file name')

def save_checkpoint(path, config, tokenizer, params, trained_on):
    weights = {name: [[p.data for p in row] for row in matrix] for name, matrix in params.items()}
    checkpoint = {'format': 'microgpt', 'version': 1, 'config': asdict(config),
                  'chars': tokenizer.chars, 'trained_on': trained_on, 'weights': weights}
    # Write a temporary file beside it, then rename: an interrupted save leaves the old file. The
    # temporary name says whose it is; one left by a killed process is removed here.
    target = os.path.realpath(path)  # a symlink stays one: the file it names is replaced
    folder, name = os.path.split(target)
    for stale in glob.glob(os.path.join(glob.escape(folder), f'.{glob.escape(name)}.*.tmp')):
        pid = stale.split('.')[-2]  # .NAME.PID.tmp
        if pid.isdigit() and not process_exists(int(pid)):
            os.unlink(stale)
    tmp_path = os.path.join(folder, f'.{name}.{os.getpid()}.tmp')
    replacing = os.path.exists(target)
    mode = stat.S_IMODE(os.stat(target).st_mode) if replacing else 0o666
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)  # 0o666 less the umask
    try:
        if replacing:
            os.chmod(tmp_path, mode)  # the old file's own mode, whatever the umask
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            json.dump(checkpoint, f, indent=1)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_path)
        raise

def process_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, but is another user's
        pass
    return True

def load_checkpoint(path):
    def bad(problem):
        fail(f'checkpoint {path} {problem}: give --load a file written by --save')
    if not os.path.isfile(path):
        bad('is not a regular file' if os.path.exists(path) else 'cannot be read (No such file)')
    if not looks_like_checkpoint(path):
        bad('is not a microgpt checkpoint')
    try:
        with open(path, encoding='utf-8') as f:
            checkpoint = json.load(f, parse_int=float)  # 10**400 becomes inf, refused below
    except OSError as e:
        bad(f'cannot be read ({e.strerror})')
    except (ValueError, RecursionError) as e:  # not UTF-8, not JSON, or nested too deeply
        bad(f'cannot be read ({str(e)[:80]})')
    if not isinstance(checkpoint, dict) or checkpoint.get('format') != 'microgpt' \
            or checkpoint.get('version') != 1:
        bad('is not a microgpt checkpoint of version 1')
    sizes = checkpoint.get('config')
    if not isinstance(sizes, dict) or set(sizes) != set(asdict(Config())) \
            or not all(type(n) is float and n.is_integer() and 1 <= n <= MAX_PARAMS
                       for n in sizes.values()) or sizes['n_embd'] % sizes['n_head']:
        bad('has a bad "config"')
    chars = checkpoint.get('chars')
    if not isinstance(chars, str) or len(set(chars)) != len(chars) \
            or any('\ud800' <= ch <= '\udfff' for ch in chars):  # a lone surrogate is no text
        bad('needs distinct characters as "chars"')
    config = Config(**{name: int(n) for name, n in sizes.items()})
    tokenizer = Tokenizer(chars)
    if count_params(config, tokenizer.vocab_size) > MAX_PARAMS:
        bad(f'describes a model over {MAX_PARAMS:,} parameters')
    shapes = param_shapes(config, tokenizer.vocab_size)
    weights = checkpoint.get('weights')
    if not isinstance(weights, dict):
        bad('has no "weights" object')
    for name in weights:
        if name not in shapes:
            bad(f'has a weight {name!r:.40} that its config does not need')
    for name, (rows, cols) in shapes.items():
        matrix = weights.get(name)
        if not isinstance(matrix, list) or len(matrix) != rows \
                or not all(isinstance(row, list) and len(row) == cols for row in matrix):
            bad(f'has no {name} of the shape its config needs ({rows} x {cols})')
        if not all(type(x) is float and abs(x) <= MAX_WEIGHT for row in matrix for x in row):
            bad(f'has a weight in {name} that is not a finite number within +-{MAX_WEIGHT:g}')
    params = {name: [[Value(x) for x in row] for row in weights[name]] for name in shapes}
    trained_on = checkpoint.get('trained_on')
    return config, tokenizer, params, trained_on if isinstance(trained_on, dict) else {}

# ---- Training, with progress and clean stops ----------------------------------------------------
def bar_characters():  # the loss curve's bars, in ASCII where the output's encoding lacks blocks
    try:
        '▁▂▃▄▅▆▇█'.encode(sys.stdout.encoding)
    except (UnicodeError, LookupError, AttributeError, TypeError):  # or no stdout, no encoding
        return '_.-:=+*#'
    return '▁▂▃▄▅▆▇█'

def sparkline(losses, width=20):  # the loss curve as bars: the means of `width` equal chunks
    bounds = [i * len(losses) // width for i in range(width + 1)]
    chunks = [losses[bounds[i]:bounds[i + 1]] for i in range(width)]
    means = [sum(chunk) / len(chunk) for chunk in chunks if chunk]
    low = min(means)
    span = (max(means) - low) or 1
    levels = bar_characters()
    bars = ''.join(levels[int(7.99 * (m - low) / span)] for m in means)
    return f'{means[0]:.2f} {bars} {means[-1]:.2f}'

def duration(seconds):  # 7.2s, 19m27s, 2h05m
    if seconds < 60:
        return f'{seconds:.1f}s'
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours == 0:
        return f'{minutes}m{seconds:02d}s'
    return f'{hours}h{minutes:02d}m'

stop_signal = None  # the name of a signal that asked training to stop

def request_stop(signum, frame):  # while training: stop after this step (and its Adam update)
    global stop_signal
    stop_signal = signal.Signals(signum).name

def stop_signals():  # Ctrl-C (SIGINT), SIGTERM and, where there is one, SIGHUP
    if threading.current_thread() is not threading.main_thread():
        return []  # only the main thread may handle signals
    names = ('SIGINT', 'SIGTERM', 'SIGHUP')
    return [getattr(signal, name) for name in names if hasattr(signal, name)]

def train_with_progress(docs, tokenizer, params, config, steps, lr):
    """train() with a progress line: on a terminal one line that rewrites itself, else a line
    every ~10% or 30 s. Ctrl-C, SIGTERM or SIGHUP stop it after the step under way, keeping what
    was learned; so does a loss that is not a finite number. Returns the steps' losses."""
    global stop_signal
    stop_signal = None
    on_terminal = sys.stdout is not None and sys.stdout.isatty()
    previous_handlers = {signum: signal.signal(signum, request_stop) for signum in stop_signals()}
    losses = []
    start = time.perf_counter()
    last_print = start
    try:
        for loss in train(docs, tokenizer, params, config, steps, lr):
            losses.append(loss)
            now = time.perf_counter()
            seconds_per_step = (now - start) / len(losses)
            eta = seconds_per_step * (steps - len(losses))
            line = (f'step {len(losses):{len(str(steps))}d}/{steps} | loss {loss:.4f} | '
                    f'{seconds_per_step * 1000:.1f} ms/step | ETA {duration(eta)}')
            if on_terminal:
                say('\r' + line + '\033[K', end='')  # \033[K clears what the last line left
            elif len(losses) % max(1, steps // 10) == 0 or now - last_print > 30:
                say(line)
                last_print = now
            if not math.isfinite(loss) or stop_signal:
                break
    except KeyboardInterrupt:  # raised some other way than by Ctrl-C, which the handler takes
        stop_signal = 'SIGINT'
    finally:
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
    if on_terminal:
        say()
    if stop_signal:
        say(f'interrupted at step {len(losses)} of {steps} ({stop_signal}): keeping what was '
            'learned so far')
    if losses and math.isfinite(losses[-1]):  # a non-finite loss stopped it: see the main program
        last = losses[-100:]
        last_mean = sum(last) / len(last)
        seconds = time.perf_counter() - start
        say(f'trained {len(losses)} steps in {duration(seconds)}: loss {losses[0]:.4f} at the '
            f'first step, {last_mean:.4f} mean of the last {len(last)}')
        say(f'loss curve: {sparkline(losses)}')
    return losses

def stop_now(signum, frame):  # after training: a signal ends the run at once, in one line
    fail(f'stopped by {signal.Signals(signum).name}', exit_code=128 + signum)

# ---- Looking inside the model: --explain --------------------------------------------------------
def look_inside(word, tokenizer, params, config):
    """Part 1's model along BOS + word + BOS: at each position the next-token probabilities and
    every head's attention weights (layer by layer, head by head): [(probs, weights), ...]. The
    weights are noted as Part 1's attention hands them to softmax, for a moment the one in use."""
    global attention, softmax
    tokens = [tokenizer.bos] + tokenizer.encode(word) + [tokenizer.bos]
    keys = [[] for _ in range(config.n_layer)]
    values = [[] for _ in range(config.n_layer)]
    plain_softmax = softmax
    attention_in_use = attention
    noted = []
    def softmax_noting(logits):
        probs = plain_softmax(logits)
        noted.append([p.data for p in probs])
        return probs
    positions = []
    attention = PART1['attention']
    softmax = softmax_noting
    try:
        with no_grad():
            for pos in range(len(tokens) - 1):
                logits = gpt(tokens[pos], pos, keys, values, params, config)
                positions.append(([p.data for p in plain_softmax(logits)], noted[:]))
                noted.clear()
    finally:
        attention = attention_in_use
        softmax = plain_softmax
    return tokens, positions

def bar(fraction, full_width):  # fraction * full_width characters, to an eighth of one
    eighths = round(fraction * full_width * 8)
    return '█' * (eighths // 8) + ' ▏▎▍▌▋▊▉'[eighths % 8].strip()

def explain(word, tokenizer, params, config, held_out_loss=None):
    tokens, positions = look_inside(word, tokenizer, params, config)
    bos_mark = '¶' if '.' in tokenizer.chars else '.'
    symbols = list(tokenizer.chars) + [bos_mark]  # by token id
    shown = [symbols[t] for t in tokens]
    width = max(7, min(16, len(tokens)))  # the context column: its last 16 tokens at most
    say(f'\nexplaining {word!r}; {bos_mark} is BOS, the start and end of a document')
    # 1. the next-token table: what the model expected, and how surprised it was
    say(f"{'context':>{width}s} → next p       surprise | top 5 predictions, and the rest")
    surprises = []
    for pos, (probs, _) in enumerate(positions):
        target = tokens[pos + 1]
        surprises.append(-math.log(probs[target]) if probs[target] > 0 else math.inf)
        context = ''.join(shown[:pos + 1])
        if len(context) > width:
            context = '…' + context[1 - width:]
        top = sorted(range(len(probs)), key=lambda i: -probs[i])[:5]
        cells = [f'{symbols[i]} {bar(probs[i], 16)} {probs[i]:.2f}' for i in top]
        rest = 1 - sum(probs[i] for i in top)
        cells = ('  '.join(cells) + f'  +{rest:.2f}').replace(' 0.', ' .').replace('+0.', '+.')
        say(f'{context:>{width}s} → {shown[pos + 1]:4s} {probs[target]:.4f} '
            f'{surprises[-1]:8.2f} | {cells}')
    # 2. the loss, explained
    loss = sum(surprises) / len(surprises)
    say(f'loss of {word!r}: {loss:.4f}, the mean surprise (-ln p) over its {len(surprises)} '
        'next tokens')
    say(f'a uniform guess over {tokenizer.vocab_size} tokens would score ln '
        f'{tokenizer.vocab_size} = {math.log(tokenizer.vocab_size):.4f}: where training starts')
    if held_out_loss is not None:
        say(f'this model on held-out docs: {held_out_loss:.4f}')
    # 3. attention: rows are the token being read, columns the tokens it may look at
    say("attention: a row is the token being read, a column a token it may look at; ' ░▒▓█'")
    say('shade weights 0 to 1, and · marks later tokens, hidden from it. A habit is named when')
    say("one place gets over half of a head's weight, averaged over the rows after the first.")
    n_read = len(positions)
    for layer in range(config.n_layer):
        blocks = []
        for head in range(config.n_head):
            index = layer * config.n_head + head
            grid = [weights[index] for _, weights in positions]
            lines = [f'layer {layer} head {head}', '  ' + ''.join(shown[:n_read])]
            for row, weights in enumerate(grid):
                cells = ''.join(' ░▒▓█'[round(w * 4)] for w in weights)
                lines.append(f'{shown[row]} {cells}' + '·' * (n_read - row - 1))
            lines.append(attention_habit(grid))
            blocks.append(lines)
        block_width = max(len(line) for lines in blocks for line in lines) + 3
        per_line = max(1, 100 // block_width)
        for start in range(0, len(blocks), per_line):
            group = blocks[start:start + per_line]
            for i in range(len(group[0])):
                say(''.join(f'{lines[i]:{block_width}s}' for lines in group).rstrip())
    return loss

def attention_habit(grid):  # one honest line about where a head looks, or none
    rows = grid[1:]  # the first row can only look at itself
    if not rows:
        return ''
    habits = {'the previous token': sum(row[-2] for row in rows) / len(rows),
              'itself': sum(row[-1] for row in rows) / len(rows),
              'the start (BOS)': sum(row[0] for row in rows) / len(rows)}
    place = max(habits, key=habits.get)
    if habits[place] <= 0.5:
        return 'no one habit'
    return f'{habits[place]:.0%} on {place}'

# ---- The main program ---------------------------------------------------------------------------
def unknown_chars(text, tokenizer):  # the characters of text that the vocabulary lacks, sorted
    return ''.join(sorted(set(text) - set(tokenizer.chars)))

def args_from_environment():  # a notebook cell: sys.argv holds the kernel's own arguments
    try:
        return shlex.split(os.environ.get('MICROGPT_ARGS', ''))
    except ValueError as e:
        fail(f'cannot read MICROGPT_ARGS ({e}): give it flags as on a command line')

if __name__ == '__main__':
    # flags: from the command line (also under IPython's %run), or in a notebook cell, where
    # there is no __file__, from the MICROGPT_ARGS environment variable
    args = parse_args(sys.argv[1:] if '__file__' in globals() else args_from_environment())
    if '__file__' in globals() and 'IPython' not in sys.modules and not args.reference:
        restart_pypy_with_a_bigger_nursery(sys.argv)  # (not under IPython's %run: it would go)
    if not args.reference:
        for note in use_efficiency():
            say(note)
    if hasattr(sys.stdout, 'reconfigure'):
        sys.stdout.reconfigure(errors='replace')  # a character the output cannot show: '?'

    # init the dataset
    input_path = args.input or find_names_file()
    docs = read_docs(input_path)
    train_docs, val_docs = split_docs(docs, args.seed, args.val_fraction)
    if args.save:
        check_save_path(args.save, input_path)

    # init the model: from a checkpoint, or new with random weights
    trained_on = {'input': os.path.basename(input_path), 'seed': args.seed,
                  'input_bytes': os.path.getsize(input_path), 'val_fraction': args.val_fraction}
    if args.load:
        config, tokenizer, params, loaded_from = load_checkpoint(args.load)
        if any(value != getattr(config, name) for name, value in size_flags(args).items()):
            fail(f"the size flags disagree with the checkpoint's {config}: leave them out")
    else:
        config = Config(**size_flags(args))
        tokenizer = Tokenizer.from_docs(docs)
        loaded_from = {}
        n_params = count_params(config, tokenizer.vocab_size)
        if n_params > MAX_PARAMS:
            fail(f'the model would have {n_params:,} parameters, over the {MAX_PARAMS:,} this '
                 'tool builds: use smaller sizes')
        params = init_params(config, tokenizer.vocab_size, random.Random(args.seed))
    unknown = unknown_chars(''.join(docs), tokenizer)
    if unknown:  # only a loaded model can lack characters of the input
        fail(f'{unknown[:20]!r} in {input_path} is not in the vocabulary of {args.load}, which '
             f'was trained on other text: give --input the file it was trained on')
    unknown = unknown_chars(args.prompt, tokenizer)
    if unknown:
        fail(f'{unknown!r} is not in the vocabulary {tokenizer.chars[:60]!r}: use only its '
             'characters in --prompt')
    if len(args.prompt) >= config.block_size:
        fail(f'--prompt is {len(args.prompt)} characters; block_size {config.block_size} fits '
             f'{config.block_size - 1} at most')
    for word in args.explain:
        unknown = unknown_chars(word, tokenizer)
        if unknown:
            fail(f'--explain {word!r}: {unknown!r} is not in the vocabulary')
        if not 0 < len(word) < config.block_size:
            fail(f'--explain {word!r} is {len(word)} characters; block_size {config.block_size} '
                 f'fits 1 to {config.block_size - 1}')
    say(f'dataset: {len(docs):,} documents in {input_path} ({len(train_docs):,} train, '
        f'{len(val_docs):,} held out)')
    say(f'vocabulary: {tokenizer.vocab_size} tokens ({len(tokenizer.chars)} characters + BOS)')
    say(f'model: {len(flatten(params)):,} parameters, {config}')

    # training loop; then the checkpoint is saved before anything else is reported
    losses = []
    if args.steps:
        losses = train_with_progress(train_docs, tokenizer, params, config, args.steps, args.lr)
    if '__file__' in globals():  # a script; in a notebook Ctrl-C stops a cell as usual
        for signum in stop_signals():
            signal.signal(signum, stop_now)
    trained_on['steps'] = loaded_from.get('steps', 0) + len(losses)
    exit_code = 0
    if losses and not math.isfinite(losses[-1]):
        fail(f'the loss at step {len(losses)} is {losses[-1]}: the learning rate {args.lr:g} is '
             'too high for this model; try a lower --lr (nothing was saved)')
    if args.save:
        try:
            save_checkpoint(args.save, config, tokenizer, params, trained_on)
            say(f'saved the model to {args.save}')
        except OSError as e:  # e.g. a full disk, or the folder removed during training
            for folder in (os.getcwd(), tempfile.gettempdir()):  # the model must land somewhere
                rescue = os.path.join(folder, f'microgpt-rescued-{os.getpid()}.json')
                with contextlib.suppress(OSError):
                    save_checkpoint(rescue, config, tokenizer, params, trained_on)
                    break
            else:
                fail(f'could not save to {args.save} ({e.strerror}), nor to {rescue}', 1)
            print(f'microgpt.py: error: could not save to {args.save} ({e.strerror}): saved the '
                  f'model to {rescue} instead', file=sys.stderr)
            exit_code = 1

    # evaluate: the loss on documents the model never trained on, and on as many it did
    n_eval = args.eval_docs
    if n_eval is None:
        n_eval = 0 if args.load and not args.steps else 500
    held_out = val_docs[:n_eval]
    trained = train_docs[:len(held_out) or n_eval]  # as many as held out, to compare like with like
    mismatch = {key: value for key, value in loaded_from.items()
                if key != 'steps' and trained_on.get(key) != value}
    if n_eval and mismatch:
        say(f'warning: {args.load} was trained with {mismatch}, so the "held-out" documents '
            'may be ones it trained on')
    val_loss = None
    if n_eval:
        say(f'evaluating on {len(held_out)} held-out and {len(trained)} training documents...')
        train_loss = mean_loss(trained, tokenizer, params, config)
        label = 'possibly seen' if mismatch else 'held-out'
        if held_out:
            val_loss = mean_loss(held_out, tokenizer, params, config)
            say(f'loss on {label} docs {val_loss:.4f}, on training docs {train_loss:.4f}')
        else:
            say(f'no held-out documents (--val-fraction {args.val_fraction:g}); loss on '
                f'training docs {train_loss:.4f}')

    # look inside the model
    for word in args.explain:
        explain(word, tokenizer, params, config, None if mismatch else val_loss)

    # sample new documents, and say which are real ones and how sure the model was of each
    rng = random.Random(args.seed)
    n_new = 0
    if args.samples:
        say('samples, with their mean surprise per token (the loss of the sample: lower is surer)')
    for i in range(args.samples):
        text = sample(params, config, tokenizer, rng, args.temperature, args.prompt)
        if text in train_docs:
            status = 'in train'
        elif text in val_docs:
            status = 'held out'
        else:
            status = 'new'
            n_new += 1
        surprise = mean_loss([text], tokenizer, params, config)
        text_shown = text or '(empty)'
        say(f'sample {i + 1:2d}  {status:8s}  {surprise:.2f}  {text_shown}')
    if args.samples:
        say(f'{n_new} of {args.samples} samples are new (not documents in {input_path})')
    if exit_code:
        sys.exit(exit_code)
