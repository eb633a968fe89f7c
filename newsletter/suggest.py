"""Topic suggestions for the sign-up form, drawn from the papers of recent pages.

The AI keywords the API gives a paper are the best suggestions; a capture without them
(page text, Markdown) still has titles, whose frequent two- and three-word phrases
(without stopwords at either end) are suggested instead. Pure: papers in, phrases out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from newsletter.dumps import Paper

_WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*")
_STOP = frozenset(
    "a an and are as at be by for from how in into is it its of on or our the to via vs "
    "what when which who why with without towards toward through using your we can do does "
    "beyond new more better large".split()
)


def title_phrases(title: str) -> list[str]:
    """The two- and three-word phrases of a title that neither start nor end with a
    stopword (lower case): "Efficient Knowledge Distillation for LLMs" gives
    "efficient knowledge", "knowledge distillation", "efficient knowledge distillation"."""
    phrases: list[str] = []
    for segment in re.split(r"[:;,.!?()\[\]]", title.lower()):
        words = _WORD.findall(segment)
        for size in (2, 3):
            for start in range(len(words) - size + 1):
                run = words[start : start + size]
                if run[0] not in _STOP and run[-1] not in _STOP and not run[0].isdigit():
                    phrases.append(" ".join(run))
    return phrases


def suggested_topics(papers: Iterable[Paper], limit: int = 12) -> list[str]:
    """The most frequent keywords (or title phrases) of `papers`, most frequent first;
    a phrase must occur in at least two papers."""
    keywords: Counter[str] = Counter()
    phrases: Counter[str] = Counter()
    for paper in papers:
        keywords.update({" ".join(k.lower().split()) for k in paper.ai_keywords if k.strip()})
        phrases.update(set(title_phrases(paper.title)))
    counts = keywords if sum(keywords.values()) >= limit else keywords + phrases
    ranked = sorted(
        (phrase for phrase, count in counts.items() if count >= 2),
        key=lambda phrase: (-counts[phrase], -len(phrase.split()), phrase),
    )
    chosen: list[str] = []
    for phrase in ranked:
        # "knowledge distillation" makes "efficient knowledge distillation" redundant
        # when both are as frequent; keep the first (more frequent or longer) of a family.
        if any(phrase in kept or kept in phrase for kept in chosen):
            continue
        chosen.append(phrase)
        if len(chosen) == limit:
            break
    return chosen
