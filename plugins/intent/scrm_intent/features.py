"""What the intent model sees of a post: sparse string features, the same at training and at run time.

One function, :func:`features`, turns a text (and the sentiment label scrm already
found, if any) into a list of feature strings:

* word unigrams and bigrams (``w:refund``, ``b:charged|twice``);
* character 3- and 4-grams inside each word, with its edges (``c:<ref``, ``c:und>``):
  typos, inflections and languages the training data has few examples of still share
  most of them;
* cross-language cues from a small lexicon (``x:waiting`` for "waiting", "esperando",
  "j'attends", "warte"...): what the model learns from an English complaint about
  waiting then also counts for a German one;
* the shape of the post: a question mark at the end, "!!!", links, @mentions at the
  start (addressed to someone), long digit runs (order numbers), money, emoji, how long;
* the sentiment label (``s:negative``) when the sentiment plugin gave one, so VADER's
  7,500-word lexicon informs intent where the training data has no example.

Names of people and brands carry no intent, so handles become ``@``, links ``<url>``
and digit runs ``0``; what a post *is* (a question to a brand, a link farm) stays.

Pure Python and ``re``, ~20 µs for a tweet: it runs once per message on the hot path.
"""

from __future__ import annotations

import re
import unicodedata
from itertools import pairwise

__all__ = ["VERSION", "features", "normalise", "reading", "split_features", "word_features"]

#: Bumped whenever the features change: a model trained on other features is refused.
VERSION = 1

_URL = re.compile(
    r"(?:https?://|www\.)\S+|[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|xyz|top|info|co|shop|live|club|gg"
    r"|ru|biz|me|ly|link|site|online|app|cc|us|uk|de|fr|es|pt|br)(?:/\S*)?",
    re.IGNORECASE,
)
_MENTION = re.compile(r"@(?<![\w@]@)\w[\w.]*")  # (?<![\w@])@..., searched from each "@"
_DIGITS = re.compile(r"\d+(?:[.,:]\d+)*")
_MONEY = re.compile(r"[$€£¥₹]|\b(?:usd|eur|gbp|brl|r\$|dollars?|euros?|reais|pounds?)\b")
# Words (letters, apostrophes inside), runs of ? or !, and single emoji/pictographs.
_TOKEN = re.compile(
    r"[^\W\d_](?:[^\W\d_]|['’][^\W\d_])*|0|<url>|@|#|[?!¿¡]+|[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B50]"  # noqa: RUF001 (the typographic apostrophe people type)
)
_EMOJI = re.compile(r"[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B50]")
_NOISE = frozenset({"<url>", "@", "#"})
_LONG_DIGITS = re.compile(r"\d{5,}")

