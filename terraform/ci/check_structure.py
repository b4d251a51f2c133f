#!/usr/bin/env python3
"""Offline structural checks of Ward's Terraform, standing in for `terraform validate`
(which needs the AWS provider, and the registry is unreachable here).

Run with a Python that has `python-hcl2` (NOT checkov's bc-python-hcl2: they clash):
    check_structure.py <terraform-dir>

For every directory holding .tf files it checks that:
  * every .tf file (and terraform.tfvars.example) parses;
  * every local module call points to an existing module directory, passes only
    variables that module declares, and passes every variable without a default;
  * every `module.X.Y` reference names a module call X in that directory whose
    module declares output Y;
  * every `var.`, `local.`, `data.` and resource reference resolves to a
    declaration in the same directory;
  * every variable and output has a non-empty description;
  * versions.tf pins terraform >= 1.5 and the aws provider to ~> 5.x;
  * terraform.tfvars.example sets only declared variables and every required one.
Prints one "PASS ..." or "FAIL ..." line per check; exits 1 if any check failed.
"""
import os
import re
import sys

import hcl2

META_ARGS = {"source", "version", "providers", "count", "for_each", "depends_on"}
TEXT_KEYS = {"description", "error_message"}
REF_PATTERNS = {
    "var": re.compile(r"(?<![\w.$])var\.([A-Za-z_][\w-]*)"),
    "local": re.compile(r"(?<![\w.$])local\.([A-Za-z_][\w-]*)"),
    "data": re.compile(r"(?<![\w.$])data\.([a-z][a-z0-9_]*)\.([A-Za-z_][\w-]*)"),
    "module": re.compile(r"(?<![\w.$])module\.([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)"),
    "resource": re.compile(r"(?<![\w.$])((?:aws|random)_[a-z0-9_]+)\.([A-Za-z_][\w-]*)"),
}

results = []


def report(ok, text):
    results.append(ok)
    print(("PASS  " if ok else "FAIL  ") + text, flush=True)


def unq(label):
    return label[1:-1] if len(label) >= 2 and label[0] == label[-1] == '"' else label


def blocks(doc, kind):
    """Yield (label, body) for `kind "label" {}` blocks (variable, output, module)."""
    for entry in doc.get(kind, []):
        for label, body in entry.items():
            yield unq(label), body


def typed_blocks(doc, kind):
    """Yield (type, name) for `kind "type" "name" {}` blocks (resource, data)."""
    for entry in doc.get(kind, []):
        for rtype, names in entry.items():
            for name in names:
                if name != "__is_block__":
                    yield unq(rtype), unq(name)


def strings(node, skip_text=True):
    """Every string leaf of a parsed tree, leaving out descriptions and messages."""
    if isinstance(node, dict):
        for key, value in node.items():
            if skip_text and key in TEXT_KEYS:
                continue
            yield from strings(value, skip_text)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value, skip_text)
    elif isinstance(node, str):
        yield node


def load_dir(path):
    """Parse every .tf file of one directory into a list of (file, doc)."""
    docs = []
    for name in sorted(os.listdir(path)):
        if name.endswith(".tf"):
            with open(os.path.join(path, name), encoding="utf-8") as handle:
                docs.append((name, hcl2.load(handle)))
    return docs


def declarations(docs):
    decl = {"variables": {}, "outputs": set(), "locals": set(), "data": set(), "resource": set(), "modules": {}}
    for _, doc in docs:
        for name, body in blocks(doc, "variable"):
            decl["variables"][name] = body
        for name, _ in blocks(doc, "output"):
            decl["outputs"].add(name)
        for entry in doc.get("locals", []):
            decl["locals"].update(k for k in entry if k != "__is_block__")
        decl["data"].update(typed_blocks(doc, "data"))
        decl["resource"].update(typed_blocks(doc, "resource"))
        for name, body in blocks(doc, "module"):
            decl["modules"][name] = body
    return decl


