"""Follow-up questions without a model to rewrite them.

"Which operator is it working with?" after "Which company will build Russia's 5G
network?" names nothing the documents can be searched for: "it" is the earlier
question's subject. With a language model, :meth:`GenerativeAnswerer.condense`
rewrites such a follow-up; without one (or when its rewrite is unusable), the
earlier questions' content words are carried into the question itself, after it:

    Which operator is it working with? (company build Russia 5G network)

so that they reach both the search and the choice of the answer sentence at full
weight, as the follow-up's own words would. Earlier turns given only as context
(``retrieve``'s half-weight lists, the ranker's "context" feature) steer the search
but not whether the documents answer at all, so a pronoun follow-up was refused
although the nearest passage held its answer.

Only a follow-up that points back is extended: one with a pronoun or a
demonstrative ("it", "they", "that"), one opening with "and" / "what about", or one
of at most one content word. A new question keeps its own words alone.

The carried words say what the follow-up is about, not what it asks: with them, the
earlier question's answer looks like an answer to any follow-up ("How much will it be
paid?" after the 5G question finds the Huawei sentence). So an answer found with them
must also :func:`speak_to` the follow-up itself (hold one of its own content words, or
the number or date it asks for); otherwise the follow-up is searched as asked, its
history as context only, which refuses what the documents do not answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.ranking import expected_type, has_type
from assistant.textsafe import MARKER
from assistant.words import content_words, matched, stem, stems_of

# Words that stand for something named earlier in the conversation.
POINTERS = frozenset("""
it its itself they them their theirs themselves he him his himself she her hers herself
this that these those there then such
""".split())
_OPENERS = re.compile(r"^\W*(?:and|but|also|so|what\s+about|how\s+about|what\s+of)\b",
                      re.IGNORECASE)
_WORD = re.compile(r"\w+(?:['’]\w+)?")
# More carried words would outweigh the follow-up's own.
MAX_CARRIED = 8


def points_back(question: str) -> bool:
    """Whether ``question`` leans on an earlier one (see the module's docstring)."""
    words = [w.lower() for w in _WORD.findall(question)]
    if any(w in POINTERS for w in words) or _OPENERS.search(question):
        return True
    return len(content_words(question)) <= 1


def carried_words(question: str, earlier: Sequence[str]) -> list[str]:
    """The earlier questions' content words (newest question first, as written, each
    once) that ``question`` does not already hold."""
    have = {stem(w) for w in content_words(question)}
    out: list[str] = []
    for text in reversed(earlier):
        for token in _WORD.findall(text):
            bare = re.sub(r"['’]s$", "", token)
            words = content_words(bare)
            if len(words) != 1:
                continue  # a function word ("which", "will") or framing ("article")
            key = stem(words[0])
            if key not in have:
                have.add(key)
                out.append(bare)
    return out[:MAX_CARRIED]


def standalone(question: str, earlier: Sequence[str]) -> str:
    """``question`` with the earlier questions' content after it, when it points back;
    else ``question`` as it is."""
    if not earlier or not points_back(question):
        return question
    carried = carried_words(question, earlier)
    if not carried:
        return question
    return f"{question.rstrip()} ({' '.join(carried)})"


def speaks_to(question: str, answer: str) -> bool:
    """Whether ``answer`` holds one of ``question``'s own content words (or a form of
    one), or the number or date it asks for beyond those it names."""
    own = dict.fromkeys((stem(w) for w in content_words(question)), 1.0)
    text = MARKER.sub(" ", answer)
    if own and matched(stems_of(text), own):
        return True
    kind = expected_type(question)
    return kind in ("number", "date") and has_type(text, kind, question)
