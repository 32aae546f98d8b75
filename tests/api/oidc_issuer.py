"""A local OpenID Connect issuer for tests: its own RSA keys, served over a real socket.

issuer = LocalIssuer.start()       a thread running `http.server` on 127.0.0.1:<free port>
issuer.url                         the `iss` value; discovery at /.well-known/openid-configuration
issuer.id_token(email=..., **claims)   an RS256 ID token signed with the current key
issuer.rotate()                    a new current key (kid); the JWKS then publishes only it
issuer.jwks_fetches                how many times the JWKS was served
issuer.settings_json()             the `DASHIN_OIDC_ISSUERS` value naming it
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

AUDIENCE = "dashin-test-client"


def new_rsa_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class LocalIssuer:
    server: ThreadingHTTPServer
    keys: dict[str, RSAPrivateKey] = field(default_factory=dict)
    kid: str = ""
    jwks_fetches: int = 0

    @property
    def url(self) -> str:
        port = self.server.server_address[1]
        return f"http://127.0.0.1:{port}"

    @classmethod
    def start(cls) -> LocalIssuer:
        issuer: LocalIssuer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body: dict[str, Any] = {
                        "issuer": issuer.url,
                        "jwks_uri": f"{issuer.url}/jwks.json",
                        "id_token_signing_alg_values_supported": ["RS256"],
                    }
                elif self.path == "/jwks.json":
                    issuer.jwks_fetches += 1
                    body = {"keys": [issuer.public_jwk(kid) for kid in issuer.keys]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        issuer = cls(server=server)
        issuer.rotate()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return issuer

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def rotate(self) -> str:
        """Replace the signing key: the JWKS publishes only the new one from now on."""
        self.kid = uuid.uuid4().hex[:12]
        self.keys = {self.kid: new_rsa_key()}
        return self.kid

    def public_jwk(self, kid: str) -> dict[str, Any]:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key(), as_dict=True)
        return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}

    def claims(self, email: str, /, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": f"user_{uuid.uuid4().hex[:8]}",
            "email": email,
            "email_verified": True,
            "iat": now,
            "exp": now + 300,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def id_token(
        self,
        email: str,
        /,
        *,
        key: RSAPrivateKey | None = None,
        kid: str | None = None,
        **overrides: Any,
    ) -> str:
        return jwt.encode(
            self.claims(email, **overrides),
            key or self.keys[self.kid],
            algorithm="RS256",
            headers={"kid": kid or self.kid},
        )

    def settings_json(self, **extra: Any) -> str:
        return json.dumps([{"issuer": self.url, "audience": AUDIENCE, **extra}])
