#!/bin/sh
# Runs once at boot inside the Debian 12 or 13 guest of tests/e2e/debian_host.rs, as a
# oneshot unit ordered after rename-audit.service. It only collects what the
# host test asserts on: each step's output goes to a file under /results,
# which is written as a tar archive to the second disk (/dev/vdb) at the
# end. The unit powers the guest off when this script ends.
set -u
R=/results
mkdir -p "$R"
exec >"$R/trace.log" 2>&1
set -x

# Polls the unit's journal (JSON) until a line matches, at most $2 seconds.
wait_journal() {
    i=0
    while [ "$i" -lt "$2" ]; do
        if journalctl -u rename-audit.service -o json --no-pager | grep -q -- "$1"; then
            return 0
        fi
        i=$((i + 1))
        sleep 1
    done
    echo "timed out waiting for $1 in the journal"
    return 1
}

# 1. Installed with apt at image build time: enabled, and (Type=notify) only
#    active once the daemon sent READY=1.
systemctl is-enabled rename-audit.service >"$R/is-enabled"
systemctl show rename-audit.service \
    -p Type -p ActiveState -p SubState -p Result -p NRestarts >"$R/started"

# 2. A process renames itself to a kernel-thread name: bash writes its own
#    comm through procfs (kernel-thread-mimic, critical).
bash -c 'printf "kworker/9:9" >/proc/self/comm'
wait_journal '\\"new_name\\":\\"kworker/9:9\\"' 120

# 3. A process hidden while the daemon runs, by a bind mount of kthreadd's
#    /proc entry over its own: the daemon sees the mount (Debian's
#    kernel.perf_event_paranoid=3 refuses it the syscall tracepoints, so
#    through the raw sys_exit variant) and raises process-hidden.
sleep 600 &
hidden=$!
echo "$hidden" >"$R/hidden-pid"
mount --bind /proc/2 "/proc/$hidden"
wait_journal '\\"action\\":\\"process-hidden\\"' 120
umount "/proc/$hidden"
kill "$hidden"

# 4. Reload with that rule disabled: the next such rename is only
#    process-renamed (low).
sed -i '/^\[rules.kernel-thread-mimic\]/,/^enabled/ s/^enabled = true/enabled = false/' \
    /etc/rename-audit/config.toml
systemctl reload rename-audit.service
wait_journal 'configuration reloaded' 120
bash -c 'printf "kworker/9:8" >/proc/self/comm'
wait_journal '\\"new_name\\":\\"kworker/9:8\\"' 120

