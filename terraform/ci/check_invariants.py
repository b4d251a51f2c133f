#!/usr/bin/env python3
"""Security invariants of Ward's Terraform, checked offline with python-hcl2.

Run with a Python that has `python-hcl2` (NOT checkov's bc-python-hcl2: they clash):
    check_invariants.py <terraform-dir>              check the tree
    check_invariants.py --self-test <terraform-dir>  break copies of the tree, one
                                                     invariant per case, and assert the
                                                     checker rejects each and names it

Invariants (one PASS/FAIL line per invariant per resource):
  [1 sse-kms]   every aws_s3_bucket has, in its module directory, an
                aws_s3_bucket_server_side_encryption_configuration for it with
                sse_algorithm = "aws:kms" and a kms_master_key_id that traces (through
                variables, module calls and module outputs) to an aws_kms_key resource,
                never a literal / AWS-managed `alias/aws/...` key; except the buckets in
                SSE_ALLOW_LIST (each must also be named in terraform/README.md);
  [2 public]    every aws_s3_bucket has an aws_s3_bucket_public_access_block with all
                four flags true;
  [3 database]  every aws_db_instance / aws_rds_cluster has storage_encrypted = true, a
                customer-managed kms_key_id and (instances) multi_az = true; a variable
                is accepted for a boolean only if its default is true and no module call
                passes anything that is not true;
  [4 archive]   the audit-archive bucket has object_lock_enabled = true and an
                aws_s3_bucket_object_lock_configuration whose default retention mode is
                COMPLIANCE (evaluated with the arguments of the module call);
  [5 ingress]   no security-group ingress (aws_security_group / aws_default_security_group
                inline `ingress`, aws_security_group_rule type ingress,
                aws_vpc_security_group_ingress_rule) is open to 0.0.0.0/0 or ::/0, except
                on an ALB's security group and only tcp 443. A CIDR that cannot be
                resolved counts as open.
Values are resolved conservatively: `var.X` is every value a module call (or, for a root
module, the default and terraform.tfvars.example) may give it.
Exits 1 if any check failed.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import hcl2

# Buckets that may NOT use SSE-KMS with a customer-managed key: (module dir, resource
# address) -> reason. Keep it small; every entry must be named in terraform/README.md.
SSE_ALLOW_LIST = {
    ("modules/storage", "aws_s3_bucket.logs"): (
        "access-log bucket: S3 server access logs and ALB access logs can only be "
        "delivered to SSE-S3 (AES256) buckets, not SSE-KMS (checkov skip CKV_AWS_145)"
    ),
}
# The module directory holding Ward's audit-checkpoint archive bucket.
AUDIT_ARCHIVE_DIR = "modules/audit-archive"
OPEN_CIDRS = {"0.0.0.0/0", "::/0"}
BUCKET_ATTR_TYPES = (
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_object_lock_configuration",
)

results = []


def report(ok, tag, text):
    results.append(ok)
    print(("PASS  " if ok else "FAIL  ") + f"[{tag}] {text}", flush=True)


class Unknown:
    """A value the checker cannot resolve statically."""

    def __init__(self, why):
        self.why = why

    def __repr__(self):
        return f"<unknown: {self.why}>"


class Ref:
    """A resource / data reference that is not a plain value (e.g. aws_kms_key.x.arn)."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


def unq(label):
    return label[1:-1] if isinstance(label, str) and len(label) >= 2 and label[0] == label[-1] == '"' else label


# ---------------------------------------------------------------------------- loading


class Module:
    def __init__(self, rel):
        self.rel = rel
        self.resources = {}  # (type, name) -> body
        self.variables = {}
        self.outputs = {}
        self.calls = {}  # name -> body
        self.tfvars = {}