# Cross-language cues: stems that open a word, in English, Spanish, Portuguese, French,
# German (and Italian, Dutch where cheap). Written for this model (see training/README.md).
_CUES: dict[str, tuple[str, ...]] = {
    "waiting": ("wait", "esper", "aguard", "attend", "atten", "wart", "seit=", "aspett", "wacht"),
    "refund": (
        "refund",
        "reembol",
        "rembours",
        "erstatt",
        "rimbors",
        "estorn",
        "devolu",
        "zurückerstatt",
        "terugbetal",
    ),
    "charged": ("charg", "cobr", "débit", "debit", "prélev", "prelev", "abgebucht", "abbuch", "berechn", "addebit"),
    "broken": (
        "broke",
        "broken",
        "defect",
        "faulty",
        "roto",
        "rota",
        "quebr",
        "cass",
        "kaputt",
        "defekt",
        "stopp",
        "crash",
        "plant",
        "stürzt",
        "absturz",
        "leak",
        "fuit",
        "pierde",
        "vaza",
        "leck",
        "rott",
    ),
    "late": ("late=", "delay", "retras", "atras", "retard", "verspät", "ritard", "vertrag"),
    "cancel": ("cancel", "annul", "stornier", "gestrichen", "résili", "resili", "kündig", "opzeg"),
    "nobody": ("nobody", "no one", "nadie", "ninguém", "ninguem", "personne", "niemand", "nessuno"),
    "never": ("never", "nunca", "jamais", "nie=", "niemals", "mai=", "nooit"),
    "not": (
        "not=",
        "no=",
        "não=",
        "nao=",
        "pas=",
        "nicht=",
        "kein",
        "non=",
        "niet=",
        "n't",
        "ne=",
        "sin=",
        "sem=",
        "sans=",
        "ohne=",
    ),
    "worst": (
        "worst",
        "terrible",
        "awful",
        "horrible",
        "pésim",
        "péssim",
        "horrív",
        "nul=",
        "schlimm",
        "schlecht",
        "mies",
        "peggior",
        "slecht",
        "vergonh",
        "vergüenz",
        "honte",
        "peinlich",
    ),
    "money_back": ("money back", "dinero", "dinheiro", "argent", "geld", "soldi"),
    "thanks": ("thank", "thx", "gracias", "obrigad", "valeu", "merci", "danke", "grazie", "bedankt"),
    "love": (
        "love",
        "encant",
        "amo=",
        "amei=",
        "ador",
        "liebe",
        "toll=",
        "genial",
        "geni",
        "increíb",
        "incríve",
        "incroy",
        "great",
        "awesome",
        "amazing",
        "excel",
        "perfect",
        "perfeit",
        "parfait",
        "perfekt",
        "brilliant",
        "fantas",
        "best",
        "mejor",
        "melhor",
        "meilleur",
        "beste",
        "migliore",
        "kudos",
        "bravo",
        "chapeau",
        "chapó",
        "top=",
    ),
    "recommend": ("recommend", "recomend", "recommand", "empfehl", "raccomand", "aanbevel"),
    "buy": ("buy", "purchas", "order", "compr", "achet", "command", "kauf", "bestell", "acquist", "koop"),
    "price": (
        "price",
        "cost",
        "how much",
        "cuánto",
        "cuanto",
        "cuesta",
        "quanto",
        "custa",
        "preço",
        "preco",
        "precio",
        "prix",
        "combien",
        "coût",
        "kost",
        "preis",
        "prezz",
        "prijs",
        "quote",
        "presupuesto",
        "orçamento",
        "devis",
        "angebot",
    ),
    "stock": ("stock", "estoque", "disponib", "availab", "lager", "verfügbar", "dispon", "restock", "reponed"),
    "discount": (
        "discount",
        "coupon",
        "promo",
        "descuento",
        "desconto",
        "cupom",
        "cupón",
        "réduction",
        "rabatt",
        "sconto",
        "korting",
        "deal",
        "offer",
        "oferta",
        "offre",
        "angebot",
    ),
    "subscribe": ("subscri", "sign up", "suscri", "assin", "abonn", "abonnier", "abschließ", "contrat", "souscri"),
    "free": ("free=", "gratis", "grátis", "gratuit", "kostenlos"),
    "crypto": ("btc", "bitcoin", "crypto", "cripto", "krypto", "eth=", "nft", "airdrop", "wallet", "forex", "token"),
    "followers": ("follower", "seguidor", "abonné", "abonne", "likes", "subscribers", "f4f", "followback"),
    "earn": (
        "earn",
        "gana",
        "ganh",
        "gagn",
        "verdien",
        "guadagn",
        "income",
        "ingreso",
        "renda",
        "revenu",
        "einkommen",
        "profit",
    ),
    "dm": ("dm=", "inbox", "direct=", "privado", "mp=", "pn=", "whatsapp", "telegram", "zap=", "t.me"),
    "verify": (
        "verif",
        "confirm",
        "suspend",
        "bloquead",
        "bloqué",
        "gesperrt",
        "locked",
        "unlock",
        "sicher",
        "secure",
        "segur",
    ),
    "win": (
        "win=",
        "wins=",
        "won=",
        "winner",
        "gana",
        "ganh",
        "gagn",
        "gewinn",
        "vinc",
        "prize",
        "premio",
        "prêmio",
        "prix",
        "giveaway",
        "sorteo",
        "sorteio",
        "concours",
        "gewinnspiel",
    ),
    "how": ("how=", "cómo=", "como=", "comment=", "wie=", "come=", "hoe="),
    "can": (
        "can=",
        "could=",
        "puedo=",
        "puede=",
        "podéis=",
        "posso=",
        "pode=",
        "puis=",
        "peut=",
        "kann=",
        "können=",
        "darf=",
    ),
    "where": ("where=", "dónde=", "donde=", "onde=", "où=", "wo=", "dove=", "waar="),
    "when": ("when=", "cuándo=", "quando=", "quand=", "wann="),
    "does": (
        "does=",
        "do=",
        "is=",
        "are=",
        "hay=",
        "tiene=",
        "tem=",
        "tenéis=",
        "têm=",
        "est-ce",
        "gibt=",
        "habt=",
        "ist=",
    ),
    "help": ("help", "ayuda", "ajuda", "aide", "hilf", "aiut", "support", "soporte", "suporte"),
}


