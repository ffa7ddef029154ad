cpdef http_date_bytes_now()
