#!/usr/bin/env python3
"""Assertions over checkov's JSON report (`checkov -o json`), for check-terraform.sh.

    check_checkov.py clean    REPORT.json
        the scan parsed everything, evaluated resources and has no failed check
    check_checkov.py required REPORT.json CKV_A,CKV_B,...
        each listed check ran at least once and passed, and never failed
        (a check that matched no resource proves nothing)
    check_checkov.py weak     REPORT.json CKV_A,CKV_B,...
        the deliberately weak snippet FAILED each listed check
    check_checkov.py skips    TERRAFORM_DIR README.md
        every inline `#checkov:skip=ID:reason` states a reason and is listed in the README

Prints one "PASS ..." or "FAIL ..." line per assertion; exits 1 if any failed.
Only the standard library is used, so any python3 can run it.
"""
import json
import os
import re
import sys
from collections import Counter

results = []


def report(ok, text):
    results.append(ok)
    print(("PASS  " if ok else "FAIL  ") + text, flush=True)


def load(path):
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    reports = data if isinstance(data, list) else [data]
    passed, failed, skipped, parse_errors, resources = [], [], [], 0, 0
    for rep in reports:
        res = rep.get("results", {})
        passed += res.get("passed_checks", [])
        failed += res.get("failed_checks", [])
        skipped += res.get("skipped_checks", [])
        summary = rep.get("summary", {})
        parse_errors += summary.get("parsing_errors", 0)
        resources += summary.get("resource_count", 0)
    return passed, failed, skipped, parse_errors, resources


def clean(path):
    passed, failed, skipped, parse_errors, resources = load(path)
    report(parse_errors == 0, f"checkov parsed every file ({parse_errors} parsing errors)")
    report(resources > 0 and len(passed) > 0, f"checkov evaluated {resources} resources, {len(passed)} checks passed")
    detail = "; ".join(sorted({f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in failed}))
    report(not failed, f"checkov: {len(failed)} failed checks ({len(skipped)} skipped inline)" + (f": {detail}" if failed else ""))


def required(path, ids):
    passed, failed, _, _, _ = load(path)
    ok_count = Counter(c["check_id"] for c in passed)
    bad = {}
    for c in failed:
        bad.setdefault(c["check_id"], []).append(c["resource"])
    for check_id in ids:
        if bad.get(check_id):
            report(False, f"{check_id} failed on {', '.join(sorted(bad[check_id]))}")
        elif ok_count[check_id] == 0:
            report(False, f"{check_id} matched no resource (0 passed): it proves nothing")
        else:
            report(True, f"{check_id} ran and passed on {ok_count[check_id]} resource(s)")


def weak(path, ids):
    _, failed, _, _, _ = load(path)
    failed_ids = {c["check_id"] for c in failed}
    missing = [i for i in ids if i not in failed_ids]
    report(not missing, f"checkov rejects the weak snippet ({len(failed)} failed checks; expected {', '.join(ids)})" + (f"; NOT failed: {', '.join(missing)}" if missing else ""))


SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def skips(root, readme):
    with open(readme, encoding="utf-8") as handle:
        readme_text = handle.read()
    found = []
    for dirpath, _, filenames in os.walk(root):
        for name in sorted(filenames):
            if name.endswith(".tf"):
                file = os.path.join(dirpath, name)
                with open(file, encoding="utf-8") as handle:
                    for lineno, line in enumerate(handle, 1):
                        match = SKIP.search(line)
                        if match:
                            found.append((os.path.relpath(file, root), lineno, match.group(1), (match.group(2) or "").strip()))
    unexplained = [f"{f}:{n} {i}" for f, n, i, reason in found if len(reason) < 20]
    unlisted = sorted({i for _, _, i, _ in found if i not in readme_text})
    report(not unexplained, f"all {len(found)} inline checkov skips state a reason" + (f" (missing: {', '.join(unexplained)})" if unexplained else ""))
    report(not unlisted, f"every skipped check ID ({len({i for _, _, i, _ in found})} distinct) is listed in the README" + (f" (unlisted: {', '.join(unlisted)})" if unlisted else ""))


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    try:
        if mode == "clean":
            clean(args[0])
        elif mode == "required":
            required(args[0], [i for i in args[1].split(",") if i])
        elif mode == "weak":
            weak(args[0], [i for i in args[1].split(",") if i])
        elif mode == "skips":
            skips(args[0], args[1])
        else:
            report(False, f"unknown mode {mode}")
    except (OSError, ValueError, KeyError, IndexError) as err:
        report(False, f"{mode}: cannot read the checkov report: {err}")
    return 0 if results and all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
