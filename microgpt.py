"""microgpt: a whole GPT in one dependency-free file, to read top to bottom. Part 1 is the
algorithm, Part 2 makes it fast without changing what it computes, Part 3 is the command-line
tool. `python microgpt.py --help` lists the options."""
import math
import random
from dataclasses import dataclass

# ==== Part 1: the algorithm ======================================================================
# A GPT learns to continue text by guessing what comes next, over and over, a little better each
# time. This one reads first names a letter at a time, and ends up inventing names of its own.
# The sections come in the order a run meets them: documents, tokenizer, autograd, parameters,
# model, loss, training, sampling, as the main program at the end calls them. Nothing prints.

# ---- Dataset ------------------------------------------------------------------------------------
# First, something to learn from: a list of documents, in names.txt a first name a line. Some (a
# tenth, by default) are kept back, never trained on, to judge the model on names it never saw.
def load_docs(path):
    with open(path, encoding='utf-8-sig') as f:  # -sig: skip a byte-order mark, if there is one
        return [line.strip() for line in f if line.strip()]

def split_docs(docs, seed, val_fraction):  # (training docs, held-out docs), shuffled
    docs = list(dict.fromkeys(docs))  # each once: no held-out document is also a training one
    random.Random(seed).shuffle(docs)
    n_train = len(docs) - int(len(docs) * val_fraction)
    return docs[:n_train], docs[n_train:]

# ---- Tokenizer ----------------------------------------------------------------------------------
# Next, text into numbers, which is all a network can read: each distinct character gets an id.
# One more token, BOS ("beginning of sequence"), stands at both ends of every document, so that
# the model learns how a name starts (after BOS) and when it is done (it predicts BOS).
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
        unknown = ''.join(sorted(set(text).difference(self.ids)))
        if unknown:
            raise ValueError(f'{unknown!r} is not in the vocabulary {self.chars!r}')
        return [self.ids[ch] for ch in text]
    def decode(self, ids):
        return ''.join(self.chars[i] for i in ids)

# ---- Autograd -----------------------------------------------------------------------------------
# To learn from a mistake, the model must know which way to move each parameter: d(loss)/d(p), the
# gradient. So every number is a Value that remembers how it was made, from which Values (its
# children) and how it changes with each (its local gradients); backward() chains those local
# gradients from the loss back to every parameter.
class Value:
    __slots__ = ('data', 'grad', '_children', '_local_grads')  # less memory, faster access
    def __init__(self, data, children=(), local_grads=()):
        self.data = data
        self.grad = 0.0
        self._children = children
        self._local_grads = local_grads
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

    # A plain number on the left (2 * x, 1 - x, 1 / x, and sum(), which starts from 0).
    __radd__ = __add__  # a + b = b + a
    __rmul__ = __mul__  # a * b = b * a
    def __rsub__(self, other):  # other - self
        return Value(other) - self
    def __rtruediv__(self, other):  # other / self
        return Value(other) / self

    def backward(self):  # adds d(self)/d(v) to v.grad for every Value v that self was made from
        # Every grad starts at 0. A second call adds again, as micrograd's does, and passes on
        # the grads that the first call left on the Values in between.
        # An order in which each Value comes after all it was made from. Our own stack, not
        # recursion: the graph is 277 deep at the default size but 2,758 at n_embd 64 with 4
        # layers, past Python's recursion limit of 1,000.
        order = []
        visited = set()
        stack = [(self, False)]
        while stack:
            node, children_done = stack.pop()
            if children_done:
                order.append(node)
            elif node not in visited:
                visited.add(node)
                stack.append((node, True))  # back to it once its children are in the order
                stack.extend((child, False) for child in node._children)
        # The chain rule, from self back: d(self)/d(child) += d(node)/d(child) * d(self)/d(node).
        self.grad = 1.0
        for node in reversed(order):
            for child, local_grad in zip(node._children, node._local_grads):
                child.grad += local_grad * node.grad

# ---- Parameters ---------------------------------------------------------------------------------
# Then a place for what the model will know: matrices of Values, random at first, which training
# adjusts. wte and wpe are tables, a row for each token and each position; a layer's matrix has a
# row for each output ([out][in]), so it computes y = W x row by row.
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
# Now the model itself: GPT-2's transformer, small, and simpler: RMSNorm in place of LayerNorm,
# no biases, ReLU in place of GELU (and a norm after the embeddings, none before lm_head, whose
# matrix is its own, not wte's). It reads one token at a time and returns logits, a score for
# each possible next token. Attention looks back at the keys and values of earlier positions,
# cached in keys[layer] and values[layer]: only positions up to now are there, so no later token
# can leak in.
def linear(x, w):  # y = W x
    return [sum(w_ij * x_j for w_ij, x_j in zip(row, x)) for row in w]

def rmsnorm(x):  # x scaled to a root mean square of 1
    mean_square = sum(x_i * x_i for x_i in x) / len(x)
    scale = (mean_square + 1e-5) ** -0.5
    return [x_i * scale for x_i in x]

def softmax(logits):  # scores -> probabilities that sum to 1
    max_logit = max(logit.data for logit in logits)  # subtracted so that exp() cannot overflow
    exps = [(logit - max_logit).exp() for logit in logits]
    total = sum(exps)
    return [e / total for e in exps]

def attention(q, keys, values):  # one head: the values mixed by how well q matches each key
    head_dim = len(q)
    attn_logits = [sum(q_j * k_j for q_j, k_j in zip(q, k)) / math.sqrt(head_dim) for k in keys]
    attn_weights = softmax(attn_logits)
    return [sum(weight * v[j] for weight, v in zip(attn_weights, values)) for j in range(head_dim)]

def mlp(x, w_fc1, w_fc2):  # 4 times wider, keep the positive part (ReLU), back to n_embd
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

# ---- Loss ---------------------------------------------------------------------------------------
# How wrong was it? At each position, its surprise at the token that really came next: -log of
# the probability it gave that token, 0 when it was sure and right, large when it was not. A
# uniform guess over the vocabulary scores ln(vocab_size) at every position.
def cross_entropy(logits, target):  # -log p(target)
    probs = softmax(logits)
    return -probs[target].log()

