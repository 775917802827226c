"""gunicorn settings for the web processes (BK_ENV=production).

gevent workers serve HTTP and Socket.IO (long-polling and WebSocket) with thousands of idle
connections per process. Several processes sit behind nginx with sticky sessions, sharing
events through Redis (REDIS_URL).
"""

import os

bind = os.environ.get("BK_BIND", "127.0.0.1:8000")
worker_class = "gevent"
# One gevent worker per process; scale with more processes (one systemd instance or compose
# replica each) behind nginx's ip_hash, because Socket.IO needs a client to stay on one worker.
workers = 1
worker_connections = int(os.environ.get("BK_WORKER_CONNECTIONS", "2000"))
timeout = 60
graceful_timeout = 20
keepalive = 5
accesslog = "-"
errorlog = "-"
# Request lines carry HLS tokens at most, never credentials; the app redacts its own logs.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
