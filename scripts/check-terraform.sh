#!/usr/bin/env bash
# Offline checks of Ward's Terraform (terraform/), runnable in CI without the
# Terraform registry (so no `terraform init` / `terraform validate`):
#   1. terraform fmt -check -recursive
#   2. checkov (PyPI, own venv, --skip-download) over terraform/: no failed check;
#      inline skips carry a reason and are listed in terraform/README.md
#   3. an explicit list of HIPAA-relevant checkov checks: each must have run on at
#      least one resource and passed (a check that matched nothing proves nothing)
#   4. structural checks with python-hcl2 (own venv) standing in for validate
#   5. security invariants with python-hcl2 (terraform/ci/check_invariants.py):
#      SSE-KMS with customer-managed keys (small documented allow-list), Block
#      Public Access, encrypted Multi-AZ RDS, COMPLIANCE Object Lock on the audit
#      archive, no internet ingress except the ALB on 443
#   6. negative tests: checkov must fail a deliberately weak snippet, the
#      structural checker must catch a broken module call, and the invariant
#      checker must reject copies of the tree with one invariant broken per case
# Prints PASS/FAIL lines and ends with exactly one line "N passed, M failed";
# exits non-zero if anything failed.
#
# Environment: WARD_TOOLS_DIR (default ~/.cache/ward-tools) holds the venvs;
# PYTHON (default python3) creates them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TF_DIR="$ROOT/terraform"
CI_DIR="$TF_DIR/ci"
TOOLS_DIR="${WARD_TOOLS_DIR:-$HOME/.cache/ward-tools}"
PYTHON="${PYTHON:-python3}"
CHECKOV_VERSION="3.3.30"
HCL2_VERSION="8.1.4"
CHECKOV_VENV="$TOOLS_DIR/checkov-$CHECKOV_VERSION"
HCL2_VENV="$TOOLS_DIR/python-hcl2-$HCL2_VERSION"

# HIPAA-relevant checks that must each pass on at least one resource.
HIPAA_CHECKS=(
  CKV_AWS_16 CKV_AWS_17 CKV_AWS_157 CKV_AWS_293 CKV_AWS_118 CKV_AWS_129 CKV_AWS_161
  CKV_AWS_133 CKV_AWS_353 CKV_AWS_354 CKV2_AWS_69 CKV2_AWS_30
  CKV_AWS_145 CKV2_AWS_6 CKV_AWS_18 CKV_AWS_21 CKV_AWS_19
  CKV_AWS_7 CKV_AWS_33
  CKV_AWS_2 CKV_AWS_103 CKV_AWS_91 CKV_AWS_131 CKV2_AWS_28 CKV_AWS_192 CKV2_AWS_31
  CKV_AWS_191 CKV_AWS_29 CKV_AWS_30 CKV_AWS_31
  CKV_AWS_35 CKV_AWS_36 CKV_AWS_67 CKV2_AWS_10
  CKV_AWS_158 CKV_AWS_338
  CKV_AWS_336 CKV_AWS_333 CKV_AWS_249 CKV_AWS_136 CKV_AWS_163
  CKV_AWS_149 CKV_AWS_166 CKV_AWS_26 CKV2_AWS_11 CKV2_AWS_12
)
# Checks the weak snippet must fail (unencrypted public RDS, unprotected S3, log group).
WEAK_EXPECTED="CKV_AWS_16,CKV_AWS_17,CKV_AWS_293,CKV_AWS_145,CKV2_AWS_6,CKV_AWS_21,CKV_AWS_158,CKV_AWS_338"

unset TF_CLI_CONFIG_FILE # points at a missing file on some machines; only causes a warning
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

START=$SECONDS
PASSED=0
FAILED=0
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

pass() { echo "PASS  $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL  $*"; FAILED=$((FAILED + 1)); }
section() { echo; echo "== $*"; }