def load(root):
    mods = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if not any(f.endswith(".tf") for f in filenames):
            continue
        rel = os.path.relpath(dirpath, root)
        mod = Module(rel)
        for name in sorted(filenames):
            if not name.endswith(".tf"):
                continue
            with open(os.path.join(dirpath, name), encoding="utf-8") as handle:
                doc = hcl2.load(handle)
            for entry in doc.get("resource", []):
                for rtype, named in entry.items():
                    for rname, body in named.items():
                        if rname != "__is_block__":
                            mod.resources[(unq(rtype), unq(rname))] = body
            for kind, target in (("variable", mod.variables), ("output", mod.outputs), ("module", mod.calls)):
                for entry in doc.get(kind, []):
                    for label, body in entry.items():
                        if label != "__is_block__":
                            target[unq(label)] = body
        example = os.path.join(dirpath, "terraform.tfvars.example")
        if os.path.exists(example):
            with open(example, encoding="utf-8") as handle:
                mod.tfvars = {k: v for k, v in hcl2.load(handle).items() if not k.startswith("__")}
        mods[rel] = mod
    return mods


def call_target(mods, caller, body):
    source = unq(str(body.get("source", "")))
    if not source.startswith("."):
        return None
    target = os.path.normpath(os.path.join(caller, source))
    return target if target in mods else None


# ------------------------------------------------------------------------- evaluation


class Evaluator:
    def __init__(self, mods):
        self.mods = mods
        self.callers = {}  # target rel -> [(caller rel, call name, body)]
        for rel, mod in mods.items():
            for name, body in mod.calls.items():
                target = call_target(mods, rel, body)
                if target:
                    self.callers.setdefault(target, []).append((rel, name, body))

    def var_sources(self, rel, name, env):
        """[(expr, rel, env, how)] every expression that may give var.name its value."""
        mod = self.mods[rel]
        decl = mod.variables.get(name)
        if decl is None:
            return [(Unknown(f"undeclared var.{name}"), rel, None, "undeclared")]
        if env is not None:  # one specific module call
            bindings, caller_rel, caller_env = env
            if name in bindings:
                return [(bindings[name], caller_rel, caller_env, f"passed by {caller_rel}")]
            if "default" in decl:
                return [(decl["default"], rel, None, "default")]
            return [(Unknown(f"var.{name} not passed"), rel, None, "missing")]
        out = []
        callers = self.callers.get(rel, [])
        for caller_rel, call, body in callers:
            if name in body:
                out.append((body[name], caller_rel, None, f"{caller_rel} module.{call}"))
            elif "default" in decl:
                out.append((decl["default"], rel, None, f"default ({caller_rel} module.{call} passes nothing)"))
        if not callers:  # a root module: the default and whatever the operator sets
            if "default" in decl:
                out.append((decl["default"], rel, None, "default"))
            if name in mod.tfvars:
                out.append((mod.tfvars[name], rel, None, "terraform.tfvars.example"))
            if "default" not in decl:
                out.append((Unknown(f"root variable var.{name} has no default"), rel, None, "operator"))
        return out

    def values(self, raw, rel, env=None, depth=0):
        """Every value `raw` (a python-hcl2 node) may take: a list of candidates.
        Candidates are python scalars, None, Ref, Unknown, or tuples (list values)."""
        if depth > 20:
            return [Unknown("too deep")]
        if isinstance(raw, Unknown) or raw is None or isinstance(raw, (bool, int, float)):
            return [raw]
        if isinstance(raw, list):
            elems = []
            for item in raw:
                elems += self.values(item, rel, env, depth + 1)
            return [tuple(elems)]
        if isinstance(raw, dict):
            return [Unknown("object")]
        text = raw
        if text.startswith("${") and text.endswith("}") and text.count("${") == 1:
            return self.expr(text[2:-1].strip(), rel, env, depth + 1)
        if "${" in text:
            return [Unknown(f"template {text}")]
        return [unq(text)]

    def expr(self, e, rel, env, depth):
        if e == "null":
            return [None]
        if e in ("true", "false"):
            return [e == "true"]
        if re.fullmatch(r"-?\d+", e):
            return [int(e)]
        if re.fullmatch(r'"[^"$]*"', e):
            return [e[1:-1]]
        m = re.fullmatch(r"(toset|tolist)\((.*)\)", e)
        if m:
            return self.expr(m.group(2).strip(), rel, env, depth + 1)
        m = re.fullmatch(r"(.+?)\s*\?\s*(.+?)\s*:\s*(.+)", e)
        if m:
            conds = self.expr(m.group(1).strip(), rel, env, depth + 1)
            out = []
            for c in conds:
                if c is True:
                    out += self.expr(m.group(2).strip(), rel, env, depth + 1)
                elif c is False:
                    out += self.expr(m.group(3).strip(), rel, env, depth + 1)
                else:
                    out.append(Unknown(f"condition {m.group(1)}"))
            return out
        m = re.fullmatch(r"(.+?)\s*(==|!=)\s*(.+)", e)
        if m:
            left = self.expr(m.group(1).strip(), rel, env, depth + 1)
            right = self.expr(m.group(3).strip(), rel, env, depth + 1)
            out = []
            for a in left:
                for b in right:
                    if isinstance(a, (Unknown, Ref)) or isinstance(b, (Unknown, Ref)):
                        out.append(Unknown(e))
                    else:
                        out.append((a == b) == (m.group(2) == "=="))
            return out
        m = re.fullmatch(r"var\.([A-Za-z_][\w-]*)", e)
        if m:
            out = []
            for raw, src_rel, src_env, _ in self.var_sources(rel, m.group(1), env):
                out += self.values(raw, src_rel, src_env, depth + 1)
            return out
        m = re.fullmatch(r"module\.([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)", e)
        if m:
            body = self.mods[rel].calls.get(m.group(1))
            target = call_target(self.mods, rel, body) if body else None
            output = self.mods[target].outputs.get(m.group(2)) if target else None
            if output is None or "value" not in output:
                return [Unknown(e)]
            bindings = {k: v for k, v in body.items() if not k.startswith("__")}
            return self.values(output["value"], target, (bindings, rel, env), depth + 1)
        if re.fullmatch(r"(data\.)?[a-z][a-z0-9_]*\.[A-Za-z_][\w-]*(\[[^\]]*\])?(\.[\w]+)*", e):
            return [Ref(e)]
        return [Unknown(e)]


