cdef class OpenFile:
    cdef public object base_ok, path, size, mtime, ino, dev, mtime_ns, etag, last_modified
    cdef public object fields, fields_types, real, data
    cdef public int fd, users
    cdef public double checked, used
    cdef public bint is_dir, cached

    cpdef release(self)
