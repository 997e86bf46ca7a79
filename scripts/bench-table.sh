#!/usr/bin/env bash
# Prints the closing table of `make bench` from the rows the benches appended (tab-separated:
# figure, goal, measured, met).
set -euo pipefail
file="${1:?usage: bench-table.sh SUMMARY.tsv}"
if [[ ! -s "$file" ]]; then
  echo "bench summary: no judged figures were recorded ($file is empty)"
  exit 0
fi
echo
echo "== make bench: summary"
{
  printf 'figure\tgoal\tmeasured\tmet\n'
  cat "$file"
} | awk -F'\t' '
  { for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } rows = NR }
  END {
    for (r = 1; r <= rows; r++) {
      line = ""
      for (i = 1; i <= 4; i++) line = line sprintf("%-" w[i] "s", cell[r, i]) (i < 4 ? "  " : "")
      print line
      if (r == 1) { sep = ""; for (i = 1; i <= 4; i++) { s = sprintf("%" w[i] "s", ""); gsub(/ /, "-", s); sep = sep s (i < 4 ? "  " : "") } print sep }
    }
  }'
