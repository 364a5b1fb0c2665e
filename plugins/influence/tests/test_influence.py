import asyncio
from datetime import UTC, datetime

import pytest
import scrm_influence.plugin
from scrm.plugins import PluginHost
from scrm_influence import Thresholds, influence_label, influence_score

from scrm_core import Direction, Message, SocialProfile


def message(followers: int | None, verified: bool = False, direction: Direction = Direction.inbound) -> Message:
    author = SocialProfile(network="x", account_id="1", followers=followers, verified=verified)
    return Message(
        network="x", id="1", author=author, text="my order is late", created_at=datetime.now(UTC), direction=direction
    )


def classify(m: Message) -> list[list[str]]:
    host = PluginHost(env={})
    host.register(scrm_influence.plugin, "influence")
    result: list[list[str]] = asyncio.run(host.hooks.classify_message(m))
    return result


@pytest.mark.parametrize(
    ("followers", "verified", "score"),
    [(0, False, 0.0), (9, False, 20.0), (99, False, 40.0), (999, False, 60.0), (9_999, False, 80.0), (99, True, 50.0)],
)
def test_score_is_20_points_per_tenfold_plus_10_if_verified(followers: int, verified: bool, score: float) -> None:
    assert influence_score(followers, verified) == pytest.approx(score)


def test_score_is_capped_at_100() -> None:
    assert influence_score(50_000_000, True) == 100.0


@pytest.mark.parametrize(
    ("followers", "verified", "label"),
    [
        (12, False, "influence:low"),
        (400, False, "influence:medium"),
        (120, True, "influence:medium"),
        (25_000, False, "influence:high"),
        (4_000, True, "influence:high"),
        (4_000, False, "influence:medium"),
    ],
)
def test_labels_through_the_hook(followers: int, verified: bool, label: str) -> None:
    assert classify(message(followers, verified)) == [[label]]


def test_unknown_followers_get_no_label() -> None:
    assert classify(message(None, verified=True)) == []


def test_the_companys_own_messages_are_not_labelled() -> None:
    assert classify(message(1_000_000, direction=Direction.outbound)) == []


def test_thresholds_come_from_the_environment() -> None:
    thresholds = Thresholds.from_env({"SCRM_INFLUENCE_HIGH": "60", "SCRM_INFLUENCE_MEDIUM": "30"})
    assert influence_label(1_000, False, thresholds) == "influence:high"
    assert influence_label(50, False, thresholds) == "influence:medium"
    assert Thresholds.from_env({}) == Thresholds()


def test_inconsistent_thresholds_are_refused() -> None:
    with pytest.raises(ValueError, match="medium <= high"):
        Thresholds(high=40, medium=60)


def test_installed_entry_point_loads() -> None:
    host = PluginHost(env={"SCRM_LOAD_PLUGINS": "influence"}).load()
    assert host.plugins["influence"].error is None
    assert host.plugins["influence"].hooks == ["scrm_classify_message"]


def test_the_hook_labels_as_influence_label_does_from_its_cache_too() -> None:
    counts = [*range(0, 1200, 7), 3161, 3162, 3163, 9_998, 9_999, 10_000, 316_227, 10**9]
    for verified in (False, True):
        expected = [[influence_label(n, verified, scrm_influence.plugin.THRESHOLDS)] for n in counts]
        for _ in range(2):  # computed, then from the cache
            assert [scrm_influence.plugin.scrm_classify_message(message(n, verified)) for n in counts] == expected
    assert scrm_influence.plugin.scrm_classify_message(message(None)) is None
