import pytest
from scrm_pii import Redactor, Settings, find_cards, luhn_valid

redactor = Redactor()


def redact(text: str) -> str:
    return redactor.redact(text).text


@pytest.mark.parametrize(
    "card",
    [
        "4111 1111 1111 1111",  # Visa, spaces
        "4111-1111-1111-1111",  # dashes
        "4111111111111111",  # one run
        "5555 5555 5555 4444",  # Mastercard
        "2223 0031 2200 3222",  # Mastercard 2-series
        "3782 822463 10005",  # Amex 4-6-5
        "6011 1111 1111 1117",  # Discover
        "4222222222222",  # 13-digit Visa
    ],
)
def test_card_numbers_are_masked(card: str) -> None:
    assert redact(f"I paid with {card}, where is my order?") == "I paid with [card], where is my order?"


@pytest.mark.parametrize(
    "text",
    [
        "Order 4111111111111112 still not shipped",  # fails Luhn
        "Order #100234987 placed 2024-03-15",  # order number and date
        "ticket ORD-4111111111111111",  # tail of an identifier
        "It cost $1,299.99 on 12/03/2024 at 10:30",  # price, date, time
        "tracking 1Z999AA10123456784",  # parcel tracking number
        "between 2015-2020 we had 3000 customers",  # year range
        "9111 1111 1111 1115 is our internal ref",  # Luhn-valid, but no card network starts with 9
        "4111 1111-1111 1111",  # mixed separators: not how a card is written
    ],
)
def test_things_that_only_look_like_cards_are_kept(text: str) -> None:
    assert find_cards(text) == []
    assert redact(text) == text


def test_luhn() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail me at jo.doe+acme@example.co.uk!", "mail me at [email]!"),
        ("JANE_DOE@Example.COM is mine", "[email] is mine"),
    ],
)
def test_email_addresses_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_fediverse_handles_and_mentions_are_not_emails() -> None:
    text = "cc @alice@mastodon.social and @AcmeSupport"
    assert redact(text) == text


@pytest.mark.parametrize(
    "phone",
    [
        "+1 415 555 2671",  # E.164 with spaces
        "+14155552671",  # E.164
        "+44 20 7946 0958",
        "+49 30 1234567",
        "(415) 555-2671",  # US national
        "415-555-2671",
        "020 7946 0958",  # UK national
        "06 12 34 56 78",  # French national
    ],
)
def test_phone_numbers_are_masked(phone: str) -> None:
    assert redact(f"call me on {phone} today") == "call me on [phone] today"


@pytest.mark.parametrize(
    "text",
    [
        "Order 100234987 placed 2024-03-15",
        "It cost $1,299.99 on 12/03/2024",
        "flight UA1234 at 10:30, gate 22, seat 14C",
        "we are at 1600 Amphitheatre Parkway since 2004",
    ],
)
def test_things_that_only_look_like_phones_are_kept(text: str) -> None:
    assert redact(text) == text


def test_national_formats_need_their_region() -> None:
    us_only = Redactor(("US",))
    assert us_only.redact("ring 020 7946 0958").text == "ring 020 7946 0958"
    assert us_only.redact("ring +44 20 7946 0958").text == "ring [phone]"


def test_everything_in_one_message_is_counted() -> None:
    result = redactor.redact("card 4111 1111 1111 1111, mail a@b.io, phone +1 415 555 2671, alt b@c.io")
    assert result.text == "card [card], mail [email], phone [phone], alt [email]"
    assert dict(result.found) == {"card": 1, "email": 2, "phone": 1}


def test_settings_come_from_the_environment() -> None:
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env({}).phone_regions == Settings().phone_regions
    settings = Settings.from_env({"SCRM_PII_PHONE_REGIONS": "gb, fr"})
    assert settings.phone_regions == ("GB", "FR")
