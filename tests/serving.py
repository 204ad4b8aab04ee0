"""Run ``secdns serve``'s Server in a thread of the test process (its own event loop)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import tomli_w
from servers import free_port

from secdns.config import load_config
from secdns.server.server import Server, check_config_for_serve


class ServerThread:
    def __init__(self, config_path: Path, *, log_queries: bool = True) -> None:
        """``log_queries``: serve -v (each query and refresh step logged; a zone's
        first transfer then takes the probing path, which explains itself)."""
        self.config_path = config_path
        self.log_queries = log_queries
        config = load_config(config_path)
        check_config_for_serve(config)
        self.config = config
        self.port = config.server.listen[0].port
        self.server: Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("server did not start")
        if self.error:
            raise self.error

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.server = Server(self.config, log_queries=self.log_queries)
            try:
                await self.server.startup()
            except BaseException as err:
                self.error = err
                self._ready.set()
                return
            self._ready.set()
            await self.server.stop_event.wait()
            await self.server.shutdown()

        try:
            asyncio.run(main())
        except BaseException as err:  # pragma: no cover - surfaced to the test
            self.error = err
            self._ready.set()

    def call(self, coro_factory: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the server's loop and wait for its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro_factory(), self.loop).result(timeout)

    def stop(self) -> None:
        if not self.thread.is_alive():
            return
        if self.loop is not None and self.server is not None:
            self.loop.call_soon_threadsafe(self.server.stop)
        self.thread.join(30)
        assert not self.thread.is_alive(), "server did not stop"

    # --- client helpers ---
    def query(
        self,
        name: str,
        rdtype: str = "SOA",
        *,
        tcp: bool = False,
        rd: bool = False,
        timeout: float = 2.0,
    ) -> dns.message.Message:
        q = dns.message.make_query(name, rdtype)
        if not rd:
            q.flags &= ~dns.flags.RD
        send = dns.query.tcp if tcp else dns.query.udp
        return send(q, "127.0.0.1", timeout=timeout, port=self.port)

    def serial(self, zone: str) -> int | None:
        try:
            response = self.query(zone, "SOA")
        except Exception:
            return None
        if response.rcode() != dns.rcode.NOERROR or not response.answer:
            return None
        return response.answer[0][0].serial

    def wait_serial(self, zone: str, serial: int, timeout: float = 15.0) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.serial(zone) == serial:
                return time.monotonic() - start
            time.sleep(0.02)
        raise AssertionError(
            f"secdns never answered {zone} serial {serial} (last: {self.serial(zone)})"
        )


def zones_config(path: Path, primary: str, names: list[str], **server: Any) -> Path:
    """:func:`write_config` of ``names``, each a secondary of ``primary`` (ADDR:PORT),
    with its store in ``store`` beside ``path``."""
    zones = [{"name": name, "primaries": [primary]} for name in names]
    return write_config(path, directory=path.parent / "store", zones=zones, **server)


def write_config(
    path: Path,
    *,
    zones: list[dict[str, Any]],
    directory: Path,
    keys: dict[str, dict[str, str]] | None = None,
    port: int | None = None,
    **server: Any,
) -> Path:
    doc: dict[str, Any] = {
        "server": {
            "directory": str(directory),
            "listen": [f"127.0.0.1:{port or free_port()}"],
            **server,
        }
    }
    if keys:
        doc["keys"] = keys
    doc["zone"] = zones
    path.write_text(tomli_w.dumps(doc))
    return path


__all__ = ["ServerThread", "write_config", "dns"]
