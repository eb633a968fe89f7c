"""Text analysis for the ranker: words, stems, phrases, and the terms a topic asks for.

Words
    NFKC; words are runs of letters/digits, a hyphen joins the parts of one written word
    ("token-level"), "giant's" becomes "giant". Each part is case-folded; English
    stopwords are dropped and the rest stemmed with the Snowball English stemmer
    ("distillation", "distilling", "distilled" all become "distil"). A word written as
    an acronym (two capitals or more: "LLM", "MoE", "ViTs") is its lower-case acronym,
    without a plural "s" and unstemmed.

Two readings of every text
    The plain reading splits hyphenated words into their parts ("pre-training" is
    "pre" "train"). The concept reading keeps a hyphenated word whole when people also
    write it as one word (a bound prefix: "pre-training" = "pretraining", "multi-modal"
    = "multimodal") or when a part is a stopword ("in-context", "chain-of-thought"),
    and then writes every expansion of the lexicon (`newsletter.lexicon`) as its
    acronym: "mixture of experts", "mixture-of-experts" and "MoE" all become "moe",
    "large language models" becomes "llm". An acronym's defining bracket
    ("experts (MoE) layers") is read through, so the phrase around it stays one phrase.
    A paper's features are those of both readings (the larger count of each); a topic
    is read in the concept reading, so "LLM distillation" finds "distilling large
    language models" and "MoE" finds "sparse mixture-of-experts layers".

Features
    Unigrams (terms), bigrams (two consecutive kept terms, across dropped stopwords so
    "mixture of experts" is the bigram "mixtur expert", but never across . , ; : ! ?
    brackets or quotes) and near pairs: two different kept terms at most NEAR_WINDOW = 4
    kept words apart within one segment, in either order ("distilling large language
    models" holds the pair distil~model, as "model distillation" does).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import snowballstemmer

from newsletter.lexicon import Lexicon, acronym_form, definitions

Word = tuple[str, int, int]  # (term, start, end) of a kept word in the normalised text
Segments = list[list[Word]]  # per segment (text between punctuation): its kept words

NEAR_WINDOW = 4  # a near pair: two kept words at most this many kept words apart, one segment
NEAR_MARK = "~"  # prefix of near-pair features (no word contains it)
# Phrase shares of a multi-word topic's query weight (see `TopicTerms.weights`).
PHRASE_SHARE = 0.6  # on its bigrams (words in order)
NEAR_SHARE = 0.25  # on its near pairs (the same words close together, in any order)
WORD_SHARE = 1.0 - PHRASE_SHARE - NEAR_SHARE  # on its single words
# First parts that make a hyphenated word one word ("pre-training" = "pretraining").
PREFIXES = frozenset(
    "pre post multi self non co re semi sub un de fine cross inter intra meta bi uni".split()
)

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "am",
        "an",
        "and",
        "any",
        "are",
        "aren",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "cannot",
        "could",
        "couldn",
        "did",
        "didn",
        "do",
        "does",
        "doesn",
        "doing",
        "don",
        "during",
        "each",
        "e",
        "eg",
        "et",
        "etc",
        "for",
        "from",
        "further",
        "g",
        "had",
        "hadn",
        "has",
        "hasn",
        "have",
        "haven",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "ie",
        "if",
        "in",
        "into",
        "is",
        "isn",
        "it",
        "its",
        "itself",
        "just",
        "let",
        "me",
        "my",
        "myself",
        "of",
        "on",
        "once",
        "only",
        "or",
        "ought",
        "our",
        "ours",
        "ourselves",
        "shall",
        "shan",
        "she",
        "should",
        "shouldn",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "thus",
        "to",
        "too",
        "until",
        "us",
        "very",
        "via",
        "was",
        "wasn",
        "we",
        "were",
        "weren",
        "what",
        "when",
        "where",
        "whether",
        "which",
        "while",
        "who",
        "whom",
        "whose",
        "why",
        "will",
        "with",
        "won",
        "would",
        "wouldn",
        "yet",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
    ]
)
_SEGMENT = re.compile(r"[^.,;:!?()\[\]{}\"“”«»]+")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*(?:-[^\W_]+(?:['’][^\W_]+)*)*")
_PART = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


@dataclass(frozen=True)
class TopicTerms:
    """The features a topic (or exclude term) queries, in the order of its text."""

    unigrams: tuple[str, ...]
    bigrams: tuple[str, ...]

    @property
    def pairs(self) -> tuple[str, ...]:
        """The near-pair feature of each bigram (its two terms in any order)."""
        found = {near(*bigram.split(" ")) for bigram in self.bigrams}
        return tuple(sorted(pair for pair in found if pair is not None))

    def weights(self) -> dict[str, float]:
        """Query weight of each feature; they add up to 1 (empty for a stopword-only
        text)."""
        if not self.unigrams:
            return {}
        if not self.bigrams:
            share = 1.0 / len(self.unigrams)
            return {unigram: share for unigram in self.unigrams}
        pairs = self.pairs
        phrase = PHRASE_SHARE if pairs else PHRASE_SHARE + NEAR_SHARE
        weights = {bigram: phrase / len(self.bigrams) for bigram in self.bigrams}
        for pair in pairs:
            weights[pair] = NEAR_SHARE / len(pairs)
        for unigram in self.unigrams:
            weights[unigram] = WORD_SHARE / len(self.unigrams)
        return weights


@dataclass(frozen=True)
class TextFeatures:
    """Feature counts of one text, its length in kept words, and the first surface form
    (lower case, as written) of each feature."""

    counts: dict[str, int]
    length: int
    surfaces: dict[str, str]


@dataclass(frozen=True)
class Reading:
    """A text read twice (see the module docstring): the normalised text and the
    segments of its plain and of its concept reading (None when they are the same)."""

    norm: str
    plain: Segments
    concept: Segments | None

    @property
    def streams(self) -> list[Segments]:
        return [self.plain] if self.concept is None else [self.plain, self.concept]


class Analyzer:
    """Tokenise, drop stopwords, stem (with a per-instance stem cache), and read
    expansions as acronyms with a lexicon (an empty one by default)."""

    def __init__(self, lexicon: Lexicon | None = None) -> None:
        self._stemmer: Any = snowballstemmer.stemmer("english")
        self._stems: dict[str, str] = {}
        self._terms: dict[str, str | None] = {}  # written word -> term (a cache)
        self.lexicon = lexicon if lexicon is not None else Lexicon()
        self._acronyms = frozenset(self.lexicon.expansions) - STOPWORDS
        self._single: dict[str, str] = {}  # a one-term expansion -> its acronym
        self._phrases: dict[tuple[str, ...], str] = {}  # a longer one -> its acronym
        self._expand: dict[str, tuple[str, ...]] = {}  # an acronym -> its expansion's terms
        self._longest = 1
        # Shorter expansions first, so a longer one is read with the shorter ones in it:
        # "commonsense knowledge graph (CKG)" is "commonsense" + "kg", and "CKG" is
        # written as those two terms (no phrase hides the concepts inside it).
        forms = sorted(
            (sum(len(words) for words in self._concept_words(form)), acronym, form)
            for acronym in self._acronyms
            for form in self.lexicon.expansions[acronym]
        )
        for _, acronym, form in forms:
            read = [self._collapse(words) for words in self._concept_words(form)]
            terms = tuple(term for words in read for term, _, _ in words)
            if len(terms) == 1 and terms[0] != acronym:
                self._single.setdefault(terms[0], acronym)
            elif len(terms) > 1 and any(term in self._acronyms for term in terms):
                self._expand.setdefault(acronym, terms)
            elif len(terms) > 1:
                self._phrases.setdefault(terms, acronym)
                self._longest = max(self._longest, len(terms))

    def stem(self, word: str) -> str:
        """The Snowball English stem of a lower-case word."""
        stem = self._stems.get(word)
        if stem is None:
            stem = str(self._stemmer.stemWord(word))
            self._stems[word] = stem
        return stem

    def term(self, written: str) -> str | None:
        """The term of one written word (no hyphen), or None for a stopword."""
        if written in self._terms:
            return self._terms[written]
        term = self._term(written)
        self._terms[written] = term
        return term

    def _term(self, written: str) -> str | None:
        acronym = acronym_form(written)
        word = written.casefold().replace("’", "'")
        if acronym is None:
            word = word.removesuffix("'s").replace("'", "")
            if word in self._acronyms:
                acronym = word
            elif len(word) > 2 and word.endswith("s") and word[:-1] in self._acronyms:
                acronym = word[:-1]
        if acronym is not None:
            return None if acronym in STOPWORDS else acronym
        if not word or word in STOPWORDS:
            return None
        return self.stem(word)

    def read(self, text: str) -> Reading:
        """Both readings of a text (see the module docstring)."""
        norm = unicodedata.normalize("NFKC", text)
        if "(" in norm:
            for _, _, start, end in definitions(norm):
                norm = norm[:start] + " " * (end - start) + norm[end:]
        plain = self._plain_words(norm)
        concept = [self._collapse(words) for words in self._concept_words(norm)]
        return Reading(norm, plain, None if concept == plain else concept)

    def segments(self, text: str) -> tuple[str, Segments]:
        """The normalised text and the segments of its plain reading."""
        reading = self.read(text)
        return reading.norm, reading.plain

    def features(self, text: str) -> TextFeatures:
        """Unigram, bigram and near-pair counts of a text (both readings), with the
        surface of each feature."""
        return count(self.read(text))

    def topic_terms(self, text: str) -> TopicTerms:
        """Distinct unigrams and bigrams of a topic (its concept reading), in order."""
        reading = self.read(text)
        segments = reading.concept if reading.concept is not None else reading.plain
        unigrams: dict[str, None] = {}
        bigrams: dict[str, None] = {}
        for words in segments:
            for index, (term, _, _) in enumerate(words):
                unigrams[term] = None
                if index:
                    bigrams[f"{words[index - 1][0]} {term}"] = None
        return TopicTerms(tuple(unigrams), tuple(bigrams))

    def _plain_words(self, norm: str) -> Segments:
        segments: Segments = []
        for segment in _SEGMENT.finditer(norm):
            words: list[Word] = []
            for part in _PART.finditer(norm, segment.start(), segment.end()):
                term = self.term(part.group())
                if term is not None:
                    words.append((term, part.start(), part.end()))
            if words:
                segments.append(words)
        return segments

    def _concept_words(self, text: str) -> Segments:
        """Segments with hyphenated words kept whole where they are one word, and
        one-term expansions written as their acronym (phrases not yet collapsed)."""
        segments: Segments = []
        for segment in _SEGMENT.finditer(text):
            words: list[Word] = []
            for match in _WORD.finditer(text, segment.start(), segment.end()):
                parts = list(_PART.finditer(match.group()))
                lowered = [part.group().casefold() for part in parts]
                if len(parts) > 1 and (
                    lowered[0] in PREFIXES or any(word in STOPWORDS for word in lowered)
                ):
                    term = self.term("".join(lowered).replace("'", "").replace("’", ""))
                    if term is not None:
                        term = self._single.get(term, term)
                        for each in self._expand.get(term, (term,)):
                            words.append((each, match.start(), match.end()))
                    continue
                for part in parts:
                    term = self.term(part.group())
                    if term is not None:
                        start, end = match.start() + part.start(), match.start() + part.end()
                        term = self._single.get(term, term)
                        for each in self._expand.get(term, (term,)):
                            words.append((each, start, end))
            if words:
                segments.append(words)
        return segments

    def _collapse(self, words: list[Word]) -> list[Word]:
        """Expansions (longest first) written as their acronym, spanning the phrase."""
        if not self._phrases or len(words) < 2:
            return words
        out: list[Word] = []
        index = 0
        while index < len(words):
            for size in range(min(self._longest, len(words) - index), 1, -1):
                acronym = self._phrases.get(tuple(w[0] for w in words[index : index + size]))
                if acronym is not None:
                    out.append((acronym, words[index][1], words[index + size - 1][2]))
                    index += size
                    break
            else:
                out.append(words[index])
                index += 1
        return out


def near(first: str, second: str) -> str | None:
    """The near-pair feature of two terms (order-free); None for a repeated term."""
    if first == second:
        return None
    low, high = sorted((first, second))
    return f"{NEAR_MARK}{low} {high}"


def count(reading: Reading, *, surfaces: bool = True) -> TextFeatures:
    """Feature counts of a reading: per feature the larger count of its two readings;
    the length is the plain reading's number of kept words."""
    counts: dict[str, int] = {}
    found: dict[str, str] = {}
    for index, segments in enumerate(reading.streams):
        stream = _count_stream(reading.norm, segments, found if surfaces else None)
        if index == 0:
            counts = stream
        else:
            for feature, value in stream.items():
                if value > counts.get(feature, 0):
                    counts[feature] = value
    length = sum(len(words) for words in reading.plain)
    return TextFeatures(counts, length, found)


