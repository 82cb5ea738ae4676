"""The lab: small language models built from the registry's ops, trained, compared, sampled
and looked inside (docs/lab.md).

- ``data``: the tiny Shakespeare corpus shipped in the package, a character tokenizer, seeded
  random windows and fixed evaluation windows;
- ``model``: a causal LM of ``transformer_block``s with every mixer, norm, residual style,
  channel mixer and position encoding the op takes, presets, sampling;
- ``train`` (the trainer, DDP under torchrun), ``compare`` (grids x seeds, Welch's t-test);
- ``tracing`` (each block through the reference composition: the statistics), ``circuits``
  (QK/OV circuits of attention-only models), ``report`` (one HTML page), ``explain``
  (walkthroughs of the blocks);
- ``mutants``: the lab's plausible bugs, which spec/lab.py must reject.
"""
