"""Routing rules: conditions, business hours, queue and draft actions, explanations, warnings."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from scrm.engine.routing import Hours, compile_rules, explain, render_draft, route, rule_warnings

from scrm_core.config import BusinessHours, RoutingConfig, RoutingRule
from scrm_core.models import Action, ActionKind, Message, Sentiment
from tests.e2e import write_config
from tests.test_cli import scrm

MakeMessage = Callable[..., Message]


def rule(name: str, actions: list[dict[str, Any]] | None = None, *, goes_on: bool = False, **when: Any) -> RoutingRule:
    data = {"name": name, "when": when, "actions": actions or [{"kind": "log"}], "continue": goes_on}
    return RoutingRule.model_validate(data)


def at(message: Message, when: datetime) -> Message:
    return message.model_copy(update={"created_at": when})


def fired(rules: list[RoutingRule], message: Message, hours: BusinessHours | None = None) -> list[str | None]:
    return [a.rule for a in route(compile_rules(rules, hours), message)]


def test_first_matching_rule_wins_unless_it_continues(make_message: MakeMessage) -> None:
    msg = make_message("where is my parcel", labels=["intent:complaint"])
    rules = [
        rule("tag", [{"kind": "label", "value": "seen"}], keywords_any=["parcel"], goes_on=True),
        rule("complaint", [{"kind": "case"}], labels_any=["intent:complaint"]),
        rule("never-reached", [{"kind": "lead"}]),
    ]
    assert fired(rules, msg) == ["tag", "complaint"]


def test_language_condition_matches_the_primary_subtag(make_message: MakeMessage) -> None:
    rules = [rule("english", languages=["en"])]
    assert fired(rules, make_message(language="en-GB")) == ["english"]
    assert fired(rules, make_message(language="fr")) == []
    assert fired(rules, make_message()) == [], "an unknown language matches no language rule"


def test_sentiment_and_followers(make_message: MakeMessage) -> None:
    angry = make_message(sentiment=Sentiment(score=-0.7, label="negative"))
    angry.author.followers = 50_000
    rules = [rule("angry-influencer", sentiment_below=-0.5, min_followers=10_000)]
    assert fired(rules, angry) == ["angry-influencer"]
    angry.author.followers = 10
    assert fired(rules, angry) == []


def test_business_hours_in_their_time_zone(make_message: MakeMessage) -> None:
    hours = BusinessHours(timezone="Europe/Paris", days=["mon", "tue", "wed", "thu", "fri"], start="09:00", end="17:00")
    rules = [rule("office", business_hours=True), rule("night", business_hours=False)]
    # Monday 2026-11-23 08:30 UTC is 09:30 in Paris: inside.
    monday_morning = at(make_message(), datetime(2026, 11, 23, 8, 30, tzinfo=UTC))
    assert fired(rules, monday_morning, hours) == ["office"]
    # 16:30 UTC is 17:30 in Paris: outside.
    monday_evening = at(make_message(), datetime(2026, 11, 23, 16, 30, tzinfo=UTC))
    assert fired(rules, monday_evening, hours) == ["night"]
    saturday = at(make_message(), datetime(2026, 11, 28, 10, 0, tzinfo=UTC))
    assert fired(rules, saturday, hours) == ["night"]
    assert Hours(BusinessHours(end="24:00")).contains(datetime(2026, 11, 23, 23, 59, tzinfo=UTC))


def test_business_hours_must_be_defined_and_valid() -> None:
    with pytest.raises(ValidationError, match=r"define \[routing.business_hours\]"):
        RoutingConfig.model_validate(
            {"rules": [{"name": "x", "when": {"business_hours": True}, "actions": [{"kind": "log"}]}]}
        )
    with pytest.raises(ValidationError, match="unknown time zone"):
        BusinessHours(timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="unknown day"):
        BusinessHours(days=["mon", "funday"])


def test_actions_that_need_a_value_and_draft_placeholders() -> None:
    with pytest.raises(ValidationError, match="a queue action needs a value"):
        Action(kind=ActionKind.queue)
    with pytest.raises(ValidationError, match=r"\{order\}"):
        Action(kind=ActionKind.draft_reply, value="Hi {author}, about {order}")
    Action(kind=ActionKind.draft_reply, value="Hi {author}, sorry about '{subject}'")


def test_draft_is_rendered_from_the_message(make_message: MakeMessage) -> None:
    msg = make_message("my order is late")
    msg.author.display_name = "Ada"
    text = render_draft("Hi {author} (@{handle} on {network}): re '{subject}'", msg, "my order is late")
    assert text == "Hi Ada (@usera1 on test): re 'my order is late'"


def test_explain_gives_each_condition_and_what_was_not_reached(make_message: MakeMessage) -> None:
    msg = make_message("refund please", labels=["intent:complaint"], language="en")
    rules = compile_rules(
        [
            rule("french", languages=["fr"]),
            rule("complaint", [{"kind": "case"}], labels_any=["intent:complaint"], keywords_any=["refund"]),
            rule("rest"),
        ]
    )
    french, complaint, rest = explain(rules, msg)
    assert not french.fired and french.conditions == [("language in ['fr']", False)]
    assert complaint.fired and all(ok for _, ok in complaint.conditions) and len(complaint.conditions) == 2
    assert not rest.fired and not rest.reached
    # The explanation and routing agree.
    assert [v.rule for v in explain(rules, msg) if v.fired] == [a.rule for a in route(rules, msg)]


def test_warnings_for_rules_that_can_never_fire() -> None:
    rules = [
        rule("brand", queries_any=["brand"]),
        rule("typo", queries_any=["brnad"]),
        rule("impossible", sentiment_below=-0.5, sentiment_above=0.5),
        rule("brand-again", queries_any=["brand"]),
        rule("everything"),
        rule("after-everything", labels_any=["intent:spam"]),
    ]
    warnings = rule_warnings(rules, ["brand"])
    assert any("'typo'" in w and "no listening query named 'brnad'" in w for w in warnings)
    assert any("'impossible'" in w and "sentiment" in w for w in warnings)
    assert any("'brand-again'" in w and "same conditions" in w for w in warnings)
    assert any("'after-everything'" in w and "'everything'" in w for w in warnings)
    assert not any("'brand'" in w.split(":")[0] for w in warnings)
    assert rule_warnings([rule("a", labels_any=["x"]), rule("b")], []) == []


def test_queue_and_draft_reach_the_case(make_message: MakeMessage) -> None:
    from scrm.engine import mapping
    from scrm.engine.ingest import Ingestor

    from scrm_core.models import Conversation

    msg = make_message("my order is late", labels=["intent:complaint"])
    conversation = Conversation(network="test", root_id="1", started_by=msg.author.key, subject="my order is late")
    actions = [
        Action(kind=ActionKind.case),
        Action(kind=ActionKind.queue, value="tier-2"),
        Action(kind=ActionKind.draft_reply, value="Hi {author}, we are looking into it."),
    ]
    assert Ingestor._apply_actions(conversation, msg, actions)
    fields = mapping.case_op(conversation, msg.author.key).fields
    assert fields["queue"] == "tier-2"
    assert fields["draft_reply"] == "Hi usera1, we are looking into it."
    # Without them, the case carries no such fields (CRMs without them see no change).
    plain = Conversation(network="test", root_id="2", started_by=msg.author.key)
    assert "queue" not in mapping.case_op(plain, msg.author.key).fields


@pytest.mark.slow
def test_rules_test_command_shows_which_rule_fires_and_why(tmp_path: Path) -> None:
    config = write_config(tmp_path, [tmp_path / "x.ndjson"])
    message = {
        "kind": "message.created",
        "message": {
            "network": "mastodon",
            "id": "42",
            "author": {"network": "mastodon", "account_id": "7", "handle": "ada"},
            "text": "My order never arrived, I want a refund",
            "created_at": "2026-11-23T10:00:00+00:00",
        },
    }
    path = tmp_path / "message.json"
    path.write_text(json.dumps(message))
    result = scrm("rules", "test", str(path), "-c", str(config), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert "intent:complaint" in out["labels"], "the installed intent plugin ran first"
    assert out["fired"] == ["complaints"]
    verdict = out["rules"][0]
    assert verdict["conditions"] == [["a label in ['intent:complaint']", True]]
    human = scrm("rules", "test", str(path), "-c", str(config), cwd=tmp_path)
    assert human.returncode == 0 and "FIRES" in human.stdout and "complaints" in human.stdout
    path.write_text("{not json")
    bad = scrm("rules", "test", str(path), "-c", str(config), cwd=tmp_path)
    assert bad.returncode == 2 and "message.json" in bad.stderr


@pytest.mark.slow
def test_config_check_warns_about_rules_that_can_never_fire(tmp_path: Path) -> None:
    extra = '[[routing.rules]]\nname = "all"\nactions = [{ kind = "log" }]\n\n' + (
        '[[routing.rules]]\nname = "dead"\nwhen = { labels_any = ["x"] }\nactions = [{ kind = "case" }]\n'
    )
    config = write_config(tmp_path, [tmp_path / "x.ndjson"], extra=extra)
    (tmp_path / "x.ndjson").write_text("")  # config check wants the files a replay source reads
    result = scrm("config", "check", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "warning" in result.stderr and "'dead'" in result.stderr and "can never fire" in result.stderr
