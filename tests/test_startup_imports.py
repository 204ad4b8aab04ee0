"""What the command line imports before it does anything: only what the command needs.

``secdns --version`` needs no dnspython, asyncio or ssl; a ``pull`` piped to a file
or a cron mail needs no rich (it prints key=value lines), no catalog code unless
it pulls catalogs, and no Prometheus client (``--metrics-file`` imports it).  Each
case runs the real entry point in a fresh interpreter and lists what it loaded.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys

from servers import Bind, zone_text

WATCHED = ("dns", "asyncio", "ssl", "rich", "prometheus_client", "secdns.catalog")

RUN = """
import json, sys
sys.argv = ["secdns", *sys.argv[1:]]
try:
    from secdns._entry import main
    main()
except SystemExit:
    pass
finally:
    sys.stdout.flush()
    sys.stderr.write("\\nLOADED " + json.dumps(sorted(
        name for name in WATCHED if name in sys.modules
    )) + "\\n")
""".replace("WATCHED", repr(WATCHED))


def loaded(*args: str) -> set[str]:
    """The WATCHED packages that ``secdns ARGS`` (stdout a pipe) has imported."""
    result = subprocess.run(
        [sys.executable, "-c", RUN, *args], capture_output=True, text=True, timeout=60
    )
    marker = result.stderr.rsplit("LOADED ", 1)
    assert len(marker) == 2, result.stderr
    return set(json.loads(marker[1]))


def test_version_imports_no_dnspython_asyncio_or_ssl() -> None:
    assert loaded("--version") == set()


def test_pull_help_imports_no_rich_catalogs_or_prometheus() -> None:
    assert not loaded("pull", "--help") & {"rich", "prometheus_client", "secdns.catalog"}


def test_a_piped_pull_imports_no_rich_catalogs_or_prometheus(tmp_path) -> None:
    bind = Bind.start(tmp_path / "bind", {"example.com": zone_text("example.com")})
    try:
        target = tmp_path / "example.com.zone"
        for _ in range(2):  # a transfer, then an up-to-date check
            found = loaded("pull", "example.com", f"@127.0.0.1:{bind.port}", "-o", str(target))
            assert {"dns", "asyncio"} <= found  # (it did pull)
            assert not found & {"rich", "prometheus_client", "secdns.catalog"}
        assert target.read_text().count("SOA") >= 1
    finally:
        bind.stop()


def test_a_watch_without_metrics_listen_imports_no_prometheus(tmp_path) -> None:
    bind = Bind.start(tmp_path / "bind", {"example.com": zone_text("example.com")})
    try:
        server = f"@127.0.0.1:{bind.port}"
        monitor = loaded("watch", "example.com", "--servers", server, "--until-consistent")
        assert "dns" in monitor and "prometheus_client" not in monitor
        store = tmp_path / "store"
        mirror = subprocess.Popen(
            [sys.executable, "-c", RUN, "watch", "example.com", server, "-d", str(store)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert mirror.stdout is not None
            ready, _, _ = select.select([mirror.stdout], [], [], 30)
            assert ready, "no event from watch in 30 s"
            assert "event=updated" in mirror.stdout.readline()  # the first transfer is done
            mirror.terminate()
            _, stderr = mirror.communicate(timeout=30)
        finally:
            if mirror.poll() is None:
                mirror.kill()
                mirror.wait()
        found = set(json.loads(stderr.rsplit("LOADED ", 1)[1]))
        assert "dns" in found and "prometheus_client" not in found
    finally:
        bind.stop()