def flat(cands):
    """Candidates of a list-or-scalar value, flattened to element candidates."""
    out = []
    for c in cands:
        out += list(c) if isinstance(c, tuple) else [c]
    return out


def show(cands):
    return ", ".join(sorted({repr(c) if not isinstance(c, str) else c for c in cands}))


def refers(raw, rtype, name):
    return isinstance(raw, str) and re.search(rf"(?<![\w.]){re.escape(rtype)}\.{re.escape(name)}\.(id|bucket|arn)\b", raw)


# ---------------------------------------------------------------------------- checks


def cmk(ev, raw, rel, env=None, depth=0, trail=""):
    """(ok, explanation): does this key id trace only to aws_kms_key resources?"""
    if depth > 20:
        return False, "reference chain too deep"
    if not isinstance(raw, str):
        return False, f"{raw!r} is not a key reference"
    if "alias/aws/" in raw:
        return False, f"{unq(raw)} is an AWS-managed key, not a customer-managed key"
    m = re.fullmatch(r"\$\{\s*(.+?)\s*\}", raw)
    if not m or "${" in m.group(1):
        return False, f"{unq(raw)} is a literal, not a reference to a customer-managed key"
    e = m.group(1)
    if re.fullmatch(r"aws_kms_key\.[A-Za-z_][\w-]*(\[[^\]]*\])?\.(arn|id|key_id)", e):
        name = re.match(r"aws_kms_key\.([A-Za-z_][\w-]*)", e).group(1)
        if ("aws_kms_key", name) in ev.mods[rel].resources:
            return True, trail + e
        return False, f"{e} is not declared in {rel}"
    mv = re.fullmatch(r"var\.([A-Za-z_][\w-]*)", e)
    if mv:
        sources = ev.var_sources(rel, mv.group(1), env)
        if not sources:
            return False, f"var.{mv.group(1)} in {rel} gets no value"
        paths = []
        for src, src_rel, src_env, how in sources:
            if isinstance(src, Unknown):
                return False, f"var.{mv.group(1)} in {rel}: {src.why}"
            ok, why = cmk(ev, src, src_rel, src_env, depth + 1, "")
            if not ok:
                return False, f"var.{mv.group(1)} ({how}): {why}"
            paths.append(why)
        return True, f"{trail}var.{mv.group(1)} -> " + " | ".join(sorted(set(paths)))
    mm = re.fullmatch(r"module\.([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)", e)
    if mm:
        body = ev.mods[rel].calls.get(mm.group(1))
        target = call_target(ev.mods, rel, body) if body else None
        output = ev.mods[target].outputs.get(mm.group(2)) if target else None
        if output is None or "value" not in output:
            return False, f"{e}: output not found"
        bindings = {k: v for k, v in body.items() if not k.startswith("__")}
        ok, why = cmk(ev, output["value"], target, (bindings, rel, env), depth + 1, "")
        return ok, f"{e} -> {why}" if ok else f"{e}: {why}"
    return False, f"{e} cannot be proven to be a customer-managed aws_kms_key"


