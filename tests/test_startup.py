"""What loading scrm costs: every installed plugin loads without importing a vendor SDK.

The SDKs, numpy and the web server are imported when a client, a model or the receiver is
first built (docs/benchmarks.md, "Start-up"); a module-level import of one of them in an
adapter or plugin puts its cost on every ``scrm`` command and every subprocess test.
"""

from __future__ import annotations

import json
import subprocess
import sys

#: Imported only when used: SDKs, numerical and model libraries, the HTTP stack, the web server.
LAZY = [
    "atproto_client",
    "bs4",
    "fasttext",
    "httpx",
    "hubspot",
    "jwt",
    "mastodon",
    "numpy",
    "praw",
    "psycopg",
    "redis",
    "requests",
    "simple_salesforce",
    "starlette",
    "tenacity",
    "tweepy",
    "urllib3",
    "uvicorn",
    "vaderSentiment",
    "websockets",
    "zeep",
]

_PROBE = """
import json, sys
import scrm.cli
from scrm.plugins import PluginHost
host = PluginHost().load()
import scrm.engine.routing
print(json.dumps({"modules": sorted(sys.modules), "plugins": sorted(host.plugins), "errors": host.load_errors}))
"""


def test_loading_every_plugin_and_the_cli_imports_no_sdk() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    assert found["errors"] == {}
    assert {"bluesky", "hubspot", "intent", "language", "salesforce", "sentiment", "x"} <= set(found["plugins"])
    assert {"postgres", "redis"} <= set(found["plugins"])  # the back ends load their drivers when used
    loaded = {name.split(".")[0] for name in found["modules"]}
    assert sorted(set(LAZY) & loaded) == []
    assert "scrm.engine.runner" not in found["modules"], "the pipeline loads when a command runs it"


def test_the_models_load_at_their_first_use() -> None:
    """The other half: the first message loads what the plugins need (the lazy import is no stub)."""
    probe = """
import sys
from scrm.plugins import PluginHost
host = PluginHost().load()
before = sorted({"numpy", "vaderSentiment", "fasttext"} & set(sys.modules))
from scrm_language.plugin import scrm_detect_language
from scrm_sentiment.plugin import scrm_analyze_sentiment
print(before, scrm_detect_language("Merci beaucoup pour votre aide"), scrm_analyze_sentiment("I love it", "en").label)
print(sorted({"numpy", "vaderSentiment", "fasttext"} & set(sys.modules)))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["[] fr positive", "['fasttext', 'numpy', 'vaderSentiment']"]


_HELP_PROBE = """
import json, sys
sys.argv = ["scrm", "--help"]
from scrm.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def test_scrm_help_with_every_plugin_command_registered_imports_no_sdk() -> None:
    done = subprocess.run([sys.executable, "-c", _HELP_PROBE], capture_output=True, text=True, check=True)
    modules = json.loads(done.stdout.splitlines()[-1])
    assert "scrm_postgres.cli" in modules, "the plugins' commands were registered"
    assert sorted(set(LAZY) & {name.split(".")[0] for name in modules}) == []
