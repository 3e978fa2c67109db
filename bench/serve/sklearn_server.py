"""The baseline `skewless serve` replaces: the fitted scikit-learn pipeline
of bench/compare/spec_sklearn.py behind Python's own HTTP server (a thread per
connection), answering TF Serving's `{"instances": [row, ...]}` with
`{"predictions": [[feature, ...], ...]}`.

Usage: python sklearn_server.py PIPELINE.pkl PORT
"""

import json
import os
import pickle
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "compare"))

import pandas as pd  # noqa: E402
import spec_sklearn  # noqa: E402,F401  (the pickled pipeline's classes)


def main():
    with open(sys.argv[1], "rb") as f:
        pipe = pickle.load(f)
    port = int(sys.argv[2])

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without this, Nagle's
        # algorithm holds the body for the client's delayed ACK (40 ms).
        disable_nagle_algorithm = True

        def do_POST(self):
            length = int(self.headers.get("content-length", 0))
            rows = json.loads(self.rfile.read(length))["instances"]
            features = pipe.transform(pd.DataFrame(rows))
            body = json.dumps({"predictions": [list(map(float, r)) for r in features]}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    print(f"listening on 127.0.0.1:{port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
