"""/metrics: a Stats (stats.py) as Prometheus metric families, built only when scraped.

A custom collector of prometheus-client reads the plain numbers of the whole server
(summed over its workers, those that have exited included) and of each live worker. Owns
the metric names, their help texts and labels; never counts anything itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from . import netstat
from .stats import Stats


def _by_label(name: str, doc: str, label: str, counts: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for value, n in counts.items():
        family.add_metric([value], n)
    return family


class StatsCollector(Collector):
    """prometheus-client reads the numbers above only when /metrics is scraped: the whole
    server's (summed over workers, those that have exited included), and per live worker
    its connections accepted and open (labels `worker`, its number, and `pid`)."""

    def __init__(
        self, stats: Stats, workers: list[tuple[int, int, Stats]], server: Any = None
    ) -> None:
        self.stats = stats
        self.workers = workers
        self.server = server

    def collect(self) -> Iterator[Any]:
        s = self.stats
        accepted = CounterMetricFamily("webserv_connections_accepted", "TCP connections accepted")
        accepted.add_metric([], s.accepted)
        yield accepted
        yield _by_label(
            "webserv_connections_closed",
            "TCP connections closed, by who closed first",
            "closed_by",
            s.closed_by,
        )
        yield _by_label(
            "webserv_connections_by_os",
            "TCP connections closed, by the OS family guessed from the client's SYN",
            "os_family",
            s.by_os,
        )
        yield _by_label(
            "webserv_connections_without_syn",
            "TCP connections closed whose record has no SYN, by why (syncookie: the kernel "
            "answered the SYN with a SYN cookie and kept no copy)",
            "reason",
            s.without_syn,
        )
        captured = CounterMetricFamily(
            "webserv_capture_segments", "Handshake and close segments captured (lifecycle_capture)"
        )
        captured.add_metric([], s.capture["captured"])
        yield captured
        yield _by_label(
            "webserv_capture_dropped",
            "Captured segments lost (kernel: the capture socket's buffer overflowed; "
            "pending_full, wire_full: the bounded tables of segments not matched yet)",
            "reason",
            {k: v for k, v in s.capture.items() if k != "captured"},
        )
        yield from netstat.kernel_counters()  # /proc/net/netstat's TcpExt
        gauge = GaugeMetricFamily("webserv_connections_open", "TCP connections open now")
        gauge.add_metric([], s.open_now)
        yield gauge
        requests = CounterMetricFamily(
            "webserv_requests", "HTTP requests answered, by status class", labels=["status_class"]
        )
        for i in range(1, 6):
            requests.add_metric([f"{i}xx"], s.requests[i])
        yield requests
        for name, doc, value in (
            (
                "webserv_tcp_bytes_received",
                "Payload bytes received (TCP_INFO at close, FIN not counted)",
                s.bytes_in,
            ),
            (
                "webserv_tcp_bytes_acked",
                "Payload bytes sent and acknowledged (TCP_INFO at close, FIN not counted)",
                s.bytes_out,
            ),
        ):
            counter = CounterMetricFamily(name, doc)
            counter.add_metric([], value)
            yield counter
        for name, doc, hist in (
            (
                "webserv_handshake_rtt_seconds",
                "Handshake RTT measured by the kernel at accept",
                s.handshake_rtt,
            ),
            (
                "webserv_accept_queue_wait_seconds",
                "Time connections waited in the accept queue",
                s.accept_queue,
            ),
            (
                "webserv_request_duration_seconds",
                "From a request's first byte to its response handed to the kernel",
                s.request_duration,
            ),
            (
                "webserv_tcp_retransmits_per_connection",
                "Segments retransmitted per connection",
                s.retransmits,
            ),
            (
                "webserv_tls_handshake_duration_seconds",
                "TLS handshakes, from the ClientHello's arrival to the handshake done",
                s.tls_handshake,
            ),
        ):
            family = HistogramMetricFamily(name, doc)
            family.add_metric([], hist.cumulative(), hist.sum)
            yield family
        yield _by_label(
            "webserv_tls_handshake_failures",
            "TLS handshakes that did not finish, by reason (plain_http: a plain HTTP request)",
            "reason",
            s.tls_failures,
        )
        labels = ["worker", "pid"]
        accepted = CounterMetricFamily(
            "webserv_worker_connections_accepted",
            "TCP connections accepted, per worker",
            labels=labels,
        )
        open_now = GaugeMetricFamily(
            "webserv_worker_connections_open", "TCP connections open now, per worker", labels=labels
        )
        for pid, ordinal, stats in self.workers:
            accepted.add_metric([str(ordinal), str(pid)], stats.accepted)
            open_now.add_metric([str(ordinal), str(pid)], stats.open_now)
        yield accepted
        yield open_now
        workers = GaugeMetricFamily("webserv_workers", "Worker processes serving now")
        workers.add_metric([], len(self.workers))
        yield workers
        if self.server is not None:
            for name, doc, key in (
                ("webserv_reloads", "Configuration reloads done (SIGHUP)", "reloads"),
                ("webserv_worker_restarts", "Workers started again after dying", "worker_restarts"),
            ):
                counter = CounterMetricFamily(name, doc)
                counter.add_metric([], self.server[key])
                yield counter


def registry_for(stats: Stats, workers: list[tuple[int, int, Stats]], server: Any) -> Any:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(stats, workers, server))
    return registry