def document_loss(doc, tokenizer, params, config):  # mean surprise along BOS, doc, BOS
    tokens = [tokenizer.bos] + tokenizer.encode(doc) + [tokenizer.bos]
    n = min(config.block_size, len(tokens) - 1)  # a longer document is cut at block_size
    keys = [[] for _ in range(config.n_layer)]
    values = [[] for _ in range(config.n_layer)]
    losses = []
    for pos in range(n):
        logits = gpt(tokens[pos], pos, keys, values, params, config)
        losses.append(cross_entropy(logits, tokens[pos + 1]))
    return sum(losses) / n

# ---- Training -----------------------------------------------------------------------------------
# Then practice, step after step (a thousand, by default): read a document, measure the loss,
# find every gradient, move every parameter a little downhill. Adam sizes each move from running
# means of the parameter's gradient and of its square, so that small gradients still move it.
def adam_update(param_list, m, v, step, lr, beta1=0.85, beta2=0.99, eps=1e-8):
    m_correction = 1 - beta1 ** (step + 1)  # m and v start at 0, so early on they are too small
    v_correction = 1 - beta2 ** (step + 1)
    for i, p in enumerate(param_list):
        m[i] = beta1 * m[i] + (1 - beta1) * p.grad  # running mean of the gradient
        v[i] = beta2 * v[i] + (1 - beta2) * p.grad ** 2  # and of its square
        m_hat = m[i] / m_correction
        v_hat = v[i] / v_correction
        p.data -= lr * m_hat / (math.sqrt(v_hat) + eps)
        p.grad = 0.0  # backward() adds to it: start the next step from 0

def adam_state(n_params):  # what Adam keeps between steps, at the start: no steps, means of 0
    return {'step': 0, 'm': [0.0] * n_params, 'v': [0.0] * n_params}

def train(docs, tokenizer, params, config, steps, lr, adam=None, on_step=None):
    """Trains on docs, one a step, up to step `steps`; returns each step's loss. adam: Adam's state
    from an earlier call, to go on where it stopped. on_step(step, loss): called after each step."""
    param_list = flatten(params)
    adam = adam or adam_state(len(param_list))
    losses = []
    for step in range(adam['step'], steps):
        doc = docs[step % len(docs)]
        # forward: the model reads the document, a token at a time, and scores each next token
        # loss: its mean surprise (a uniform guess scores ln(vocab_size), ln 27 = 3.30 on names)
        loss = document_loss(doc, tokenizer, params, config)
        # backward: d(loss)/d(p) into p.grad, for every parameter p
        loss.backward()
        # update: each parameter a step against its gradient; the rate falls from lr to lr/steps
        lr_now = lr * (1 - step / steps)
        adam_update(param_list, adam['m'], adam['v'], step, lr_now)
        adam['step'] = step + 1
        losses.append(loss.data)
        if on_step:
            on_step(step + 1, loss.data)
        del loss  # its graph goes now, before the next step builds another beside it
    return losses

def mean_loss(docs, tokenizer, params, config):  # how well the model predicts these documents
    losses = [document_loss(doc, tokenizer, params, config).data for doc in docs]
    return sum(losses) / len(losses)

# ---- Sampling -----------------------------------------------------------------------------------
# Finally, let it write. Start from BOS (and any prompt), then draw each next token from the
# model's probabilities until it draws BOS (the end) or the context is full. A temperature below
# 1 sharpens the probabilities (safer names), above 1 flattens them (wilder ones).
def sample(params, config, tokenizer, rng, temperature=0.5, prompt=''):
    tokens = [tokenizer.bos] + tokenizer.encode(prompt)
    keys = [[] for _ in range(config.n_layer)]
    values = [[] for _ in range(config.n_layer)]
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
# Each stand-in below computes what a Part 1 function returns with fewer nodes or less work; its
# comment gives its derivatives or why it is exact, and what a step costs with Part 1's function
# in its place (CPython 3.11, `tests/bench.py --levers --steps 500`, medians of 3). Each is bound
# to the source of the Part 1 pieces it does the work of, as they read when
# tests/test_efficiency.py proved it equal to them: `with efficiency():` puts in place only the
# stand-ins whose pieces still read so, and names each piece that differs.
import gc, hashlib, inspect, io, sys, textwrap, tokenize
from operator import mul

# One node per output of a layer instead of 2n: y_i = sum_j w_ij x_j, dy_i/dw_ij = x_j,
# dy_i/dx_j = w_ij. 3.24x (where gpt() calls linear: q, k, v, the output and lm_head).
def linear_fused(x, w):
    x_data = [x_j.data for x_j in x]
    rows_data = [[w_ij.data for w_ij in row] for row in w]
    return [Value(sum(map(mul, row_data, x_data)), row + x, x_data + row_data)
            for row, row_data in zip(w, rows_data)]

# The scale as one node: s = (sum_j x_j^2 / n + 1e-5)^-1/2, ds/dx_j = -x_j s^3 / n. 1.08x.
def rmsnorm_fused(x):
    x_data = [x_i.data for x_i in x]
    scale = (sum(map(mul, x_data, x_data)) / len(x) + 1e-5) ** -0.5
    scale = Value(scale, x, [-x_i * scale ** 3 / len(x) for x_i in x_data])
    return [x_i * scale for x_i in x]

# A head over T positions as T + head_dim nodes: out_j = sum_t p_t v_tj, p = softmax(s), s_t =
# q.k_t / sqrt(head_dim); d out_j/d(q.k_t) = p_t (v_tj - out_j) / sqrt(head_dim), d out_j/d v_tj =
# p_t. At head_dim 4, Part 1 makes ~24T nodes and ~41T edges, this T + 4 and 16T. 1.26x.
def attention_fused(q, keys, values):
    dots = linear_fused(q, keys)  # q.k_t, one node each
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
# fc2 can read the positive units (about a third, once trained a little): the same numbers. 1.17x.
def mlp_relu_skip(x, w_fc1, w_fc2):
    hidden = linear_fused(x, w_fc1)
    active_units = [j for j, h in enumerate(hidden) if h.data > 0]
    w_fc2_active = [[row[j] for j in active_units] for row in w_fc2]
    return linear_fused([hidden[j] for j in active_units], w_fc2_active)

