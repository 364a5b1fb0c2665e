"""Serve a fake HubSpot account on 127.0.0.1 until Ctrl-C, to try the adapter or a config by hand.

    python -m scrm_hubspot.testing --port 8765          # scrm's properties already created
    python -m scrm_hubspot.testing --port 8765 --bare   # none: try `scrm hubspot setup` against it

It prints the ``[crm.settings]`` that point the adapter at it.
"""

from __future__ import annotations

import argparse
import json
import threading

from scrm_core.testing.fakes import FakeServer

from .fake import FakeHubSpot


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m scrm_hubspot.testing", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--bare", action="store_true", help="without scrm's custom properties")
    args = parser.parse_args()
    fake = FakeHubSpot(with_properties=not args.bare)
    server = FakeServer(fake.app, port=args.port)
    settings = {"base_url": server.url, "access_token": FakeHubSpot.TOKEN}
    print(f"fake hubspot on {server.url}; [crm] settings for it:")
    print(json.dumps(settings, indent=2), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