def _count_stream(norm: str, segments: Segments, found: dict[str, str] | None) -> dict[str, int]:
    counts: dict[str, int] = {}
    for words in segments:
        # Near pairs: each pair of different terms at most NEAR_WINDOW apart, counted once
        # per position pair ("distilling large language models" holds "~distil model").
        for index in range(1, len(words)):
            term = words[index][0]
            for other in words[max(0, index - NEAR_WINDOW) : index]:
                pair = near(other[0], term)
                if pair is not None:
                    counts[pair] = counts.get(pair, 0) + 1
        previous: Word | None = None
        for term, start, end in words:
            counts[term] = counts.get(term, 0) + 1
            if found is not None and term not in found:
                found[term] = " ".join(norm[start:end].casefold().split())
            if previous is not None:
                bigram = f"{previous[0]} {term}"
                counts[bigram] = counts.get(bigram, 0) + 1
                if found is not None and bigram not in found:
                    found[bigram] = " ".join(norm[previous[1] : end].casefold().split())
            previous = (term, start, end)
    return counts


class Text:
    """One analysed field of a paper (both readings), indexed to find a topic's phrases."""

    __slots__ = ("norm", "positions", "segments")

    def __init__(self, reading: Reading) -> None:
        self.norm = reading.norm
        self.segments = [words for segments in reading.streams for words in segments]
        self.positions: dict[str, list[tuple[int, int]]] = {}
        for s_index, words in enumerate(self.segments):
            for w_index, (term, _, _) in enumerate(words):
                self.positions.setdefault(term, []).append((s_index, w_index))

    def find(self, terms: Sequence[str]) -> str | None:
        """The first occurrence of the consecutive `terms`, as written (lower case)."""
        n = len(terms)
        for s_index, w_index in self.positions.get(terms[0], ()):
            words = self.segments[s_index]
            if w_index + n <= len(words) and all(
                words[w_index + k][0] == terms[k] for k in range(1, n)
            ):
                start, end = words[w_index][1], words[w_index + n - 1][2]
                return " ".join(self.norm[start:end].casefold().split())
        return None


