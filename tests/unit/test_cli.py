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


def test_check_and_update_help_say_what_each_exit_status_means(capsys):
    import pytest

    for command in ("check", "update"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "2 a usage error; 3 a notebook could not run (its kernel did not start, or it is unreadable)" in text
        assert "CI may retry on 3" in text
