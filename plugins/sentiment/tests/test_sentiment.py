import asyncio
import io

import pytest
import scrm_sentiment
import scrm_sentiment.plugin
from pydantic import ValidationError
from scrm.plugins import PluginHost

from scrm_core import Sentiment, hookimpl


def analyze(text: str, language: str | None = "en") -> Sentiment | None:
    host = PluginHost(env={})
    host.register(scrm_sentiment.plugin, "sentiment")
    result: Sentiment | None = asyncio.run(host.hooks.analyze_sentiment(text, language))
    return result


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Love my new kettle, thank you!", "positive"),
        ("Still waiting for my refund. Worst service ever.", "negative"),
        ("The parcel arrived on Tuesday.", "neutral"),
        ("The product is not good", "negative"),  # negation
        ("great 😍", "positive"),  # emoji
        ("ugh :(", "negative"),  # emoticon and slang
    ],
)
def test_labels_social_text(text: str, label: str) -> None:
    result = analyze(text)
    assert result is not None
    assert result.label == label
    assert -1.0 <= result.score <= 1.0


def test_label_thresholds_are_vaders_documented_ones() -> None:
    assert scrm_sentiment.label_for(0.05) == "positive"
    assert scrm_sentiment.label_for(0.0499) == "neutral"
    assert scrm_sentiment.label_for(-0.0499) == "neutral"
    assert scrm_sentiment.label_for(-0.05) == "negative"


def test_vaders_capitals_and_exclamation_marks_reach_the_model() -> None:
    # VADER's intensifiers feed the stacked model through its compound score.
    assert scrm_sentiment.compound_score("this is BAD!!!") < scrm_sentiment.compound_score("this is bad") < 0
    loud = analyze("this is BAD!!!")
    assert loud is not None and loud.label == "negative" and loud.score < -0.5


def test_score_is_positive_minus_negative_probability() -> None:
    from scrm_sentiment.analyzer import model, vader_scores

    text = "Still waiting for my refund. Worst service ever."
    p_negative, _, p_positive = model().probabilities(text, vader_scores(text))
    result = analyze(text)
    assert result is not None and result.score == pytest.approx(p_positive - p_negative, abs=1e-3)


def test_the_model_file_reads_back_and_refuses_other_shapes() -> None:
    import numpy as np
    from scrm_sentiment.analyzer import model
    from scrm_sentiment.stacked import StackedModel

    m = model()
    again = StackedModel.from_bytes(m.to_bytes())
    text = "meh, it works I guess"
    assert again.probabilities(text, {"neg": 0, "neu": 1, "pos": 0, "compound": 0}) == pytest.approx(
        m.probabilities(text, {"neg": 0, "neu": 1, "pos": 0, "compound": 0})
    )
    data = dict(np.load(io.BytesIO(m.to_bytes()), allow_pickle=False))
    data["weights"] = data["weights"][:, :2]
    buffer = io.BytesIO()
    np.savez(buffer, **data)
    with pytest.raises(ValueError, match="not an scrm-sentiment model"):
        StackedModel.from_bytes(buffer.getvalue())
    assert np.isfinite(m.weights).all()


@pytest.mark.parametrize("language", ["en", "en-GB", "EN-us", None])
def test_english_or_unknown_language_is_analysed(language: str | None) -> None:
    assert analyze("I love it", language) is not None


@pytest.mark.parametrize("language", ["fr", "de", "pt-BR"])
def test_other_languages_are_left_to_other_plugins(language: str) -> None:
    assert analyze("Le service client est nul", language) is None


class FrenchSentiment:
    @hookimpl
    def scrm_analyze_sentiment(self, text: str, language: str | None) -> Sentiment | None:
        return Sentiment(score=-0.7, label="negative") if language == "fr" else None


def test_another_plugin_answers_when_vader_abstains() -> None:
    host = PluginHost(env={})
    host.register(scrm_sentiment.plugin, "sentiment")
    host.register(FrenchSentiment(), "french")
    result = asyncio.run(host.hooks.analyze_sentiment("c'est nul", "fr"))
    assert result == Sentiment(score=-0.7, label="negative")


def test_blank_text_has_no_sentiment() -> None:
    assert analyze("   ") is None


def test_a_shared_result_cannot_be_changed_through_one_message() -> None:
    # One frozen Sentiment per text (a cache hit hands out the same object), so no
    # message can change what another message's sentiment says.
    first, second = analyze("I love it"), analyze("I love it")
    assert first is not None and first is second
    with pytest.raises(ValidationError):
        first.label = "negative"  # type: ignore[misc]
    assert second == Sentiment(score=first.score, label="positive")


def test_installed_entry_point_loads() -> None:
    host = PluginHost(env={"SCRM_LOAD_PLUGINS": "sentiment"}).load()
    assert host.plugins["sentiment"].error is None
    assert host.plugins["sentiment"].hooks == ["scrm_analyze_sentiment"]
