"""docs/stream-coverage.md stays honest: its counts are current, and no row claims a route
that Ward does not have (every `yes`/`partial` row's method and path is in
src/authz/routes.rs ROUTE_ACTIONS, the table every routed request is checked against).

Run: python3 -m unittest discover -s tests/coverage -p 'test_*.py'
"""

import importlib.util
import re
import sys
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_spec = importlib.util.spec_from_file_location("coverage_counts", ROOT / "scripts" / "coverage-counts.py")
counts = importlib.util.module_from_spec(_spec)
sys.modules["coverage_counts"] = counts
_spec.loader.exec_module(counts)


def route_actions(source: str) -> set[tuple[str, str]]:
    """(method, normalised path) of every entry of ROUTE_ACTIONS in routes.rs."""
    start = source.index("pub const ROUTE_ACTIONS")
    end = source.index("];", start)
    body = re.sub(r"//[^\n]*", "", source[start:end])
    entries = re.findall(r'\(\s*"(GET|POST|PUT|PATCH|DELETE)"\s*,\s*"([^"]+)"\s*,', body)
    return {(m, counts.normalise(p)) for m, p in entries}


class CoverageTable(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.text = counts.DOC.read_text(encoding="utf-8")
        cls.rows = counts.parse(cls.text)
        cls.routes = route_actions((ROOT / "src" / "authz" / "routes.rs").read_text(encoding="utf-8"))

    def test_the_table_is_parsed_whole(self):
        # Every area heading says how many rows it has: "### channels (20)".
        declared = sum(int(n) for n in re.findall(r"^### [^\n(]+\((\d+)\)$", self.text, re.M))
        self.assertEqual(len(self.rows), declared)
        self.assertGreater(len(self.rows), 200)

    def test_route_actions_are_read(self):
        self.assertIn(("GET", "/connect"), self.routes)
        self.assertIn(("POST", "/channels/{}/{}/stop-watching"), self.routes)  # a multi-line entry
        self.assertGreater(len(self.routes), 50)

    def test_every_implemented_row_is_a_route_of_ward(self):
        missing = [
            f"line {r.line}: {r.method} {r.path} ({r.ward})"
            for r in self.rows
            if r.ward in ("yes", "partial") and r.key not in self.routes
        ]
        self.assertEqual(missing, [], "rows claim routes that src/authz/routes.rs does not have")

    def test_the_counts_are_current(self):
        regenerated = counts.splice(self.text, counts.table(self.rows))
        self.assertEqual(
            regenerated, self.text, "stale counts: run scripts/coverage-counts.py --write"
        )

    def test_a_row_claiming_a_missing_route_is_caught(self):
        row = counts.Row(1, "POST", "/no/such/{id}", "C", "yes", "common")
        self.assertNotIn(row.key, self.routes)

    def test_the_parser_refuses_a_malformed_row(self):
        with self.assertRaises(ValueError):
            counts.parse("| `GET /x` | sdk | C | maybe | notes | common |")
        with self.assertRaises(ValueError):
            counts.parse("| `GET /x` | sdk | C | no | notes | often |")
        with self.assertRaises(ValueError):
            counts.parse("| `GET /x` | sdk | C | no | common |")


if __name__ == "__main__":
    unittest.main()