# Softmax and -log as one node, log(sum_i e^(x_i - m)) + m - x_target (m the max logit), with
# d/dx_i = p_i - [i = target]; finite even where Part 1's p_target rounds to 0 and log fails. 1.12x
def cross_entropy_fused(logits, target):
    logits_data = [logit.data for logit in logits]
    max_logit = max(logits_data)
    exps = [math.exp(x - max_logit) for x in logits_data]
    total = sum(exps)
    loss = math.log(total) + max_logit - logits_data[target]
    return Value(loss, logits, [e / total - (i == target) for i, e in enumerate(exps)])

# The tape: while train() runs as written, each new Value also goes onto a list, made after those
# it is made from, so the list read backwards orders the chain rule with no graph search: 1.90x.
# That is Part 1's order for a loss that is the newest Value, made of init_params's leaves and of
# Values made since the last backward(), as train() makes it; backward() from others searches.
tape = []

def value_init_on_tape(self, data, children=(), local_grads=()):  # Value.__init__, onto the tape
    self.data = data
    self.grad = 0.0
    self._children = children
    self._local_grads = local_grads
    tape.append(self)

def backward_on_tape(self):  # Value.backward, with the chain rule along the tape
    if not tape or tape[-1] is not self:
        tape.clear()
        return AS_WRITTEN['Value.backward'](self)
    self.grad = 1.0
    for node in reversed(tape):
        grad = node.grad
        if grad:  # a zero adds nothing: behind a ReLU that is off, or not on the loss's graph
            for child, local_grad in zip(node._children, node._local_grads):
                child.grad += local_grad * grad
    tape.clear()

def train_on_tape(*args, **kwargs):  # train() as written, on the tape
    init = Value.__init__
    backward = Value.backward
    Value.__init__ = value_init_on_tape
    Value.backward = backward_on_tape
    try:
        return AS_WRITTEN['train'](*args, **kwargs)
    finally:
        Value.__init__ = init
        Value.backward = backward
        tape.clear()

# ---- Each stand-in bound to the Part 1 source it was proven equal to ----------------------------
STAND_INS = {  # Part 1's name: (its stand-in, the Part 1 pieces whose work the stand-in does)
    'linear': (linear_fused, 'linear Value.__add__ Value.__radd__ Value.__mul__'),
    'rmsnorm': (rmsnorm_fused, 'rmsnorm Value.__add__ Value.__radd__ Value.__mul__ '
                               'Value.__truediv__ Value.__pow__'),
    'attention': (attention_fused, 'attention softmax Value.__add__ Value.__radd__ Value.__sub__ '
                                   'Value.__mul__ Value.__truediv__ Value.exp'),
    'mlp': (mlp_relu_skip, 'mlp linear Value.relu Value.__add__ Value.__radd__ Value.__mul__'),
    'cross_entropy': (cross_entropy_fused, 'cross_entropy softmax Value.__add__ Value.__radd__ '
                                           'Value.__sub__ Value.__truediv__ Value.__neg__ '
                                           'Value.exp Value.log'),
    'train': (train_on_tape, 'init_params'),  # its parameters made as leaves, no graph behind
}
GRAPH_PIECES = 'Value.__init__ Value.backward'  # each stand-in makes or walks a graph its own way
PROVEN = {  # each Part 1 piece's source_hash(), as tests/test_efficiency.py last proved Part 2
    'load_docs': '37eadbcf', 'split_docs': 'c025081c', 'Tokenizer.__init__': '1344cbd6',
    'Tokenizer.from_docs': '2b37d90a', 'Tokenizer.encode': '49e6a6f7',
    'Tokenizer.decode': 'd6f3c320', 'Value.__init__': 'f17a9aa0', 'Value.__repr__': 'd6a71c18',
    'Value.__add__': '788205f7', 'Value.__sub__': 'd2485cbf', 'Value.__mul__': 'a809c166',
    'Value.__truediv__': 'f77f1a3f', 'Value.__pow__': 'd1a4a1ba', 'Value.__neg__': '3132e21a',
    'Value.log': '15827d5e', 'Value.exp': '54edade3', 'Value.relu': 'ba922417',
    'Value.__radd__': '788205f7', 'Value.__rmul__': 'a809c166', 'Value.__rsub__': 'c54e087c',
    'Value.__rtruediv__': 'fb302905', 'Value.backward': '8eb6f5ff', 'param_shapes': 'dbeb39a2',
    'init_params': '64716d79', 'flatten': '34cf8278', 'linear': '97b27778', 'rmsnorm': '18ab2dcb',
    'softmax': 'ec3e6f05', 'attention': 'af5b2129', 'mlp': '9d343fec', 'gpt': 'c20a9fe1',
    'cross_entropy': '2300ba10', 'document_loss': '4d6945ed', 'adam_update': '09c930e4',
    'adam_state': '182f9b8c', 'train': '8afcc08a', 'mean_loss': 'fc3d4aae', 'sample': '58698571'
}
AS_WRITTEN = {}  # each Part 1 piece as `with efficiency():` found it

def source_hash(function):  # its source without comments or blank lines, hashed; None: unreadable
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        return None
    lines = source.splitlines()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, column = token.start
            lines[row - 1] = lines[row - 1][:column]
    code = '\n'.join(line.rstrip() for line in lines if line.strip())
    return hashlib.sha256(code.encode()).hexdigest()[:8]

def part_1_piece(piece):  # what 'mlp' or 'Value.__mul__' is bound to now
    owner, _, name = piece.rpartition('.')
    return getattr(globals()[owner], name) if owner else globals()[name]