def place(in_title: bool, in_abstract: bool) -> str:
    """Where a word was found, as a why-line says it."""
    if in_title and in_abstract:
        return "title and abstract"
    return "title" if in_title else "abstract"


def explain(
    terms: TopicTerms, fields: Iterable[tuple[str, Text]]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The words of a topic found in a paper, as written there: the longest runs of the
    topic's consecutive words found together (phrases) first, then its remaining single
    words; and where each occurs (the names of the fields it is in, e.g. "title")."""
    texts = list(fields)
    words: list[str] = []
    places: list[str] = []
    covered: set[str] = set()

    def add(run: Sequence[str]) -> bool:
        hits = [(name, text.find(run)) for name, text in texts]
        found = next((surface for _, surface in hits if surface is not None), None)
        if found is None:
            return False
        if found not in words:
            words.append(found)
            names = [name for name, surface in hits if surface is not None]
            places.append(_where(names))
        covered.update(run)
        return True

    def close(run: list[str]) -> None:
        if len(run) > 2 and not add(run):  # the run's bigrams occur, but apart
            for index in range(len(run) - 1):
                add(run[index : index + 2])
        elif len(run) == 2:
            add(run)
        run.clear()

    run: list[str] = []
    for bigram in terms.bigrams:
        pair = bigram.split(" ")
        if all(text.find(pair) is None for _, text in texts):
            close(run)
        elif run and run[-1] == pair[0]:
            run.append(pair[1])
        else:
            close(run)
            run.extend(pair)
    close(run)
    for unigram in terms.unigrams:
        if unigram not in covered:
            add([unigram])
    return tuple(words), tuple(places)


def _where(names: Sequence[str]) -> str:
    if "title" in names and "abstract" in names:
        return "title and abstract"
    if "title" in names:
        return "title"
    if "abstract" in names:
        return "abstract"
    return " and ".join(names)
