"""Tests of scan.py, run by scripts/test.sh before the suites: it fails on each kind of
leak planted in a log file (naming file and line, never the leaked text) and passes on a
clean log of ids, hashes of ids and ordinary lines."""

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import tempfile
import unittest

SCANNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scan.py")

CLEAN = [
    "2026-12-03T12:58:18.895915Z  INFO ward::crypto::keyring: created a key-encryption key "
    "kek_id=01a23bfbf98a71ba84f94eca360ade72",
    "2026-12-03T12:58:19.1Z DEBUG ward::chat::message: message stored "
    "cid=messaging:care-7f3a message_id=6f1c2a9e-3b7d-4c1e-9a55-0d2f7e8b1c44 user=ann",
    "2026-12-03T12:58:19.2Z  INFO job{job_id=01a23bfc-dcf2-70ff-8957-630e06bec158}: ward::jobs: done",
    '{"level":"INFO","fields":{"message":"login failed","method":"password","user":"nurse"}}',
    "2026-12-03T12:58:19.3Z  WARN ward::ws::session: token expired code=40 user=u-3f9a1c",
]


def jwt(secret):
    """An HS256 token as the SDK makes one."""
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = enc(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = enc(json.dumps({"user_id": "ann"}).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{enc(sig)}"


def planted():
    """(rule, leaked text) for every rule of the scanner."""
    return [
        ("jwt", jwt("test-secret-that-is-long-enough")),
        ("bearer", "authorization: Bearer abc.def"),
        ("pem", "-----BEGIN PRIVATE KEY-----"),
        ("secret-field", 'body={"user_id":"ann","password":"Tr0ub4dor&3"}'),
        ("secret-field", "passphrase=Tr0ub4dor"),
        ("secret-field", '{"fields":{"body":"{\\"password\\":\\"Tr0ub4dor\\"}"}}'),
        ("secret-field", '{"AccessKeyId":"AKIA","SecretAccessKey":"wJalrXUtnFEMI"}'),
        ("totp-seed", base64.b32encode(secrets.token_bytes(20)).decode()),
        ("otpauth", "otpauth://totp/Ward:root?issuer=Ward"),
        ("recovery-code", "code=" + "-".join(secrets.token_hex(2) for _ in range(4))),
        ("hex-key", "key=" + secrets.token_hex(32)),
        ("base64-key", "root=" + base64.b64encode(secrets.token_bytes(32)).decode()),
        ("base64-key", "seed=" + base64.b64encode(secrets.token_bytes(20)).decode()),
        ("sdk-secret", "secret-" + secrets.token_hex(16)),
        ("literal", "test-secret-that-is-long-enough"),
        ("literal", "name=User ann WARDPHI"),
    ]


class ScanTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, lines):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write("".join(f"{l}\n" for l in lines))
        return path

    def scan(self):
        return subprocess.run([sys.executable, SCANNER, self.dir], capture_output=True, text=True)

    def test_a_clean_log_passes(self):
        self.write("api-clean.log", CLEAN)
        out = self.scan()
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("is clean (1 files, 5 lines", out.stdout)

    def test_each_planted_leak_fails_naming_file_and_line_but_not_the_leak(self):
        for rule, leak in planted():
            with self.subTest(rule=rule):
                path = self.write(f"{rule}.log", CLEAN + [f"2026-12-03T13:00:00Z DEBUG ward::x: {leak}"])
                out = self.scan()
                self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
                self.assertIn(f"{path}:{len(CLEAN) + 1}: ", out.stdout)
                self.assertIn(rule, out.stdout.split(f"{path}:{len(CLEAN) + 1}: ")[1].splitlines()[0])
                self.assertNotIn(leak, out.stdout + out.stderr)
                os.remove(path)

    def test_a_secret_a_test_process_recorded_is_found_anywhere(self):
        secret = "plain" + secrets.token_urlsafe(12).replace("-", "x").replace("_", "y")
        self.write("known-secrets/js-1.txt", [secret])
        self.write("nested/js-sqlite-auth.log", CLEAN)
        self.assertEqual(self.scan().returncode, 0, "the list itself is no log")
        path = self.write("nested/js-sqlite-auth.log", [f"signing with {secret} now"])
        out = self.scan()
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn(f"{path}:{len(CLEAN) + 1}: generated-secret", out.stdout)
        self.assertNotIn(secret, out.stdout + out.stderr)

    def test_nothing_to_scan_is_an_error(self):
        self.assertEqual(self.scan().returncode, 2)
        os.rmdir(self.dir)
        self.assertEqual(self.scan().returncode, 2)
        os.makedirs(self.dir)


if __name__ == "__main__":
    unittest.main()
