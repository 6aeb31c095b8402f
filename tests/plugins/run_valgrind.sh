#!/usr/bin/env bash
# run_valgrind.sh VALGRIND LOGDIR TEST_BINARY [ARGS...]
#
# Runs a Criterion test binary under valgrind memcheck with the flags of
# scripts/test.sh --valgrind (run_valgrind): Criterion re-executes the binary
# for each test, so --trace-children=yes is needed to check the test bodies,
# and a worker's valgrind exit status does not reach Criterion's, so the
# per-process logs are read: any "ERROR SUMMARY: N" with N > 0 fails.
set -u
vg=$1 logdir=$2
shift 2
rm -rf "$logdir" && mkdir -p "$logdir"
rc=0
"$vg" --error-exitcode=1 --leak-check=full \
  --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
  --trace-children=yes --trace-children-skip='*python*,/bin/*,/usr/bin/*,/usr/sbin/*' \
  --log-file="$logdir/%p.log" "$@" || rc=$?
bad=$(grep -l -E 'ERROR SUMMARY: [1-9]' "$logdir"/*.log 2>/dev/null || true)
for f in $bad; do
  echo "---- $f"
  cat "$f"
done
n=$(ls "$logdir"/*.log 2>/dev/null | wc -l)
echo "run_valgrind: $n processes checked, logs in $logdir"
if ((rc != 0)) || [[ -n $bad ]]; then
  echo "run_valgrind: FAILED (exit $rc)"
  exit 1
fi
