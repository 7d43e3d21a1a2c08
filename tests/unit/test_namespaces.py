import subprocess

from harness.guest.ssh import LIBRARY, call_line
from harness.recovery.scenarios.namespaces import COMMAND_KILL_S, LoopResult, command_loop


def _loop(steps: list[tuple[str, float]]) -> subprocess.CompletedProcess[str]:
    """The guest's command loop, as Guest.call_background sends it, run by bash here."""
    script = LIBRARY.script(call_line("_loop_commands", *command_loop(steps)))
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)


def test_the_loop_counts_answers_and_reports_a_hung_command():
    steps = [("true", 0.0), ("false", 0.0), ("exit 0", 0.0)]
    assert command_loop(steps)[0] == str(COMMAND_KILL_S)
    assert LoopResult.parse(_loop(steps).stdout) == LoopResult(ok=2, failed=1, hung="")
    # timeout(1) reports a command it had to kill with exit status 137
    hung = _loop([("true", 0.0), ("kill -KILL $$", 0.0), ("true", 0.0)])
    assert hung.returncode == 1
    assert LoopResult.parse(hung.stdout) == LoopResult(ok=0, failed=0, hung="kill -KILL $$")