class efficiency:
    """`with efficiency() as notes:` each stand-in in place of its Part 1 function while the pieces
    it does the work of read as proven (a note names each that differs). on=False: Part 1 alone."""
    def __init__(self, on=True):
        self.on = on
    def __enter__(self):
        self.saved = {name: globals()[name] for name in STAND_INS}
        self.collector_paused = self.on and gc.isenabled() and sys.implementation.name == 'cpython'
        if self.collector_paused:  # it runs often, finds no cycle (refcounts free a graph): 1.17x
            gc.disable()
        if not self.on:
            return ['Part 1 alone (--reference): no stand-in from Part 2']
        AS_WRITTEN.update({piece: part_1_piece(piece) for piece in PROVEN})
        hashes = {piece: source_hash(function) for piece, function in AS_WRITTEN.items()}
        if not any(hashes.values()):
            return ["Part 1's source cannot be read here: it runs as written, without Part 2"]
        edited = [piece for piece, proven in PROVEN.items() if hashes[piece] != proven]
        needs = {name: set(f'{pieces} {GRAPH_PIECES}'.split())
                 for name, (_, pieces) in STAND_INS.items()}
        in_place = [name for name in STAND_INS if not needs[name] & set(edited)]
        running = [STAND_INS[name][0].__name__ for name in in_place]
        notes = [f"Part 2's stand-ins in place: {', '.join(running) or 'none'} (each proven equal "
                 'to Part 1 as written; --reference: Part 1 alone)']
        for i, piece in enumerate(edited):  # what runs as written because of it (not its callers)
            if AS_WRITTEN[piece] in [AS_WRITTEN[other] for other in edited[:i]]:
                continue  # Value.__radd__ is Value.__add__: named once
            aside = [name for name in STAND_INS if piece in needs[name]]
            stand_ins = [STAND_INS[name][0].__name__ for name in aside]
            verb = 'runs' if len(aside) == 1 else 'run'
            if aside:
                notes.append(f"{piece} is edited: Part 1's {', '.join(aside)} {verb} in place of "
                             f"{', '.join(stand_ins)}")
            else:
                notes.append(f'{piece} is edited: it runs as written (no stand-in does its work)')
        globals().update({name: STAND_INS[name][0] for name in in_place})
        return notes
    def __exit__(self, *exception):
        globals().update(self.saved)
        if self.collector_paused:
            gc.enable()

# ==== Part 3: the tool ===========================================================================
# Flags, checks, checkpoints, reports and the page of a run, then the main program, which calls
# Part 1's steps in Part 1's order. Bad input gets one line on stderr and exit 2 before any work.
import argparse, html, json, os, pathlib, shlex, shutil, signal, time
from collections import Counter
from statistics import fmean

MAX_PARAMS = 10_000_000  # about a gigabyte of Values: a bigger model is refused before it is built
LARGEST_WEIGHT = 1e50  # no training that works goes near it; below it, no step overflows a float
CHECKPOINT_START = '{"format": "microgpt", "version": '  # how each file --save writes begins
PAGE_START = '<!doctype html><meta charset="utf-8"><title>microgpt: a run</title>'  # each page
RUN_DEFAULTS = {'steps': 1000, 'lr': 0.01, 'seed': 42, 'val_fraction': 0.1}  # how a run goes

# ---- Flags and checks ---------------------------------------------------------------------------
def parse_args(argv):
    parser = argparse.ArgumentParser(description='Train a tiny GPT on lines of text, then sample.')
    parser.error = fail  # argparse's own errors in one line too
    flag = parser.add_argument
    # data
    flag('--input', metavar='PATH', help='one document a line (names.txt, here or beside this)')
    flag('--val-fraction', type=float, metavar='X', help='share held out (0.1)')
    # model size (not with --load: a checkpoint has its own; the default in brackets)
    flag('--n-embd', type=int, metavar='N', help=f'width of a token vector ({Config.n_embd})')
    flag('--n-head', type=int, metavar='N', help=f'attention heads ({Config.n_head})')
    flag('--n-layer', type=int, metavar='N', help=f'transformer blocks, from 0 ({Config.n_layer})')
    flag('--block-size', type=int, metavar='N', help=f'longest context ({Config.block_size})')
    # training (with --load: as the saved run went, unless given)
    flag('--steps', type=int, metavar='N', help='train up to step N, a document a step (1000)')
    flag('--lr', type=float, metavar='X', help='learning rate at step 1 (0.01)')
    flag('--seed', type=int, metavar='N', help='random seed: the split, the weights, samples (42)')
    flag('--reference', action='store_true', help="Part 1 alone, without Part 2's stand-ins")
    # files: a new one, or one that this tool wrote
    flag('--save', metavar='PATH', help='save the model, to go on from with --load')
    flag('--load', metavar='PATH', help='go on from a model that --save wrote')
    flag('--html', metavar='PATH', help='write the run as a page, to open in a browser')
    # evaluation and sampling
    flag('--eval-docs', type=int, default=500, metavar='N', help='held-out docs to score (500)')
    flag('--samples', type=int, default=20, metavar='N', help='documents to sample (20)')
    flag('--temperature', type=float, default=0.5, metavar='X', help='lower is safer (0.5)')
    flag('--prompt', default='', metavar='TEXT', help='text that every sample starts with')
    flag('--explain', nargs='+', default=[], metavar='WORD', help='what it expects along WORD')
    args = parser.parse_args(argv)
    rules = {'--steps cannot be below 0': args.steps is None or args.steps >= 0,
             '--eval-docs cannot be below 0': args.eval_docs >= 0,
             '--samples cannot be below 0': args.samples >= 0,
             '--lr must be a positive number': args.lr is None or 0 < args.lr < math.inf,  # not nan
             '--temperature must be from 1e-6 to 1e6': 1e-6 <= args.temperature <= 1e6,
             '--val-fraction must be at least 0 and below 1': 0 <= (args.val_fraction or 0) < 1,
             'a path cannot be empty': '' not in (args.input, args.save, args.load, args.html),
             '--save and --html cannot name one file': args.save is None or args.save != args.html}
    for problem, kept in rules.items():
        if not kept:
            fail(problem)
    return args

def fail(problem, exit_code=2):
    print(f'microgpt.py: error: {problem}', file=sys.stderr)
    sys.exit(exit_code)

