"""pcctrl's own env ids work without importing ``pcctrl.envs`` first (fresh interpreter)."""

import subprocess
import sys


def test_agent_and_checkpoint_make_pcctrl_ids_without_import(tmp_path):
    code = (
        "from pcctrl.agents import ActiveInferenceAgent\n"
        "a = ActiveInferenceAgent('pcctrl/NoisyPendulum-v0', seed=0)\n"
        f"a.save({str(tmp_path / 'np.pt')!r})\n"
        f"b = ActiveInferenceAgent.load({str(tmp_path / 'np.pt')!r})\n"
        "print(b.env.spec.id)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("pcctrl/NoisyPendulum-v0")
