"""listeners.open_socket(save_syn=True) asks for TCP_SAVE_SYN before listen(): the very
first connection to a new listening socket has its SYN saved, with no later setsockopt."""

from __future__ import annotations

import socket
import sys

import pytest

from webserv import savedsyn
from webserv.config.values import ListenAddress
from webserv.listeners import open_socket

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="TCP_SAVE_SYN is Linux-only"
)


@pytest.mark.parametrize("save_syn", [True, False])
def test_the_first_connection_has_its_syn_saved(save_syn: bool) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listener = open_socket(ListenAddress("127.0.0.1", port, False), save_syn=save_syn)
    try:
        flag = listener.getsockopt(socket.IPPROTO_TCP, savedsyn.TCP_SAVE_SYN)
        assert flag == (1 if save_syn else 0)
        with socket.create_connection(("127.0.0.1", port)):
            conn, _ = listener.accept()
            with conn:
                syn = savedsyn.read_saved_syn(conn)
        assert (syn is not None) == save_syn
        if save_syn:
            assert savedsyn.decode_syn(syn)["dst_port"] == port
    finally:
        listener.close()