def check_size(config, vocab):  # before a weight is made: wte, lm_head, wpe, 12 n_embd^2 a layer
    n_params = config.n_embd * (2 * vocab + config.block_size + 12 * config.n_layer * config.n_embd)
    if (min(config.n_embd, config.n_head, config.block_size, config.n_layer + 1) < 1
            or config.n_embd % config.n_head or n_params > MAX_PARAMS):
        fail(f'{config} is not a model this tool builds: sizes from 1 (n_layer from 0), n_head '
             f'dividing n_embd, {MAX_PARAMS:,} parameters at most (this has {n_params:,})')

def check_target(flag, path, start):  # before training: a new file, or one that flag wrote
    if os.path.exists(path) and not written_here(path, start):
        fail(f'{flag} {path}: not a file that {flag} wrote, so it stays as it is')
    try:  # the folder takes a new file, named as write() names it
        open(path + '.tmp', 'x').close()
        os.remove(path + '.tmp')
    except OSError as e:  # no such folder, a file named as a folder, a name too long...
        fail(f'{flag} {path}: {e.strerror}')

def written_here(path, start):  # a regular file that begins as the files that this tool writes
    if not os.path.isfile(path):
        return False
    with open(path, 'rb') as f:
        return f.read(len(start)) == start.encode()

def write(path, text):  # beside path, then renamed over it: a write cut short leaves the old file
    try:
        with open(path + '.tmp', 'x', encoding='utf-8') as f:
            f.write(text)
        if os.path.exists(path):
            shutil.copymode(path, path + '.tmp')  # written again, it keeps its mode
        os.replace(path + '.tmp', path)
    finally:
        if os.path.exists(path + '.tmp'):  # a write that failed or was stopped: removed
            os.remove(path + '.tmp')

# ---- Checkpoints --------------------------------------------------------------------------------
def checkpoint_of(config, chars, params, adam, run, trained_on):  # what --save writes
    weights = {name: [[p.data for p in row] for row in matrix] for name, matrix in params.items()}
    return {'format': 'microgpt', 'version': 3, 'config': vars(config), 'chars': chars,
            'trained_on': trained_on, 'run': run, 'adam': adam, 'weights': weights}

def form(value):  # its types, with the keys of its dicts and the lengths of its lists
    if isinstance(value, dict):
        return {key: form(item) for key, item in value.items()}
    return [form(item) for item in value] if isinstance(value, list) else type(value)

def load_checkpoint(path):  # all of it checked, its size before anything is built from it
    if not written_here(path, CHECKPOINT_START):
        fail(f'--load {path}: no checkpoint that --save wrote is there')
    try:
        checkpoint = json.loads(pathlib.Path(path).read_text(encoding='utf-8'))
    except ValueError as e:  # not UTF-8, or not JSON
        fail(f'--load {path}: cannot be read ({e})')
    if checkpoint.get('version') != 3:  # 2 kept no Adam's state to go on from
        fail(f"--load {path}: from an earlier microgpt.py (version {checkpoint.get('version')})")
    sizes = checkpoint.get('config')
    runs = checkpoint.get('trained_on')
    if form(sizes) != dict.fromkeys(vars(Config()), int) or not isinstance(runs, list):
        fail(f'--load {path}: its config or trained_on is not as --save writes them')
    config = Config(**sizes)
    tokenizer = Tokenizer(str(checkpoint.get('chars')))
    check_size(config, tokenizer.vocab_size)
    shapes = param_shapes(config, tokenizer.vocab_size)
    zeros = {name: [[Value(0.0)] * cols] * rows for name, (rows, cols) in shapes.items()}
    past = {'input': '', 'documents': 0, 'steps': 0}  # each run in trained_on
    adam = adam_state(len(flatten(zeros)))
    expected = checkpoint_of(config, '', zeros, adam, RUN_DEFAULTS, [past] * len(runs))
    if form(checkpoint) != form(expected):
        fail(f'--load {path}: not in full what --save writes for a model of {config}')
    adam = checkpoint['adam']
    weights = checkpoint['weights']  # and nan fails the test below, as it fails every comparison
    if not all(abs(x) <= LARGEST_WEIGHT for x in flatten(weights) + adam['m'] + adam['v']):
        fail(f"--load {path}: a weight or one of Adam's moments is beyond {LARGEST_WEIGHT:g}")
    params = {name: [[Value(x) for x in row] for row in matrix] for name, matrix in weights.items()}
    return config, tokenizer, params, adam, checkpoint['run'], runs

# ---- Stops, and reports: the loss in context, the mirror, --explain ----------------------------
def stop(signum, frame):  # Ctrl-C or SIGTERM: in training, after the step in progress; else now
    if not stops['in training']:
        fail(f'stopped by {signal.Signals(signum).name}', exit_code=128 + signum)
    stops['by'] = signal.Signals(signum).name

def diverged(step, lr):
    fail(f'training diverged at step {step} (a loss or weight too big): try --lr below {lr:g}')

def next_token_pairs(doc, tokenizer):  # (token, next token) along BOS, the document, BOS
    tokens = [tokenizer.bos] + tokenizer.encode(doc) + [tokenizer.bos]
    return list(zip(tokens, tokens[1:]))

def baseline_losses(train_docs, docs, tokenizer, block_size):  # what counting and guessing score
    # The loss on docs, as mean_loss takes it, of counting each token in train_docs (letters), or
    # each pair of tokens that occurs (pairs), 1 added to each count: memory follows the data.
    pairs = Counter(pair for doc in train_docs for pair in next_token_pairs(doc, tokenizer))
    letters = Counter(next_token for _, next_token in pairs.elements())
    total = sum(letters.values()) + tokenizer.vocab_size
    scored = [next_token_pairs(doc, tokenizer)[:block_size] for doc in docs]
    # letters[a] also counts the pairs that start with a: BOS starts and ends every document
    return {'letters': fmean(fmean(math.log(total / (letters[b] + 1)) for _, b in doc)
                             for doc in scored),
            'pairs': fmean(fmean(math.log((letters[a] + tokenizer.vocab_size) / (pairs[a, b] + 1))
                                 for a, b in doc) for doc in scored),
            'uniform': math.log(tokenizer.vocab_size)}  # a guess that knows nothing

