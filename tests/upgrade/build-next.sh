#!/usr/bin/env bash
# Builds "the next version" for the rolling-upgrade drill (tests/js/upgrade.test.js): this
# tree plus one expand migration, as the next release would ship it. The copy shares this
# checkout's target dir, so only the ward crates compile again (about 2 minutes in debug).
#
#   tests/upgrade/build-next.sh            # writes target/ward-next (and target/ward-next-audit)
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
src="$root/target/upgrade-drill/src"
rm -rf "$src"
mkdir -p "$src"
# The files of this tree as they are now (committed or not), without build output.
git ls-files -z --cached --others --exclude-standard \
  | grep -zv -e '^tests/js/' -e '^terraform/' \
  | xargs -0 cp --parents -t "$src"
last=$(ls migrations/sqlite | sed -n 's/^\([0-9]\{4\}\)_.*\.sql$/\1/p' | sort | tail -n1)
next=$(printf '%04d' $((10#$last + 1)))
for dialect in sqlite postgres; do
  cat > "$src/migrations/$dialect/${next}_upgrade_drill.sql" <<SQL
-- phase: expand
-- The rolling-upgrade drill's migration: what a next release adds while the previous one
-- still serves (a table, and a nullable column the previous version never reads).
CREATE TABLE upgrade_drill (id TEXT PRIMARY KEY, created_at BIGINT NOT NULL);
ALTER TABLE messages ADD COLUMN drill_note TEXT;
SQL
done
# A package of its own: the same package name and relative path would give the copy the
# same unit hashes as this tree (cargo hashes path packages relative to the workspace), and
# either build would overwrite the other's library, fingerprints and target/debug/ward. So
# the copy is package `ward-next` (its library still `ward`, its binary `ward-next`) and
# uses this tree's `ward-audit` crate as it is.
python3 - "$src/Cargo.toml" "$root/audit" <<'PY'
import re, sys
path, audit = sys.argv[1], sys.argv[2]
text = open(path).read()
text = text.replace('members = [".", "audit"]', 'members = ["."]', 1)
text = re.sub(r'(\[package\]\nname = )"ward"', r'\1"ward-next"', text, count=1)
text = text.replace('[lib]\n', '[lib]\nname = "ward"\n', 1)
text = re.sub(r'(\[\[bin\]\]\nname = )"ward"', r'\1"ward-next"', text, count=1)
text = text.replace('default-run = "ward"', 'default-run = "ward-next"', 1)
text = text.replace('ward-audit = { path = "audit" }', 'ward-audit = { path = "%s" }' % audit, 1)
assert text.count('"ward-next"') == 3, "Cargo.toml changed shape: update build-next.sh"
open(path, 'w').write(text)
PY
CARGO_TARGET_DIR="$root/target" cargo build --offline --quiet \
  --manifest-path "$src/Cargo.toml" -p ward-next --bin ward-next
cp "$root/target/debug/ward-next" "$root/target/ward-next"
echo "build-next: target/ward-next adds migration ${next}_upgrade_drill (expand)"