def _fold(text: str) -> str:
    """Accents off ("cuánto" -> "cuanto"); letters outside Latin drop out (the cues are Latin)."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _compile_cues() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(whole words, word prefixes, two-word phrases) -> cue name, all accent-free."""
    whole: dict[str, str] = {}
    prefixes: dict[str, str] = {}
    phrases: dict[str, str] = {}
    for name, stems in _CUES.items():
        for stem in stems:
            key = _fold(stem.rstrip("="))
            if " " in key:
                phrases.setdefault(key, name)
            elif stem.endswith("="):
                whole.setdefault(key, name)
            else:
                prefixes.setdefault(key, name)
    return whole, prefixes, phrases


_CUE_WORDS, _CUE_PREFIXES, _CUE_PHRASES = _compile_cues()
_PHRASE_STARTS = frozenset(p.split(" ", 1)[0] for p in _CUE_PHRASES)  # no phrase to look up otherwise
_PREFIX_LENGTHS = sorted({len(p) for p in _CUE_PREFIXES}, reverse=True)


def _cue(word: str) -> str | None:
    """The cross-language cue a word opens, if any ("esperando" -> "waiting")."""
    word = word if word.isascii() else _fold(word)
    name = _CUE_WORDS.get(word)
    if name is None:
        for n in _PREFIX_LENGTHS:
            if n <= len(word):
                name = _CUE_PREFIXES.get(word[:n])
                if name is not None:
                    break
    return name


def _links(text: str) -> str:
    # Only words with a dot or a slash can be links: look at those alone (the pattern is
    # costly when run over every word boundary of the post).
    if "." not in text and "/" not in text:
        return text
    words = text.split()
    if not any("." in w or "/" in w for w in words):
        return text
    return " ".join(" <url> " if ("." in w or "/" in w) and _URL.fullmatch(w.rstrip(".,!?;:)")) else w for w in words)


def normalise(text: str) -> str:
    """Lower case, links -> ``<url>``, handles -> ``@``, digit runs -> ``0``, whitespace collapsed."""
    text = _links(text[:2000])
    if "@" in text:
        text = _MENTION.sub(" @ ", text)
    text = text.lower()
    text = _DIGITS.sub("0", text)
    return " ".join(text.split())


# Features of one word (itself, its character n-grams, its cue), cached: words repeat
# from post to post (Zipf), and building them is most of the cost of a post.
_WORD_CACHE: dict[str, list[str]] = {}
_WORD_CACHE_MAX = 200_000


