# Kills every process in this container whose environment holds WHEELFARM_EXEC=$1: the whole
# tree of one timed-out exec, also children that called setsid, double-forked or ignore SIGTERM
# (a variable is inherited through all of those). POSIX sh with tr and grep only, so it runs the
# same on busybox (Alpine), Debian, Ubuntu, CentOS 7 and EL images; it runs as root, so it can
# read every /proc/PID/environ. Rounds repeat until none is left, since a process may fork while
# its siblings are being killed. Exit 0 when none is left, 1 when some survived 50 rounds.
marker="WHEELFARM_EXEC=$1"
round=0
while [ "$round" -lt 50 ]; do
    found=""
    for dir in /proc/[0-9]*; do
        pid=${dir#/proc/}
        [ "$pid" = "$$" ] && continue
        if tr '\000' '\n' < "$dir/environ" 2>/dev/null | grep -qxF "$marker"; then
            kill -9 "$pid" 2>/dev/null && found=yes
        fi
    done
    [ -z "$found" ] && exit 0
    round=$((round + 1))
    sleep 0.1 2>/dev/null || sleep 1
done
exit 1
