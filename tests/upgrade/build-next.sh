#!/usr/bin/env bash
# Builds "the next version" for the rolling-upgrade drill (tests/js/upgrade.test.js): this
# tree plus one expand migration, as the next release would ship it. The copy shares this
# checkout's target dir, so only the ward crates compile again (about 2 minutes in debug).
#
#   tests/upgrade/build-next.sh            # writes target/ward-next (and target/ward-next-audit)
#
# Run it before `cargo build` of this tree: both builds write target/debug/ward, and the
# later build puts this tree's binary back.
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
CARGO_TARGET_DIR="$root/target" cargo build --locked --quiet \
  --manifest-path "$src/Cargo.toml" -p ward --bin ward
cp "$root/target/debug/ward" "$root/target/ward-next"
echo "build-next: target/ward-next adds migration ${next}_upgrade_drill (expand)"
