cdef class LogFile:
    cdef public object path, limit, flush_after, timer, gzip, explicit
    cdef public list buffer
    cdef public Py_ssize_t size, rendered
    cdef public int fd

    cpdef _arm(self)
    cpdef render(self)

cdef class AccessLog:
    cdef public LogFile file
    cdef public object render, format_name
    cdef public bint late

    cpdef log(self, exchange)
