"""Serve a fake Salesforce org on 127.0.0.1 until Ctrl-C, to try the adapter or a config by hand.

    python -m scrm_salesforce.testing --port 8766   # HTTPS; prints the settings and the CA file

It prints the ``[crm.settings]`` that point the adapter at it.
"""

from __future__ import annotations

import argparse
import json
import threading

from scrm_core.testing.fakes import FakeServer

from .fake import FakeSalesforce


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m scrm_salesforce.testing", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    args = parser.parse_args()
    fake = FakeSalesforce()
    server = FakeServer(fake.app, port=args.port, tls=True)
    settings = {
        "auth": "client_credentials",
        "login_url": server.url,
        "client_id": fake.consumer_key,
        "client_secret": fake.client_secret,
        "ca_bundle": server.ca_file,
    }
    print(f"fake salesforce on {server.url}; [crm] settings for it:")
    print(json.dumps(settings, indent=2), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
