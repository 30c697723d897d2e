import subprocess
import sys

from kailash_nb.cli import main


def test_demo_prints_the_result_of_the_example_workflow(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "workflow 'demo': success" in out
    assert 'processor -> {"doubled": [2, 4, 6], "total": 12}' in out
    assert "processor printed: doubling 3 items" in out


def test_importing_the_engine_loads_only_the_standard_library():
    code = (
        "import sys, kailash_nb.workflow\n"
        "heavy = {'IPython', 'pandas', 'matplotlib', 'ipywidgets', 'asyncpg', 'numpy', 'pytest'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
