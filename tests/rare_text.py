"""Text whose passages rough token counts let past the model's window: lists of rare names."""

from __future__ import annotations

import random


def rare_names(n: int, seed: int = 5) -> list[str]:
    """Surnames the model's vocabulary lacks: each breaks into several WordPiece tokens."""
    rng = random.Random(seed)
    syllables = ["bli", "gnaut", "cil", "liers", "vrey", "naud", "plo", "quez", "thyr", "xau",
                 "dje", "mbo", "ksa", "vre", "ugh", "nault"]
    return ["".join(rng.choice(syllables) for _ in range(3)).capitalize() for _ in range(n)]


def list_article(names: list[str]) -> str:
    """An article with one long sentence listing ``names`` (200 of them are ~600 model tokens)."""
    return ("Many of the farms still bear the names of the first settlers. Examples include: "
            + ", ".join(names) + ". The list goes on.\n\nA second paragraph, short and plain.\n")
