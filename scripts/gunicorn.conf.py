"""gunicorn settings for every service; the service is named by $SUITE_SERVICE (set by scripts/services.py).

Process settings (bind, threads, timeouts) come from the service's typed settings, so the YAML
config and its env overrides are the one place to change them.
"""

import os
import signal

from common.gunicorn_errors import install as use_json_errors
from common.services import SERVICES

_service = os.environ.get("SUITE_SERVICE", "")
if _service not in SERVICES:
    raise RuntimeError(f"set SUITE_SERVICE to one of {sorted(SERVICES)} (got {_service!r})")
_server = SERVICES[_service].settings_class().load().server

use_json_errors()

bind = f"{_server.host}:{_server.port}"
worker_class = "gthread"
workers = _server.workers
threads = _server.threads
timeout = _server.timeout
graceful_timeout = _server.graceful_timeout
keepalive = 5
limit_request_line = 8190  # the longest gunicorn allows; GET /<model>/<text> carries text in the URL
proc_name = f"suite-{_service}"
accesslog = "-"
errorlog = "-"
loglevel = _server.log_level
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'
# gunicorn's control socket has one default path for every master ($HOME/.gunicorn/gunicorn.ctl): five services
# (and test runs) would take it from each other. The scripts manage the services by PID file instead.
control_socket_disable = True


def _engine(worker):
    context = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("suite")
    return context.engine if context is not None else None


def post_worker_init(worker):
    """On SIGTERM, tell the engine at once (live sessions end with an error event), then stop as gunicorn does."""
    stop = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):
        engine = _engine(worker)
        if engine is not None:
            engine.begin_shutdown()
        stop(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def worker_exit(server, worker):
    """Stop the engine's batch workers cleanly when a worker exits."""
    engine = _engine(worker)
    if engine is not None:
        engine.close()
