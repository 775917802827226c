"""Serve the embedded default: `python -m app.serve [--host H] [--port P]`.

One process runs the web app and Socket.IO (threading mode). Production runs gunicorn instead.
"""

from __future__ import annotations

import argparse
import signal
import sys

from app import create_app
from app.extensions import socketio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    app = create_app()
    if app.config["ENV_NAME"] == "production":
        raise SystemExit("production runs under gunicorn, not the embedded server")
    from app.media_runner import MediaRunner
    from app.tasks import start_embedded_consumer

    consumer = start_embedded_consumer(app)
    # The embedded default supervises every camera in this process (production: bk media).
    media = MediaRunner(app).start() if app.config["EMBEDDED_MEDIA"] else None
    # `kill` (a service manager's stop) ends the server like Ctrl+C, so the camera streams stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Werkzeug's server is this single-machine default's server; production uses gunicorn.
    try:
        socketio.run(app, host=args.host, port=args.port, allow_unsafe_werkzeug=True)
    finally:
        if media is not None:
            media.stop()
        if consumer is not None:
            consumer.stop(graceful=False)


if __name__ == "__main__":
    main()
