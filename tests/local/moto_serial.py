"""The moto server with one request handled at a time, as the local world's AWS.

moto's own ``moto_server`` serves each request on its own thread, and its DynamoDB backend checks a
put's condition and stores the item without a lock: two concurrent conditional writes can both pass
(the store conformance suite's two concurrent claims both won, under load). DynamoDB never does
that, and norris's exactly-once promises rest on it. Connections are still accepted on many threads
(a client keeping a connection open blocks nobody); only the application call, where the backend
reads and changes its state, is serialised.

Usage: ``python moto_serial.py -H 127.0.0.1 -p PORT`` (the flags of ``moto_server`` this world uses).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def serialised(app: Wsgi) -> Wsgi:
    """``app`` behind one lock; the response body is read inside it too, since moto builds it lazily."""
    lock = threading.Lock()

    def call(
        environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        with lock:
            return list(app(environ, start_response))

    return call


def main(argv: list[str] | None = None) -> None:
    """Parses ``-H``/``-p`` and serves until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="moto_serial")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        serialised(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
