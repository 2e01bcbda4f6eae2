"""A test server's plumbing: a listener on a free port of 127.0.0.1, one daemon thread per accepted
connection, and a stop() that ends them all, even threads blocked reading."""

import socket
import threading
from typing import List


class LoopbackServer:
    """Subclasses implement ``_serve(connection)``; it runs in the connection's own thread."""

    def __init__(self, name: str):
        self._name = name
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: List[socket.socket] = []
        self._threads: List[threading.Thread] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(0.1)  # close() does not wake accept(): poll for stop()
        self.port = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"{name}-accept", daemon=True)
        self._acceptor.start()

    def _serve(self, connection: socket.socket) -> None:
        raise NotImplementedError

    def _track(self, connection: socket.socket) -> None:
        """Lets stop() wake a thread blocked on this socket."""
        with self._lock:
            self._connections.append(connection)

    def _untrack(self, connection: socket.socket) -> None:
        with self._lock:
            if connection in self._connections:
                self._connections.remove(connection)

    def stop(self) -> None:
        self._stopping.set()
        self._acceptor.join(5)
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked reading it
            except OSError:
                pass
            self._on_stop(connection)
        for thread in list(self._threads):
            thread.join(5)

    def _on_stop(self, connection: socket.socket) -> None:
        """What else stop() does to each open connection once it is shut down."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(connection,), name=f"{self._name}-conn", daemon=True)
            self._threads.append(thread)
            thread.start()
