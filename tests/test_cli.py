"""Bad input gives a clear error and a non-zero exit, never a traceback."""
import pytest

from zsbench.cli import main


def run_cli(capsys, *args):
    code = main(list(args))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.mark.parametrize("args,expect", [
    (["run", "--plugin", "devis"], "did you mean 'devise'"),
    (["run", "--plugin", "devise", "--protocol", "synes"], "did you mean 'synse'"),
    (["run", "--plugin", "devise", "--dataset", "synthetc"], "did you mean 'synthetic'"),
    (["run", "--plugin", "devise", "--set", "method.marginn=0.2"], "did you mean 'margin'"),
    (["run", "--plugin", "devise", "--set", "method.negatives=some"], "'all'"),
    (["run", "--plugin", "devise", "--set", "method.epochs=-1"], "method config"),
    (["run", "--plugin", "devise", "--set", "gzsl_rule=best"], "calibrated_stacking"),
    (["run"], "no method given"),
])
def test_bad_input_clear_error(capsys, args, expect):
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    assert expect in err
    assert "Traceback" not in err


def test_unwritable_output_folder(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(capsys, "run", "--plugin", "devise", "--out", str(blocker / "sub"))
    assert code == 2 and "not writable" in err


def test_report_on_missing_dir(capsys, tmp_path):
    code, _, err = run_cli(capsys, "report", str(tmp_path / "nothing"))
    assert code == 2 and "does not exist" in err


def test_help_and_list(capsys):
    code, out, _ = run_cli(capsys, "list", "methods")
    assert code == 0 and "devise" in out
    code, out, _ = run_cli(capsys, "list", "protocols")
    assert code == 0 and "synse" in out and "smie" in out


def test_unexpected_plugin_error_is_reported_without_traceback(capsys, monkeypatch):
    import zsbench.cli as cli

    def boom(args):
        raise RuntimeError("plugin exploded")

    monkeypatch.setitem(cli.COMMANDS, "list", boom)
    code, _, err = run_cli(capsys, "list")
    assert code == 1 and "internal error" in err and "plugin exploded" in err
    assert "Traceback" not in err


def test_check_plugin_command(capsys, tmp_path):
    code, out, err = run_cli(capsys, "check-plugin", "devise", "--out", str(tmp_path))
    assert code == 0, err
    assert "check-plugin devise: ok" in out
    assert list(tmp_path.rglob("result.json"))
