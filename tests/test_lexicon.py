"""Acronym definitions found in abstracts, and the lexicon learned from a pool."""

from __future__ import annotations

from newsletter.lexicon import TABLE, Lexicon, acronym_form, definitions


def test_definitions_follow_the_letters_of_the_acronym() -> None:
    text = (
        "We train a sparse Mixture-of-Experts (MoE) model and a Vision Transformer (ViT). "
        "Automatic speech recognition (ASR) and text-to-speech (TTS) systems; "
        "large language models (LLMs) and Llama (LLaMA) weights."
    )
    found = {acronym: expansion for acronym, expansion, _, _ in definitions(text)}
    assert found == {
        "moe": "mixture-of-experts",
        "vit": "vision transformer",
        "asr": "automatic speech recognition",
        "tts": "text-to-speech",
        "llm": "large language models",
    }  # "Llama (LLaMA)" is a name, not an expansion
    start, end = next((s, e) for a, _, s, e in definitions(text) if a == "vit")
    assert text[start:end] == "(ViT)"


def test_acronym_forms() -> None:
    assert acronym_form("LLMs") == "llm"
    assert acronym_form("MoE") == "moe"
    assert acronym_form("T2I") == "t2i"
    assert acronym_form("Mixture") is None
    assert acronym_form("word") is None


def test_the_lexicon_keeps_the_table_and_the_majority_meaning() -> None:
    texts = [
        "We study direct preference optimization (DPO).",
        "A knowledge base question answering (KBQA) system.",
        "Contrastive learning (CL) of features.",
        "Continual learning (CL) without forgetting.",
        "Continual learning (CL) with replay.",
        "Two readings: reading one (RO).",
        "Two readings: random order (RO).",
    ]
    lexicon = Lexicon.learn(texts)
    assert lexicon.expansions["kbqa"] == ("knowledge base question answering",)
    assert lexicon.expansions["cl"] == ("continual learning",)  # two papers to one
    assert "ro" not in lexicon.expansions  # a tie: no meaning is kept
    assert lexicon.expansions["dpo"] == TABLE["dpo"]  # the table settles its own acronyms
    assert lexicon.expansions["moe"] == TABLE["moe"]  # and needs no definition in the pool