def bucket_attrs(mod, rtype, bucket):
    return [(n, b) for (t, n), b in sorted(mod.resources.items()) if t == rtype and refers(b.get("bucket"), "aws_s3_bucket", bucket)]


def instances(ev, rel):
    callers = ev.callers.get(rel, [])
    return " (used by " + ", ".join(sorted(f"{c} module.{n}" for c, n, _ in callers)) + ")" if callers else ""


def check_buckets(ev, readme):
    listed = set()
    for rel, mod in sorted(ev.mods.items()):
        for (rtype, name), body in sorted(mod.resources.items()):
            if rtype != "aws_s3_bucket":
                continue
            addr = f"aws_s3_bucket.{name}"
            where = f"{rel}: {addr}{instances(ev, rel)}"
            # 1. SSE-KMS with a customer-managed key.
            sse = bucket_attrs(mod, "aws_s3_bucket_server_side_encryption_configuration", name)
            allowed = SSE_ALLOW_LIST.get((rel, addr))
            if allowed:
                listed.add((rel, addr))
                algos = [unq(d.get("sse_algorithm")) for _, b in sse for r in b.get("rule", []) for d in r.get("apply_server_side_encryption_by_default", [])]
                ok = bool(algos) and all(a in ("AES256", "aws:kms") for a in algos)
                report(ok, "1 sse-kms", f"{where}: allow-listed, encrypted with {', '.join(algos) or 'NOTHING'} — {allowed}")
            elif not sse:
                report(False, "1 sse-kms", f"{where}: no aws_s3_bucket_server_side_encryption_configuration refers to it")
            else:
                problems, keys = [], []
                for sname, sbody in sse:
                    defaults = [d for r in sbody.get("rule", []) for d in r.get("apply_server_side_encryption_by_default", [])]
                    if not defaults:
                        problems.append(f"{sname}: no apply_server_side_encryption_by_default")
                    for d in defaults:
                        algos = ev.values(d.get("sse_algorithm"), rel)
                        if algos != ["aws:kms"] and set(map(str, algos)) != {"aws:kms"}:
                            problems.append(f"{sname}: sse_algorithm {show(algos)}, expected aws:kms")
                        if "kms_master_key_id" not in d:
                            problems.append(f"{sname}: no kms_master_key_id (would use the AWS-managed aws/s3 key)")
                            continue
                        ok, why = cmk(ev, d["kms_master_key_id"], rel)
                        (keys if ok else problems).append(why if ok else f"{sname}: kms_master_key_id {why}")
                report(not problems, "1 sse-kms", f"{where}: " + ("; ".join(problems) if problems else f"aws:kms with customer-managed key {'; '.join(keys)}"))
            # 2. Block Public Access.
            pab = bucket_attrs(mod, "aws_s3_bucket_public_access_block", name)
            flags = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
            if not pab:
                report(False, "2 public", f"{where}: no aws_s3_bucket_public_access_block refers to it")
            else:
                bad = [f"{p}.{f} = {show(ev.values(b.get(f), rel))}" for p, b in pab for f in flags if ev.values(b.get(f), rel) != [True] and set(ev.values(b.get(f), rel)) != {True}]
                report(not bad, "2 public", f"{where}: " + (f"not all true: {'; '.join(bad)}" if bad else "all four public-access-block flags true"))
    for (rel, addr), reason in sorted(SSE_ALLOW_LIST.items()):
        if (rel, addr) not in listed:
            report(False, "1 sse-kms", f"allow-list entry {rel} {addr} matches no bucket (stale entry)")
        mentioned = any(addr in line and rel in line for line in readme.splitlines())
        report(mentioned, "1 sse-kms", f"allow-list entry {rel} {addr} is documented in README.md" + ("" if mentioned else f" (it is NOT: add a line naming both `{rel}` and `{addr}`)"))


