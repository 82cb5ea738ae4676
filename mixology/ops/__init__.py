"""Every op package registers its implementations on import; add a new op with one line here."""

from mixology.ops import attention, blocks, ffn, norms, positional, token_mix  # noqa: F401

# Each op package's mutants (imported only when the spec's mutant checks run).
MUTANT_MODULES = ("mixology.ops.token_mix.mutants", "mixology.ops.attention.mutants",
                  "mixology.ops.positional.mutants", "mixology.ops.norms.mutants",
                  "mixology.ops.ffn.mutants", "mixology.ops.blocks.mutants")
