"""VADER's scores, computed the way vaderSentiment 3.3.2 computes them, four to five times cheaper.

``SentimentIntensityAnalyzer.polarity_scores`` spends most of its time on bookkeeping,
not on the model: it rebuilds the lower-cased word list for every lexicon word it scores
(so a post costs O(words²)), walks the text one character at a time looking for emoji,
and lower-cases each word again at every look. This module runs the same rules, in the
same order, with the same floating-point operations, over lists built once per post.
The lexicons, booster words, negations and idioms are vaderSentiment's own (read from
the installed package), so the two cannot drift apart; a property test compares them on
thousands of texts, generated and real, and requires identical scores.

Quirks kept on purpose, because the scores must not change: a "but" halves what comes
before it through ``list.index`` (so of two equal scores the first may be halved twice),
the special idioms can set a score to an int, and "least" is checked after the boosters.
"""

from __future__ import annotations

import math
import re
import string
from importlib import resources
from itertools import compress, repeat
from operator import is_not
from typing import Any

from vaderSentiment import vaderSentiment as _reference  # type: ignore[import-untyped]

__all__ = ["neutral", "polarity_scores"]

_BOOSTERS: dict[str, float] = _reference.BOOSTER_DICT
_SPECIAL: dict[str, Any] = _reference.SPECIAL_CASES
_NEGATE = frozenset(_reference.NEGATE)
_N_SCALAR: float = _reference.N_SCALAR
_C_INCR: float = _reference.C_INCR
_PUNCTUATION = string.punctuation
# Every word of a special idiom or a multi-word booster: an idiom can only match where one
# of the words around a scored word is one of these (tokens hold no whitespace).
_IDIOM_WORDS = frozenset(w for key in [*_SPECIAL, *(k for k in _BOOSTERS if " " in k)] for w in key.split())


def _read(name: str) -> str:
    return (resources.files("vaderSentiment") / name).read_text(encoding="utf-8")


def _lexicon() -> dict[str, float]:
    # As SentimentIntensityAnalyzer.make_lex_dict reads it.
    out: dict[str, float] = {}
    for line in _read("vader_lexicon.txt").rstrip("\n").split("\n"):
        if line:
            word, measure = line.strip().split("\t")[0:2]
            out[word] = float(measure)
    return out


def _emojis() -> dict[str, str]:
    # As make_emoji_dict reads it; only one-character keys can ever match (the reference
    # compares the text one character at a time), so only those are kept.
    out: dict[str, str] = {}
    for line in _read("emoji_utf8_lexicon.txt").rstrip("\n").split("\n"):
        emoji, description = line.strip().split("\t")[0:2]
        out[emoji] = description
    return {k: v for k, v in out.items() if len(k) == 1}


_LEXICON = _lexicon()
_EMOJIS = _emojis()
_EMOJI = re.compile("[" + "".join(re.escape(c) for c in sorted(_EMOJIS)) + "]")
_ASCII_EMOJI = any(c.isascii() for c in _EMOJIS)  # none today: an ASCII text then has no emoji


# Every word a rule below looks at besides the lexicon's: a token whose word is none of
# these (nor a booster, negation or idiom word) only counts as one more neutral word.
_RULE_WORDS = frozenset(
    ["no", "or", "nor", "never", "so", "this", "without", "doubt", "least", "at", "very", "kind", "of", "but"]
)
_NOT_NEUTRAL = frozenset(_LEXICON).union(_BOOSTERS, _NEGATE, _IDIOM_WORDS, _RULE_WORDS)


def neutral(token: str) -> bool:
    """True when VADER reads ``token`` (no whitespace, no emoji) as one neutral word and
    nothing more: not in the lexicon, not a booster, negation, idiom word or a word a rule
    names, not in capitals. Such tokens can stand in for each other without changing any score."""
    word = token.strip(_PUNCTUATION)
    if len(word) <= 2:  # as polarity_scores: an emoticon-like token stays whole
        word = token
    low = word.lower()
    return not word.isupper() and "n't" not in low and low not in _NOT_NEUTRAL


