from webserv.framing cimport InputFraming
from webserv.http.dates cimport http_date_bytes_now
from webserv.http.status cimport status_line

cdef class _DateLines:
    cdef public object date, lines
    cpdef get(self, tokens)

cdef _DateLines _date_lines
from webserv.http.request cimport Exchange
from webserv.http.response cimport Response

cdef class ResponseWriter(InputFraming):
    cpdef send(self, Exchange ex, Response response)
    cpdef request_number(self, Exchange ex)
    cpdef send_parts(self, Exchange ex, head, parts)
    cpdef pump(self)
    cpdef release_parts(self, parts)