def bool_true(ev, body, attr, rel):
    """(ok, explanation) for a boolean that must be true."""
    if attr not in body:
        return False, f"{attr} is not set (defaults to false)"
    raw = body[attr]
    if raw is True:
        return True, f"{attr} = true"
    m = re.fullmatch(r"\$\{var\.([A-Za-z_][\w-]*)\}", raw) if isinstance(raw, str) else None
    if m:
        decl = ev.mods[rel].variables.get(m.group(1), {})
        if decl.get("default") is not True:
            return False, f"{attr} = var.{m.group(1)} whose default is {decl.get('default', 'unset')!r}, not true"
        vals = ev.values(raw, rel)
        if any(v is not True for v in vals):
            return False, f"{attr} = var.{m.group(1)} (default true) but a module call may pass {show(vals)}"
        return True, f"{attr} = var.{m.group(1)}, accepted because the variable's default is true (and no module call passes anything else)"
    return False, f"{attr} = {raw!r} is neither true nor a variable whose default is true"


def check_databases(ev):
    for rel, mod in sorted(ev.mods.items()):
        for (rtype, name), body in sorted(mod.resources.items()):
            if rtype not in ("aws_db_instance", "aws_rds_cluster"):
                continue
            where = f"{rel}: {rtype}.{name}{instances(ev, rel)}"
            found = [bool_true(ev, body, "storage_encrypted", rel)]
            if "kms_key_id" in body:
                ok, why = cmk(ev, body["kms_key_id"], rel)
                found.append((ok, f"kms_key_id -> {why}" if ok else f"kms_key_id {why}"))
            else:
                found.append((False, "no kms_key_id (would use the AWS-managed aws/rds key)"))
            if rtype == "aws_db_instance":
                found.append(bool_true(ev, body, "multi_az", rel))
            else:
                azs = flat(ev.values(body.get("availability_zones", []), rel))
                found.append((len(azs) >= 2 and not any(isinstance(a, Unknown) for a in azs), f"availability_zones {show(azs) or 'unset'} (need >= 2 for Multi-AZ)"))
            bad = [why for ok, why in found if not ok]
            report(not bad, "3 database", f"{where}: " + ("; ".join(bad) if bad else "; ".join(why for _, why in found)))


