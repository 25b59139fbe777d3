"""CPU accounting from Linux's /proc: one process's CPU time, and the whole machine's.

The benchmark samples both at the start and the end of each measured phase. The difference of
the server's counter says how much CPU the server used; the difference of the machine's busy
counter, minus what the server and the load generator used, says how much went to everything
else on the machine, which is how a run knows it was disturbed (proc(5): ``/proc/PID/stat``
fields 14 and 15, ``/proc/stat`` first line).
"""

import os
from pathlib import Path

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
# /proc/stat's "cpu" line: user nice system idle iowait irq softirq steal guest guest_nice.
# guest and guest_nice are already counted in user and nice, so they are left out.
_IDLE_FIELDS = (3, 4)  # idle, iowait
_COUNTED_FIELDS = 8


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds that process ``pid`` (all its threads) has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) is in parentheses and may itself contain spaces or ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15, counted from 1
    return (utime + stime) / _TICKS_PER_SECOND


def machine_busy_seconds() -> float:
    """CPU seconds that all the machine's cores together have spent not idle since boot."""
    with open("/proc/stat") as stat:
        first = stat.readline().split()
    ticks = [int(value) for value in first[1 : 1 + _COUNTED_FIELDS]]
    busy = sum(value for i, value in enumerate(ticks) if i not in _IDLE_FIELDS)
    return busy / _TICKS_PER_SECOND


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or "unknown"."""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            name, _, value = line.partition(":")
            if name.strip() == "model name":
                return value.strip()
    return "unknown"


def cores() -> int:
    """The cores this process may run on (what the servers and the load share)."""
    return len(os.sched_getaffinity(0))


def memory_bytes(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of process ``pid`` from ``/proc/PID/status``, in bytes.

    ``VmRSS`` is what it has in RAM now; ``VmHWM`` the most it ever had (proc(5)).
    """
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name == field:
                number, unit = value.split()
                assert unit == "kB", unit
                return int(number) * 1024
    raise ValueError(f"/proc/{pid}/status has no {field}")
