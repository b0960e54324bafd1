#!/usr/bin/env bash
# Docs that stand alone: every Twisted behaviour id cited in the repository (such as `LR-5`)
# must have an entry in docs/twisted-behaviour.md, and nothing may point at design documents
# outside the repository. Lists every offender and fails if there is one.
set -euo pipefail
cd "$(dirname "$0")/../.."

defs=docs/twisted-behaviour.md
# The id prefixes docs/twisted-behaviour.md defines. Listing them (rather than matching any
# `AB-1`) keeps `UTF-8`, `SHA-256`, `RFC-...` and the like out of the check.
prefixes='DF|PR|TR|PP|FA|RC|LR|LO|NS|IN|SS|FR|PO|TM|UD|CU|MC|RS|ER|LB|WI|TH|KW|AM'
id_re="\\b($prefixes)-[0-9]+\\b"

# Text files anywhere but build output and git's own directory.
files() {
    find . \( -name target -o -name .git \) -prune -o -type f \
        \( -name '*.rs' -o -name '*.md' -o -name '*.sh' -o -name '*.py' -o -name '*.toml' \
        -o -path ./.ci/run \) -print0 | sort -z
}

# An entry is a table row `| ID |` or a bullet `- **ID**` at the start of a line.
defined=$(grep -oE "^(\\| |- \\*\\*)($prefixes)-[0-9]+" "$defs" | grep -oE "($prefixes)-[0-9]+" | sort -u)
if [ -z "$defined" ]; then
    echo "no ids defined in $defs"; exit 1
fi

failed=0
cited=0
undefined=""
while IFS=: read -r file line id; do
    cited=$((cited + 1))
    if ! grep -qxF "$id" <<<"$defined"; then
        undefined+="$file:$line: $id"$'\n'
    fi
done < <(files | xargs -0 grep -onE "$id_re" /dev/null || true)
if [ -n "$undefined" ]; then
    echo "ids cited but not defined in $defs:"
    printf '%s' "$undefined"
    failed=1
fi

# References to the design documents this repository's docs/ replaced (they live outside it).
# The bracket in each pattern keeps this script from matching itself.
outside=$(files | xargs -0 grep -nE '\bARCHITECTUR[E]\b|TWISTED[-]SPEC|\bEXAMPLE[S]\.md|\bSTYL[E]\.md|shared[/]design|design note[s]' /dev/null || true)
if [ -n "$outside" ]; then
    echo "references to design documents outside the repository (use docs/ instead):"
    echo "$outside"
    failed=1
fi

if [ "$failed" -ne 0 ]; then
    exit 1
fi
echo "doc ids: $cited citations of $(files | xargs -0 grep -ohE "$id_re" /dev/null | sort -u | wc -l) distinct ids, all defined in $defs ($(wc -l <<<"$defined") entries)"
