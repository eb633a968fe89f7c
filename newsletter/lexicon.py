"""Acronyms and their expansions: found in the papers themselves, plus a small curated table.

Abstracts define their acronyms ("sparse mixture of experts (MoE)", "vision transformer
(ViT)"); `definitions` finds such definitions with the Schwartz-Hearst rule (the
acronym's letters appear, in order, in the words just before the bracket, the first
letter starting a word). `Lexicon.learn` counts the definitions of a pool of papers and
keeps, for each acronym, the expansion most papers use; the curated `TABLE` adds the
common ones a pool may not define (and settles a tie). Text analysis
(`newsletter.analysis`) then writes every expansion as its acronym, so "MoE", "MoEs",
"mixture-of-experts" and "mixture of experts" are one term, whichever form a topic or a
paper uses.

Pure: strings in, tables out. Words here are plain lower-case words (no stemming): the
analyser maps them to its own terms.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Acronyms that ML papers use without always defining them. Each is an equivalence the
# field agrees on (not a topic's neighbours): the expansion means exactly the acronym.
TABLE: Mapping[str, tuple[str, ...]] = {
    "llm": ("large language model",),
    "vlm": ("vision-language model", "vision language model"),
    "mllm": ("multimodal large language model", "multimodal llm"),
    "lmm": ("large multimodal model",),
    "moe": ("mixture of experts", "mixture-of-experts"),
    "rag": ("retrieval-augmented generation", "retrieval augmented generation"),
    "vit": ("vision transformer",),
    "vla": ("vision-language-action", "vision-language-action model"),
    "asr": ("automatic speech recognition", "speech recognition"),
    "tts": ("text-to-speech", "text to speech", "speech synthesis"),
    "gnn": ("graph neural network",),
    "gcn": ("graph convolutional network",),
    "cot": ("chain-of-thought", "chain of thought"),
    "icl": ("in-context learning",),
    "kd": ("knowledge distillation",),
    "rl": ("reinforcement learning",),
    "rlhf": ("reinforcement learning from human feedback",),
    "nmt": ("neural machine translation",),
    "nas": ("neural architecture search",),
    "kg": ("knowledge graph",),
    "t2i": ("text-to-image",),
    "t2v": ("text-to-video",),
    "ssm": ("state space model",),
    "peft": ("parameter-efficient fine-tuning",),
    "sft": ("supervised fine-tuning",),
    "dpo": ("direct preference optimization",),
    "nlp": ("natural language processing",),
    "odqa": ("open-domain question answering",),
    "automl": ("automated machine learning", "automatic machine learning"),
    "dit": ("diffusion transformer",),
    # Clipped words, written either way.
    "math": ("mathematics", "mathematical"),
}

# "(ABBR)" or "(ABBRs)": 2-10 letters/digits/hyphens with at least two capitals.
_BRACKETED = re.compile(r"\(\s*([A-Za-z][A-Za-z0-9-]{0,9})\s*\)")
_WORD = re.compile(r"[^\W_]+")
_MAX_EXTRA_WORDS = 4  # words an expansion may have beyond the acronym's letters


def acronym_form(word: str) -> str | None:
    """The acronym a written word is (lower case, plural `s` removed), or None: at least
    two capitals, as in "LLM", "MoE", "ViT", "LLMs", "T2I"."""
    if sum(1 for char in word if char.isupper()) < 2 or not word[0].isalpha():
        return None
    if len(word) > 2 and word.endswith("s") and word[-2].isupper():
        word = word[:-1]
    return word.casefold()


def definitions(text: str) -> list[tuple[str, str, int, int]]:
    """The acronym definitions in a text as (acronym, expansion, start, end): the
    acronym in lower case, the expansion as written (lower case), and the span of the
    bracket that defines it (so the analyser can read through it)."""
    text = unicodedata.normalize("NFKC", text)
    found: list[tuple[str, str, int, int]] = []
    for match in _BRACKETED.finditer(text):
        acronym = acronym_form(match.group(1))
        if acronym is None:
            continue
        letters = [char for char in acronym if char.isalnum()]
        sentence_start = max(text.rfind(mark, 0, match.start()) for mark in (". ", "; ", "("))
        before = text[max(sentence_start + 1, 0) : match.start()]
        words = list(_WORD.finditer(before))[-(len(letters) + _MAX_EXTRA_WORDS) :]
        expansion = _expansion(letters, before, words)
        if expansion is not None:
            found.append((acronym, expansion.casefold(), match.start(), match.end()))
    return found


def _expansion(letters: list[str], before: str, words: list[re.Match[str]]) -> str | None:
    """Schwartz-Hearst: match the acronym's letters right to left in the words before
    it, the first letter at the start of a word; the expansion runs from that word."""
    if not words or len(letters) < 2:
        return None
    flat = before[words[0].start() : words[-1].end()].casefold()
    offset = words[0].start()
    starts = {w.start() - offset for w in words}
    position = len(flat)
    for index in range(len(letters) - 1, -1, -1):
        letter = letters[index]
        position = flat.rfind(letter, 0, position)
        while index == 0 and position > 0 and position not in starts:
            position = flat.rfind(letter, 0, position)
        if position < 0 or (index == 0 and position not in starts):
            return None
    expansion = flat[position:].strip()
    if len(_WORD.findall(expansion)) < 2 and "-" not in expansion:
        return None  # one plain word is a name, not an expansion ("Llama (LLaMA)")
    return expansion


@dataclass
class Lexicon:
    """For each acronym (lower case), its expansions as written (lower case)."""

    expansions: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def learn(
        cls, texts: Iterable[str], *, table: Mapping[str, tuple[str, ...]] = TABLE
    ) -> Lexicon:
        """The curated table, plus each acronym the texts define: with the expansion
        most of them use (an acronym two fields use differently keeps the table's
        meaning, or, without one, the commoner)."""
        votes: dict[str, Counter[str]] = {}
        for text in texts:
            seen = set()
            for acronym, expansion, _, _ in definitions(text):
                if (acronym, expansion) not in seen:
                    seen.add((acronym, expansion))
                    votes.setdefault(acronym, Counter())[expansion] += 1
        expansions = {acronym: tuple(forms) for acronym, forms in table.items()}
        for acronym, counts in votes.items():
            if acronym in expansions:
                continue
            (best, best_votes), *rest = counts.most_common()
            if not rest or best_votes > rest[0][1]:
                expansions[acronym] = (best,)
        return cls(expansions)
