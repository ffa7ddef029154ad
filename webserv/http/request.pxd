# Cython augmenting declarations for request.py (pure Python mode): Exchange as an extension type.
cdef class Exchange:
    cdef public object conn, method, raw_target, path, query, version, headers, host
    cdef public object server, location, status, body_bytes_sent, bytes_sent, minor
    cdef public object error, body, cgi, tcp_sample, tcp_start, tcp_end, cleanup
    cdef public object sent_head, set_vars, redirects, header_bytes, body_received
    cdef public double start, t_headers, t_body, t_response, t_done
    cdef public bint keep_alive, head, error_paged, queued, expect_continue, pipelined
