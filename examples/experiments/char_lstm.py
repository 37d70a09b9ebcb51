"""Pruning experiment 3: a character-level LSTM language model on the Python
standard library's own source code (present on every Python install:
nothing is downloaded), scored in bits per character on held-out files.

    one-hot character (98: printable ASCII, newline, tab, "other")
    -> LSTM 128 -> linear 98 (next-character logits)

Text: the standard library's top-level ``*.py`` files in sorted order,
concatenated; the first 90% of the files train, the last 10% validate
(capped at 1 MB and 100 kB of text). Pruned: the LSTM's input and recurrent
matrices (512 x 98, 512 x 128) and the output layer (98 x 128). Every
method at every ratio, one-shot, one-shot with refit and fine-tuned;
tolerance: 2% of the dense model's bits per character.

The dense model is trained to convergence once (18000 steps, cosine decay;
about 5 minutes) and bundled as examples/char_lstm.npz, so that the sweep's
15 minutes go to fine-tuning and a fine-tuned model cannot look better than
the dense one merely by having trained longer:

    .venv/bin/python examples/experiments/char_lstm.py --train-dense   # -> examples/char_lstm.npz
    .venv/bin/python examples/experiments/char_lstm.py                 # the sweep, about 12 minutes

Results, weights and a report go to docs/results/char_lstm (docs/results.md).
"""
import glob
import hashlib
import json
import os
import sys
import sysconfig

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sweep  # noqa: E402

RATIOS = (1.5, 2, 4, 8, 16, 32)
HIDDEN = 128
DENSE_STEPS = 18000
BUNDLED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "char_lstm.npz")
VOCAB = 98                      # 95 printable + newline + tab + other
SEQ = 64                        # training windows; validation is scored in windows of 128
EVAL_SEQ = 128
TRAIN_CHARS, VALID_CHARS = 1_000_000, 100_000


def encode(text):
    codes = np.frombuffer(text.encode("latin-1", "replace"), np.uint8).astype(np.int64)
    out = np.full(codes.shape, VOCAB - 1)
    printable = (codes >= 32) & (codes < 127)
    out[printable] = codes[printable] - 32
    out[codes == 10] = 95
    out[codes == 9] = 96
    return out


def corpus():
    """(train ids, valid ids, description) from the standard library sources."""
    files = sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "*.py")))
    if len(files) < 20:
        raise SystemExit("the Python standard library sources (*.py) were not found; this experiment reads them")
    split = int(len(files) * 0.9)

    def read(paths, cap):
        parts, size = [], 0
        for p in paths:
            with open(p, encoding="utf-8", errors="replace") as f:
                parts.append(f.read())
            size += len(parts[-1])
            if size >= cap:
                break
        return "".join(parts)[:cap]
    train, valid = read(files[:split], TRAIN_CHARS), read(files[split:], VALID_CHARS)
    digest = hashlib.sha256((train + valid).encode("utf-8", "replace")).hexdigest()[:16]
    desc = (f"Python {sys.version.split()[0]} stdlib *.py: {len(train)} train / {len(valid)} valid chars, "
            f"sha256 {digest}")
    return encode(train), encode(valid), desc


def make_model(hidden):
    import torch

    class CharLSTM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTM(VOCAB, hidden, batch_first=True)
            self.fc = torch.nn.Linear(hidden, VOCAB)

        def forward(self, ids):
            x = torch.nn.functional.one_hot(ids, VOCAB).float() if ids.dtype == torch.int64 else ids
            return self.fc(self.rnn(x)[0])
    return CharLSTM()


def bits_per_char(model, ids):
    """Mean next-character cross-entropy in bits over ``ids``, scored in
    windows of EVAL_SEQ characters, each from a zero state."""
    import torch

    n = (len(ids) - 1) // EVAL_SEQ
    x = torch.from_numpy(ids[: n * EVAL_SEQ].reshape(n, EVAL_SEQ))
    y = torch.from_numpy(ids[1: n * EVAL_SEQ + 1].reshape(n, EVAL_SEQ))
    total = 0.0
    with torch.no_grad():
        for i in range(0, n, 64):
            out = model(x[i:i + 64])
            total += float(torch.nn.functional.cross_entropy(out.reshape(-1, VOCAB), y[i:i + 64].reshape(-1),
                                                             reduction="sum"))
    return total / x.numel() / np.log(2)


def save_dense(model, path, meta):
    """The dense weights as a plain .npz (no pickle) with a JSON __meta__."""
    arrays = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    arrays["__meta__"] = np.array(json.dumps(meta))
    tmp = path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_dense(path):
    import torch

    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["__meta__"]))
        state = {k: torch.from_numpy(z[k]) for k in z.files if k != "__meta__"}
    model = make_model(meta["hidden"])
    model.load_state_dict(state)
    return model.eval(), meta


def main():
    import torch

    args = sweep.parse_args(__doc__, "docs/results/char_lstm", RATIOS, 1000,
                            extra=[("--train-dense", "train the dense model and write examples/char_lstm.npz")])
    torch.manual_seed(0)
    train_ids, valid_ids, desc = corpus()
    sweep.say(desc)
    hidden = 64 if args.quick else HIDDEN
    if args.quick:
        train_ids, valid_ids = train_ids[:100_000], valid_ids[:10_000]
    train_t = torch.from_numpy(train_ids)
    gen = torch.Generator().manual_seed(1)

    def batches():
        start = torch.randint(0, len(train_t) - SEQ - 1, (32,), generator=gen)
        idx = start[:, None] + torch.arange(SEQ + 1)
        seq = train_t[idx]
        return seq[:, :-1], seq[:, 1:]

    def loss(m, batch):
        return torch.nn.functional.cross_entropy(m(batch[0]).reshape(-1, VOCAB), batch[1].reshape(-1))

    def evaluate(m):
        return bits_per_char(m, valid_ids)

    if args.quick:
        model = sweep.train_dense(make_model(hidden), batches, loss, 300, lr=3e-3)
    elif args.train_dense or not os.path.exists(BUNDLED):
        model = sweep.train_dense(make_model(hidden), batches, loss, DENSE_STEPS, lr=3e-3)
        meta = {"hidden": hidden, "steps": DENSE_STEPS, "lr": 3e-3, "schedule": "cosine", "batch": [32, SEQ],
                "corpus": desc, "valid_bpc": evaluate(model), "script": "examples/experiments/char_lstm.py"}
        save_dense(model, BUNDLED, meta)
        sweep.say(f"dense model: {meta['valid_bpc']:.4f} bpc, written to {os.path.normpath(BUNDLED)}")
        if args.train_dense:
            return
    else:
        model, meta = load_dense(BUNDLED)
        if meta["corpus"] != desc:
            sweep.say(f"note: the bundled model was trained on {meta['corpus']}")
    calib = torch.from_numpy(train_ids[: 64 * EVAL_SEQ].reshape(64, EVAL_SEQ))
    task = sweep.Task("char_lstm", f"character LSTM language model ({hidden} units) on Python stdlib sources",
                      model, evaluate, batches, loss, calib=calib, metric="bpc", higher_is_better=False,
                      tolerance={"kind": "relative", "value": 0.02}, fine_tune_steps=50 if args.quick else args.steps,
                      lr=1e-3, reseed=lambda seed: gen.manual_seed(100 + seed), seeds=args.seeds or 1)
    sweep.run(task, args)


if __name__ == "__main__":
    main()