# Run a checker that prints PASS/FAIL lines; count them. A checker that exits
# non-zero without printing a FAIL line counts as one failure.
run_counted() {
  local label=$1 out="$WORK/out.$RANDOM" rc=0 fails=0 line
  shift
  "$@" >"$out" 2>&1 || rc=$?
  while IFS= read -r line; do
    case "$line" in
      PASS*) echo "$line"; PASSED=$((PASSED + 1)) ;;
      FAIL*) echo "$line"; FAILED=$((FAILED + 1)); fails=$((fails + 1)) ;;
      *) echo "      $line" ;;
    esac
  done <"$out"
  if [ "$rc" -ne 0 ] && [ "$fails" -eq 0 ]; then
    fail "$label exited with status $rc"
  fi
}

# Create (or reuse) a venv holding exactly one pinned package.
ensure_venv() {
  local dir=$1 package=$2 version=$3 log="$WORK/pip.$RANDOM"
  if [ -f "$dir/.ward-ready" ] && "$dir/bin/python" -c \
    "import importlib.metadata as m, sys; sys.exit(m.version('$package') != '$version')" 2>/dev/null; then
    return 0
  fi
  echo "      installing $package==$version into $dir ..."
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  if "$PYTHON" -m venv "$dir" >"$log" 2>&1; then
    "$dir/bin/python" -m pip install --quiet "$package==$version" >>"$log" 2>&1 || { tail -20 "$log"; return 1; }
  else
    # Debian without python3-venv has no ensurepip: make a bare venv and install
    # into it with the system pip.
    rm -rf "$dir"
    { "$PYTHON" -m venv --without-pip "$dir" &&
      "$PYTHON" -m pip --python "$dir/bin/python" install --quiet "$package==$version"; } >>"$log" 2>&1 ||
      { tail -20 "$log"; return 1; }
  fi
  touch "$dir/.ward-ready"
}

checkov() { "$CHECKOV_VENV/bin/python" -m checkov.main "$@"; }

# ---------------------------------------------------------------------------
section "terraform fmt"
if command -v terraform >/dev/null 2>&1; then
  if terraform fmt -check -recursive -diff "$TF_DIR" >"$WORK/fmt.log" 2>&1; then
    pass "terraform fmt -check -recursive terraform/"
  else
    sed 's/^/      /' "$WORK/fmt.log"
    fail "terraform fmt -check -recursive terraform/ (run: terraform fmt -recursive terraform)"
  fi
else
  echo "!!!!! WARNING: terraform is not installed; the fmt check was SKIPPED (not counted) !!!!!"
fi

# ---------------------------------------------------------------------------
section "tools (venvs under $TOOLS_DIR)"
CHECKOV_OK=0
HCL2_OK=0
if ensure_venv "$CHECKOV_VENV" checkov "$CHECKOV_VERSION"; then
  pass "checkov $CHECKOV_VERSION available"
  CHECKOV_OK=1
else
  fail "could not install checkov==$CHECKOV_VERSION"
fi
# python-hcl2 gets its own venv: checkov's bc-python-hcl2 installs the same
# top-level module `hcl2`.
if ensure_venv "$HCL2_VENV" python-hcl2 "$HCL2_VERSION"; then
  pass "python-hcl2 $HCL2_VERSION available"
  HCL2_OK=1
else
  fail "could not install python-hcl2==$HCL2_VERSION"
fi

# ---------------------------------------------------------------------------
section "checkov: full scan of terraform/"
if [ "$CHECKOV_OK" = 1 ]; then
  checkov -d "$TF_DIR" --framework terraform --skip-download -o json >"$WORK/full.json" 2>"$WORK/full.log" || true
  run_counted "checkov full scan" "$PYTHON" "$CI_DIR/check_checkov.py" clean "$WORK/full.json"
  run_counted "checkov skip review" "$PYTHON" "$CI_DIR/check_checkov.py" skips "$TF_DIR" "$TF_DIR/README.md"
else
  fail "checkov full scan not run (checkov unavailable)"
fi