def mean_surprise(docs, tokenizer, params, config):  # mean_loss, or inf where a p rounds to 0
    try:
        return mean_loss(docs, tokenizer, params, config)
    except ValueError:  # Part 1's log of a probability of 0
        return math.inf

def mirror(samples, real_loss, temperature):  # its inventions against real names it never saw
    new = fmean([surprise for status, surprise in samples if status == 'new'])
    unseen = [status for status, _ in samples].count('real, unseen')
    gap = new - real_loss
    than = 'as likely as' if abs(gap) <= 0.1 else 'likelier than' if gap < 0 else 'less likely than'
    return (f'mirror: at temperature {temperature:g}, its new names (mean surprise {new:.2f}) are '
            f'{than} real names it never saw ({real_loss:.2f}). It knows what is plausible, not '
            f'what is true: real but unseen, {unseen} of {len(samples)} samples.')

def read_along(word, tokenizer, params, config):  # Part 1 as written, keeping attention's weights
    part_1_softmax = softmax
    kept = []  # what softmax returns inside gpt(), where attention calls it for each head in turn
    def softmax_kept(logits):
        probs = part_1_softmax(logits)
        kept.append([p.data for p in probs])
        return probs
    keys = [[] for _ in range(config.n_layer)]
    values = [[] for _ in range(config.n_layer)]
    rows = []  # at each position: token, next token, probabilities, each head's attention
    globals()['softmax'] = softmax_kept
    try:
        for pos, (token, next_token) in enumerate(next_token_pairs(word, tokenizer)):
            logits = gpt(token, pos, keys, values, params, config)  # (word fits in block_size)
            rows.append((token, next_token, [p.data for p in part_1_softmax(logits)], kept[:]))
            kept.clear()
    finally:
        globals()['softmax'] = part_1_softmax
    return rows

def explain(rows, shown):  # the next-token table, then where each head looks, in shades
    for token, next_token, probs, _ in rows:
        surprise = math.log(1 / probs[next_token]) if probs[next_token] > 0 else math.inf
        top = sorted(range(len(probs)), key=lambda i: -probs[i])[:5]
        expected = '  '.join(f'{shown[i]} {probs[i]:.2f}' for i in top)
        print(f'{shown[token]} → {shown[next_token]}  p {probs[next_token]:.4f}  surprise '
              f'{surprise:5.2f} | it expected most: {expected}')
    letters = ''.join(shown[token] for token, _, _, _ in rows)
    if not rows[0][3]:  # no layer, or an attention of one's own that calls no softmax
        print('no attention weights to show (no layer, or an attention that calls no softmax)')
        return
    print('each head, a row for each position: the positions it reads, darker weighs more (·░▒▓█)')
    print(' ', ' | '.join([letters] * len(rows[0][3])))
    for token, _, _, heads in rows:
        shades = [''.join('·░▒▓█'[round(w * 4)] for w in head).ljust(len(rows)) for head in heads]
        print(shown[token], ' | '.join(shades))

# ---- The page of a run: inline SVG in one hue, every axis labelled ------------------------------
def svg(width, height, title, shapes):  # a picture, titled for a screen reader
    return f'<svg width="{width}" height="{height}"><title>{title}</title>{"".join(shapes)}</svg>'

def caption(x, y, words, anchor='middle'):  # words at (x, y)
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">{html.escape(words)}</text>'

def scaled(value, values, start, size):  # where value falls on an axis that spans values
    return start + size * (value - min(values)) / ((max(values) - min(values)) or 1)

def loss_chart(last_step, losses, lines, along_the_way):  # and each of lines, dashed
    steps = [last_step - len(losses) + 1, last_step]
    running = [fmean(losses[max(0, i - 99):i + 1]) for i in range(len(losses))]  # of 100 steps
    span = [min(losses + [*lines.values()]) - 0.1, max(running + [*lines.values()]) + 0.3]
    x = lambda step: scaled(step, steps, 50, 540)
    y = lambda loss: 230 - scaled(loss, span, 0, 210)  # a spike above span[1] is cut off
    shapes = [caption(320, 258, 'training step'), caption(2, 12, 'loss (nats)', 'start')]
    shapes += [caption(x(step), 246, str(step)) for step in steps]
    shapes += [caption(45, y(loss) + 4, f'{loss:.1f}', 'end') for loss in span]
    for series, shade in ((losses, '#c6dbef'), (running, '#08519c')):
        points = ' '.join(f'{x(steps[0] + i):.1f},{y(v):.1f}' for i, v in enumerate(series))
        shapes.append(f'<polyline points="{points}" fill="none" stroke="{shade}"/>')
    label_y = 0
    for name, value in sorted(lines.items(), key=lambda line: -line[1]):
        label_y = max(y(value) + 4, label_y + 13)  # apart from the label above
        shapes.append(f'<line x1="50" x2="590" y1="{y(value)}" y2="{y(value)}" stroke="#6baed6" '
                      'stroke-dasharray="4"/>')
        shapes.append(caption(596, label_y, f'{name} {value:.2f}', 'start'))
    for step, loss, names in along_the_way:
        shapes.append(caption(x(step), y(min(loss, span[1])) - 6, ' '.join(names[:2]), 'start'))
    return svg(760, 264, 'the loss as it trained', shapes)

def grid(row_labels, col_labels, cells, size, title):  # a cell: (shade, width, words)
    shapes = [caption(2, 28 + 16 * row, label, 'start') for row, label in enumerate(row_labels)]
    shapes += [caption(62 + size * col, 12, label, 'start') for col, label in enumerate(col_labels)]
    for row, row_cells in enumerate(cells):
        for col, (shade, width, words) in enumerate(row_cells):
            bar_start = 44 if words else 0  # a bar after its words
            shapes.append(f'<rect x="{60 + size * col + bar_start}" y="{17 + 16 * row}" height="15"'
                          f' width="{(size - 2 - bar_start) * width:.1f}" fill="#08519c" '
                          f'fill-opacity="{shade:.3f}"/>' + caption(62 + size * col, 28 + 16 * row,
                                                                     words, 'start'))
    shapes.append(caption(2, 32 + 16 * len(cells), title, 'start'))
    return svg(62 + size * len(col_labels), 38 + 16 * len(cells), title, shapes)

