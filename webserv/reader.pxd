from webserv.writer cimport ResponseWriter

cdef class RequestReader(ResponseWriter):
    pass
