# shellcheck shell=bash
# Reader of deploy/packages.txt, the one list of Debian packages Ward needs (see its header).
# Source it, then:
#   packages_list SECTION...     prints the package names of those sections, one a line
#   packages_missing SECTION...  prints the ones not present on this machine, one a line
# Both fail on a section the file does not have. WARD_PACKAGES_FILE overrides the file.

WARD_PACKAGES_FILE="${WARD_PACKAGES_FILE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/deploy/packages.txt}"

# Prints "name check" (check may be empty) for each package of the given sections.
packages_entries() {
  [ $# -gt 0 ] || { echo "packages_entries: no section given" >&2; return 2; }
  [ -r "$WARD_PACKAGES_FILE" ] || { echo "cannot read $WARD_PACKAGES_FILE" >&2; return 2; }
  awk -v want=" $* " '
    BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) if (w[i] != "") wanted[w[i]] = 0 }
    { sub(/#.*/, ""); gsub(/^[ \t]+|[ \t]+$/, "") }
    $0 == "" { next }
    /^\[[a-z]+\]$/ { section = substr($0, 2, length($0) - 2); next }
    section == "" { printf "%s: package outside a section: %s\n", FILENAME, $0 > "/dev/stderr"; bad = 1; next }
    NF > 2 { printf "%s: more than one check: %s\n", FILENAME, $0 > "/dev/stderr"; bad = 1; next }
    section in wanted { wanted[section] = 1; print $1, $2 }
    END {
      for (s in wanted) if (!wanted[s]) { printf "%s: no section [%s]\n", FILENAME, s > "/dev/stderr"; bad = 1 }
      exit bad
    }' "$WARD_PACKAGES_FILE"
}

packages_list() {
  local entries
  entries="$(packages_entries "$@")" || return
  [ -z "$entries" ] || printf '%s\n' "$entries" | cut -d' ' -f1
}

# True when the package (with its optional check) is present on this machine.
package_present() {
  local name=$1 check=${2:-} mod
  case "$check" in
    command=*) command -v "${check#command=}" >/dev/null 2>&1 ;;
    python=*)
      command -v python3 >/dev/null 2>&1 || return 1
      python3 -c "import ${check#python=}" >/dev/null 2>&1 ;;
    "") [ "$(dpkg-query -W -f='${db:Status-Status}' "$name" 2>/dev/null)" = installed ] ;;
    *) echo "deploy/packages.txt: unknown check '$check' for $name" >&2; return 2 ;;
  esac
}

packages_missing() {
  local entries name check rc
  entries="$(packages_entries "$@")" || return
  while read -r name check; do
    [ -n "$name" ] || continue
    rc=0
    package_present "$name" "$check" || rc=$?
    [ "$rc" -ne 2 ] || return 2
    [ "$rc" -eq 0 ] || echo "$name"
  done <<<"$entries"
}
