"""The one exception of the HTTP family: a status code to answer with, and why."""


class HttpError(Exception):
    def __init__(
        self, status: int, reason: str = "", close: bool = False, fields: bytes = b""
    ) -> None:
        super().__init__(reason or str(status))
        self.status = status
        self.reason = reason  # for the error log; never sent to the client
        self.close = close  # the connection cannot be reused (unread body, broken framing)
        self.fields = fields  # header lines the answer needs (Allow on 405, Content-Range on 416)
