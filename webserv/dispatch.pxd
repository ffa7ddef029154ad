from webserv.http.request cimport Exchange
from webserv.handlers cimport static

cpdef check_request(Exchange ex, has_body)
cpdef takes_body(Exchange ex)
cpdef handle(Exchange ex, phased=*)
cpdef error_response(Exchange ex, err)
