"""The HTTP side of `medarchive serve`: what is logged of each request, and how long a request may take to arrive.

The server gives each connection a thread. A client that sends half a request
and then nothing, or one byte now and then, would hold its thread (and a file
handle) for as long as it likes: 500 of them held 500 threads for a minute.
Two bounds stop that: a timeout on every read and write of the socket, and a
deadline for the whole request (line, headers and body) to arrive, kept by one
thread for the server, which closes the reading side of a connection whose
request is late. The deadline ends when the response starts: sending a large
download to a slow reader is bounded by the socket timeout alone.
"""

from __future__ import annotations

import socket
import threading
import time

from werkzeug.serving import WSGIRequestHandler


class Deadlines:
    """Connections whose request must have arrived by a time; late ones have their reading side shut."""

    def __init__(self) -> None:
        self._due: dict[socket.socket, float] = {}
        self._late: set[socket.socket] = set()
        self._changed = threading.Condition()
        threading.Thread(target=self._watch, name="request-deadlines", daemon=True).start()

    def arm(self, connection: socket.socket, seconds: float) -> None:
        with self._changed:
            self._due[connection] = time.monotonic() + seconds
            self._changed.notify()

    def disarm(self, connection: socket.socket) -> bool:
        """Stop watching the connection; True when its deadline had already passed."""
        with self._changed:
            self._due.pop(connection, None)
            late = connection in self._late
            self._late.discard(connection)
            return late

    def is_late(self, connection: socket.socket) -> bool:
        with self._changed:
            return connection in self._late

    def _watch(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for connection in [c for c, due in self._due.items() if due <= now]:
                    del self._due[connection]
                    self._late.add(connection)
                    try:
                        # A read blocked on it returns at once with nothing (the end of the request).
                        connection.shutdown(socket.SHUT_RD)
                    except OSError:
                        pass  # (closed meanwhile)
                self._changed.wait(min(self._due.values(), default=now + 3600) - now)


class RequestHandler(WSGIRequestHandler):
    """Logs method, path and status only: query strings carry names and search terms (no PHI in logs).

    A request line that could not be parsed is logged without it: it is the raw line,
    query string and all, and leaves no method or path to show. A request that did not
    arrive by its deadline is not served.
    """

    deadlines: Deadlines
    request_seconds: float

    def handle_one_request(self) -> None:
        self.deadlines.arm(self.connection, self.request_seconds)
        try:
            super().handle_one_request()
        finally:
            self.deadlines.disarm(self.connection)

    def parse_request(self) -> bool:
        # Headers cut short by the deadline read as complete ones: such a request is dropped.
        if not super().parse_request():
            return False
        if self.deadlines.is_late(self.connection):
            self.close_connection = True
            return False
        return True

    def send_response(self, code: int, message: str | None = None) -> None:
        self.deadlines.disarm(self.connection)
        super().send_response(code, message)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = getattr(self, "path", None)
        what = f"{self.command} {path.split('?', 1)[0]}" if self.command and path else "(malformed request)"
        self.log("info", "%s %s", what.translate(self._control_char_table), getattr(code, "value", code))

    def log_error(self, format: str, *args: object) -> None:
        # http.server's own errors quote the raw request line ("Bad request syntax ('GET /?q=...')").
        code = args[0] if args and isinstance(args[0], int) else "-"
        self.log("error", "request not served (code %s)", code)


def request_handler(request_seconds: float) -> type[RequestHandler]:
    """The handler class for one server: a request must arrive within ``request_seconds``,
    and a socket read or write waits no longer than that either."""
    attributes = {"deadlines": Deadlines(), "request_seconds": request_seconds, "timeout": request_seconds}
    return type("ServerRequestHandler", (RequestHandler,), attributes)
