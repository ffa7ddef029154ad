# Types for the compiled build of synprint.py (setup.py): the per-connection OS-family key
import cython

@cython.locals(n=cython.Py_ssize_t, version=cython.int, off=cython.Py_ssize_t,
               ttl=cython.int, cut=cython.Py_ssize_t, opts=bytes)
cpdef tuple raw_key(bytes raw)

@cython.locals(cut=cython.Py_ssize_t)
cpdef str os_family_raw(raw)
