"""Man pages and shell completions: generated, current, warning-free and complete; -h,
--version and option suggestions on every command; completion of zone and key names."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.shell_completion import ShellComplete
from click.testing import CliRunner
from servers import need_binary

from secdns import __version__
from secdns.cli import cli, completion
from secdns.cli.options import (
    CONFIG_ENVVAR,
    KEY_NAME_META,
    complete_keys,
    complete_zones,
    config_option,
    resolve_key,
    tsig_options,
)
from secdns.errors import ExitCode, UsageError

ROOT = Path(__file__).resolve().parent.parent
REGENERATE = "run python scripts/gendocs.py"

# secdns/cli/__init__.py registers `completion` (LAZY_COMMANDS); adding it again is harmless.
cli.add_command(completion.command)


def _load_gendocs():
    spec = importlib.util.spec_from_file_location("gendocs", ROOT / "scripts" / "gendocs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gendocs"] = module
    spec.loader.exec_module(module)
    return module


gendocs = _load_gendocs()
TREE: dict[str, click.Command] = gendocs.registered_commands()
COMMANDS = sorted(TREE)


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), prog_name="secdns", env=env)


def man_page(command: str | None) -> Path:
    return ROOT / "man" / ("secdns.1" if command is None else f"secdns-{command}.1")


def deroff(text: str) -> str:
    """What a reader sees of roff source, near enough to search for option names."""
    text = re.sub(r"\\f[BIRP]|\\&|\\%", "", text)
    return text.replace("\\-", "-").replace("\\e", "\\")


def options_in_help(help_text: str) -> set[str]:
    """Every option a --help output lists (the first column of its Options section)."""
    section = help_text.split("\nOptions:\n", 1)[1].split("\n\n", 1)[0]
    found = set()
    for line in section.splitlines():
        if line.startswith("  -"):
            first_column = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
            found |= set(re.findall(r"(?<![\w-])--?[A-Za-z0-9][\w-]*", first_column))
    return found


# --- generated files ---------------------------------------------------------------------------


def test_generated_files_are_current(tmp_path):
    assert gendocs.main(["--root", str(tmp_path)]) == 0
    fresh = {
        p.relative_to(tmp_path).as_posix(): p.read_text()
        for p in tmp_path.rglob("*")
        if p.is_file()
    }
    stale = sorted(
        rel
        for rel, text in fresh.items()
        if not (ROOT / rel).is_file() or (ROOT / rel).read_text() != text
    )
    extra = sorted(gendocs.owned_files(ROOT) - set(fresh))
    assert not stale and not extra, (
        f"out of date: {stale}; no longer generated: {extra}; {REGENERATE}"
    )


def test_gendocs_check_mode(tmp_path, capsys):
    assert gendocs.main(["--root", str(tmp_path)]) == 0
    assert gendocs.main(["--check", "--root", str(tmp_path)]) == 0
    (tmp_path / "man" / "secdns-pull.1").write_text("stale\n")
    (tmp_path / "man" / "secdns-gone.1").write_text("a removed command\n")
    (tmp_path / "completions" / "secdns.fish").unlink()
    capsys.readouterr()
    assert gendocs.main(["--check", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "man/secdns-pull.1 (out of date)" in err
    assert "man/secdns-gone.1 (no longer generated)" in err
    assert "completions/secdns.fish (missing)" in err
    assert REGENERATE in err
    assert (tmp_path / "man" / "secdns-pull.1").read_text() == "stale\n"  # --check writes nothing


def test_documented_regeneration_command_passes():
    result = subprocess.run(
        [sys.executable, "scripts/gendocs.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_output_is_deterministic():
    assert gendocs.render_all() == gendocs.render_all()


def test_every_command_has_a_man_page():
    pages = {p.name for p in (ROOT / "man").glob("secdns*.[15]")}
    wanted = {"secdns.1", "secdns.toml.5"} | {f"secdns-{name}.1" for name in COMMANDS}
    assert pages == wanted, REGENERATE
    for name in ("pull", "diff", "serve", "completion"):
        assert name in COMMANDS


# --- man pages ---------------------------------------------------------------------------------

MAN_PAGES = sorted((ROOT / "man").glob("secdns*.[15]"))


@pytest.mark.parametrize("page", MAN_PAGES, ids=lambda p: p.name)
def test_man_page_renders_without_warnings(page):
    groff = need_binary("groff")
    for device in ("-Tutf8", "-Tps"):
        result = subprocess.run(
            [groff, "-ww", "-z", "-man", device, str(page)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0 and result.stderr == "", (device, result.stderr)


@pytest.mark.parametrize("page", MAN_PAGES, ids=lambda p: p.name)
def test_man_l_renders(page):
    man = need_binary("man")
    result = subprocess.run(
        [man, "--warnings", "-l", str(page)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MANWIDTH": "80"},
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    title = page.name.rsplit(".", 1)[0]
    assert result.stdout.startswith(f"{title.upper()}("), result.stdout[:200]
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
        assert f"\n{section}\n" in result.stdout


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_option_in_help_is_in_the_man_page(command):
    args = ["--help"] if command is None else [command, "--help"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    source = deroff(man_page(command).read_text())
    options_section = source.split("\n.SH OPTIONS\n", 1)[1].split("\n.SH ", 1)[0]
    wanted = options_in_help(result.output)
    assert "--help" in wanted and "-h" in wanted
    missing = sorted(
        opt
        for opt in wanted
        if not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", options_section)
    )
    assert not missing, f"{missing} not in {man_page(command).name}; {REGENERATE}"


@pytest.mark.parametrize("command", COMMANDS)
def test_man_page_sections(command):
    source = man_page(command).read_text()
    for section in (
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        '"EXIT STATUS"',
        "ENVIRONMENT",
        "FILES",
        '"SEE ALSO"',
    ):
        assert f"\n.SH {section}\n" in source, section
    text = deroff(source)
    if command != "completion":
        assert "\n.SH EXAMPLES\n" in source
    for code, _meaning in gendocs.EXIT_CODE_TABLE:
        assert f"\n.TP\n{int(code)}\n" in text
    for tool in (
        "dig (1)",
        "kdig (1)",
        "named-checkzone (8)",
        "knotc (8)",
        "nsupdate (1)",
        "secdns (1)",
        "secdns.toml (5)",
    ):
        assert f".BR {tool}" in text, tool
    for other in COMMANDS:
        if other != command:
            assert f".BR secdns-{other} (1)" in text


def test_man_pages_escape_roff():
    for page in MAN_PAGES:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            assert line, f"{page.name}:{number}: empty line"
            if not line.startswith((".", "'")):
                continue
            request = line.split()[0]
            assert re.fullmatch(r"\.(\\\"|TH|SH|SS|PP|TP|IP|RS|RE|nf|fi|B|BR|br|nh|ad)", request), (
                f"{page.name}:{number}: {line}"
            )


def test_config_page_documents_the_schema():
    from secdns import config
    from secdns.config import fields

    text = deroff((ROOT / "man" / "secdns.toml.5").read_text())
    for key in (*fields.SERVER_KEYS, *fields.ZONE_KEYS, "algorithm", "secret"):
        assert f"\n.TP\n{key} = " in text, key
    for default in (
        config.DEFAULT_CONCURRENCY,
        config.DEFAULT_MAX_RECORDS,
        config.DEFAULT_MAX_BYTES,
        *config.DEFAULT_LISTEN,
    ):
        assert f"Default: {default}" in text


def test_exit_codes_in_readme_match_the_table():
    readme = (ROOT / "README.md").read_text()
    for code, meaning in gendocs.EXIT_CODE_TABLE:
        assert f"| {int(code)} | {meaning} |" in readme


# --- every command: -h, suggestions, --version ---------------------------------------------


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_h_is_help(command):
    prefix = [] if command is None else [command]
    short, long = run(*prefix, "-h"), run(*prefix, "--help")
    assert short.exit_code == 0 and long.exit_code == 0
    assert short.output == long.output
    assert short.output.startswith(f"Usage: secdns {command or ''}".rstrip())


def _typo(option: str) -> str:
    """The option with two letters after the dashes swapped (or one dropped)."""
    name = option[2:]
    for i in range(len(name) - 1):
        if name[i] != name[i + 1] and name[i] != "-" and name[i + 1] != "-":
            return "--" + name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    return option[:-1]


def _long_options(command: click.Command) -> list[str]:
    return [
        opt
        for param in command.params
        if isinstance(param, click.Option)
        for opt in param.opts
        if opt.startswith("--")
    ] + ["--help"]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_unknown_option_suggests_the_closest(command):
    target = cli if command is None else TREE[command]
    prefix = [] if command is None else [command]
    for option in _long_options(target):
        typo = _typo(option)
        assert typo != option
        result = run(*prefix, typo)
        assert result.exit_code == 2, (typo, result.output)
        assert "No such option" in result.stderr and typo in result.stderr
        suggestion = re.search(r"Did you mean (.*)\?|\(Possible options: (.*)\)", result.stderr)
        assert suggestion and option in re.findall(r"--?[\w-]+", suggestion.group(0)), (
            typo,
            result.stderr,
        )


def test_version():
    for flag in ("--version", "-V"):
        result = run(flag)
        assert result.exit_code == 0
        assert result.output == f"secdns, version {__version__}\n"
    assert f'"secdns {__version__}"' in (ROOT / "man" / "secdns.1").read_text()


# --- completion scripts --------------------------------------------------------------------------


@pytest.mark.parametrize("shell", completion.SHELLS)
def test_committed_completion_is_what_the_command_prints(shell):
    result = run("completion", shell)
    assert result.exit_code == 0, result.output
    committed = (ROOT / "completions" / completion.FILENAMES[shell]).read_text()
    assert result.stdout == committed, REGENERATE
    assert "_SECDNS_COMPLETE" in committed and "secdns" in committed


def test_completion_scripts_are_clicks():
    assert (ROOT / "completions" / "_secdns").read_text().startswith("#compdef secdns\n")
    assert (
        "complete -o nosort -F _secdns_completion secdns"
        in (ROOT / "completions" / "secdns.bash").read_text()
    )
    assert (
        "complete --no-files --command secdns" in (ROOT / "completions" / "secdns.fish").read_text()
    )


def test_completion_help_says_how_to_install():
    result = run("completion", "-h")
    for where in ("/etc/bash_completion.d/secdns", "fpath", "~/.config/fish/completions/"):
        assert where in result.output
    readme = (ROOT / "README.md").read_text()
    for where in (
        "secdns completion bash >",
        "secdns completion zsh >",
        "secdns completion fish > ~/.config/fish/completions/secdns.fish",
    ):
        assert where in readme


def test_completion_rejects_unknown_shells():
    result = run("completion", "tcsh")
    assert result.exit_code == 2 and "'tcsh' is not one of" in result.stderr


def test_bash_script_completes_key_names_in_bash(tmp_path, config_file):
    """The committed bash script, in bash, calling a `secdns` found on $PATH."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    wrapper = tmp_path / "bin" / "secdns"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m secdns "$@"\n')
    wrapper.chmod(0o755)
    script = ROOT / "completions" / "secdns.bash"
    commands = (
        f"source {script} && complete -p secdns && "
        f"COMP_WORDS=(secdns pull -c {config_file} --key '') && COMP_CWORD=5 && "
        "_secdns_completion secdns && printf 'reply=%s\\n' \"${COMPREPLY[@]}\""
    )
    env = {
        **os.environ,
        "PATH": f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [bash, "--norc", "-c", commands], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "-F _secdns_completion secdns" in result.stdout
    assert re.findall(r"reply=(.*)", result.stdout) == ["xfr", "notify-key"], result.stdout


# --- dynamic completion: zone and key names -----------------------------------------------------

CONFIG = """\
[server]
directory = "zones"

[keys.xfr]
secret = "c2VjcmV0"

[keys.notify-key]
algorithm = "hmac-sha512"
secret = "c2VjcmV0"

[[zone]]
name = "example.com"
primaries = ["192.0.2.1"]
key = "xfr"

[[zone]]
name = "example.org."
file = "example.org.zone"

[[zone]]
name = "other.net"
primaries = ["192.0.2.2:5300"]
"""


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    monkeypatch.delenv(CONFIG_ENVVAR, raising=False)
    monkeypatch.chdir(tmp_path)  # no ./secdns.toml unless a test writes one
    path = tmp_path / "conf" / "secdns.toml"
    path.parent.mkdir()
    path.write_text(CONFIG)
    return path


@click.command("zonecmd")
@click.argument("zone", shell_complete=complete_zones)
@config_option
@tsig_options
def zonecmd(zone: str, config_path: str | None, tsig: str | None, keyfile: str | None) -> None:
    """A command with a completed ZONE argument, as pull/diff/verify/watch have."""
    click.echo(repr(resolve_key(tsig, keyfile)))


def complete(command: click.Command, args: list[str], incomplete: str) -> list[tuple[str, str]]:
    comp = ShellComplete(command, {}, command.name or "secdns", "_SECDNS_COMPLETE")
    return [(item.value, item.help or "") for item in comp.get_completions(args, incomplete)]


def test_zone_completion_from_dash_c(config_file):
    assert complete(zonecmd, ["-c", str(config_file)], "") == [
        ("example.com", "secondary of 192.0.2.1"),
        ("example.org", "primary, from example.org.zone"),
        ("other.net", "secondary of 192.0.2.2:5300"),
    ]
    assert [v for v, _ in complete(zonecmd, ["-c", str(config_file)], "EX")] == [
        "example.com",
        "example.org",
    ]
    assert complete(zonecmd, ["-c", str(config_file)], "@19") == []


def test_zone_completion_from_environment_then_current_directory(config_file, monkeypatch):
    assert complete(zonecmd, [], "") == []  # no -c, no $SECDNS_CONFIG, no ./secdns.toml
    monkeypatch.setenv(CONFIG_ENVVAR, str(config_file))
    assert [v for v, _ in complete(zonecmd, [], "o")] == ["other.net"]
    monkeypatch.delenv(CONFIG_ENVVAR)
    Path("secdns.toml").write_text('[[zone]]\nname = "here.test"\nprimaries = ["192.0.2.9"]\n')
    assert [v for v, _ in complete(zonecmd, [], "")] == ["here.test"]


@pytest.mark.parametrize("content", ["not toml [", "zone = 3", "[[zone]]\nname = 5\n", None])
def test_zone_completion_is_silent_on_problems(config_file, content):
    if content is None:
        config_file.unlink()
    else:
        config_file.write_text(content)
    assert complete(zonecmd, ["-c", str(config_file)], "") == []
    assert complete(zonecmd, ["-c", str(config_file), "x.test", "--key"], "") == []


def test_key_completion(config_file):
    assert complete(zonecmd, ["-c", str(config_file), "--key"], "") == [
        ("xfr", "hmac-sha256"),
        ("notify-key", "hmac-sha512"),
    ]
    assert complete(zonecmd, ["-c", str(config_file), "--key"], "n") == [
        ("notify-key", "hmac-sha512")
    ]
    assert complete_keys(click.Context(zonecmd), zonecmd.params[0], "") == []


@pytest.mark.parametrize("command", ["pull", "diff", "verify", "watch"])
def test_real_commands_complete_zone_names(config_file, monkeypatch, command):
    argument = next(p for p in TREE[command].params if isinstance(p, click.Argument))
    assert argument._custom_shell_complete is not None, f"secdns {command} {argument.name}"
    monkeypatch.setenv(CONFIG_ENVVAR, str(config_file))
    assert [v for v, _ in complete(cli, [command], "ex")] == ["example.com", "example.org"]


@pytest.mark.parametrize("command", ["pull", "diff", "init", "verify", "watch"])
def test_real_commands_complete_key_names(config_file, monkeypatch, command):
    monkeypatch.setenv(CONFIG_ENVVAR, str(config_file))
    assert [v for v, _ in complete(cli, [command, "--key"], "")] == ["xfr", "notify-key"]


def test_completion_end_to_end_through_the_environment(config_file):
    """As the shell does it: the script calls secdns with _SECDNS_COMPLETE set."""
    code = "from secdns.cli import cli\ncli(prog_name='secdns')\n"
    words = f"secdns pull -c {config_file} --key "
    env = {
        **os.environ,
        "_SECDNS_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": "5",
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["plain,xfr", "plain,notify-key"]
    env.update(_SECDNS_COMPLETE="fish_complete", COMP_WORDS="secdns comp", COMP_CWORD="comp")
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    # fish gets "type,value<TAB>help" lines (click 8.5)
    assert result.stdout.startswith("plain,completion\t"), result.stdout


# --- --key NAME ----------------------------------------------------------------------------------


def test_resolve_key_by_name(config_file):
    key = resolve_key(None, None, "xfr", config_file)
    assert key is not None and (key.name, key.algorithm) == ("xfr", "hmac-sha256")
    assert resolve_key(None, None) is None
    assert resolve_key("hmac-sha1:k:c2VjcmV0", None).algorithm == "hmac-sha1"


def test_resolve_key_unknown_name_lists_the_known_ones(config_file):
    with pytest.raises(UsageError) as caught:
        resolve_key(None, None, "nope", str(config_file))
    assert caught.value.exit_code == ExitCode.USAGE
    assert "no key 'nope'" in caught.value.message
    assert "known: notify-key, xfr" in caught.value.message


def test_resolve_key_without_a_config(config_file):
    with pytest.raises(UsageError, match="no config to find it in"):
        resolve_key(None, None, "xfr")


def test_key_option_through_a_command(config_file, monkeypatch):
    result = CliRunner().invoke(zonecmd, ["x.test", "-c", str(config_file), "--key", "xfr"])
    assert result.exit_code == 0, result.output
    assert "TsigKey(name='xfr', algorithm='hmac-sha256')" in result.output
    monkeypatch.setenv(CONFIG_ENVVAR, str(config_file))
    result = CliRunner().invoke(zonecmd, ["x.test", "--key", "notify-key"])
    assert "algorithm='hmac-sha512'" in result.output
    result = CliRunner().invoke(zonecmd, ["x.test", "--key", "xfr", "--tsig", "k:c2VjcmV0"])
    assert result.exit_code == 2 and "use either --key or --tsig" in result.output


def test_key_option_is_kept_in_ctx_meta(config_file):
    ctx = zonecmd.make_context("zonecmd", ["x.test", "--key", "xfr"])
    assert ctx.meta[KEY_NAME_META] == "xfr"
    assert "key_name" not in ctx.params


def test_pull_key_name_from_config_end_to_end(tmp_path):
    """pull -c CONFIG --key NAME signs with NAME, not with the zone's own (stale) key."""
    from fakeprimary import FakePrimary
    from test_pull_hostile import KEY, ORIGIN, _signed, soa

    with FakePrimary(_signed(KEY), soa(10), keyring={KEY.name: KEY}) as primary:
        path = tmp_path / "secdns.toml"
        path.write_text(f"""
[keys.stale]
name = "xfr"
secret = "b3RoZXJzZWNyZXRvdGhlcg=="

[keys.xfr]
secret = "c2VjcmV0c2VjcmV0c2VjcmV0"

[[zone]]
name = "{ORIGIN}"
primaries = ["127.0.0.1:{primary.port}"]
key = "stale"
""")
        right = run("pull", "-c", str(path), "--key", "xfr", "-o", str(tmp_path / "z.zone"))
        unknown = run("pull", "-c", str(path), "--key", "nope", "-o", str(tmp_path / "z"))
    assert right.exit_code == 0, right.stderr
    assert primary.queries[-1].had_tsig
    assert "www 300 IN A 192.0.2.80" in (tmp_path / "z.zone").read_text()
    assert unknown.exit_code == 2
    assert "no key 'nope'" in unknown.stderr and "known: stale, xfr" in unknown.stderr


def test_no_man_page_lists_a_variable_twice():
    # a stranger: secdns-ctl(1) listed SECDNS_CONFIG twice under ENVIRONMENT
    for page in sorted((ROOT / "man").glob("*.1")):
        text = page.read_text()
        if ".SH ENVIRONMENT" not in text:
            continue
        section = text.split(".SH ENVIRONMENT", 1)[1].split("\n.SH ", 1)[0]
        names = re.findall(r"^\\fB([A-Z_]+)\\fR$", section, flags=re.M)
        assert len(names) == len(set(names)), (page.name, names)