# 4u. An upgrade as a fleet rolls one out, over the running daemon and the
#     operator's edit above: apt installs a higher version of the package
#     (/root/upgrade.deb, whose default config.toml differs from the one
#     installed, so dpkg has a conffile question to answer), non-interactively
#     with the answer configuration management gives (Ansible's apt module
#     passes these two options by default): keep the edited file
#     (--force-confdef --force-confold; without them dpkg would stop at the
#     question, with no terminal to ask). Its postinst restarts the unit.
#     Only when the test put the package there.
if [ -f /root/upgrade.deb ]; then
    unit_state() {
        systemctl show rename-audit.service -p MainPID -p ExecMainStartTimestampMonotonic \
            -p ActiveState -p SubState -p Result -p NRestarts
    }
    unit_state >"$R/before-upgrade"
    old_pid=$(systemctl show -p MainPID --value rename-audit.service)
    stat -L -c %i "/proc/$old_pid/exe" >"$R/before-upgrade-exe-inode"
    stat -c %i /usr/bin/rename-audit >"$R/before-upgrade-file-inode"
    dpkg-query -W -f='${Version}\n' rename-audit >"$R/before-upgrade-version"
    cat /var/lib/rename-audit/agent-id >"$R/before-upgrade-agent-id"
    cp /etc/rename-audit/config.toml "$R/before-upgrade-config"
    DEBIAN_FRONTEND=noninteractive apt-get install -y \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        /root/upgrade.deb </dev/null >"$R/upgrade.log" 2>&1
    echo "$?" >"$R/upgrade-status"
    rm -f /root/upgrade.deb
    # The postinst's restart returns once the new daemon sent READY=1.
    unit_state >"$R/after-upgrade"
    new_pid=$(systemctl show -p MainPID --value rename-audit.service)
    stat -L -c %i "/proc/$new_pid/exe" >"$R/after-upgrade-exe-inode"
    stat -c %i /usr/bin/rename-audit >"$R/after-upgrade-file-inode"
    if kill -0 "$old_pid" 2>/dev/null; then echo alive; else echo gone; fi >"$R/old-pid-after-upgrade"
    dpkg-query -W -f='${Version}\n' rename-audit >"$R/after-upgrade-version"
    rename-audit --version >"$R/after-upgrade-binary-version"
    cat /var/lib/rename-audit/agent-id >"$R/after-upgrade-agent-id"
    cp /etc/rename-audit/config.toml "$R/after-upgrade-config"
    cp /etc/rename-audit/config.toml.dpkg-dist "$R/after-upgrade-config-dist"
    # The new run works with the kept configuration: kernel-thread-mimic
    # still disabled.
    bash -c 'printf "kworker/9:6" >/proc/self/comm'
    wait_journal '\\"new_name\\":\\"kworker/9:6\\"' 120
fi

# 4b. The configuration path becomes a FIFO: the reload is refused at once,
#     with a message, and the daemon keeps its configuration and reports on.
mv /etc/rename-audit/config.toml /etc/rename-audit/config.toml.real
mkfifo /etc/rename-audit/config.toml
systemctl reload rename-audit.service
wait_journal 'is a FIFO' 120
bash -c 'printf "kworker/9:7" >/proc/self/comm'
wait_journal '\\"new_name\\":\\"kworker/9:7\\"' 120
journalctl -u rename-audit.service -o json --no-pager >"$R/journal.json"

# 5. Stop: SIGTERM, drained and flushed, a clean exit.
systemctl stop rename-audit.service
systemctl show rename-audit.service \
    -p ActiveState -p Result -p ExecMainCode -p ExecMainStatus >"$R/stopped"

# 5b. A start with the FIFO still there is refused at once, with the same
#     message (no open that waits for a writer), then the file comes back.
cursor=$(journalctl -u rename-audit.service -n 1 --show-cursor --no-pager | sed -n 's/^-- cursor: //p')
systemctl start rename-audit.service
echo "$?" >"$R/fifo-start-status"
systemctl show rename-audit.service -p Result -p ExecMainStatus >"$R/fifo-start"
# Also cancels the restart Restart=on-failure would make.
systemctl stop rename-audit.service
journalctl -u rename-audit.service --after-cursor "$cursor" -o cat --no-pager |
    grep -m1 'is a FIFO' >"$R/fifo-start-message"
rm /etc/rename-audit/config.toml
mv /etc/rename-audit/config.toml.real /etc/rename-audit/config.toml

# 6. Purge: nothing of the package may stay behind.
dpkg-query -L rename-audit >"$R/package-files"
DEBIAN_FRONTEND=noninteractive apt-get purge -y rename-audit >"$R/purge.log" 2>&1
echo "$?" >"$R/purge-status"
dpkg-query -W -f='${Status}\n' rename-audit >"$R/status-after-purge" 2>&1
while read -r path; do
    # Directories the package shares with others (/usr/bin, ...) stay.
    if [ -e "$path" ] && [ ! -d "$path" ]; then echo "$path"; fi
done <"$R/package-files" >"$R/left-files"
find / -xdev \( -path /proc -o -path /sys -o -path /results \) -prune -o \
    -name '*rename-audit*' -print >"$R/left-named"

set +x
echo done >"$R/finished"
tar -cf /dev/vdb -C / results
sync
