"""A config or key file that holds a TSIG secret and is readable by others: warn once."""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner
from servers import free_port

from secdns import keys
from secdns.cli import cli

SECRET = "c2VjcmV0c2VjcmV0c2VjcmV0"


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(keys, "_warned", set())


def key_file(tmp_path, mode):
    path = tmp_path / "xfr.key"
    path.write_text(f'key "xfr" {{\n\talgorithm hmac-sha256;\n\tsecret "{SECRET}";\n}};\n')
    path.chmod(mode)
    return path


def config_file(tmp_path, mode, with_key=True):
    path = tmp_path / "secdns.toml"
    text = f'[[zone]]\nname = "example.com"\nprimaries = ["127.0.0.1:{free_port()}"]\n'
    if with_key:
        text = f'[keys.xfr]\nsecret = "{SECRET}"\n\n' + text + 'key = "xfr"\n'
    path.write_text(text)
    path.chmod(mode)
    return path


def warnings(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if "holds a TSIG secret" in line]


def test_readable_key_file_warns_naming_it(tmp_path):
    path = key_file(tmp_path, 0o644)
    port = free_port()
    result = CliRunner().invoke(
        cli,
        ["pull", "example.com", f"@127.0.0.1:{port}", "-o", str(tmp_path / "z"), "-k", str(path)],
    )
    assert result.exit_code == 3, result.stderr
    assert warnings(result) == [
        f"secdns: warning: {path} holds a TSIG secret and is readable by group and others "
        f"(mode 0644); run: chmod 600 {path}"
    ]


def test_private_key_file_does_not_warn(tmp_path):
    path = key_file(tmp_path, 0o600)
    result = CliRunner().invoke(
        cli,
        [
            "pull",
            "example.com",
            f"@127.0.0.1:{free_port()}",
            "-o",
            str(tmp_path / "z"),
            "-k",
            str(path),
        ],
    )
    assert result.exit_code == 3 and warnings(result) == [], result.stderr


def test_group_readable_config_with_a_key_warns(tmp_path):
    path = config_file(tmp_path, 0o640)
    result = CliRunner().invoke(cli, ["pull", "-c", str(path), "-o", str(tmp_path / "z")])
    assert result.exit_code == 3, result.stderr
    (line,) = warnings(result)
    assert str(path) in line and "readable by group (mode 0640)" in line


def test_config_without_a_secret_does_not_warn(tmp_path):
    path = config_file(tmp_path, 0o644, with_key=False)
    result = CliRunner().invoke(cli, ["pull", "-c", str(path), "-o", str(tmp_path / "z")])
    assert result.exit_code == 3 and warnings(result) == [], result.stderr


def test_warned_once_per_file(tmp_path, caplog):
    path = key_file(tmp_path, 0o604)
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        keys.parse_key_file(path)
    assert [r.getMessage() for r in caplog.records if "TSIG secret" in r.getMessage()] == [
        f"warning: {path} holds a TSIG secret and is readable by others (mode 0604); "
        f"run: chmod 600 {path}"
    ]


def test_a_secret_holding_comment_marks_is_read_whole(tmp_path):
    """A base64 secret may hold "//" (about one tsig-keygen secret in a hundred): the
    comment stripping leaves quoted strings alone; comments around them still go."""
    secret = "ab//" * 10 + "abc="  # valid base64
    path = tmp_path / "xfr.key"
    path.write_text(
        '# tsig-keygen output\nkey "xfr-key" { // the transfer key\n'
        f'\talgorithm hmac-sha256; /* a\ncomment */\n\tsecret "{secret}";\n}};\n'
    )
    path.chmod(0o600)
    (key,) = keys.parse_key_file(path)
    assert key.secret == secret and key.name.rstrip(".") == "xfr-key"


def test_serve_says_the_level_once(tmp_path):
    """serve's text log names the level: a stranger saw ``WARNING warning: ... holds a
    TSIG secret``."""
    import io

    from secdns.cli.serve import setup_server_logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        setup_server_logging("text", 0, False)
        stream = io.StringIO()
        root.handlers[0].stream = stream  # type: ignore[attr-defined]
        path = key_file(tmp_path, 0o604)
        keys.parse_key_file(path)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    (line,) = [line for line in stream.getvalue().splitlines() if "TSIG secret" in line]
    assert f" WARNING {path} holds a TSIG secret and is readable by others" in line, line
