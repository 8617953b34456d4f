"""Which vault variables may reach a child process's environment (``vault run``/``pull``).

Whoever holds a *write* token on an environment chooses its variables; every job that runs
``vault run`` or sources a pulled ``.env`` then runs with them. Most names only carry data,
but some make the loader, the shell or an interpreter load code: ``LD_PRELOAD``, ``PATH``,
``BASH_ENV``, ``PYTHONPATH``, ``NODE_OPTIONS``… A write token would then be code execution in
every consumer. Such names are refused (exit 2, naming them) unless the consumer allows them
one by one with ``--allow-env NAME``: the decision belongs to whoever runs the command, not
to whoever can write the vault.

The list is a denylist of names known to load or run code; it cannot be complete (a program
may read any variable as a path to load), so ``vault run`` is still only as safe as the
programs it starts.
"""

from __future__ import annotations

from collections.abc import Iterable

from mltrust.errors import InputError

__all__ = ["LOADER_PREFIXES", "LOADER_VARS", "check_child_env"]

#: Variables that make the dynamic loader, a shell, an interpreter or a tool run other code.
LOADER_VARS = frozenset(
    {
        # shells and the search path
        "PATH",
        "IFS",
        "ENV",
        "BASH_ENV",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "PROMPT_COMMAND",
        "CDPATH",
        # Python
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PYTHONINSPECT",
        "PYTHONBREAKPOINT",
        "PYTHONUSERBASE",
        "PYTHONWARNINGS",
        "PYTHONEXECUTABLE",
        # other interpreters and runtimes
        "NODE_OPTIONS",
        "NODE_PATH",
        "PERL5LIB",
        "PERL5OPT",
        "PERLLIB",
        "RUBYOPT",
        "RUBYLIB",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "CLASSPATH",
        "LUA_INIT",
        "LUA_PATH",
        "LUA_CPATH",
        # libraries and tools that load plug-ins or run commands
        "GCONV_PATH",
        "OPENSSL_CONF",
        "OPENSSL_ENGINES",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_EXEC_PATH",
        "GIT_ASKPASS",
        "SSH_ASKPASS",
        "EDITOR",
        "VISUAL",
        "PAGER",
    }
)
#: Name prefixes with the same effect (the loader's LD_*/DYLD_*, bash's exported functions,
#: git's injected configuration).
LOADER_PREFIXES = ("LD_", "DYLD_", "BASH_FUNC_", "GIT_CONFIG")


def _dangerous(name: str) -> bool:
    return name in LOADER_VARS or name.startswith(LOADER_PREFIXES)


def check_child_env(names: Iterable[str], allowed: Iterable[str]) -> None:
    """InputError naming every variable that would load code and is not in ``allowed``."""
    allow = set(allowed)
    refused = sorted(n for n in names if _dangerous(n) and n not in allow)
    if refused:
        raise InputError(
            f"the environment sets {', '.join(refused)}, which make the loader, a shell or an"
            " interpreter run other code; refusing to pass them on",
            hint="allow each one you expect with --allow-env NAME",
        )
