#!/usr/bin/env bash
# Before/after of a change on the side-by-side suite: builds the suite at BASE (a git revision,
# in a temporary worktree) and at the working tree, then runs the two binaries alternately,
# section by section, PASSES times, and prints the medians of both with their ratio, plus each
# loomwork server's ratio to its plain peer of the same run (std, smol, or tokio-util for the
# framed rows, tokio's copy_bidirectional for the relay rows), which cancels the machine's drift between runs. Loopback only; every run is bounded by the suite's own limits and a timeout.
#
#   scripts/bench-ab.sh BASE [PASSES]        e.g. scripts/bench-ab.sh HEAD~3 4
#   SECTIONS="udp" scripts/bench-ab.sh main   sections by the suite's LOOMWORK_SUITE_ONLY words
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?base revision}; passes=${2:-4}
sections=${SECTIONS:-"tcp echo|request/response|udp"}
work=$(mktemp -d)
# KEEP=DIR keeps every run's raw table there.
cleanup() {
    git worktree remove --force "$work/base" 2>/dev/null || true
    if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$work"/*.txt "$KEEP"/ 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

suite_binary() { # dir target-dir -> path of the suite bench binary built there
    (cd "$1" && CARGO_TARGET_DIR="$2" cargo bench --quiet -p loomwork-bench --bench suite \
        --no-run --message-format=json 2>/dev/null) |
        python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "suite" and m.get("executable"):
        print(m["executable"])'
}
git worktree add --quiet --detach "$work/base" "$base"
# The base reuses this tree's release dependencies: copying target/release saves a full
# rebuild (the debug half, tens of GB, is not needed for benches).
mkdir -p "$work/base-target"
[ -d target/release ] && cp -a target/release "$work/base-target/"
before=$(suite_binary "$work/base" "$work/base-target")
after=$(suite_binary . "$PWD/target")
echo "before: $base ($before)"; echo "after: working tree ($after)"

export LOOMWORK_SUITE_ROUNDS=${LOOMWORK_SUITE_ROUNDS:-3}
export LOOMWORK_SUITE_SERVER=${LOOMWORK_SUITE_SERVER:-loomwork-std,loomwork-smol,tokio,std,smol,loomwork-std Framed,loomwork-smol Framed,tokio-util Framed}
IFS='|' read -r -a section_list <<<"$sections"
for pass in $(seq "$passes"); do
    for section in "${section_list[@]}"; do
        tag=${section// /_}; tag=${tag//\//_}
        # Which side runs first alternates by pass: a run right after another can be
        # systematically slower or faster (caches, clock, the other's leftovers).
        order="before after"; [ $((pass % 2)) -eq 0 ] && order="after before"
        for side in $order; do
            bin=$before; [ "$side" = after ] && bin=$after
            (cd bench && LOOMWORK_SUITE_ONLY="$section" timeout 600 "$bin" --bench) \
                >"$work/$side-$tag-$pass.txt" 2>&1
        done
        echo "pass $pass: $section" >&2
    done
done
python3 - "$work" <<'PY'
import collections, glob, re, statistics, sys

def number(text):
    m = re.match(r"([\d.]+)\s*([kM]?)", text.strip())
    return float(m.group(1)) * {"k": 1e3, "M": 1e6, "": 1}[m.group(2)] if m else None

runs = collections.defaultdict(dict)  # file -> (measurement, server) -> rate
for path in sorted(glob.glob(sys.argv[1] + "/*.txt")):
    measurement = None
    for line in open(path):
        if not line.startswith("|") or line.startswith("|---") or "measurement" in line:
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        measurement = cells[0] or measurement
        rate = number(cells[2])
        if rate:
            runs[path][(measurement, cells[1])] = rate
rates = collections.defaultdict(lambda: collections.defaultdict(list))
ratios = collections.defaultdict(lambda: collections.defaultdict(list))
for path, table in runs.items():
    side = path.rsplit("/", 1)[1].split("-")[0]
    for (measurement, server), rate in table.items():
        peer = {"loomwork-std": "std", "loomwork-smol": "smol", "loomwork-tokio": "tokio",
                "loomwork-std Framed": "tokio-util Framed",
                "loomwork-smol Framed": "tokio-util Framed",
                "loomwork-tokio Framed": "tokio-util Framed",
                "loomwork-std relay": "tokio copy_bidirectional",
                "loomwork-smol relay": "tokio copy_bidirectional",
                "loomwork-tokio relay": "tokio copy_bidirectional"}.get(server)
        if not peer:
            continue
        rates[(measurement, server)][side].append(rate)
        if table.get((measurement, peer)):
            ratios[(measurement, server)][side].append(rate / table[(measurement, peer)])
print("\n| measurement | server | before (median) | after (median) | after ÷ before | ÷ plain peer, before | after |")
print("|---|---|--:|--:|--:|--:|--:|")
for key, sides in rates.items():
    if not sides["before"] or not sides["after"]:
        continue
    b, a = statistics.median(sides["before"]), statistics.median(sides["after"])
    pb = statistics.median(ratios[key]["before"] or [0])
    pa = statistics.median(ratios[key]["after"] or [0])
    print(f"| {key[0]} | {key[1]} | {b:,.0f} | {a:,.0f} | {a / b:.2f}x | {pb:.2f}x | {pa:.2f}x |")
PY
