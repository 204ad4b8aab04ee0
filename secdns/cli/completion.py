"""``secdns completion``: print the shell completion script for bash, zsh or fish."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

PROG_NAME = "secdns"
COMPLETE_VAR = "_SECDNS_COMPLETE"
"""The variable click's completion scripts set when they call secdns back."""

SHELLS = ("bash", "zsh", "fish")

FILENAMES = {"bash": "secdns.bash", "zsh": "_secdns", "fish": "secdns.fish"}
"""The names of the scripts committed under ``completions/`` (zsh needs ``_secdns``)."""


def script(shell: str, cli: click.Command | None = None) -> str:
    """The completion script for ``shell``: click's own, ending with one newline.

    The script is static; the candidates (commands, options, zone and key names
    from the config) come from secdns itself, called back with ``_SECDNS_COMPLETE``.
    """
    if cli is None:
        import secdns.cli

        cli = secdns.cli.cli
    completion_class = get_completion_class(shell)
    if completion_class is None:
        raise click.BadParameter(f"no completion for {shell!r}")
    source = completion_class(cli, {}, PROG_NAME, COMPLETE_VAR).source()
    return source.rstrip("\n") + "\n"


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def command(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish).

    It completes subcommands and options, zone names from the config (-c,
    else $SECDNS_CONFIG, else ./secdns.toml) and the TSIG key names of its
    [keys] for --key.  Install it once; it calls secdns for the candidates, so
    it keeps up with new versions.  The same scripts ship in completions/.

    \b
    Examples:
      secdns completion bash > /etc/bash_completion.d/secdns
      secdns completion bash > ~/.local/share/bash-completion/completions/secdns
      eval "$(secdns completion bash)"     # in ~/.bashrc, or this shell only
      secdns completion zsh > ~/.zfunc/_secdns   # with fpath=(~/.zfunc $fpath) in ~/.zshrc
      secdns completion fish > ~/.config/fish/completions/secdns.fish
    """
    click.echo(script(shell, ctx.find_root().command), nl=False)