def _replace_emoji(text: str) -> str:
    """Each emoji -> its description, with a space before it unless the text has one there."""

    def describe(m: re.Match[str]) -> str:
        at = m.start()
        return _EMOJIS[m.group()] if at == 0 or text[at - 1] == " " else " " + _EMOJIS[m.group()]

    return _EMOJI.sub(describe, text)


def _negated(word: str) -> bool:
    return word in _NEGATE or "n't" in word


def _idioms(valence: Any, low: list[str], i: int) -> Any:
    """_special_idioms_check of the reference (called with i > 2)."""
    onezero = f"{low[i - 1]} {low[i]}"
    twoonezero = f"{low[i - 2]} {low[i - 1]} {low[i]}"
    twoone = f"{low[i - 2]} {low[i - 1]}"
    threetwoone = f"{low[i - 3]} {low[i - 2]} {low[i - 1]}"
    threetwo = f"{low[i - 3]} {low[i - 2]}"
    for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
        if seq in _SPECIAL:
            valence = _SPECIAL[seq]
            break
    if len(low) - 1 > i:
        zeroone = f"{low[i]} {low[i + 1]}"
        if zeroone in _SPECIAL:
            valence = _SPECIAL[zeroone]
    if len(low) - 1 > i + 1:
        zeroonetwo = f"{low[i]} {low[i + 1]} {low[i + 2]}"
        if zeroonetwo in _SPECIAL:
            valence = _SPECIAL[zeroonetwo]
    for n_gram in (threetwoone, threetwo, twoone):
        if n_gram in _BOOSTERS:
            valence = valence + _BOOSTERS[n_gram]
    return valence


def _valence(words: list[str], low: list[str], i: int, is_cap_diff: bool) -> Any:
    """sentiment_valence of the reference for a word in the lexicon."""
    lexicon = _LEXICON
    item_low = low[i]
    valence: Any = lexicon[item_low]
    n = len(words)
    if item_low == "no" and i != n - 1 and low[i + 1] in lexicon:
        valence = 0.0
    if (
        (i > 0 and low[i - 1] == "no")
        or (i > 1 and low[i - 2] == "no")
        or (i > 2 and low[i - 3] == "no" and low[i - 1] in ("or", "nor"))
    ):
        valence = lexicon[item_low] * _N_SCALAR
    if is_cap_diff and words[i].isupper():
        if valence > 0:
            valence += _C_INCR
        else:
            valence -= _C_INCR
    for start_i in range(3):
        j = i - (start_i + 1)
        if i > start_i and low[j] not in lexicon:
            # scalar_inc_dec
            s = 0.0
            before = low[j]
            if before in _BOOSTERS:
                s = _BOOSTERS[before]
                if valence < 0:
                    s *= -1
                if is_cap_diff and words[j].isupper():
                    if valence > 0:
                        s += _C_INCR
                    else:
                        s -= _C_INCR
            if start_i == 1 and s != 0:
                s = s * 0.95
            if start_i == 2 and s != 0:
                s = s * 0.9
            valence = valence + s
            # _negation_check
            if start_i == 0:
                if _negated(low[i - 1]):
                    valence = valence * _N_SCALAR
            elif start_i == 1:
                if low[i - 2] == "never" and (low[i - 1] == "so" or low[i - 1] == "this"):
                    valence = valence * 1.25
                elif low[i - 2] == "without" and low[i - 1] == "doubt":
                    pass
                elif _negated(low[i - 2]):
                    valence = valence * _N_SCALAR
            else:
                if (low[i - 3] == "never" and (low[i - 2] == "so" or low[i - 2] == "this")) or (
                    low[i - 1] == "so" or low[i - 1] == "this"
                ):
                    valence = valence * 1.25
                elif low[i - 3] == "without" and (low[i - 2] == "doubt" or low[i - 1] == "doubt"):
                    pass
                elif _negated(low[i - 3]):
                    valence = valence * _N_SCALAR
                if not _IDIOM_WORDS.isdisjoint(low[i - 3 : i + 3]):
                    valence = _idioms(valence, low, i)
    # _least_check
    if i > 1 and low[i - 1] not in lexicon and low[i - 1] == "least":
        if low[i - 2] != "at" and low[i - 2] != "very":
            valence = valence * _N_SCALAR
    elif i > 0 and low[i - 1] not in lexicon and low[i - 1] == "least":
        valence = valence * _N_SCALAR
    return valence


