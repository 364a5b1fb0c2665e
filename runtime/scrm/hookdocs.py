"""Render docs/hooks.md from the hook specs' docstrings (they are the single source of truth).

``python -m scrm.hookdocs > docs/hooks.md`` regenerates it; tests/test_docs.py fails
when the file is out of date or a hook is missing.
"""

from __future__ import annotations

import inspect
import textwrap

from scrm_core import hookspecs

_GROUPS = [
    (
        "Registration (sync, called once at start-up)",
        [
            "scrm_register_networks",
            "scrm_register_crms",
            "scrm_register_stores",
            "scrm_register_processors",
            "scrm_register_classifiers",
            "scrm_register_commands",
            "scrm_check_config",
        ],
    ),
    ("Social profile", ["scrm_enrich_profile", "scrm_match_identity"]),
    (
        "Conversation",
        [
            "scrm_message_received",
            "scrm_classify_message",
            "scrm_route_conversation",
            "scrm_map_to_crm",
            "scrm_message_edited",
            "scrm_message_deleted",
            "scrm_before_reply",
        ],
    ),
    (
        "Listening",
        ["scrm_redact_text", "scrm_listening_match", "scrm_detect_language", "scrm_analyze_sentiment", "scrm_moderate"],
    ),
    ("Lifecycle", ["scrm_startup", "scrm_shutdown"]),
]


def hook_names() -> list[str]:
    return sorted(n for n in dir(hookspecs) if n.startswith("scrm_"))


def render() -> str:
    grouped = [name for _, names in _GROUPS for name in names]
    missing = sorted(set(hook_names()) - set(grouped))
    if missing:
        raise SystemExit(f"hooks not placed in a group in runtime/scrm/hookdocs.py: {missing}")
    out = [
        "# Hook reference",
        "",
        "<!-- Generated from scrm_core/hookspecs.py by `python -m scrm.hookdocs > docs/hooks.md`. -->",
        "",
        textwrap.dedent(hookspecs.__doc__ or "").strip(),
        "",
    ]
    for title, names in _GROUPS:
        out += [f"## {title}", ""]
        for name in names:
            fn = getattr(hookspecs, name)
            signature = str(inspect.signature(fn)).replace("'", "")
            kind = (
                "first result" if name in hookspecs.FIRST_RESULT else "sync only" if name in hookspecs.SYNC_ONLY else ""
            )
            out += [f"### `{name}{signature}`", ""]
            if kind:
                out += [f"*{kind}*", ""]
            out += [inspect.cleandoc(fn.__doc__ or ""), ""]
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