def check_archive(ev):
    buckets = []  # (rel, name, env, how)
    mod = ev.mods.get(AUDIT_ARCHIVE_DIR)
    if mod is None:
        report(False, "4 archive", f"{AUDIT_ARCHIVE_DIR} not found")
        return
    for (rtype, name) in mod.resources:
        if rtype == "aws_s3_bucket":
            buckets.append((AUDIT_ARCHIVE_DIR, name, None, AUDIT_ARCHIVE_DIR))
    for call, body in sorted(mod.calls.items()):
        target = call_target(ev.mods, AUDIT_ARCHIVE_DIR, body)
        if target:
            bindings = {k: v for k, v in body.items() if not k.startswith("__")}
            for (rtype, name) in ev.mods[target].resources:
                if rtype == "aws_s3_bucket":
                    buckets.append((target, name, (bindings, AUDIT_ARCHIVE_DIR, None), f"{AUDIT_ARCHIVE_DIR} module.{call} -> {target}"))
    if not buckets:
        report(False, "4 archive", f"{AUDIT_ARCHIVE_DIR}: no aws_s3_bucket found (directly or through a module call)")
    for rel, name, env, how in buckets:
        body = ev.mods[rel].resources[("aws_s3_bucket", name)]
        problems, good = [], []
        enabled = ev.values(body.get("object_lock_enabled", False), rel, env)
        if enabled == [True]:
            good.append("object_lock_enabled = true")
        else:
            problems.append(f"object_lock_enabled evaluates to {show(enabled)}, not true")
        locks = bucket_attrs(ev.mods[rel], "aws_s3_bucket_object_lock_configuration", name)
        if not locks:
            problems.append("no aws_s3_bucket_object_lock_configuration refers to it")
        for lname, lbody in locks:
            count = ev.values(lbody.get("count", 1), rel, env)
            if count != [1] and not all(isinstance(c, int) and c >= 1 for c in count):
                problems.append(f"object lock configuration {lname}: count evaluates to {show(count)}")
            modes = [v for r in lbody.get("rule", []) for d in r.get("default_retention", []) for v in ev.values(d.get("mode"), rel, env)]
            if modes and all(m == "COMPLIANCE" for m in modes):
                good.append(f"default retention mode COMPLIANCE ({lname})")
            else:
                problems.append(f"object lock configuration {lname}: default retention mode {show(modes) or 'unset'}, expected COMPLIANCE")
        report(not problems, "4 archive", f"audit archive {rel}: aws_s3_bucket.{name} via {how}: " + ("; ".join(problems) if problems else ", ".join(good)))


def check_ingress(ev):
    for rel, mod in sorted(ev.mods.items()):
        alb_sgs = set()
        for (rtype, _), body in mod.resources.items():
            if rtype in ("aws_lb", "aws_alb") and unq(str(body.get("load_balancer_type", '"application"'))) == "application":
                for sg in body.get("security_groups", []) if isinstance(body.get("security_groups"), list) else []:
                    m = re.search(r"aws_security_group\.([A-Za-z_][\w-]*)\.id", str(sg))
                    if m:
                        alb_sgs.add(m.group(1))
        rules = []  # (label, sg name or None, body, cidr attrs, protocol attr)
        for (rtype, name), body in sorted(mod.resources.items()):
            if rtype in ("aws_security_group", "aws_default_security_group"):
                for i, block in enumerate(body.get("ingress", []) if isinstance(body.get("ingress"), list) else []):
                    rules.append((f"{rtype}.{name} ingress[{i}]", name if rtype == "aws_security_group" else None, block, ("cidr_blocks", "ipv6_cidr_blocks"), "protocol", body))
            elif rtype == "aws_security_group_rule" and unq(str(body.get("type"))) == "ingress":
                rules.append((f"{rtype}.{name}", None, body, ("cidr_blocks", "ipv6_cidr_blocks"), "protocol", body))
            elif rtype == "aws_vpc_security_group_ingress_rule":
                rules.append((f"{rtype}.{name}", None, body, ("cidr_ipv4", "cidr_ipv6"), "ip_protocol", body))
        for label, sg, block, cidr_attrs, proto_attr, outer in rules:
            if sg is None:
                m = re.search(r"aws_security_group\.([A-Za-z_][\w-]*)\.id", str(block.get("security_group_id", "")))
                sg = m.group(1) if m else None
            cidrs = []
            for attr in cidr_attrs:
                raw = block.get(attr)
                if raw is None:
                    continue
                if isinstance(raw, str) and re.fullmatch(r"\$\{each\.(key|value)\}", raw):
                    cidrs += flat(ev.values(outer.get("for_each"), rel))
                else:
                    cidrs += flat(ev.values(raw, rel))
            where = f"{rel}: {label}"
            if not cidrs:
                report(True, "5 ingress", f"{where}: no CIDR source (security-group or prefix-list source only)")
                continue
            open_ = [c for c in cidrs if not isinstance(c, str) or c in OPEN_CIDRS]
            if not open_:
                report(True, "5 ingress", f"{where}: from {show(cidrs)} only (not the internet)")
                continue
            proto = ev.values(block.get(proto_attr), rel)
            ports = ev.values(block.get("from_port"), rel) + ev.values(block.get("to_port"), rel)
            https_only = proto == ["tcp"] and all(p == 443 for p in ports)
            on_alb = sg in alb_sgs
            ok = on_alb and https_only
            detail = f"open to {show(open_)} (protocol {show(proto)}, ports {show(ports)}) on security group {sg or '?'}"
            if ok:
                report(True, "5 ingress", f"{where}: {detail}: allowed, it is the ALB's security group and only tcp/443")
            else:
                why = [] if on_alb else ["not the ALB's security group"]
                why += [] if https_only else ["not tcp/443 only"]
                report(False, "5 ingress", f"{where}: {detail}: {' and '.join(why)}")


