"""The WSGI app the gunicorn worker test serves (gunicorn imports it by name).

/pid answers the worker's pid; /slow?s=SECONDS&mark=PATH creates PATH when
the request has started (the test synchronises on it), then sleeps."""
import os
import time
from urllib.parse import parse_qs


def app(environ, start_response):
    q = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
    if environ["PATH_INFO"] == "/slow":
        with open(q["mark"], "w"):
            pass
        time.sleep(float(q["s"]))
        body = b"slow done"
    elif environ["PATH_INFO"] == "/pid":
        body = str(os.getpid()).encode()
    else:
        body = b"Hello, World!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
