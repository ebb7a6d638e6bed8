# getppid under the shipped unit's privileges in a Debian guest (issue 23):
# untraced and with the daemon, 5 interleaved 2 s rounds.
OUT=/tmp/gp
exec >>$OUT/output.log 2>&1
D=/work/main/target/release/rename-audit
W=/work/main/target/bench/workloads
CAPS=-all,+bpf,+perfmon,+sys_ptrace
sysctl -qw kernel.perf_event_paranoid=3
: > $OUT/empty.toml
echo "kernel $(uname -r) paranoid $(cat /proc/sys/kernel/perf_event_paranoid)" > $OUT/result.txt
for i in 1 2 3 4 5; do
  u=$($W getppid 2 2 | sed -n 's/^rate=//p')
  rm -rf $OUT/state; : > $OUT/daemon.$i.log
  setpriv --bounding-set $CAPS --inh-caps $CAPS --ambient-caps $CAPS -- $D run --config $OUT/empty.toml --output $OUT/ev.json --state-dir $OUT/state >$OUT/daemon.$i.log 2>&1 &
  dp=$!
  n=0; until grep -q "ready" $OUT/daemon.$i.log || [ $n -ge 1200 ]; do sleep 0.1; n=$((n+1)); done
  t=$($W getppid 2 2 | sed -n 's/^rate=//p')
  if [ $i = 1 ]; then bpftool link list > $OUT/links.txt 2>&1; bpftool prog list > $OUT/progs.txt 2>&1; fi
  kill -TERM $dp; wait $dp
  echo "round $i untraced $u rename-audit $t" >> $OUT/result.txt
done
grep -o 'mount_watch="[^"]*"' $OUT/daemon.1.log >> $OUT/result.txt
echo done >> $OUT/result.txt