def run(root):
    root = os.path.abspath(root)
    try:
        mods = load(root)
    except Exception as err:  # a parse error is a failed check, not a crash
        report(False, "parse", f"cannot parse {root}: {str(err).splitlines()[0]}")
        return 1
    try:
        with open(os.path.join(root, "README.md"), encoding="utf-8") as handle:
            readme = handle.read()
    except OSError:
        readme = ""
    ev = Evaluator(mods)
    check_buckets(ev, readme)
    check_databases(ev)
    check_archive(ev)
    check_ingress(ev)
    return 0 if results and all(results) else 1


# ------------------------------------------------------------------------- self-test

EXTRA_SSH = '''
resource "aws_vpc_security_group_ingress_rule" "selftest_ssh" {
  security_group_id = aws_security_group.task.id
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = "0.0.0.0/0"
}
'''
EXTRA_ALB_HTTP = '''
resource "aws_vpc_security_group_ingress_rule" "selftest_http" {
  security_group_id = aws_security_group.alb.id
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"
}
'''
EXTRA_INLINE_V6 = '''
resource "aws_security_group" "selftest_legacy" {
  name   = "legacy"
  vpc_id = aws_vpc.this.id

  ingress {
    protocol         = "tcp"
    from_port        = 443
    to_port          = 443
    ipv6_cidr_blocks = ["::/0"]
  }
}
'''
EXTRA_SG_RULE = '''
resource "aws_security_group_rule" "selftest_rdp" {
  type              = "ingress"
  security_group_id = aws_security_group.redis.id
  protocol          = "tcp"
  from_port         = 3389
  to_port           = 3389
  cidr_blocks       = ["10.0.0.0/8", "0.0.0.0/0"]
}
'''

SELFTEST_VAR = '''
variable "selftest_multi_az" {
  description = "self-test"
  type        = bool
  default     = false
}
'''
DB = "modules/database/main.tf"

