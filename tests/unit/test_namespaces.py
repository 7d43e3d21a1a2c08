import subprocess

from harness.scenarios.namespaces import COMMAND_KILL_S, LoopResult, command_loop


def test_the_loop_counts_answers_and_reports_a_hung_command():
    script = command_loop([("true", 0.0), ("false", 0.0), ("exit 0", 0.0)])
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True).stdout
    assert LoopResult.parse(out) == LoopResult(ok=2, failed=1, hung="")
    assert f"timeout -s KILL {COMMAND_KILL_S} sh -c" in script
    # timeout(1) reports a command it had to kill with exit status 137
    hung = command_loop([("true", 0.0), ("kill -KILL $$", 0.0), ("true", 0.0)])
    proc = subprocess.run(["bash", "-c", hung], capture_output=True, text=True)
    assert proc.returncode == 1
    assert LoopResult.parse(proc.stdout) == LoopResult(ok=0, failed=0, hung="kill -KILL $$")
