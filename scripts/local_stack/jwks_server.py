"""Serves the development issuer's JWKS and OpenID configuration over HTTP on loopback."""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .jwt_issuer import DevIssuer

JWKS_PATH = "/.well-known/jwks.json"
OPENID_PATH = "/.well-known/openid-configuration"


def serve(state_dir: Path, port: int) -> None:
    base = f"http://127.0.0.1:{port}"
    issuer = DevIssuer.load(state_dir / "jwt", issuer=base)
    documents = {
        JWKS_PATH: issuer.jwks(),
        OPENID_PATH: issuer.openid_configuration(base + JWKS_PATH),
        "/health": {"status": "ok"},
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            document = documents.get(self.path)
            body = json.dumps(document or {"error": "not found"}).encode()
            self.send_response(200 if document else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: request lines would only clutter the stack's log."""

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    serve(args.state_dir, args.port)


if __name__ == "__main__":
    main()
