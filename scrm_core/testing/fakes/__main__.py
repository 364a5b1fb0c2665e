"""Serve a fake CRM on 127.0.0.1 until Ctrl-C, to try an adapter or a config by hand.

    python -m scrm_core.testing.fakes hubspot --port 8765
    python -m scrm_core.testing.fakes salesforce --port 8766   # HTTPS, prints the CA file

It prints the settings that point the adapter at it.
"""

from __future__ import annotations

import argparse
import json
import threading

from .server import FakeServer


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m scrm_core.testing.fakes", description=__doc__.split("\n")[0])
    parser.add_argument("service", choices=["hubspot", "salesforce"])
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    args = parser.parse_args()
    if args.service == "hubspot":
        from .hubspot import FakeHubSpot

        hubspot = FakeHubSpot(with_properties=True)
        server = FakeServer(hubspot.app, port=args.port)
        settings: dict[str, str | None] = {"base_url": server.url, "access_token": FakeHubSpot.TOKEN}
    else:
        from .salesforce import FakeSalesforce

        salesforce = FakeSalesforce()
        server = FakeServer(salesforce.app, port=args.port, tls=True)
        settings = {
            "auth": "client_credentials",
            "login_url": server.url,
            "client_id": salesforce.consumer_key,
            "client_secret": salesforce.client_secret,
            "ca_bundle": server.ca_file,
        }
    print(f"fake {args.service} on {server.url}; [crm] settings for it:")
    print(json.dumps(settings, indent=2), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