# (name, [(file, old, new)], expected substrings of one FAIL line); old None = append new.
CASES = [
    ("multi_az removed from the RDS instance", [(DB, "  multi_az               = true\n", "")], ["3 database", "aws_db_instance.this", "multi_az is not set"]),
    ("multi_az from a variable defaulting to false",
     [(DB, "multi_az               = true", "multi_az               = var.selftest_multi_az"), (DB, None, SELFTEST_VAR)],
     ["3 database", "multi_az = var.selftest_multi_az whose default is False"]),
    ("storage_encrypted = false on the RDS instance", [(DB, "storage_encrypted     = true", "storage_encrypted     = false")], ["3 database", "storage_encrypted"]),
    ("AES256 on the (non-allow-listed) secure-bucket bucket", [("modules/secure-bucket/main.tf", 'sse_algorithm     = "aws:kms"', 'sse_algorithm     = "AES256"')],
     ["1 sse-kms", "modules/secure-bucket: aws_s3_bucket.this", "AES256"]),
    ("attachments bucket with the AWS-managed alias/aws/s3 key",
     [("modules/storage/main.tf", "  kms_key_arn                        = var.kms_key_arn\n", '  kms_key_arn                        = "alias/aws/s3"\n')],
     ["1 sse-kms", "alias/aws/s3", "AWS-managed"]),
    ("restrict_public_buckets = false", [("modules/secure-bucket/main.tf", "restrict_public_buckets = true", "restrict_public_buckets = false")], ["2 public", "restrict_public_buckets"]),
    ("audit archive Object Lock mode GOVERNANCE", [("modules/audit-archive/main.tf", 'object_lock_mode  = "COMPLIANCE"', 'object_lock_mode  = "GOVERNANCE"')],
     ["4 archive", "GOVERNANCE", "expected COMPLIANCE"]),
    ("audit archive without Object Lock", [("modules/audit-archive/main.tf", '  object_lock_mode  = "COMPLIANCE"\n', "")], ["4 archive", "object_lock_enabled evaluates to False"]),
    ("ingress 0.0.0.0/0 on port 22 (task security group)", [("modules/compute/iam.tf", None, EXTRA_SSH)], ["5 ingress", "selftest_ssh", "0.0.0.0/0", "not the ALB"]),
    ("ALB opens port 80 to the internet", [("modules/edge/main.tf", None, EXTRA_ALB_HTTP)], ["5 ingress", "selftest_http", "not tcp/443 only"]),
    ("inline ingress ::/0 on a non-ALB security group", [("modules/network/endpoints.tf", None, EXTRA_INLINE_V6)], ["5 ingress", "selftest_legacy", "::/0"]),
    ("aws_security_group_rule ingress 0.0.0.0/0 on 3389", [("modules/cache/main.tf", None, EXTRA_SG_RULE)], ["5 ingress", "selftest_rdp", "0.0.0.0/0"]),
]


def self_test(root):
    root = os.path.abspath(root)
    me = os.path.abspath(__file__)
    with tempfile.TemporaryDirectory() as tmp:
        def fresh():
            copy = os.path.join(tmp, "tf")
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
            return copy

        def check(copy):
            proc = subprocess.run([sys.executable, me, copy], capture_output=True, text=True)
            return proc.returncode, proc.stdout + proc.stderr

        rc, out = check(fresh())
        report(rc == 0, "6 self-test", "unmodified copy passes" + ("" if rc == 0 else f" (it does not: {[l for l in out.splitlines() if l.startswith('FAIL')][:3]})"))
        for name, edits, expect in CASES:
            copy = fresh()
            applied = True
            for rel, old, new in edits:
                path = os.path.join(copy, rel)
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
                if old is None:
                    text += new
                elif old in text:
                    text = text.replace(old, new, 1)
                else:
                    applied = False
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(text)
            if not applied:
                report(False, "6 self-test", f"{name}: an edit did not apply (update the case)")
                continue
            rc, out = check(copy)
            fails = [l for l in out.splitlines() if l.startswith("FAIL")]
            named = [l for l in fails if all(s in l for s in expect)]
            if rc != 0 and named:
                report(True, "6 self-test", f"{name}: detected — {named[0][6:]}")
            else:
                report(False, "6 self-test", f"{name}: NOT detected as expected (exit {rc}; FAIL lines: {fails[:3]}; wanted {expect})")
    return 0 if results and all(results) else 1


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--self-test":
        sys.exit(self_test(sys.argv[2]))
    sys.exit(run(sys.argv[1] if len(sys.argv) > 1 else "terraform"))
