from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from issues import demo


class Command(BaseCommand):
    help = (
        "Start a simulated Gitea on 127.0.0.1 seeded with issues, connect it (webhooks to the "
        "service), run a full sync, print what to try, and keep the simulated Gitea serving "
        "until Ctrl-C / SIGTERM. `make demo` runs this beside the web, worker and scheduler."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--fake-port",
            type=int,
            default=demo.default_fake_port(),
            help="port of the simulated Gitea (default $DEMO_GITEA_PORT "
            f"or {demo.DEFAULT_FAKE_PORT}; 0 picks a free one)",
        )
        parser.add_argument(
            "--service-url",
            default=demo.default_service_url(),
            help="where the service listens; the fake posts webhooks there "
            "(default http://127.0.0.1:$SYNDARIX_PORT, else $PORT, else 8000)",
        )
        parser.add_argument(
            "--issues", type=int, default=demo.DEFAULT_ISSUES, help="how many issues to seed"
        )
        parser.add_argument(
            "--once",
            action="store_true",
            help="stop the simulated Gitea after the first sync and exit",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        demo.service_url_record(options["service_url"])
        info = demo.run_demo(
            fake_port=options["fake_port"],
            service_url=options["service_url"],
            issues=options["issues"],
        )
        try:
            self.stdout.write(info.instructions())
            self.stdout.flush()
            if options["once"]:
                return
            stop = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
            stop.wait()
        finally:
            info.fake.stop()
            self.stdout.write("simulated Gitea stopped")
