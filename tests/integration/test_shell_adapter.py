"""The shell adapter: argument lists only, explicit environment, bounded output and time."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from agape_ops.adapters.shell import ShellAdapter
from agape_ops.engine.ports import AdapterRequest
from agape_ops.errors import AdapterTimeout, AdapterUnavailable, ShellDisabled, UnsafeOperation
from agape_ops.runbooks.fields import FIELDS
from agape_ops.runbooks.model import Risk, ShellCall, Step

PY = sys.executable


def _request(call: ShellCall) -> AdapterRequest:
    step = Step(id="restart_app", title="Restart", risk=Risk.WRITE, shell=call)
    return AdapterRequest(run_id="r1", step=step, call=call, idempotency_key="k")


#: Where each test's scripts go: a shell step runs script files, never ``python -c`` code.
_scripts: list[Path] = []


@pytest.fixture(autouse=True)
def _script_dir(tmp_path: Path) -> None:
    _scripts[:] = [tmp_path]


def _python(
    code: str, *, env: dict[str, str] | None = None, timeout_s: float | None = None
) -> AdapterRequest:
    script = _scripts[0] / f"step{len(list(_scripts[0].glob('*.py')))}.py"
    script.write_text(code, encoding="utf-8")
    return _request(ShellCall(command=[PY, str(script)], env=env or {}, timeout_s=timeout_s))


async def test_runs_the_argument_list_and_captures_stdout_and_stderr() -> None:
    code = "import sys; print('restarted'); print('warn: slow', file=sys.stderr)"
    result = await ShellAdapter(enabled=True).execute(_python(code))
    assert result.values == {"exit_code": 0, "stdout": "restarted\n", "stderr": "warn: slow\n"}
    assert set(result.values) == FIELDS[("shell", "run")]
    assert "succeeded (exit code 0)" in result.summary


async def test_arguments_are_never_interpreted_by_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    result = await ShellAdapter(enabled=True).execute(
        _request(ShellCall(command=["echo", f"$HOME; touch {marker}", "`id`"]))
    )
    assert result.values["stdout"] == f"$HOME; touch {marker} `id`\n"
    assert not marker.exists()


async def test_a_non_zero_exit_is_a_result_saying_it_failed() -> None:
    code = "import sys; print('pm2: process not found', file=sys.stderr); sys.exit(3)"
    result = await ShellAdapter(enabled=True).execute(_python(code))
    assert result.values["exit_code"] == 3
    assert "failed with exit code 3" in result.summary
    assert "pm2: process not found" in result.summary


async def test_long_output_is_truncated_keeping_head_and_tail_and_saying_so() -> None:
    code = "print('HEAD' + 'x' * 20000 + 'TAIL')"
    result = await ShellAdapter(enabled=True, output_limit=200).execute(_python(code))
    stdout = result.values["stdout"]
    assert stdout.startswith("HEAD")
    assert stdout.rstrip().endswith("TAIL")
    assert "output truncated: 19809 of 20009 bytes omitted" in stdout
    assert len(stdout) < 400
    assert "stdout truncated" in result.summary


async def test_a_timeout_kills_the_whole_process_group_and_raises(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys; "
        "child = subprocess.Popen(['sleep', '10']); "
        f"open({str(pid_file)!r}, 'w').write(str(child.pid)); "
        "child.wait()"
    )
    started = time.monotonic()
    with pytest.raises(AdapterTimeout, match=r"did not finish within 0\.5 s") as err:
        await ShellAdapter(enabled=True).execute(_python(code, timeout_s=0.5))
    assert time.monotonic() - started < 5
    assert err.value.step_id == "restart_app"
    grandchild = int(pid_file.read_text())
    assert await _gone_within(grandchild, 5.0)


async def _gone_within(pid: int, seconds: float) -> bool:
    """Wait until the process exits (a zombie counts as gone), at most ``seconds``."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    loop = asyncio.get_running_loop()
    exited = asyncio.Event()
    loop.add_reader(handle, exited.set)
    try:
        async with asyncio.timeout(seconds):
            await exited.wait()
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(handle)
        os.close(handle)
    return True


async def test_a_background_process_left_behind_does_not_hold_the_step_open(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "daemon.pid"
    code = (
        "import subprocess; "
        "d = subprocess.Popen(['sleep', '10'], start_new_session=True); "
        f"open({str(pid_file)!r}, 'w').write(str(d.pid)); "
        "print('daemon started')"
    )
    started = time.monotonic()
    try:
        result = await ShellAdapter(enabled=True, timeout_s=8).execute(_python(code))
    finally:
        if pid_file.exists():  # the daemon this test started, by its id
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert time.monotonic() - started < 5
    assert result.values["exit_code"] == 0
    assert result.values["stdout"] == "daemon started\n"


async def test_the_environment_is_explicit_and_inherits_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGAPE_PARENT_ONLY", "must-not-leak")
    code = "import json, os; print(json.dumps(dict(os.environ)))"
    adapter = ShellAdapter(enabled=True, env={"PM2_HOME": "/srv/pm2"})
    result = await adapter.execute(_python(code, env={"NODE_ENV": "production"}))
    seen = json.loads(result.values["stdout"])
    assert "AGAPE_PARENT_ONLY" not in seen
    assert seen["NODE_ENV"] == "production"
    assert seen["PM2_HOME"] == "/srv/pm2"
    assert "PATH" in seen
    assert set(seen) - {"PATH", "NODE_ENV", "PM2_HOME", "LC_CTYPE", "PWD"} == set()


async def test_disabled_raises_shell_disabled_with_the_command_to_run_by_hand(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    call = ShellCall(command=["touch", str(marker), "two words"])
    with pytest.raises(ShellDisabled) as err:
        await ShellAdapter(enabled=False).execute(_request(call))
    assert str(err.value) == (
        "shell steps are disabled (set OPS_ALLOW_SHELL=true); run it by hand: "
        f"touch {marker} 'two words'"
    )
    assert not marker.exists()


@pytest.mark.parametrize("bad", ["a\nb", "a\x00b", "a\rb"])
async def test_arguments_with_nul_or_line_breaks_are_refused(bad: str) -> None:
    with pytest.raises(UnsafeOperation, match="NUL or a line break"):
        await ShellAdapter(enabled=True).execute(_request(ShellCall(command=["echo", bad])))


async def test_a_missing_executable_is_an_error_naming_it() -> None:
    call = ShellCall(command=["agape-no-such-command", "restart"])
    with pytest.raises(AdapterUnavailable, match="cannot run agape-no-such-command restart"):
        await ShellAdapter(enabled=True).execute(_request(call))


def test_describe_quotes_the_command_and_names_env_variables_only() -> None:
    call = ShellCall(
        command=["pm2", "restart", "agape backend"], env={"TOKEN": "s3cr3t-value"}, cwd="/srv/app"
    )
    text = ShellAdapter(enabled=True, timeout_s=30).describe(_request(call))
    assert (
        text == "run `pm2 restart 'agape backend'` (env: PATH, TOKEN; cwd /srv/app; timeout 30 s)"
    )
    assert "s3cr3t-value" not in text


async def test_probe_says_whether_shell_steps_are_enabled() -> None:
    on = await ShellAdapter(enabled=True).probe()
    off = await ShellAdapter(enabled=False).probe()
    assert on.configured is True
    assert off.configured is False
    assert "OPS_ALLOW_SHELL" in off.detail