def check_dir(root, rel, cache):
    path = os.path.join(root, rel)
    docs, decl = cache[rel]

    # Descriptions.
    missing = [f"variable {n}" for n, b in decl["variables"].items() if not unq(str(b.get("description", ""))).strip()]
    for _, doc in docs:
        missing += [f"output {n}" for n, b in blocks(doc, "output") if not unq(str(b.get("description", ""))).strip()]
    report(not missing, f"{rel}: every variable and output has a description" + (f" (missing: {', '.join(missing)})" if missing else ""))

    # References inside this directory.
    unresolved = set()
    for _, doc in docs:
        for text in strings(doc):
            for name in REF_PATTERNS["var"].findall(text):
                if name not in decl["variables"]:
                    unresolved.add(f"var.{name}")
            for name in REF_PATTERNS["local"].findall(text):
                if name not in decl["locals"]:
                    unresolved.add(f"local.{name}")
            for dtype, name in REF_PATTERNS["data"].findall(text):
                if (dtype, name) not in decl["data"]:
                    unresolved.add(f"data.{dtype}.{name}")
            for rtype, name in REF_PATTERNS["resource"].findall(text):
                if (rtype, name) not in decl["resource"]:
                    unresolved.add(f"{rtype}.{name}")
            for mod, _ in REF_PATTERNS["module"].findall(text):
                if mod not in decl["modules"]:
                    unresolved.add(f"module.{mod}")
    report(not unresolved, f"{rel}: var/local/data/resource/module references resolve" + (f" (unresolved: {', '.join(sorted(unresolved))})" if unresolved else ""))

    # Version pins.
    versions = dict(docs).get("versions.tf")
    ok = False
    if versions:
        tf = versions.get("terraform", [{}])[0]
        required = unq(str(tf.get("required_version", "")))
        providers = tf.get("required_providers", [{}])[0]
        aws = providers.get("aws", {}) if isinstance(providers, dict) else {}
        ok = bool(re.match(r">=\s*1\.(5|[6-9]|\d\d)", required)) and unq(str(aws.get("version", ""))).startswith("~> 5.")
    report(ok, f"{rel}: versions.tf pins terraform >= 1.5 and aws ~> 5.x")

    # Module calls.
    referenced = {}
    for _, doc in docs:
        for text in strings(doc):
            for mod, out in REF_PATTERNS["module"].findall(text):
                referenced.setdefault(mod, set()).add(out)
    for mod, body in sorted(decl["modules"].items()):
        source = unq(str(body.get("source", "")))
        if not source.startswith("."):
            report(False, f"{rel}: module.{mod} uses a non-local source {source!r}")
            continue
        target = os.path.relpath(os.path.normpath(os.path.join(path, source)), root)
        if target not in cache:
            report(False, f"{rel}: module.{mod} source {source} is not a module directory under {os.path.basename(root)}/")
            continue
        mdecl = cache[target][1]
        passed = {k for k in body if k not in META_ARGS and k != "__is_block__"}
        undeclared = sorted(passed - set(mdecl["variables"]))
        required = {n for n, b in mdecl["variables"].items() if "default" not in b}
        unpassed = sorted(required - passed)
        unknown_outputs = sorted(referenced.get(mod, set()) - mdecl["outputs"])
        problems = []
        if undeclared:
            problems.append(f"undeclared arguments: {', '.join(undeclared)}")
        if unpassed:
            problems.append(f"required variables not passed: {', '.join(unpassed)}")
        if unknown_outputs:
            problems.append(f"outputs not declared by {target}: {', '.join(unknown_outputs)}")
        report(not problems, f"{rel}: module.{mod} -> {target} ({len(passed)} arguments, {len(referenced.get(mod, ()))} outputs used)" + (f": {'; '.join(problems)}" if problems else ""))

    # Example variable file.
    example = os.path.join(path, "terraform.tfvars.example")
    if os.path.exists(example):
        with open(example, encoding="utf-8") as handle:
            values = {k for k in hcl2.load(handle) if not k.startswith("__")}
        required = {n for n, b in decl["variables"].items() if "default" not in b}
        problems = sorted(values - set(decl["variables"])) + [f"missing {n}" for n in sorted(required - values)]
        report(not problems, f"{rel}: terraform.tfvars.example sets declared variables and every required one" + (f" ({', '.join(problems)})" if problems else ""))


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "terraform")
    cache = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if any(f.endswith(".tf") for f in filenames):
            rel = os.path.relpath(dirpath, root)
            try:
                docs = load_dir(dirpath)
            except Exception as err:  # a parse error is a failed check, not a crash
                report(False, f"{rel}: parse error: {str(err).splitlines()[0]}")
                continue
            cache[rel] = (docs, declarations(docs))
    report(bool(cache), f"parsed {sum(len(d) for d, _ in cache.values())} .tf files in {len(cache)} directories")
    for rel in sorted(cache):
        check_dir(root, rel, cache)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
