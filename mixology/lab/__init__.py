"""The lab: small language models built from the registry's ops, trained, compared and sampled.

Built so far: ``data`` (the tiny Shakespeare corpus shipped in the package, a character
tokenizer, seeded random windows and fixed evaluation windows) and ``model`` (a causal LM of
``transformer_block``s with every mixer, norm, residual style, channel mixer and position
encoding the op takes, presets, sampling). The trainer and the train / compare / sample
commands come next (issue 14).
"""
