from datetime import UTC, datetime

import pytest
import scrm_intent

from scrm_core import Message, SocialProfile


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("My kettle stopped working after two days", "intent:complaint"),
        ("Still waiting for my refund, three weeks now", "intent:complaint"),
        ("Does the X200 work with induction hobs?", "intent:question"),
        ("Where can I buy the X200 in Lisbon", "intent:purchase"),
        ("Huge crypto giveaway!!! click here", "intent:spam"),
        ("Love my new kettle, thank you!", "intent:praise"),
        ("Boiling water for tea", None),
    ],
)
def test_classify(text: str, label: str | None) -> None:
    assert scrm_intent.classify(text) == label


def test_hook_returns_a_label_list_or_none() -> None:
    author = SocialProfile(network="x", account_id="1")
    m = Message(network="x", id="1", author=author, text="is it in stock?", created_at=datetime.now(UTC))
    assert scrm_intent.scrm_classify_message(m) == ["intent:purchase"]
    m.text = "hello"
    assert scrm_intent.scrm_classify_message(m) is None
