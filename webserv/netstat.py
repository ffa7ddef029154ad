"""The kernel's own TCP counters for /metrics: TcpExt of /proc/net/netstat, read once per
scrape, of the reading process's network namespace (every socket of it, not only webserv's).

Only the counters that explain what the lifecycle records show: SYN cookies (a connection
whose record has no SYN, `syn_reason` "syncookie") and connections dropped at a full accept
queue (which leave no record at all). Never read per connection; nothing off Linux.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily

NETSTAT = "/proc/net/netstat"
KERNEL_TCPEXT = (  # (TcpExt field, metric webserv_kernel_NAME, what it counts)
    ("SyncookiesSent", "syncookies_sent", "SYN cookies sent"),
    ("SyncookiesRecv", "syncookies_recv", "Valid SYN cookies received"),
    ("SyncookiesFailed", "syncookies_failed", "Invalid SYN cookies received"),
    ("ListenOverflows", "listen_overflows", "SYNs and ACKs met by a full accept queue"),
    ("ListenDrops", "listen_drops", "SYNs and ACKs a listener dropped (overflows too)"),
)


def read_tcpext(path: str | None = None) -> dict[str, int]:
    """The TcpExt counters of /proc/net/netstat (`path`: NETSTAT): a line of names, then a
    line of values; {} where there is no such file."""
    try:
        with open(path or NETSTAT) as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:") and values.startswith("TcpExt:"):
            return dict(zip(names.split()[1:], map(int, values.split()[1:]), strict=False))
    return {}


def kernel_counters() -> Iterator[CounterMetricFamily]:
    """KERNEL_TCPEXT as Prometheus counters (those this kernel has)."""
    tcpext = read_tcpext()
    for field, name, doc in KERNEL_TCPEXT:
        if field in tcpext:
            counter = CounterMetricFamily(
                f"webserv_kernel_{name}",
                f"{doc} (the kernel's TcpExt {field}, for the whole network namespace)",
            )
            counter.add_metric([], tcpext[field])
            yield counter
