"""A plain WSGI app for gmp's gunicorn worker or gmp.wsgi on its own.

    gunicorn -k gmp.gunicorn.Worker -b 127.0.0.1:8000 examples.wsgi_app:app
    python examples/wsgi_app.py 8000          # gmp.wsgi.serve, no gunicorn

GET / answers "Hello, World!"; /sleep?s=0.2 parks its G for that long (the
other requests go on); POST /echo streams the body back.
"""
import sys
import time
from urllib.parse import parse_qs


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/sleep":
        seconds = float(parse_qs(environ["QUERY_STRING"]).get("s", ["0.1"])[0])
        time.sleep(seconds)                 # cooperative once patched (the worker patches)
        body = b"slept %.3f\n" % seconds
    elif path == "/echo":
        body = environ["wsgi.input"].read()
    else:
        body = b"Hello, World!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    import gmp
    import gmp.monkey
    import gmp.wsgi
    gmp.monkey.patch_all()
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    print(f"serving on http://127.0.0.1:{port}/", flush=True)
    gmp.run(gmp.wsgi.serve, app, ("127.0.0.1", port))