def _but(low: list[str], sentiments: list[Any]) -> list[Any]:
    """_but_check of the reference, quirks and all (for a post with "but" in it)."""
    bi = low.index("but")
    for sentiment in sentiments:
        si = sentiments.index(sentiment)
        if si < bi:
            sentiments.pop(si)
            sentiments.insert(si, sentiment * 0.5)
        elif si > bi:
            sentiments.pop(si)
            sentiments.insert(si, sentiment * 1.5)
    return sentiments


def polarity_scores(text: str) -> dict[str, float]:
    """``{"neg", "neu", "pos", "compound"}``, equal to vaderSentiment's ``polarity_scores(text)``."""
    if (_ASCII_EMOJI or not text.isascii()) and _EMOJI.search(text) is not None:
        text = _replace_emoji(text)
    text = text.strip()
    # Per word, in C where it can be: punctuation stripped unless that leaves two
    # characters or fewer (an emoticon such as ":)" or "<3" stays whole), lower case, caps.
    tokens = text.split()
    n = len(tokens)
    words = list(map(str.strip, tokens, repeat(_PUNCTUATION)))  # the same str when nothing is cut
    for i in compress(range(n), map(is_not, words, tokens)):
        if len(words[i]) <= 2:
            words[i] = tokens[i]
    low = list(map(str.lower, words))
    caps = sum(map(str.isupper, words))
    is_cap_diff = 0 < n - caps < n

    # Only words in the lexicon score; boosters and "kind of" score 0 themselves.
    sentiments: list[Any] = [0] * n
    boosters = _BOOSTERS
    for i in compress(range(n), map(_LEXICON.__contains__, low)):
        item_low = low[i]
        if item_low in boosters or (item_low == "kind" and i < n - 1 and low[i + 1] == "of"):
            continue
        sentiments[i] = _valence(words, low, i, is_cap_diff)
    if "but" in low:
        sentiments = _but(low, sentiments)
    return _score(sentiments, text)


def _score(sentiments: list[Any], text: str) -> dict[str, float]:
    """score_valence of the reference."""
    if sentiments:
        sum_s = float(sum(sentiments))
        ep_count = min(text.count("!"), 4)
        qm_count = text.count("?")
        qm_amplifier: float = 0
        if qm_count > 1:
            qm_amplifier = qm_count * 0.18 if qm_count <= 3 else 0.96
        punct_emph_amplifier = ep_count * 0.292 + qm_amplifier
        if sum_s > 0:
            sum_s += punct_emph_amplifier
        elif sum_s < 0:
            sum_s -= punct_emph_amplifier
        compound = min(1.0, max(-1.0, sum_s / math.sqrt((sum_s * sum_s) + 15)))
        # _sift_sentiment_scores: same additions in the same order, over the few non-zero scores.
        scored = [s for s in sentiments if s]
        neu_count = len(sentiments) - len(scored)
        pos_sum = neg_sum = 0.0
        for s in scored:
            if s > 0:
                pos_sum += float(s) + 1
            else:
                neg_sum += float(s) - 1
        if pos_sum > math.fabs(neg_sum):
            pos_sum += punct_emph_amplifier
        elif pos_sum < math.fabs(neg_sum):
            neg_sum -= punct_emph_amplifier
        total = pos_sum + math.fabs(neg_sum) + neu_count
        pos = math.fabs(pos_sum / total)
        neg = math.fabs(neg_sum / total)
        neu = math.fabs(neu_count / total)
    else:
        compound = pos = neg = neu = 0.0
    return {"neg": round(neg, 3), "neu": round(neu, 3), "pos": round(pos, 3), "compound": round(compound, 4)}
