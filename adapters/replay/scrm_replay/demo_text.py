"""Words for the demo stream: a fictional kettle brand, its products, a competitor, and what people say.

Each template belongs to one intent, so the generator can count what it wrote and a test
can check a classifier against it. ``{@brand}`` and ``{@user}`` are mention slots the
generator fills in each network's syntax; links use the reserved ``.example`` domain.
"""

from __future__ import annotations

BRAND = "Acme Kettles"
PRODUCTS = ("X200", "X200 Pro", "Mini K1", "TravelBoil 3", "S5 Smart Kettle")
COMPETITOR = "BoilCo"
COMPETITOR_MODELS = ("Rapid 9", "Glass One", "BoilCo Mini")
COUNTRIES = ("Canada", "Ireland", "Portugal", "New Zealand", "Germany", "the UK")
SPAM_LINKS = (
    "https://eth-double.example/claim",
    "https://cheap-kettles.example/deal?ref=9912",
    "https://bit-ly.example/3xK9aQ",
    "https://win-free.example/kettle",
)
FIRST = (
    "maria", "james", "aiko", "liam", "sofia", "noah", "priya", "lucas", "emma", "omar", "chloe", "ben",
    "hana", "diego", "ines", "tom", "zara", "felix", "nadia", "sam", "yuki", "leo", "ava", "kofi",
)  # fmt: skip
LAST = (
    "kowalski", "nguyen", "okafor", "silva", "berg", "tanaka", "murphy", "rossi", "haddad", "larsen",
    "dubois", "patel", "moreau", "fischer", "costa", "oconnor",
)  # fmt: skip
INSTANCES = ("mastodon.social", "fosstodon.org", "mas.to", "hachyderm.io", "mstdn.social")
SUBREDDITS = ("kettles", "BuyItForLife", "tea", "Appliances")

ROOT: dict[str, tuple[str, ...]] = {
    "complaint": (
        "my {product} stopped working after {n} weeks. not impressed {@brand}",
        "still waiting for my refund for the {product}, order #{order}. {days} days now",
        "the {product} leaks from the bottom every time I fill it past the 1L mark",
        "second {product} in a row with a faulty power switch. really disappointed",
        "{@brand} customer service hasn't answered my emails for a week. my kettle stopped working",
        "my {product} smells like burnt plastic after {n} uses, is that safe??",
    ),
    "question": (
        "does the {product} work with 110V outlets? moving to {country} soon",
        "does the {product} work with the Acme app on Android? {@brand}",
        "how do I descale the {product}? the manual doesn't say",
        "is the {product} lid dishwasher safe?",
        "what's the actual difference between the X200 and the X200 Pro?",
        "anyone know if the {product} has a keep-warm mode?",
    ),
    "praise": (
        "love my new {product}, boils a full litre in under two minutes",
        "shoutout to {@brand} support, they replaced my {product} in 3 days",
        "the {product} is honestly the best kitchen thing I bought this year",
        "{n} years with my {product} and it's still going strong. great kettle",
    ),
    "purchase": (
        "where can I buy the {product} in {country}?",
        "thinking of getting the {product}, is it worth it over the {competitor} {model}?",
        "any discount codes for the {product}? want to order one this week",
        "need a new kettle. {product} or {competitor} {model}? ready to buy today",
    ),
    "spam": (
        "crypto giveaway!! send 0.1 ETH get 1 ETH back {link}",
        "kettles 90% off today only {link}",
        "make $500/day from home, DM me or click {link}",
        "free {product} for the first 100 followers!!! claim at {link}",
    ),
    "neutral": (
        "making tea with the {product} this morning",
        "anyone else drinking way too much tea this week?",
        "kitchen finally reorganised, the kettle has its own corner now",
        "rainy day, third cup of tea already",
        "{competitor} just announced the {model}, looks a lot like the {product}",
    ),
}

#: Replies by customers, by the intent of the thread's root: (intent of the reply, template).
REPLY: dict[str, tuple[tuple[str, str], ...]] = {
    "complaint": (
        ("complaint", "same here, mine stopped working after a month"),
        ("complaint", "+1, the {product} switch is a known problem"),
        ("neutral", "did you try contacting support?"),
        ("neutral", "that's awful, hope they sort it out for you"),
        ("complaint", "still waiting for my refund too, {days} days and counting"),
    ),
    "question": (
        ("neutral", "yes, mine works fine with it"),
        ("neutral", "no idea, following"),
        ("neutral", "page 12 of the manual covers it"),
        ("question", "did you ever find out? I have the same question"),
    ),
    "praise": (
        ("praise", "agreed, mine is great too"),
        ("neutral", "nice! which colour did you get?"),
    ),
    "purchase": (
        ("neutral", "got mine from the Acme website, shipped in 2 days"),
        ("purchase", "go for the {product}, I'm getting one too"),
        ("neutral", "wait for the spring sale, it was 20% off last year"),
    ),
    "spam": (
        ("neutral", "reported"),
        ("neutral", "this is a scam, don't click"),
    ),
    "neutral": (
        ("neutral", "same lol"),
        ("neutral", "tea > coffee"),
        ("praise", "the {product} is great for that"),
    ),
}

#: The brand's own replies (direction "outbound"), by the thread's intent.
SUPPORT: dict[str, tuple[str, ...]] = {
    "complaint": (
        "Sorry to hear that, {@user}! Please DM us your order number and we'll sort it out.",
        "{@user} we're really sorry. A replacement is on its way, check your email for tracking.",
    ),
    "question": (
        "Hi {@user}, the {product} works with any 110-240V outlet.",
        "Hi {@user}! Descaling steps are in our help centre: acmekettles.example/help",
    ),
    "praise": ("Thanks so much for the kind words, {@user}!",),
    "purchase": (
        "{@user} you can find the {product} at acmekettles.example/shop and most major retailers.",
        "Hi {@user}, use code SPRING10 for 10% off the {product} this month.",
    ),
}

DIRECT = (
    "hi, order #{order} hasn't arrived yet, can you check?",
    "my {product} stopped working, I'd like a refund for order #{order}",
)
DIRECT_SUPPORT = ("Thanks, we've found order #{order} and a refund is on its way.",)
DIRECT_FOLLOWUP = ("thank you!", "great, thanks for the quick help")

EDIT_SUFFIX = (
    " (edit: support replied, fingers crossed)",
    " EDIT: fixed a typo",
    " edit: it works again after a reset",
    " update: refund arrived",
)

BIOS = ("tea person", "home cook", "coffee snob turned tea fan", None, None, None)
