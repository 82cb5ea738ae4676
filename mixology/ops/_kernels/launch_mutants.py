"""Kernel-scale mutants: a real Triton kernel launched the way a buggy launcher would.

The bugs that kernel authors write most are in the launch, not the arithmetic: a grid that
rounds down (the tail tile is never run), a block fixed at one tile (only the first tile of a
row is read and written), an accumulator in the input dtype. These helpers re-launch the
registered kernels with exactly that change, so each mutant is one line of intent and the
kernels are not copied. They only show at kernel scale (rows past one tile, T past a block),
and the outputs of tests and ``verify`` start as NaN (triton_utils.empty), so an unwritten
tile cannot pass on leftover memory.
"""

from __future__ import annotations

import types

import torch

from mixology.registry import patched


class _Triton:
    """``triton`` as a launcher sees it, with some helpers replaced."""

    def __init__(self, **replaced):
        self._replaced = replaced

    def __getattr__(self, name):
        # triton is optional: loaded where a kernel runs
        import triton

        return self._replaced.get(name, getattr(triton, name))


def floor_grid(module: types.ModuleType):
    """The launcher's grid is ``n // block`` instead of ``cdiv(n, block)``: the last, partial
    tile of rows (or columns, or elements) is never run."""
    return patched(module, triton=_Triton(cdiv=lambda n, block: n // block))


def first_tile_only(module: types.ModuleType, tile: int = 16):
    """Blocks sized ``min(next_power_of_2(n), tile)`` by a kernel that expects one block to
    cover the whole row: only the first ``tile`` columns are read and written."""
    # triton is optional: loaded where a kernel runs
    import triton

    return patched(module, triton=_Triton(
        next_power_of_2=lambda n: min(triton.next_power_of_2(n), tile)))


def fixed_row_tile(module: types.ModuleType, tile: int = 16):
    """``row_tile`` that caps BLOCK_D at ``tile``: a row reduction (mean, Σx²) over the first
    ``tile`` columns only, and the rest of the row never written."""
    # triton is optional: loaded where a kernel runs
    from mixology.ops._kernels.triton_utils import row_tile

    def capped(D, elements=4096):
        rows, block_d = row_tile(D, elements)
        return rows, min(block_d, tile)

    return patched(module, row_tile=capped)


def input_dtype_accumulator(module: types.ModuleType):
    """``acc_dtype`` that returns the input dtype: float16/bfloat16 sums and states."""
    # triton is optional: loaded where a kernel runs
    import triton.language as tl

    as_tl = {torch.float16: tl.float16, torch.bfloat16: tl.bfloat16, torch.float32: tl.float32,
             torch.float64: tl.float64}
    return patched(module, acc_dtype=lambda dtype: as_tl[dtype])
