from webserv.reader cimport RequestReader

cdef class Lifetime(RequestReader):
    cpdef pause(self, int reason)
    cpdef resume(self, int reason)
    cpdef send_timeout(self)
    cpdef set_deadline(self, kind, double timeout)
    cpdef close(self, reason, double linger=*)
    cpdef abort(self, reason)
