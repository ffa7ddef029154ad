from webserv.http.request cimport Exchange
from webserv.files cimport OpenFile

cpdef resolve(Exchange ex)
cpdef serve(Exchange ex)
cpdef content_type(Exchange ex, name)
cpdef file_response(Exchange ex, OpenFile entry, name=*)
cpdef whole_file(OpenFile entry)
