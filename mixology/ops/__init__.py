"""Every op package registers its implementations on import; add a new op with one line here."""

from mixology.ops import token_mix  # noqa: F401
