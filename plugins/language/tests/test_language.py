# ruff: noqa: RUF001, RUF003  (Cyrillic and typographic letters here are meant)
import asyncio

import pytest
import scrm_language.plugin
from scrm.plugins import PluginHost
from scrm_language import LanguageDetector, detector_from_env
from scrm_language import detector as detector_module


def detect(text: str) -> str | None:
    host = PluginHost(env={})
    host.register(scrm_language.plugin, "language")
    result: str | None = asyncio.run(host.hooks.detect_language(text))
    return result


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("My kettle stopped working after two days, I want a refund", "en"),
        ("Ma bouilloire ne fonctionne plus après deux jours, je veux être remboursé", "fr"),
        ("Mein Wasserkocher ist nach zwei Tagen kaputt gegangen", "de"),
        ("¿El X200 funciona con placas de inducción?", "es"),
        ("Minha chaleira parou de funcionar depois de dois dias", "pt"),
        ("Il mio bollitore ha smesso di funzionare dopo due giorni", "it"),
        ("Mijn waterkoker werkt niet meer na twee dagen", "nl"),
        ("Мой чайник перестал работать через два дня", "ru"),
        ("二日後にケトルが壊れました。返金してください。", "ja"),
        ("이틀 만에 주전자가 고장났어요. 환불해 주세요.", "ko"),
    ],
)
def test_detects_the_language_as_a_bcp47_code(text: str, language: str) -> None:
    assert detect(text) == language


@pytest.mark.parametrize("text", ["👍👍👍", "", "https://t.co/abc123 #ad @acme", "12345 678", "!!! ???"])
def test_abstains_on_texts_without_language(text: str) -> None:
    assert detect(text) is None


@pytest.mark.parametrize(
    ("text", "language"),
    [("草", "zh"), ("ありがとう", "ja"), ("감사", "ko"), ("谢谢\uff01", "zh"), ("Ευχαριστώ", "el"), ("תודה", "he")],
)
def test_scripts_of_one_language_need_no_minimum_length(text: str, language: str) -> None:
    assert detect(text) == language


def test_short_latin_posts_get_a_language() -> None:
    # py3langid needed 8 letters; these are what people write.
    assert detect("merci beaucoup !! 🙏") == "fr"
    assert detect("vielen Dank!! 🙏") == "de"
    assert detect("muchas gracias!! 🙏") == "es"


def test_mentions_links_and_hashtags_do_not_count_as_language() -> None:
    assert detect("@AcmeSupport @AcmeHelp https://acme.example/orders/123 #AcmeFail") is None
    assert detect("@AcmeSupport je suis très déçu du service client https://acme.example #fail") == "fr"


def test_low_confidence_abstains() -> None:
    strict = LanguageDetector(min_confidence=0.999)
    assert strict.detect("ok") is None
    assert LanguageDetector().detect("worst customer service ever") == "en"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        # fastText alone is unsure or wrong on these; the words settle them.
        ("jammer", "nl"),
        ("klopt", "nl"),
        ("tot morgen", "nl"),
        ("valeu galera", "pt"),
        ("kkkkkk ri muito", "pt"),
        ("mdr trop drôle", "fr"),
        ("krass 😂", "de"),
        ("boh", "it"),
        ("jajajaja no puedo", "es"),
        ("lmaooo", "en"),
        ("so proud of u", "en"),
    ],
)
def test_short_slang_gets_its_language_from_the_words(text: str, language: str) -> None:
    assert detect(text) == language


def test_repeated_letters_are_read_as_the_word() -> None:
    assert detect("me encantaaa 😍") == "es"
    assert detect("yesss finally") == "en"


@pytest.mark.parametrize(
    ("text", "language"),
    [("до завтра", "ru"), ("дякую, до завтра", "uk"), ("ура пятница", "ru"), ("ахахах", "ru")],
)
def test_cyrillic_letters_rule_languages_in_and_out(text: str, language: str) -> None:
    # Ukrainian needs one of і ї є ґ; without them "до завтра" is Russian, the far commoner.
    assert detect(text) == language


@pytest.mark.parametrize(
    ("text", "language"), [("神対応", "ja"), ("東京駅", "ja"), ("客服太差了", "zh"), ("價格太貴了", "zh")]
)
def test_kanji_only_japanese_writes_make_a_han_post_japanese(text: str, language: str) -> None:
    assert detect(text) == language


def test_repeated_texts_come_from_the_cache_with_the_same_answer() -> None:
    detector = LanguageDetector(cache_size=2)
    first = detector.detect("merci beaucoup")
    calls = []
    detector._detect = lambda text: calls.append(text) or "xx"  # type: ignore[method-assign]
    assert detector.detect("merci beaucoup") == first == "fr"
    assert calls == []
    detector.detect("one"), detector.detect("two")  # full: emptied, not grown
    assert len(detector._cache) <= 2
    assert LanguageDetector(cache_size=0).detect("merci beaucoup") == "fr"


