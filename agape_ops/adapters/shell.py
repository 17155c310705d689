"""Run a command as an argument list: never through a shell, with an environment given in full.

The child sees ``PATH``, the adapter's configured variables and the step's ``env`` and nothing
else of the bot's environment, so the bot's secrets never reach it. Output is captured and cut
to ``output_limit`` (head and tail kept, the cut stated). A command still running at its
timeout is killed with its whole process group. Output goes to temporary files, so a background
process the command leaves behind cannot hold the step open. Off unless ``OPS_ALLOW_SHELL``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

from agape_ops.engine.ports import AdapterRequest, Probe
from agape_ops.engine.results import StepResult
from agape_ops.errors import (
    AdapterError,
    AdapterTimeout,
    AdapterUnavailable,
    ShellDisabled,
    UnsafeOperation,
)
from agape_ops.runbooks.hazards import shell_hazard
from agape_ops.runbooks.model import ShellCall


@dataclass(frozen=True)
class _Captured:
    text: str
    total_bytes: int
    truncated: bool


class ShellAdapter:
    """Run argument lists as child processes, bounded in time and output."""

    name = "shell"

    def __init__(
        self,
        *,
        enabled: bool,
        timeout_s: float = 60.0,
        env: Mapping[str, str] | None = None,
        output_limit: int = 4000,
    ) -> None:
        self._enabled = enabled
        self._timeout_s = timeout_s
        self._env = dict(env or {})
        self._output_limit = max(output_limit, 16)

    async def execute(self, request: AdapterRequest) -> StepResult:
        """Run the command; a non-zero exit is a result, a timeout an error."""
        call = _shell_call(request)
        try:
            _refuse_hazards(request, call)
            return await self._run(call)
        except AdapterError as exc:
            exc.step_id = exc.step_id or request.step.id
            raise

    async def preview(self, request: AdapterRequest) -> StepResult | None:
        """Return None: a command cannot be dry-run; describe() says exactly what runs."""
        return None

    def describe(self, request: AdapterRequest) -> str:
        """Say the quoted command line, the variable names passed, the cwd and the timeout."""
        call = _shell_call(request)
        names = sorted({"PATH", *self._env, *call.env})
        text = f"run `{shlex.join(call.command)}` (env: {', '.join(names)}"
        if call.cwd:
            text += f"; cwd {call.cwd}"
        return text + f"; timeout {self._timeout(call):g} s)"

    async def probe(self) -> Probe:
        """Report whether shell steps are enabled; nothing to reach."""
        if self._enabled:
            return Probe(self.name, ok=True, detail="enabled")
        return Probe(
            self.name,
            ok=True,
            detail="disabled (OPS_ALLOW_SHELL is not true): commands are shown to run by hand",
            configured=False,
        )

    # --- running -------------------------------------------------------------------------

    def _timeout(self, call: ShellCall) -> float:
        return call.timeout_s if call.timeout_s is not None else self._timeout_s

    def _child_env(self, call: ShellCall) -> dict[str, str]:
        # PATH is the one variable inherited (to find executables); everything else is given.
        env = {"PATH": os.pathsep.join(os.get_exec_path())}
        env.update(self._env)
        env.update(call.env)
        return env

    async def _run(self, call: ShellCall) -> StepResult:
        argv = list(call.command)
        line = shlex.join(argv)
        for arg in argv:
            if "\x00" in arg or "\n" in arg or "\r" in arg:
                raise UnsafeOperation(
                    f"refused to run {line}: an argument contains a NUL or a line break",
                    adapter=self.name,
                )
        if not self._enabled:
            raise ShellDisabled(
                f"shell steps are disabled (set OPS_ALLOW_SHELL=true); run it by hand: {line}",
                adapter=self.name,
            )
        timeout = self._timeout(call)
        started = time.perf_counter()
        # Output goes to files, not pipes: a daemon the command leaves behind (pm2's, say)
        # may keep its stdout open for ever, and must not hold the step open with it.
        with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
            try:
                process = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out_file,
                    stderr=err_file,
                    env=self._child_env(call),
                    cwd=call.cwd,
                    start_new_session=True,  # its own process group, so a timeout kills it all
                )
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                where = f" ({exc.filename})" if exc.filename else ""
                raise AdapterUnavailable(
                    f"cannot run {line}: {reason}{where}", adapter=self.name
                ) from exc
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError as exc:
                _kill_group(process.pid)
                await process.wait()
                raise AdapterTimeout(
                    f"{line} did not finish within {timeout:g} s; killed it and its children",
                    adapter=self.name,
                ) from exc
            finally:
                if process.returncode is None:  # cancelled from outside: leave nothing running
                    _kill_group(process.pid)
            stdout = _captured(out_file, self._output_limit)
            stderr = _captured(err_file, self._output_limit)
        elapsed = int((time.perf_counter() - started) * 1000)
        code = process.returncode
        assert code is not None  # noqa: S101 - process.wait() returned
        return StepResult(
            summary=_summary(line, code, elapsed, stdout, stderr),
            values={"exit_code": code, "stdout": stdout.text, "stderr": stderr.text},
            text=_combined(stdout, stderr),
            duration_ms=elapsed,
        )


def _shell_call(request: AdapterRequest) -> ShellCall:
    call = request.call
    if not isinstance(call, ShellCall):
        raise TypeError(f"the shell adapter was handed a {type(call).__name__}")
    return call


def _refuse_hazards(request: AdapterRequest, call: ShellCall) -> None:
    """Refuse a program chosen by a template, or code handed to an interpreter as text."""
    written = request.step.shell.command if request.step.shell is not None else call.command
    for command in (written, call.command):
        if hazard := shell_hazard(command):
            raise UnsafeOperation(
                f"refused to run {shlex.join(call.command)}: {hazard[1]}", adapter="shell"
            )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(pid, signal.SIGKILL)


def _captured(file: IO[bytes], limit: int) -> _Captured:
    """Return what was written to ``file``, keeping its first and last bytes within ``limit``."""
    total = file.seek(0, os.SEEK_END)
    file.seek(0)
    if total <= limit:
        return _Captured(file.read().decode(errors="replace"), total, truncated=False)
    keep_head = limit // 2
    keep_tail = limit - keep_head
    head = file.read(keep_head)
    file.seek(total - keep_tail)
    tail = file.read(keep_tail)
    omitted = total - keep_head - keep_tail
    text = (
        head.decode(errors="replace")
        + f"\n… [output truncated: {omitted} of {total} bytes omitted] …\n"
        + tail.decode(errors="replace")
    )
    return _Captured(text, total, truncated=True)


def _summary(line: str, code: int, elapsed_ms: int, out: _Captured, err: _Captured) -> str:
    took = f"{elapsed_ms / 1000:.1f} s"
    if code == 0:
        summary = f"{line} succeeded (exit code 0) in {took}"
    elif code < 0:
        summary = f"{line} failed: killed by signal {-code} after {took}"
    else:
        summary = f"{line} failed with exit code {code} after {took}"
        last = next((ln for ln in reversed(err.text.splitlines()) if ln.strip()), "")
        if last:
            summary += f": {last.strip()[:200]}"
    cut = [name for name, c in (("stdout", out), ("stderr", err)) if c.truncated]
    if cut:
        summary += f" ({' and '.join(cut)} truncated)"
    return summary


def _combined(out: _Captured, err: _Captured) -> str | None:
    parts = [out.text.rstrip("\n")] if out.text else []
    if err.text:
        parts.append("stderr:\n" + err.text.rstrip("\n"))
    return "\n".join(parts) or None
