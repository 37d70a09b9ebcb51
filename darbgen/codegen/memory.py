"""The memory plan of a chain: where each tensor between ops lives in one static arena."""
from ..layers import kind_of


def plan_memory(ops):
    """Where each tensor of a chain lives: the model's ``in``, its ``out``, or an
    offset (in elements) in one static arena, reusing space once a tensor is dead.

    Tensor k is op k's input (tensor 0 is ``in``, the last is ``out``). An op
    whose kind works in place (softmax) shares its input's buffer (and the op
    before a final softmax writes straight into ``out``).
    """
    n = len(ops)
    where = [None] * (n + 1)
    where[0], where[n] = "in", "out"
    in_place = [kind_of(op).in_place for op in ops]
    k = n
    while k > 1 and in_place[k - 1]:          # a trailing in-place op: its input is `out` too
        where[k - 1] = "out"
        k -= 1
    alias = {}
    for i in range(1, n):
        if where[i] is None and in_place[i] and i + 1 < n and where[i + 1] is None:
            alias[i + 1] = i                   # op i writes its output over its input
    live = []                                  # (offset, size, first op, last op)
    size = 0
    for t in range(1, n):
        if where[t] is not None or t in alias:
            continue
        last = t
        while last + 1 in alias:
            last += 1
        elems = getattr(ops[t - 1], "layer", ops[t - 1]).out_size
        busy = sorted((o, s_) for o, s_, first, end in live if not (end < t - 1 or first > last))
        offset = 0
        for o, s_ in busy:
            if offset + elems <= o:
                break
            offset = max(offset, o + s_)
        live.append((offset, elems, t - 1, last))
        where[t] = offset
        size = max(size, offset + elems)
    for t, src in sorted(alias.items()):
        where[t] = where[src]
    return {"tensors": where, "arena": size}
