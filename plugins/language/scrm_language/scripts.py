# ruff: noqa: RUF002  (Cyrillic and typographic letters here are meant)
"""What the writing system alone says: scripts that belong to one language, and letters
that rule languages in or out.

These are facts of orthography, not statistics: kana is only written in Japanese,
``і``/``ї``/``є``/``ґ`` only in Ukrainian (and ``і`` in Belarusian), ``ы`` never in
Ukrainian. They decide at any length, which is where statistical models are weakest.
"""

from __future__ import annotations

import re

__all__ = ["CYRILLIC_LANGUAGES", "has_cyrillic", "lacks_own_letters", "ruled_out_cyrillic", "script_language"]

# One script, one language; checked in this order (kana before Han: Japanese mixes both).
_SCRIPTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]"), "ko"),
    (re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]"), "ja"),
    (re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]"), "zh"),
    (re.compile(r"[\u0370-\u03ff]"), "el"),
    (re.compile(r"[\u0590-\u05ff]"), "he"),
    (re.compile(r"[\u0e00-\u0e7f]"), "th"),
    (re.compile(r"[\u10a0-\u10ff]"), "ka"),
    (re.compile(r"[\u0530-\u058f]"), "hy"),
)
_ANY_SCRIPT = re.compile("|".join(p.pattern for p, _ in _SCRIPTS))
# Kanji written only in Japanese: shinjitai forms that Chinese writes otherwise (対 for
# 对/對, 応 for 应/應, 駅 for 站/驛 ...) and kokuji (込, 働, 畑). A post in Han characters
# with one of these is Japanese even without kana (神対応, 東京駅).
_JAPANESE_KANJI = re.compile(
    "[対応駅気楽広売読変戦単帰関黒歩円図実発県労営様込働峠枠畑辻栃匂塩済渋焼転伝険検験仏拝払悩覚観権歓勧"
    "歯齢巻圏稲薬恵径経軽鉄舗沢訳駆剤隣髪繊両満霊縄獣猟桜缶畳乗雑姫娯戻涙頼粋砕酔斎斉剣倹]"
)
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")

#: Languages written in Cyrillic that scrm answers with (lid.176 codes).
CYRILLIC_LANGUAGES = frozenset(["ru", "uk", "bg", "sr", "mk", "be", "kk", "ky", "mn", "tg", "tt", "ba"])
# A Cyrillic language is ruled out by a letter it never uses, and unlikely when the post
# has none of its own letters (letters Russian does not use).
_OWN_LETTERS = {
    "uk": re.compile("[іїєґ]"),
    "be": re.compile("[ўі]"),
    "sr": re.compile("[јљњћђ]"),
    "mk": re.compile("[јљњѓќѕ]"),
    "kk": re.compile("[әғқңөұүһі]"),
    "ky": re.compile("[ңөү]"),
    "tg": re.compile("[ғӣқӯҳҷ]"),
    "tt": re.compile("[әөүҗңһ]"),
    "ba": re.compile("[ғҙҡңөҫүһә]"),
    "mn": re.compile("[өү]"),
}
_NEVER = {
    "uk": re.compile("[ыэъё]"),
    "be": re.compile("[щъи]"),
    "bg": re.compile("[ыэё]"),
}


def script_language(text: str, allowed: frozenset[str]) -> str | None:
    """The language the script alone settles (``ja`` for kana, ``ko`` for Hangul ...), or None."""
    if not _ANY_SCRIPT.search(text):
        return None
    for pattern, language in _SCRIPTS:
        if pattern.search(text):
            if language == "zh" and "ja" in allowed and _JAPANESE_KANJI.search(text):
                return "ja"
            if language in allowed:
                return language
    return None


def has_cyrillic(text: str) -> bool:
    return _CYRILLIC.search(text) is not None


def ruled_out_cyrillic(language: str, text: str) -> bool:
    """True when a Cyrillic post has a letter ``language`` never uses (``ы`` for Ukrainian)."""
    never = _NEVER.get(language)
    return never is not None and never.search(text) is not None


def lacks_own_letters(language: str, text: str) -> bool:
    """True when a Cyrillic post has none of the letters that set ``language`` apart from
    Russian (``і``, ``ї``, ``є``, ``ґ`` for Ukrainian): likely for three words, rare for ten."""
    own = _OWN_LETTERS.get(language)
    return own is not None and own.search(text) is None
