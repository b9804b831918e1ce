"""Reusable layers and functions: sparse propagation, learned-value sparse products, losses,
scale-invariant row normalisation."""

from graphrec.nn.cooccur import FactoredCooccurrence, cooccurrence_operator
from graphrec.nn.losses import bpr_loss, l2_penalty, norm_penalty
from graphrec.nn.pattern import (
    SparsePattern,
    inv_sqrt_degree,
    module_pattern,
    pattern_dot,
    pattern_spmm,
    register_pattern,
    row_normalized_values,
    sym_normalized_values,
)
from graphrec.nn.propagation import (
    SparseOperator,
    as_sparse_csr,
    csr_transpose,
    propagate,
    to_scipy_csr,
    to_torch_sparse,
    weighted_sparse_sum,
)
from graphrec.nn.csr import csr_row_entries
from graphrec.nn.reversal import GradientReversal, grad_reverse
from graphrec.nn.rows import unit_rows

__all__ = [
    "FactoredCooccurrence",
    "GradientReversal",
    "SparseOperator",
    "SparsePattern",
    "as_sparse_csr",
    "bpr_loss",
    "cooccurrence_operator",
    "csr_row_entries",
    "csr_transpose",
    "grad_reverse",
    "inv_sqrt_degree",
    "l2_penalty",
    "norm_penalty",
    "module_pattern",
    "pattern_dot",
    "pattern_spmm",
    "propagate",
    "register_pattern",
    "row_normalized_values",
    "sym_normalized_values",
    "to_scipy_csr",
    "to_torch_sparse",
    "unit_rows",
    "weighted_sparse_sum",
]
