"""The lab: small language models built from the registry's ops, trained, compared and sampled.

Built so far: ``data`` (the tiny Shakespeare corpus shipped in the package, a character
tokenizer, seeded random windows and fixed evaluation windows). The model, the trainer and
the commands come next (issue 14).
"""