def main_directions(rows):  # rows on the two directions they vary most along (power iteration)
    centered = [[x - fmean(column) for x, column in zip(row, zip(*rows))] for row in rows]
    directions = []
    for _ in range(2):
        v = [1.0 + j for j in range(len(rows[0]))]
        for _ in range(200):  # v <- X^T X v, kept away from the first direction, of length 1
            scores = [sum(map(mul, row, v)) for row in centered]
            v = [sum(map(mul, scores, column)) for column in zip(*centered)]
            for d in directions:
                v = [a - sum(map(mul, v, d)) * b for a, b in zip(v, d)]
            v = [a / math.sqrt(sum(map(mul, v, v))) for a in v]
        directions.append(v)
    return [[sum(map(mul, row, d)) for d in directions] for row in centered]

def page(facts, chart, readings, shown, wte, report):  # the run, on one page
    points = main_directions([[w.data for w in row] for row in wte])
    parts = [f'{PAGE_START}<style>body{{font:14px sans-serif}} pre{{white-space:pre-wrap}}</style>'
             f'<h1>microgpt: a run</h1><pre>{html.escape(facts)}</pre>{chart}<h2>Samples</h2>'
             f'<pre>{html.escape(report)}</pre>']
    for word, rows in readings:
        letters = [shown[token] for token, _, _, _ in rows]
        guesses = [f'{shown[token]} → {shown[next_token]}' for token, next_token, _, _ in rows]
        parts.append(f'<h2>Inside {html.escape(repr(word))}</h2><p>Each head\'s attention: a row '
                     'for each position predicting the next, across the positions it reads.</p>')
        parts += [grid(letters, letters, [[(w, 1, '') for w in row[3][head]] for row in rows], 16,
                       f'head {head + 1}') for head in range(len(rows[0][3]))]
        parts.append(grid(guesses, ['likeliest', '2nd', '3rd', '4th', '5th'], [
            [(1 if j == next_token else 0.35, probs[j], f'{shown[j]} {probs[j]:.2f}')
             for j in sorted(range(len(probs)), key=lambda j: -probs[j])[:5]]
            for _, next_token, probs, _ in rows], 80, 'what it expects next (dark: the true next '
                                                      'token, when among the five)'))
    shapes = [caption(scaled(x, [p[0] for p in points], 40, 300),
                      scaled(y, [p[1] for p in points], 20, 260), ch)
              for (x, y), ch in zip(points, shown)]
    shapes += [caption(190, 305, 'first direction'), caption(2, 10, 'second direction', 'start')]
    parts += ['<h2>The embeddings</h2><p>Each token\'s row of wte, on the two directions along '
              'which the rows vary most.</p>', svg(360, 310, 'the embeddings', shapes)]
    return '\n'.join(parts)

