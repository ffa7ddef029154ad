cdef class FilePart:
    cdef public object fd, offset, length, owner

cdef class Response:
    cdef public object status, fields, body, parts, length, stream
    cdef public bint close
