# Cython augmenting declarations: the root of Connection's single-inheritance chain
# InputFraming -> ResponseWriter -> RequestReader -> Lifetime -> Connection holds every slot.
from webserv.http.request cimport Exchange

cdef class InputFraming:
    cdef public object worker, listener, group, transport, raw, parser, id, remote_addr
    cdef public object remote_port, _local, queue, url, timeout_kind, close_reason
    cdef public object closed_by, task, drain_waiter, last_location, record, clock, memo
    cdef public object upgrade_body
    cdef public Exchange ex, active, out_ex
    cdef public list held, out
    cdef public int fd, requests, reading, header_size, paused, line_spaces, tcp_every
    cdef public double deadline, started
    cdef public bint sendfile, write_blocked, peer_eof, closed, feeding, aborted
    cdef public bint stop_parsing, pipeline

    cpdef feed(self, data)
    cpdef feed_pieces(self, data, pos=*)
    cpdef parse_piece(self, view, data, start, end)
    cpdef body_left(self)
    cpdef fail_parse(self, err)
    # Connection's, declared here so the bases call them directly (stubs in framing.py)
    cpdef answer_or_wait(self, Exchange ex)
    cpdef finish(self, Exchange ex)
    cpdef raw_socket(self)
