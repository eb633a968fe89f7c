"""Text analysis: an acronym and its expansions are one term, hyphenated words read whole
where people also write them as one word, and an expansion never hides a concept in it."""

from __future__ import annotations

from newsletter.analysis import Analyzer
from newsletter.lexicon import Lexicon


def analyzer(*texts: str) -> Analyzer:
    return Analyzer(Lexicon.learn(texts))


def test_every_written_form_of_an_acronym_is_one_term() -> None:
    a = analyzer()
    for topic in ("MoE", "mixture of experts", "Mixture-of-Experts", "MoEs"):
        assert a.topic_terms(topic).unigrams == ("moe",)
    assert a.topic_terms("LLM distillation").unigrams == ("llm", "distil")
    counts = a.features("Distilling large language models (LLMs) into sparse MoE layers").counts
    assert counts["llm"] == 1 and counts["moe"] == 1
    assert counts["~distil llm"] == 1  # the expansion sits where the phrase was
    assert counts["spars moe"] == 1  # the defining bracket does not split the phrase


def test_hyphenated_words_are_one_word_where_people_write_them_so() -> None:
    a = analyzer()
    assert a.topic_terms("pre-training data").unigrams == ("pretrain", "data")
    assert a.features("Pretraining data matters").counts["pretrain data"] == 1
    assert a.features("Pre-training data matters").counts["pretrain data"] == 1
    # "in-context" is one word: "context learning" alone is not in-context learning.
    assert a.topic_terms("in-context learning").unigrams == ("icl",)
    assert "icl" not in a.features("We use context learning rates").counts
    # Other compounds keep their parts: "token-level" has "token".
    assert "token" in a.features("token-level distillation").counts


def test_a_longer_expansion_keeps_the_concepts_inside_it() -> None:
    a = analyzer("A commonsense knowledge graph (CKG) distilled from a model.")
    assert a.lexicon.expansions["ckg"] == ("commonsense knowledge graph",)
    title = a.features("Snowman: A Chinese Commonsense Knowledge Graph")
    assert title.counts["kg"] == 1  # still a knowledge graph for "knowledge graphs"
    assert a.features("CKG completion").counts["kg"] == 1  # the acronym reads as its terms
    assert a.topic_terms("knowledge graphs").unigrams == ("kg",)


def test_surfaces_are_written_forms() -> None:
    features = analyzer().features("Sparse Mixture-of-Experts layers")
    assert features.surfaces["moe"] == "mixture-of-experts"
    assert features.surfaces["spars moe"] == "sparse mixture-of-experts"
