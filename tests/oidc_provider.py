"""A real OpenID Connect provider for the tests: panva's oidc-provider (tests/oidc/server.js) run by Node.js, with
the tests' own signing key (so that a test can sign a token with the provider's key, or with another one) and
accounts in a file the test changes while the provider runs (groups, disabled)."""

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.helpers import ROOT

SERVER_DIR = ROOT / "tests" / "oidc"
CLIENT_ID = "incident-portal"
CLIENT_SECRET = "test-only-oidc-client-secret-0123456789"  # noqa: S105
KEY_ID = "test-signing-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def private_jwk(key: rsa.RSAPrivateKey, key_id: str) -> dict:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    jwk.pop("key_ops", None)  # PyJWT writes ["sign"]: the provider would not verify with it (id_token_hint)
    return {**jwk, "kid": key_id, "alg": "RS256", "use": "sig"}


class OIDCProvider:
    def __init__(self, workdir: Path, *, portal_url: str):
        self.workdir = workdir
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.accounts_file = workdir / "accounts.json"
        self.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.portal_url = portal_url
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        if shutil.which("node") is None or shutil.which("npm") is None:
            raise RuntimeError("The single sign-on tests run a real provider on Node.js: install Node.js 20 and npm.")
        if not (SERVER_DIR / "node_modules").is_dir():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=SERVER_DIR, check=True)  # noqa: S607
        jwks_file = self.workdir / "jwks.json"
        jwks_file.write_text(json.dumps({"keys": [private_jwk(self.signing_key, KEY_ID)]}))
        self.reset_accounts()
        clients = [
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [f"{self.portal_url}/oidc/callback/"],
                "post_logout_redirect_uris": [f"{self.portal_url}/accounts/login/"],
            }
        ]
        env = {
            **os.environ,
            "OIDC_PORT": str(self.port),
            "OIDC_CLIENTS": json.dumps(clients),
            "ACCOUNTS_FILE": str(self.accounts_file),
            "JWKS_FILE": str(jwks_file),
        }
        log = (self.workdir / "provider.log").open("w")
        self.process = subprocess.Popen(["node", "server.js"], cwd=SERVER_DIR, env=env, stdout=log, stderr=log)  # noqa: S607
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.issuer}/.well-known/openid-configuration", timeout=1):  # noqa: S310
                    return
            except OSError as error:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log_text = (self.workdir / "provider.log").read_text()
                    raise RuntimeError(f"oidc-provider did not start: {log_text}") from error
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def reset_accounts(self) -> None:
        self.accounts_file.write_text(json.dumps({}))

    def set_account(
        self, account_id: str, *, groups: list[str], disabled: bool = False, email_verified: bool = True
    ) -> None:
        accounts = json.loads(self.accounts_file.read_text())
        accounts[account_id] = {
            "email": f"{account_id}@example.com",
            "name": account_id.title(),
            "groups": groups,
            "disabled": disabled,
            "email_verified": email_verified,
        }
        self.accounts_file.write_text(json.dumps(accounts))

    def sign(self, claims: dict, *, key: rsa.RSAPrivateKey | None = None) -> str:
        """An ID token signed with the provider's key (or another), with the provider's key id in its header."""
        return jwt.encode(claims, key or self.signing_key, algorithm="RS256", headers={"kid": KEY_ID})