# ---- The main program ---------------------------------------------------------------------------
if __name__ == '__main__':
    # flags: from the command line (also under %run), or in a notebook cell from MICROGPT_ARGS
    script = '__file__' in globals()
    args = parse_args(sys.argv[1:] if script else shlex.split(os.environ.get('MICROGPT_ARGS', '')))
    in_ipython = getattr(sys.modules.get('IPython'), 'get_ipython', lambda: None)() is not None
    if hasattr(sys.stdout, 'reconfigure'):  # a terminal or a pipe, not a notebook's stream
        sys.stdout.reconfigure(errors='replace', line_buffering=True)  # unprintable: '?'
    stops = {'in training': False, 'by': None}
    handlers = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    if script and not in_ipython:  # `| head` ends the run quietly
        handlers[signal.SIGPIPE] = signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        # how the run goes: as --load's checkpoint saved it (its model and Adam's state too),
        # unless a flag says otherwise. Every input is checked before any work.
        sizes = {name: vars(args)[name] for name in vars(Config()) if vars(args)[name] is not None}
        if args.load is not None and sizes:  # size flags given
            fail('--load and the size flags: a checkpoint has its own size')
        run = RUN_DEFAULTS
        if args.load is not None:
            config, tokenizer, params, adam, run, trained_on = load_checkpoint(args.load)
        vars(args).update({name: value for name, value in run.items() if vars(args)[name] is None})

        # the documents (names.txt here, else the one beside this file), then the split
        here = os.path.dirname(os.path.abspath(globals().get('__file__', 'names.txt')))
        input_path = args.input or ('names.txt' if os.path.isfile('names.txt')
                                    else os.path.join(here, 'names.txt'))
        if not os.path.isfile(input_path):
            fail(f'--input {input_path}: there is no regular file there')
        try:
            docs = load_docs(input_path)
        except (OSError, UnicodeError) as e:
            fail(f'--input {input_path}: cannot read it as UTF-8 text ({type(e).__name__})')
        if not docs:
            fail(f'--input {input_path}: no documents in it')
        train_docs, val_docs = split_docs(docs, args.seed, args.val_fraction)

        # the tokenizer and the parameters: new, unless loaded
        if args.load is None:
            config = Config(**sizes)
            tokenizer = Tokenizer.from_docs(docs)
            check_size(config, tokenizer.vocab_size)
        try:
            tokenizer.encode(''.join(docs) + args.prompt + ''.join(args.explain))
        except ValueError as e:
            fail(f'{e}: the input, --prompt and --explain can use no other characters')
        if max(map(len, [args.prompt, *args.explain])) >= config.block_size:
            fail(f'--prompt and --explain must be shorter than block_size, {config.block_size}')
        for flag, path, start in (('--save', args.save, CHECKPOINT_START),
                                  ('--html', args.html, PAGE_START)):
            if path is not None:
                check_target(flag, path, start)
        if args.load is None:
            params = init_params(config, tokenizer.vocab_size, random.Random(args.seed))
            adam = adam_state(len(flatten(params)))
            trained_on = []
        steps = args.steps  # the learning rate falls over them
        loaded = '' if args.load is None else f", from {args.load} at step {adam['step']}"
        facts = (f'dataset: {len(docs):,} documents in {input_path}, {len(train_docs):,} + '
                 f'{len(val_docs):,} distinct (train + held out), {len(tokenizer.chars)} '
                 f'characters + BOS\nmodel: {len(flatten(params)):,} parameters, {config}{loaded}')
        print(facts)
        this_input = {'input': os.path.basename(input_path), 'documents': len(docs)}
        elsewhere = [f"{past['steps']} steps on {past['input']} ({past['documents']:,} documents)"
                     for past in trained_on if dict(past, steps=0) != dict(this_input, steps=0)]
        if elsewhere:
            print(f"note: {args.load} was trained for {', '.join(elsewhere)} too")
        if adam['step'] >= steps > 0:
            print(f"note: the run is at step {adam['step']} of {steps}: a larger --steps goes on")
        too_long = [len(doc) for doc in train_docs if len(doc) >= config.block_size]
        if too_long:
            print(f'note: {len(too_long):,} docs do not fit block_size {config.block_size}: '
                  f'their ends are never trained on (--block-size {max(too_long) + 1} fits them)')

        with efficiency(not args.reference) as notes:
            print(*notes, sep='\n')

            # train on from the step it reached; Ctrl-C or SIGTERM stops after the step in progress
            losses = []  # this run's, one a step
            along_the_way = []  # (step, loss, samples) after steps 1, a tenth and half the steps
            watch_rng = random.Random(args.seed + 1)  # apart from the final samples' generator
            start = time.perf_counter()

            def on_step(step, loss):  # after each training step
                losses.append(loss)
                if not loss < 745:  # not finite, or a probability e^-loss below every float
                    diverged(step, args.lr)
                if step % max(1, steps // 10) == 0:
                    last_100 = fmean(losses[-100:])
                    seconds = time.perf_counter() - start
                    print(f'step {step}/{steps} | loss {loss:.4f} | last 100: {last_100:.4f} | '
                          f'{seconds:.1f}s')
                if step in (1, steps // 10, steps // 2):
                    watch = [sample(params, config, tokenizer, watch_rng, args.temperature)
                             for _ in range(4)]
                    along_the_way.append((step, loss, watch))
                    print(f'samples after step {step} (loss {loss:.4f}):', *watch)
                if stops['by']:
                    raise KeyboardInterrupt
            stops['in training'] = True
            try:
                train(train_docs, tokenizer, params, config, steps, args.lr, adam, on_step)
            except KeyboardInterrupt:
                print(f"stopped after step {adam['step']} by {stops['by']}: keeping what it "
                      'learned (--load what --save writes, and it goes on from this step)')
            except (ValueError, OverflowError):  # in Part 1, the log of a probability of 0
                diverged(adam['step'] + 1, args.lr)
            stops['in training'] = False
            if not all(abs(p.data) <= LARGEST_WEIGHT for p in flatten(params)):
                diverged(adam['step'], args.lr)
            if losses:  # what it learned from, as it was: each run that trained it
                trained_on.append(dict(this_input, steps=len(losses)))
            if args.save is not None:
                run = {name: vars(args)[name] for name in RUN_DEFAULTS}
                checkpoint = checkpoint_of(config, tokenizer.chars, params, adam, run, trained_on)
                write(args.save, json.dumps(checkpoint))
                print(f'saved the model to {args.save}')

            # evaluate on documents it never trained on, beside models that only count
            held_out = val_docs[:args.eval_docs]
            scores = {}  # the held-out loss, and what counting and guessing score there
            if held_out:
                scores['held out'] = mean_surprise(held_out, tokenizer, params, config)
                scores |= baseline_losses(train_docs, held_out, tokenizer, config.block_size)
                print(f"loss on {len(held_out)} held-out docs {scores['held out']:.4f}; counting "
                      f"in training docs: pairs {scores['pairs']:.4f}, letters "
                      f"{scores['letters']:.4f}; uniform {scores['uniform']:.4f}")

            # sample: a name it trained on, a real one it never saw, or its own? How surprising?
            rng = random.Random(args.seed)
            origin = dict.fromkeys(train_docs + val_docs, 'real, unseen')  # held out, unreached
            origin |= dict.fromkeys(train_docs[:adam['step']], 'trained on')  # a step reached it
            samples = []  # (label, surprise)
            report = []  # the lines printed for them, for the page
            for number in range(1, args.samples + 1):
                text = sample(params, config, tokenizer, rng, args.temperature, args.prompt)
                status = origin.get(text, 'cut' if len(text) == config.block_size else 'new')
                surprise = mean_surprise([text], tokenizer, params, config)
                samples.append((status, surprise))
                report.append(f'sample {number:2d}  {status:12s}  surprise {surprise:.2f}  {text}')
                print(report[-1])
            if held_out and 'new' in [status for status, _ in samples]:
                report.append(mirror(samples, scores['held out'], args.temperature))
                print(report[-1])

        # look inside, with Part 1 as written so that attention's weights can be kept
        shown = tokenizer.chars + '.'  # by token id: BOS shown as .
        page_wanted = args.html is not None or in_ipython
        held_out_word = [doc for doc in val_docs if len(doc) < config.block_size][:1]
        words = args.explain or (held_out_word if page_wanted else [])
        readings = [(word, read_along(word, tokenizer, params, config)) for word in words]
        for word, rows in readings[:len(args.explain)]:
            print(f'\n{word!r} as the model reads it (. is BOS, the start and the end):')
            explain(rows, shown)
        if page_wanted:
            chart = loss_chart(adam['step'], losses, scores, along_the_way) if losses else ''
            run_page = page(f"{facts}\nflags: {' '.join(sys.argv[1:] if script else [])}", chart,
                            readings, shown, params['wte'], '\n'.join(report))
            if args.html is not None:
                write(args.html, run_page)
                print(f'wrote the page of this run to {args.html}')
            else:
                notebook = sys.modules['IPython.display']  # loaded wherever a notebook runs
                notebook.display(notebook.HTML(run_page))
    finally:
        for signum, handler in handlers.items():  # Python's own handling, back
            signal.signal(signum, handler)