# ---------------------------------------------------------------------------
section "checkov: HIPAA-relevant checks, each must run and pass"
if [ "$CHECKOV_OK" = 1 ]; then
  ids="$(IFS=,; echo "${HIPAA_CHECKS[*]}")"
  checkov -d "$TF_DIR" --framework terraform --skip-download --check "$ids" -o json >"$WORK/hipaa.json" 2>"$WORK/hipaa.log" || true
  run_counted "checkov HIPAA list" "$PYTHON" "$CI_DIR/check_checkov.py" required "$WORK/hipaa.json" "$ids"
else
  fail "HIPAA check list not run (checkov unavailable)"
fi

# ---------------------------------------------------------------------------
section "negative test: checkov must reject a weak configuration"
if [ "$CHECKOV_OK" = 1 ]; then
  mkdir -p "$WORK/weak"
  cat >"$WORK/weak/main.tf" <<'EOF'
# Deliberately non-compliant: a public, unencrypted database and an
# unencrypted bucket without public-access block, versioning or logging.
resource "aws_s3_bucket" "phi" {
  bucket = "weak-phi-example"
}

resource "aws_db_instance" "phi" {
  identifier          = "weak-phi"
  engine              = "postgres"
  instance_class      = "db.t3.micro"
  allocated_storage   = 20
  username            = "admin"
  password            = "change-me-please"
  publicly_accessible = true
  storage_encrypted   = false
  skip_final_snapshot = true
}

resource "aws_cloudwatch_log_group" "app" {
  name = "/weak/app"
}
EOF
  checkov -d "$WORK/weak" --framework terraform --skip-download -o json >"$WORK/weak.json" 2>"$WORK/weak.log" || true
  run_counted "checkov weak snippet" "$PYTHON" "$CI_DIR/check_checkov.py" weak "$WORK/weak.json" "$WEAK_EXPECTED"
else
  fail "weak-snippet test not run (checkov unavailable)"
fi

# ---------------------------------------------------------------------------
section "structure (python-hcl2): what terraform validate would catch"
if [ "$HCL2_OK" = 1 ]; then
  run_counted "structural checks" "$HCL2_VENV/bin/python" "$CI_DIR/check_structure.py" "$TF_DIR"

  # Negative test: break a copy of the tree and make sure the checker notices.
  cp -R "$TF_DIR" "$WORK/broken"
  sed -i 's|^  source = "../../modules/network"$|&\n  bogus_argument = 1|' "$WORK/broken/envs/example/main.tf"
  sed -i 's|module.edge.alb_dns_name|module.edge.no_such_output|' "$WORK/broken/envs/example/outputs.tf"
  if "$HCL2_VENV/bin/python" "$CI_DIR/check_structure.py" "$WORK/broken" >"$WORK/broken.log" 2>&1; then
    fail "structural checker accepted a broken module call (it must fail)"
  elif grep -q "FAIL.*bogus_argument" "$WORK/broken.log" && grep -q "FAIL.*no_such_output" "$WORK/broken.log"; then
    pass "structural checker rejects an undeclared module argument and an unknown module output"
  else
    sed 's/^/      /' "$WORK/broken.log" | grep -v '^      PASS' || true
    fail "structural checker failed, but not on the injected mistakes"
  fi
else
  fail "structural checks not run (python-hcl2 unavailable)"
fi

# ---------------------------------------------------------------------------
section "security invariants (python-hcl2)"
if [ "$HCL2_OK" = 1 ]; then
  run_counted "invariant checks" "$HCL2_VENV/bin/python" "$CI_DIR/check_invariants.py" "$TF_DIR"
  # Negative self-test: one broken copy of terraform/ per invariant; each must be
  # rejected with a FAIL line that names the problem.
  run_counted "invariant self-test" "$HCL2_VENV/bin/python" "$CI_DIR/check_invariants.py" --self-test "$TF_DIR"
else
  fail "invariant checks not run (python-hcl2 unavailable)"
fi

echo
echo "elapsed: $((SECONDS - START)) s"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
