"""Pieces of the GPU benchmarks' tables (learner_cuda.sh, vl3b_cuda.sh import this)."""


def attention_note(row):
    """What a mmupt row's attention actually ran, from its JSON's "attention" counts of block forwards
    ({"cublas": N, "flash": N, "cudnn": N}): " (attention: cudnn)" when one kind ran, the counts when
    several did - a shape cuDNN refuses attends through cuBLAS, which the row's label would not say -
    and "" without counts."""
    runs = [(kind, n) for kind, n in (row.get("attention") or {}).items() if n]
    if len(runs) == 1:
        return f" (attention: {runs[0][0]})"
    if runs:
        return " (attention: " + " + ".join(f"{kind} {n}" for kind, n in runs) + " blocks)"
    return ""
