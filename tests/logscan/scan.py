#!/usr/bin/env python3
"""Fails when any server log of the test suites holds PHI or a secret.

    tests/logscan/scan.py [LOG_DIR]     (default: $WARD_TEST_LOG_DIR, else target/test-logs)

Reads every file under LOG_DIR (the logs scripts/test.sh has every server of every suite
write at debug level) except LOG_DIR/known-secrets/, and reports each line that holds

* a PHI marker or a literal test secret of tests/logscan/literals.txt,
* a secret some test process generated and listed in LOG_DIR/known-secrets/*.txt (one a
  line: the SDK harness's API secrets and root keys),
* something shaped like a credential: a JWT, a `Bearer` header, a PEM block, a password,
  passphrase or secret field, a TOTP seed (base32 of 20 bytes) or otpauth URL, a recovery
  code, a hex string of 32 bytes or more or padded base64 of 20 bytes or more (keys, seeds),
  the SDK harness's generated secrets.

Each hit is printed as `file:line: rule` and never with the matched text, so the scanner's
own output leaks nothing. Ids (UUIDs, cids, message ids) match no rule. Exit status: 0 when
clean, 1 on any hit, 2 when there is nothing to scan (the log plumbing is broken).
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
KNOWN_DIR = "known-secrets"
MAX_PRINTED = 200

# Credential shapes. Hex and base32 runs must stand alone so parts of longer ids never match.
# Fields may be quoted, and escaped once more inside a JSON log line's string.
PATTERNS = {
    "jwt": r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+",
    "bearer": r"Bearer\s+\S",
    "pem": r"-----BEGIN",
    "secret-field": r"(?i:password|passphrase|client_secret|api_secret|secret_?access_?key)"
    r"(?:\\?\")?\s*[=:]\s*(?:\\?\")?[^\s\\\",}\]]",
    "totp-seed": r"(?<![A-Za-z0-9])[A-Z2-7]{32}(?![A-Za-z0-9])",
    "otpauth": r"otpauth://",
    "recovery-code": r"(?<![0-9a-f-])[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}(?![0-9a-f-])",
    "hex-key": r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{64,}(?![0-9A-Fa-f])",
    "base64-key": r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{26,}[AEIMQUYcgkosw048]=|"
    r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{26,}[AQgw]==",
    "sdk-secret": r"(?:oidc-)?secret-[0-9a-f]{16,}",
}


def read_needles(path):
    """The non-empty, non-comment lines of a file."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]


def known_secrets(log_dir):
    """Literal needles: the committed list and what test processes recorded."""
    literal = read_needles(os.path.join(HERE, "literals.txt"))
    generated = []
    known = os.path.join(log_dir, KNOWN_DIR)
    if os.path.isdir(known):
        for name in sorted(os.listdir(known)):
            generated += read_needles(os.path.join(known, name))
    return literal, generated


def build_matcher(literal, generated):
    """One regex of every rule, each an alternative named after its rule."""
    parts = [f"(?P<{name.replace('-', '_')}>{rx})" for name, rx in PATTERNS.items()]
    for rule, needles in (("literal", literal), ("generated_secret", generated)):
        # Longest first, so a needle is reported whole; short ones would only add noise.
        words = sorted({n for n in needles if len(n) >= 6}, key=len, reverse=True)
        if words:
            parts.append(f"(?P<{rule}>" + "|".join(re.escape(w) for w in words) + ")")
    return re.compile("|".join(parts))


def log_files(log_dir):
    for root, dirs, files in os.walk(log_dir):
        dirs[:] = sorted(d for d in dirs if not (root == log_dir and d == KNOWN_DIR))
        for name in sorted(files):
            yield os.path.join(root, name)


def scan(log_dir, out=sys.stdout):
    """Prints the hits; returns (files scanned, lines scanned, hits)."""
    matcher = build_matcher(*known_secrets(log_dir))
    files = lines = hits = 0
    for path in log_files(log_dir):
        files += 1
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                lines += 1
                found = sorted({m.lastgroup.replace("_", "-") for m in matcher.finditer(line)})
                if found:
                    hits += 1
                    if hits <= MAX_PRINTED:
                        print(f"{path}:{number}: {', '.join(found)}", file=out)
    if hits > MAX_PRINTED:
        print(f"... and {hits - MAX_PRINTED} more lines", file=out)
    return files, lines, hits


def main(argv):
    log_dir = argv[1] if len(argv) > 1 else os.environ.get("WARD_TEST_LOG_DIR", "target/test-logs")
    if not os.path.isdir(log_dir):
        print(f"logscan: no log directory {log_dir}", file=sys.stderr)
        return 2
    files, lines, hits = scan(log_dir)
    size = sum(os.path.getsize(p) for p in log_files(log_dir))
    summary = f"{files} files, {lines} lines, {size / 1e6:.1f} MB"
    if files == 0:
        print(f"logscan: no log files in {log_dir}: the suites logged nothing", file=sys.stderr)
        return 2
    if hits:
        print(f"logscan: {hits} lines with PHI or secrets in {log_dir} ({summary})", file=sys.stderr)
        return 1
    print(f"logscan: {log_dir} is clean ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
