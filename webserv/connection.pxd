cimport cython
from webserv cimport dispatch
from webserv.logs cimport AccessLog
from webserv.lifetime cimport Lifetime
from webserv.http.request cimport Exchange

cdef class Connection(Lifetime):
    cpdef start(self, Exchange ex)
    cpdef location_of(self, Exchange ex)
    cpdef send_error(self, Exchange ex, err)
    cpdef next_request(self)
    cpdef log(self, Exchange ex)
    cpdef answer_or_wait(self, Exchange ex)
    @cython.locals(access_log=AccessLog)
    cpdef finish(self, Exchange ex)
    cpdef raw_socket(self)
