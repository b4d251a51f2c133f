"""Makes the credentials schemathesis calls Ward with, on a server just started by run.sh.

Prints shell assignments (sourced by run.sh):
  SERVER_TOKEN   a server token (the API secret): the backend that administers Ward
  AUDITOR_TOKEN  a user token of a user with the `auditor` role (created here)
  ADMIN_SESSION  the session cookie of the bootstrap admin, logged in with its password and
                 its second factor verified (TOTP enrolled and a code checked here)

Arguments: base URL, API key, API secret, admin id, admin password. Standard library only.
"""

import base64
import hashlib
import hmac
import json
import struct
import sys
import time
import urllib.request


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt(secret: str, claims: dict) -> str:
    """A Stream token: HS256 over the claims."""
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


def totp(secret_b32: str, at: float) -> str:
    """RFC 6238 with Ward's parameters (SHA-1, 6 digits, 30 s)."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return f"{(struct.unpack('>I', mac[off:off + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def call(method: str, url: str, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as res:
        return res.headers, json.loads(res.read() or b"{}")


def main() -> None:
    base, key, secret, admin, password = sys.argv[1:6]
    server = jwt(secret, {"server": True})
    auditor = "oa-auditor"
    call(
        "POST",
        f"{base}/users?api_key={key}",
        {"users": {auditor: {"id": auditor, "role": "auditor"}}},
        {"Authorization": server, "stream-auth-type": "jwt"},
    )
    headers, _ = call("POST", f"{base}/auth/login", {"user_id": admin, "password": password})
    cookie = next(
        c.split(";")[0].split("=", 1)[1]
        for c in headers.get_all("Set-Cookie")
        if c.startswith("ward_session=")
    )
    session = {"Cookie": f"ward_session={cookie}"}
    _, enrolment = call("POST", f"{base}/auth/totp/enroll", {}, session)
    call("POST", f"{base}/auth/totp/verify", {"code": totp(enrolment["secret"], time.time())}, session)
    _, me = call("GET", f"{base}/auth/session", None, session)
    if not me.get("mfa"):
        sys.exit(f"the admin session's second factor is not verified: {me}")
    print(f"SERVER_TOKEN='{server}'")
    print(f"AUDITOR_TOKEN='{jwt(secret, {'user_id': auditor})}'")
    print(f"ADMIN_SESSION='{cookie}'")


if __name__ == "__main__":
    main()
