cpdef status_line(status, minor=*)