def _word_features(w: str) -> list[str]:
    found = _WORD_CACHE.get(w)
    if found is None:
        found = ["w:" + w]
        if len(w) > 2:
            padded = "<" + w + ">"
            found += ["c:" + padded[i : i + 3] for i in range(len(padded) - 2)]
            found += ["c:" + padded[i : i + 4] for i in range(len(padded) - 3)]
        cue = _cue(w)
        if cue is not None:
            found.append("x:" + cue)
        if len(_WORD_CACHE) >= _WORD_CACHE_MAX:
            _WORD_CACHE.clear()
        _WORD_CACHE[w] = found
    return found


def features(text: str, sentiment: str | None = None) -> list[str]:
    """The feature strings of one post (duplicates possible: the model counts presence)."""
    words, rest = split_features(text, sentiment)
    out = list(rest)
    for w in words:
        out += _word_features(w)
    return out


def split_features(text: str, sentiment: str | None = None) -> tuple[list[str], list[str]]:
    """The post's words (each stands for :func:`word_features` of it) and its other features.

    The model caches what each word's features are worth, so a word costs one lookup."""
    norm, *written = reading(text)
    tokens = _TOKEN.findall(norm)
    words = [t for t in tokens if t[0].isalpha() or t == "0"]
    rest = ["bias:1"]
    rest += ["b:" + a + "|" + b for a, b in pairwise(words)]
    rest += ["x:" + name for a, b in pairwise(words) if a in _PHRASE_STARTS and (name := _CUE_PHRASES.get(a + " " + b))]
    rest += ["e:" + t for t in tokens if len(t) == 1 and not t.isalpha() and _EMOJI.match(t)]
    rest += _shape(norm, written, tokens, len(words))
    if sentiment:
        rest.append("s:" + sentiment)
    return words, rest


def reading(text: str) -> tuple[str, bool, bool, bool]:
    """All :func:`split_features` reads of a post: its text as :func:`normalise` leaves it, and whether
    the post as written has a ``#``, a run of five digits or more (an order number), a word
    of three letters or more in capitals. Posts that read alike have the same features:
    ``@ana@mas.to thanks!`` and ``@bo@mas.to thanks!`` (handles are ``@``, digits ``0``)."""
    raw = text[:2000]
    caps = not raw.islower() and any(len(w) > 2 and w.isupper() for w in raw.split())
    return normalise(raw), "#" in raw, _LONG_DIGITS.search(raw) is not None, caps


def word_features(word: str) -> list[str]:
    """The features one word contributes (itself, its character n-grams, its cue)."""
    return list(_word_features(word))


def _shape(norm: str, written: list[bool], tokens: list[str], n_words: int) -> list[str]:
    shape: list[str] = []
    if "?" in norm:
        shape.append("p:ends?" if _ends_with(tokens, "?") else "p:has?")
    if "!!" in norm or _ends_with(tokens, "!"):
        shape.append("p:!")
    if norm[:1] in ("¿", "¡"):
        shape.append("p:opens¿")
    urls = norm.count("<url>")
    if urls:
        shape.append("p:url" if urls == 1 else "p:urls")
    if norm[:1] == "@":
        shape.append("p:to@")
    if tokens.count("@") >= 3:
        shape.append("p:@@@")
    hashtag, long_digits, caps = written
    if hashtag:
        shape.append("p:#")
    if long_digits:
        shape.append("p:id")
    if _MONEY.search(norm):
        shape.append("p:money")
    if caps:
        shape.append("p:CAPS")
    if n_words <= 3:
        shape.append("p:short")
    elif n_words >= 25:
        shape.append("p:long")
    return shape


def _ends_with(tokens: list[str], mark: str) -> bool:
    """Whether the last token that is not a link, handle, hashtag or emoji holds ``mark``
    ("@acme is it in stock? #help 🙏" ends with a question)."""
    i = len(tokens) - 1
    while i >= 0:
        token = tokens[i]
        if i > 0 and tokens[i - 1] == "#":
            i -= 2
        elif token in _NOISE or _EMOJI.match(token):
            i -= 1
        else:
            return mark in token
    return False