def test_replies_that_differ_only_by_their_handles_are_read_once() -> None:
    detector = LanguageDetector()
    first = detector.detect("@ana@mastodon.social muchas gracias por todo")
    calls: list[str] = []
    read = detector._detect
    detector._detect = lambda text: calls.append(text) or read(text)  # type: ignore[method-assign]
    assert detector.detect("@bo muchas gracias por todo") == first == "es"
    assert detector.detect("@carla.b@bsky.social muchas gracias por todo") == "es"
    assert calls == []
    # A different text after the handles is read, with the same answer as without the cache.
    assert detector.detect("@bo thank you so much") == LanguageDetector(cache_size=0).detect("thank you so much")
    assert len(calls) == 1


@pytest.mark.parametrize(
    "text", ["@a@b.c x", "@@b", "#@x y", "@https://x.y/@z w", "www.a.b @c #d e", "a@b#c", "http", "@-x", "#"]
)
def test_the_text_read_is_read_the_same_way_again(text: str) -> None:
    # The cache keys a text both as it came and as it is read: one key, one answer.
    readable = detector_module._readable(text)
    assert detector_module._readable(readable) == readable


def test_candidates_narrow_the_choice() -> None:
    only = LanguageDetector(candidates=["en", "fr", "de"])
    assert only.detect("muchas gracias por todo") in ("en", "fr", "de", None)
    assert only.detect("Bonjour, je voudrais un remboursement") == "fr"
    assert LanguageDetector(candidates=["en", "zh"]).detect("ありがとう") != "ja"


def test_settings_come_from_the_environment() -> None:
    detector = detector_from_env({"SCRM_LANGUAGE_MIN_CONFIDENCE": "0.5", "SCRM_LANGUAGE_CANDIDATES": "en, FR"})
    assert detector.min_confidence == 0.5
    assert detector.languages == {"en", "fr"}
    assert detector.detect("Bonjour, je voudrais un remboursement") == "fr"


def test_operator_languages_are_always_weighed() -> None:
    # "boh" is Italian slang fastText does not know; an Italian deployment says so.
    detector = detector_from_env({"SCRM_LANGUAGE_CANDIDATES": "it,en"})
    assert detector.detect("boh") == "it"
    assert detector.detect("ma dai") == "it"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SCRM_LANGUAGE_CANDIDATES": "en,english"}, "SCRM_LANGUAGE_CANDIDATES"),
        ({"SCRM_LANGUAGE_MIN_CONFIDENCE": "high"}, "SCRM_LANGUAGE_MIN_CONFIDENCE"),
        ({"SCRM_LANGUAGE_MIN_CONFIDENCE": "2"}, "SCRM_LANGUAGE_MIN_CONFIDENCE"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        detector_from_env(env)


def test_bad_utf8_after_cleaning_does_not_raise() -> None:
    assert detect("caf\udce9 au lait s'il vous plaît") in ("fr", None)


def test_same_text_same_answer() -> None:
    text = "Where can I buy the X200 in Lisbon"
    assert {detect(text) for _ in range(5)} == {"en"}


def test_installed_entry_point_loads() -> None:
    host = PluginHost(env={"SCRM_LOAD_PLUGINS": "language"}).load()
    assert host.plugins["language"].error is None
    assert host.plugins["language"].hooks == ["scrm_detect_language"]


def test_answers_from_the_caches_are_the_uncached_answers() -> None:
    # Texts that differ only by digits, punctuation, emoji or handles share a cache entry
    # (the text as it is read, then as fastText reads it); each must answer as it would alone.
    bases = [
        "still waiting for my refund, order {n}. {d} days now",
        "@ana{n} merci beaucoup!!! {d}",
        "Wo ist meine Bestellung {n}? {d} Tage!",
        "¿dónde está mi pedido {n}? 😡 {d}",
        "ok {n}",
        "{d}!!",
        "жду заказ {n} уже {d} дней",
        "チケット {n} ありがとう {d}",
    ]
    texts = [b.format(n=n, d=d) for b in bases for n in (1, 22, 333) for d in ("", "7", "?!", "🙂")]
    cached = LanguageDetector()
    uncached = LanguageDetector(cache_size=0)
    for order in (texts, texts[::-1]):
        assert [cached.detect(t) for t in order] == [uncached.detect(t) for t in order]
    assert len(cached._cleaned_cache) < len(set(texts)) / 3  # what the second cache shares
